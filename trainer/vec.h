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

/* The attention products of one head's block of n rows against its ke
 * keys: row-major, ld* the row strides. BLAS packs its operands for
 * every call, which costs more than the products at these shapes (k or
 * n = dh); btz_vec_att_ok says whether these beat it here (AVX-512 and
 * heads of 16, the shipped models'), the plain loops serving any dh.
 *	btz_vec_att_qk: C[i][j] = a · Σ_c A[i][c] · BT[c][j] (C = a A Bᵀ
 *			  with B given transposed, BT [dh][ke])
 *	btz_vec_att_pv: C[i][c] (+)= Σ_j P[i][j] · V[j][c] (C (+)= P V;
 *			  add, else =)
 *	btz_vec_att_ptd: C[j][c] += Σ_i P[i][j] · D[i][c]   (C += Pᵀ D) */
int btz_vec_att_ok(size_t dh);
void btz_vec_att_qk(size_t n, size_t ke, size_t dh, float a, const float *A,
		    size_t lda, const float *BT, size_t ldbt, float *C,
		    size_t ldc);
void btz_vec_att_pv(size_t n, size_t ke, size_t dh, const float *P,
		    size_t ldp, const float *V, size_t ldv, float *C,
		    size_t ldc, int add);
void btz_vec_att_ptd(size_t n, size_t ke, size_t dh, const float *P,
		     size_t ldp, const float *D, size_t ldd, float *C,
		     size_t ldc);

#endif
