/* The integer kernels behind the engine, one table per instruction set.
 * The scalar table is the specification; every other one must give the
 * same int32 results bit for bit (integer sums do not depend on order). */
#ifndef BTZ_MODEL_KERNELS_H
#define BTZ_MODEL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

struct btz_kernels {
	const char *name;
	/* out[r*n + o] = sum_c X[r*k + c] * W[o*k + c], exact int32.
	 * X and W hold values in [-127, 127] only. */
	void (*gemm_s8)(const int8_t *X, size_t rows, size_t k,
			const int8_t *W, size_t n, int32_t *out);
};

extern const struct btz_kernels btz_kernels_scalar;

/* The fastest table this CPU runs, or the one BTZ_KERNEL names (for
 * tests and comparisons; an unknown or unsupported name falls back to
 * the best, with a note in *why if why is not NULL). */
const struct btz_kernels *btz_kernels_select(const char **why);
/* The named table if this CPU can run it, else NULL. */
const struct btz_kernels *btz_kernels_by_name(const char *name);
/* NULL-terminated list of every table compiled in. */
const struct btz_kernels *const *btz_kernels_all(void);

#endif
