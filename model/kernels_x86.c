/* x86 kernels (AVX2, AVX-512 VNNI, AMX), chosen at run time by CPUID.
 * Each must equal the scalar kernel bit for bit. */
#include "model/kernels.h"

#include <stddef.h>

const struct btz_kernels *const btz_kernels_x86[] = { NULL };
int (*const btz_kernels_x86_ok[])(void) = { NULL };
