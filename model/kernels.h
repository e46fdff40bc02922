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
	/* Optional (NULL where a table has none): W rearranged once for
	 * gemm_packed, for the weights that every call multiplies. Returns
	 * malloc'd memory, or NULL (out of memory, or a shape it does not
	 * take: then use gemm_s8). */
	void *(*pack_w)(const int8_t *W, size_t k, size_t n);
	/* gemm_s8 with P = pack_w(W, k, n): the same integers. */
	void (*gemm_packed)(const int8_t *X, size_t rows, size_t k,
			    const int8_t *W, const void *P, size_t n,
			    int32_t *out);
	/* For each of nrows rows i of weights (at e + i*estride):
	 * part[i*dh + c] += sum_{j < n} e[i*estride + j] * V[j*stride + c]
	 * for c < dh, exact int32: the caller keeps n <= 256, so |sums| <
	 * 256*65535*127 < 2^31. The attention's weighted sum of values, for
	 * all the rows (heads, or one head's positions) that share them. */
	void (*wsum)(const uint16_t *e, size_t estride, size_t nrows,
		     const int8_t *V, size_t stride, size_t n, size_t dh,
		     int32_t *part);
	/* The attention weights of doc/model.md: for j < n,
	 * e[j] = table[min(rshift((mx - s[j]) * mul, shift), 255)]; returns
	 * their sum. Needs 0 <= mx - s[j] < 2^23 (int8 scores guarantee it),
	 * 0 <= mul < 2^31, 0 <= shift <= 62, and table padded to 264
	 * entries (vector loads may read past entry 255). */
	uint64_t (*att_weights)(const int32_t *s, size_t n, int32_t mx,
				int32_t mul, int32_t shift,
				const uint16_t *table, uint16_t *e);
	/* Optional (both NULL where a table has none): attention for a head
	 * width of 16 on the blocked caches below, which the engine then
	 * keeps instead of rows of 16. scores16 is gemm_s8 with k = 16 of
	 * rows queries against keys 0..n-1 of K; wsum16 is wsum with dh =
	 * stride = 16 against values j0..j0+n-1 of V at V + 16·j0, j0 a
	 * multiple of 4, n <= 256. */
	void (*scores16)(const int8_t *q, size_t rows, const int8_t *K,
			 size_t n, int32_t *out);
	void (*wsum16)(const uint16_t *e, size_t estride, size_t nrows,
		       const int8_t *V, size_t n, int32_t *part);
	/* acc[i] = silu[a[i] + 128] · u[i] for i < n: SwiGLU's product
	 * before its requantization, exact in int32 (|silu| <= 2^15). */
	void (*silu_mul)(const int8_t *a, const int8_t *u, size_t n,
			 const int16_t *silu, int32_t *acc);
	/* The largest of s[0..n), n >= 1: each attention row's maximum
	 * score, before its weights. */
	int32_t (*max_s32)(const int32_t *s, size_t n);
	/* btz_layer_norm (intops.h): one row of d residuals into int8;
	 * the residuals within +-2^24 (btz_residual clamps them there),
	 * 0 <= shift <= 62. */
	void (*layer_norm)(const int32_t *r, size_t d, const int32_t *g,
			   const int32_t *b, int32_t shift, int8_t *out);
	/* r[i] = btz_residual(x[i], acc[i], rx, mul[i], shift) for i < n
	 * (intops.h): a layer's input plus its requantized product;
	 * 0 <= shift <= 62. */
	void (*residual)(const int8_t *x, const int32_t *acc, size_t n,
			 int32_t rx, const int32_t *mul, int32_t shift,
			 int32_t *r);
	/* out[i] = btz_rq8(acc[i], mul[i], shift) for i < n (intops.h):
	 * the requantization after every product; 0 <= shift <= 62. */
	void (*rq8)(const int32_t *acc, size_t n, const int32_t *mul,
		    int32_t shift, int8_t *out);
	/* o[i·ostride + c] = btz_att_out(num[i·dh + c], ao_shift, z[i])
	 * for i < nrows, c < dh (intops.h): each head's outputs, its
	 * weighted sums over its weights' sum z[i] > 0; 0 <= ao_shift <= 7. */
	void (*att_out)(const int64_t *num, const int64_t *z, size_t nrows,
			size_t dh, int32_t ao_shift, int8_t *o,
			size_t ostride);
	/* btz_freq_row (intops.h): one output row's 256 frequencies, for
	 * total <= 2^24 and exp_out entries <= 2^22 with exp_out[0] > 0
	 * (what a loaded model has). */
	void (*freq_row)(const int32_t *l, int32_t f_mul, int32_t f_shift,
			 const uint32_t *exp_out, uint32_t total,
			 uint32_t *freq);
};

