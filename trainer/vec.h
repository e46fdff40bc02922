/* Vector loops of the trainer's softmax, SiLU and quantization-aware
 * rounding, AVX-512 where the CPU has it. Training only: exp is a polynomial (relative error < 1e-6),
 * not libm, which is fine because no coded bit depends on it. */
#ifndef BTZ_TRAINER_VEC_H
#define BTZ_TRAINER_VEC_H

#include <stddef.h>

float btz_vec_max(const float *x, size_t n);
float btz_vec_max_abs(const float *x, size_t n);
/* x on the int8 grid of the export: 255 levels, step max/127, nearest
 * (ties to even, as the export rounds); nothing when max is 0. */
void btz_vec_round_grid(float *x, size_t n, float max);
/* x[i] = exp(x[i] − sub); returns the sum of the results. */
float btz_vec_exp_sum(float *x, size_t n, float sub);
void btz_vec_scale(float *x, size_t n, float a);
/* dp[i] = p[i] · (dp[i] − di) · a: the softmax backward. */
void btz_vec_dsoftmax(float *dp, const float *p, size_t n, float di, float a);
/* h = silu(a)·u (forward); with dh: da, du from dh (backward). */
void btz_vec_swiglu(const float *a, const float *u, float *h, size_t n);
void btz_vec_swiglu_bwd(const float *a, const float *u, const float *dh,
			float *da, float *du, size_t n);

#endif
