/* Weight products in bfloat16 for the trainer (oneDNN's matmul). */
#ifndef BTZ_TRAINER_BF16_H
#define BTZ_TRAINER_BF16_H

/* 1 if this build has oneDNN and the CPU computes bf16 products natively
 * (AVX-512 BF16), where they beat float32. */
int btz_bf16_available(void);
/* Turns bf16 products on (where available) or off (the default);
 * returns whether they are on. Call before any product. */
int btz_bf16_enable(int on);

/* C = op(A)·op(B) + beta·C, row-major as btz_mm, with A and B rounded to
 * bfloat16 and float32 sums, beta 0 or 1, split over the OpenMP threads
 * by oneDNN. Returns 1 when done; 0, with C untouched, when bf16 is off
 * or the shape is refused: the caller then takes the float32 product.
 * One call at a time (the products share their buffers). */
int btz_bf16_mm(int ta, int tb, int m, int n, int k, const float *a, int lda,
		const float *b, int ldb, float beta, float *c, int ldc);

#endif