/* The blocked key and value caches of a head width of 16: the layouts
 * vpdpbusd reads without rearranging. Keys in blocks of 16 positions,
 * 256 bytes: key j's bytes 4g..4g+3, each + 128 (the unsigned side), at
 * 64g + 4(j mod 16) of block j / 16. Values in blocks of 4 positions, 64
 * bytes: value j's byte c at 4c + (j mod 4) of block j / 4. A head of W
 * positions takes 16·W rounded up to 256 bytes of each. */
void btz_kv16_put_key(int8_t *K, size_t pos, const int8_t *k);
void btz_kv16_put_value(int8_t *V, size_t pos, const int8_t *v);
/* The specification of scores16 and wsum16 on those layouts. */
void btz_scores16_scalar(const int8_t *q, size_t rows, const int8_t *K,
			 size_t n, int32_t *out);
void btz_wsum16_scalar(const uint16_t *e, size_t estride, size_t nrows,
		       const int8_t *V, size_t n, int32_t *part);

/* btz_freq_row's last step, from its 256 exponentials e (sum, the
 * first largest at best), without its 256 divisions: each quotient by
 * one exact reciprocal of sum. freq_row without SIMD. */
void btz_freq_quotients(const uint32_t *e, uint64_t sum, int best,
			uint32_t total, uint32_t *freq);
void btz_freq_row_recip(const int32_t *l, int32_t f_mul, int32_t f_shift,
			const uint32_t *exp_out, uint32_t total,
			uint32_t *freq);

extern const struct btz_kernels btz_kernels_scalar;
void btz_wsum_scalar(const uint16_t *e, size_t estride, size_t nrows,
		     const int8_t *V, size_t stride, size_t n, size_t dh,
		     int32_t *part);
uint64_t btz_att_weights_scalar(const int32_t *s, size_t n, int32_t mx,
				int32_t mul, int32_t shift,
				const uint16_t *table, uint16_t *e);
void btz_rq8_scalar(const int32_t *acc, size_t n, const int32_t *mul,
		    int32_t shift, int8_t *out);
int32_t btz_max_s32_scalar(const int32_t *s, size_t n);
void btz_silu_mul_scalar(const int8_t *a, const int8_t *u, size_t n,
			 const int16_t *silu, int32_t *acc);
void btz_residual_scalar(const int8_t *x, const int32_t *acc, size_t n,
			 int32_t rx, const int32_t *mul, int32_t shift,
			 int32_t *r);
void btz_att_out_scalar(const int64_t *num, const int64_t *z, size_t nrows,
			size_t dh, int32_t ao_shift, int8_t *o, size_t ostride);
void btz_layer_norm_scalar(const int32_t *r, size_t d, const int32_t *g,
			   const int32_t *b, int32_t shift, int8_t *out);

/* The fastest table this CPU runs, or the one BTZ_KERNEL names (for
 * tests and comparisons; an unknown or unsupported name falls back to
 * the best, with a note in *why if why is not NULL). */
const struct btz_kernels *btz_kernels_select(const char **why);
/* The named table if this CPU can run it, else NULL. */
const struct btz_kernels *btz_kernels_by_name(const char *name);
/* NULL-terminated list of every table compiled in. */
const struct btz_kernels *const *btz_kernels_all(void);

#endif
