/* The scalar kernels, and choosing a kernel table at run time. */
#include "model/kernels.h"

#include <stdlib.h>
#include <string.h>

#include "model/intops.h"

static void gemm_s8_scalar(const int8_t *X, size_t rows, size_t k,
			   const int8_t *W, size_t n, int32_t *out)
{
	for (size_t r = 0; r < rows; r++) {
		const int8_t *x = X + r * k;

		for (size_t o = 0; o < n; o++) {
			const int8_t *w = W + o * k;
			int32_t sum = 0;

			for (size_t c = 0; c < k; c++)
				sum += (int32_t)x[c] * w[c];
			out[r * n + o] = sum;
		}
	}
}

void btz_wsum_scalar(const uint16_t *e, size_t estride, size_t nrows,
		     const int8_t *V, size_t stride, size_t n, size_t dh,
		     int32_t *part)
{
	for (size_t i = 0; i < nrows; i++)
		for (size_t j = 0; j < n; j++) {
			const int8_t *v = V + j * stride;
			int32_t ej = (int32_t)e[i * estride + j];

			for (size_t c = 0; c < dh; c++)
				part[i * dh + c] += ej * v[c];
		}
}

void btz_kv16_put_key(int8_t *K, size_t pos, const int8_t *k)
{
	uint8_t *b = (uint8_t *)K + pos / 16 * 256 + 4 * (pos % 16);

	for (size_t c = 0; c < 16; c++)
		b[64 * (c / 4) + c % 4] = (uint8_t)(k[c] + 128);
}

void btz_kv16_put_value(int8_t *V, size_t pos, const int8_t *v)
{
	int8_t *b = V + pos / 4 * 64 + pos % 4;

	for (size_t c = 0; c < 16; c++)
		b[4 * c] = v[c];
}

void btz_scores16_scalar(const int8_t *q, size_t rows, const int8_t *K,
			 size_t n, int32_t *out)
{
	const uint8_t *u = (const uint8_t *)K;

	for (size_t r = 0; r < rows; r++)
		for (size_t j = 0; j < n; j++) {
			const uint8_t *b = u + j / 16 * 256 + 4 * (j % 16);
			int32_t s = 0;

			for (size_t c = 0; c < 16; c++)
				s += q[r * 16 + c] *
				     ((int32_t)b[64 * (c / 4) + c % 4] - 128);
			out[r * n + j] = s;
		}
}

void btz_wsum16_scalar(const uint16_t *e, size_t estride, size_t nrows,
		       const int8_t *V, size_t n, int32_t *part)
{
	for (size_t i = 0; i < nrows; i++)
		for (size_t j = 0; j < n; j++) {
			const int8_t *b = V + j / 4 * 64 + j % 4;
			int32_t ej = (int32_t)e[i * estride + j];

			for (size_t c = 0; c < 16; c++)
				part[i * 16 + c] += ej * b[4 * c];
		}
}

void btz_silu_mul_scalar(const int8_t *a, const int8_t *u, size_t n,
			 const int16_t *silu, int32_t *acc)
{
	for (size_t i = 0; i < n; i++)
		acc[i] = (int32_t)silu[a[i] + 128] * u[i];
}

uint64_t btz_att_weights_scalar(const int32_t *s, size_t n, int32_t mx,
				int32_t mul, int32_t shift,
				const uint16_t *table, uint16_t *e)
{
	uint64_t z = 0;

	for (size_t j = 0; j < n; j++) {
		e[j] = btz_att_weight(s[j], mx, mul, shift, table);
		z += e[j];
	}
	return z;
}

void btz_rq8_scalar(const int32_t *acc, size_t n, const int32_t *mul,
		    int32_t shift, int8_t *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = btz_rq8(acc[i], mul[i], shift);
}

int32_t btz_max_s32_scalar(const int32_t *s, size_t n)
{
	int32_t mx = s[0];

	for (size_t j = 1; j < n; j++)
		if (s[j] > mx)
			mx = s[j];
	return mx;
}

void btz_residual_scalar(const int8_t *x, const int32_t *acc, size_t n,
			 int32_t rx, const int32_t *mul, int32_t shift,
			 int32_t *r)
{
	for (size_t i = 0; i < n; i++)
		r[i] = btz_residual(x[i], acc[i], rx, mul[i], shift);
}

void btz_att_out_scalar(const int64_t *num, const int64_t *z, size_t nrows,
			size_t dh, int32_t ao_shift, int8_t *o, size_t ostride)
{
	for (size_t i = 0; i < nrows; i++)
		for (size_t c = 0; c < dh; c++)
			o[i * ostride + c] =
				btz_att_out(num[i * dh + c], ao_shift, z[i]);
}

void btz_layer_norm_scalar(const int32_t *r, size_t d, const int32_t *g,
			   const int32_t *b, int32_t shift, int8_t *out)
{
	btz_layer_norm(r, d, g, b, shift, out);
}

/* floor(e·c / sum) as floor(e·c·m / 2^k), m = floor(2^k / sum) + 1, k
 * = 46 + ceil(log2 sum): m = 2^k / sum + δ with 0 < δ <= 1, so the
 * product overshoots e·c / sum by e·c·δ / 2^k < 2^46 / 2^k <= 1 / sum,
 * less than the distance from e·c / sum up to the next integer. Needs
 * e·c < 2^46 (e <= 2^22, c < 2^24) and 1 <= sum < 2^31 (256 of e);
 * m < 2^47 + 1 and the product < 2^94. */
void btz_freq_quotients(const uint32_t *e, uint64_t sum, int best,
			uint32_t total, uint32_t *freq)
{
	uint64_t c = total - 256, given = 0;
	int k = 46 + (sum > 1 ? 64 - __builtin_clzll(sum - 1) : 0);
	uint64_t m = (uint64_t)(((unsigned __int128)1 << k) / sum) + 1;

	for (int b = 0; b < 256; b++) {
		freq[b] = 1 + (uint32_t)(((unsigned __int128)(e[b] * c) * m) >>
					 k);
		given += freq[b];
	}
	freq[best] += (uint32_t)(total - given);
}

void btz_freq_row_recip(const int32_t *l, int32_t f_mul, int32_t f_shift,
			const uint32_t *exp_out, uint32_t total,
			uint32_t *freq)
{
	uint32_t e[256];
	uint64_t sum;
	int best = btz_freq_exps(l, f_mul, f_shift, exp_out, e, &sum);

	btz_freq_quotients(e, sum, best, total, freq);
}

const struct btz_kernels btz_kernels_scalar = {
	.name = "scalar",
	.gemm_s8 = gemm_s8_scalar,
	.wsum = btz_wsum_scalar,
	.att_weights = btz_att_weights_scalar,
	.max_s32 = btz_max_s32_scalar,
	.silu_mul = btz_silu_mul_scalar,
	.layer_norm = btz_layer_norm_scalar,
	.att_out = btz_att_out_scalar,
	.residual = btz_residual_scalar,
	.rq8 = btz_rq8_scalar,
	.freq_row = btz_freq_row,
};

/* Faster tables, best first, each with a test of whether this CPU runs
 * it; filled in by kernels_x86.c where the compiler supports it. */
extern const struct btz_kernels *const btz_kernels_x86[];
extern int (*const btz_kernels_x86_ok[])(void);

const struct btz_kernels *const *btz_kernels_all(void)
{
	static const struct btz_kernels *all[16];

	if (all[0] == NULL) {
		size_t n = 0;

		for (size_t i = 0; btz_kernels_x86[i] != NULL && n < 14; i++)
			all[n++] = btz_kernels_x86[i];
		all[n] = &btz_kernels_scalar;
	}
	return all;
}

const struct btz_kernels *btz_kernels_by_name(const char *name)
{
	if (strcmp(name, btz_kernels_scalar.name) == 0)
		return &btz_kernels_scalar;
	for (size_t i = 0; btz_kernels_x86[i] != NULL; i++)
		if (strcmp(name, btz_kernels_x86[i]->name) == 0)
			return btz_kernels_x86_ok[i]() ? btz_kernels_x86[i]
							: NULL;
	return NULL;
}

const struct btz_kernels *btz_kernels_select(const char **why)
{
	const char *want = getenv("BTZ_KERNEL");

	if (why != NULL)
		*why = NULL;
	if (want != NULL && *want != '\0') {
		const struct btz_kernels *k = btz_kernels_by_name(want);

		if (k != NULL)
			return k;
		if (why != NULL)
			*why = "BTZ_KERNEL names a kernel this CPU or build "
			       "lacks; using the best available";
	}
	for (size_t i = 0; btz_kernels_x86[i] != NULL; i++)
		if (btz_kernels_x86_ok[i]())
			return btz_kernels_x86[i];
	return &btz_kernels_scalar;
}
