/* The integer arithmetic of doc/model.md, one definition for every
 * backend: the CPU engine (model/engine.c) and the GPU engine
 * (model/gpu_body.h) call these same functions, so the two cannot drift
 * apart. Each is a pure function of integers; BTZ_HD compiles it for CUDA
 * devices too. */
#ifndef BTZ_MODEL_INTOPS_H
#define BTZ_MODEL_INTOPS_H

#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"

/* Round half up, by an arithmetic right shift (as GCC, Clang and NVCC
 * define >> on negative values). */
static inline BTZ_HD int64_t btz_rshift(int64_t x, int32_t s)
{
	return s ? (x + ((int64_t)1 << (s - 1))) >> s : x;
}

static inline BTZ_HD int64_t btz_floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if (a % b != 0 && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* a / b rounded half up, b > 0. */
static inline BTZ_HD int64_t btz_divr(int64_t a, int64_t b)
{
	return btz_floordiv(2 * a + b, 2 * b);
}

static inline BTZ_HD int64_t btz_clamp64(int64_t x, int64_t lo, int64_t hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

/* Requantization of one accumulator to int8. */
static inline BTZ_HD int8_t btz_rq8(int32_t acc, int32_t mul, int32_t shift)
{
	return (int8_t)btz_clamp64(btz_rshift((int64_t)acc * mul, shift), -127,
				   127);
}

/* Token plus position embedding. */
static inline BTZ_HD int8_t btz_embed(int8_t tok, int8_t pos)
{
	return (int8_t)btz_clamp64((int)tok + pos, -127, 127);
}

/* Residual: x * rx + rshift(acc * mul, shift), within +-2^24. */
static inline BTZ_HD int32_t btz_residual(int8_t x, int32_t acc, int32_t rx,
					  int32_t mul, int32_t shift)
{
	return (int32_t)btz_clamp64((int64_t)x * rx +
					    btz_rshift((int64_t)acc * mul, shift),
				    -(1 << 24), 1 << 24);
}

/* Layer norm of one row of d residuals into int8. */
static inline BTZ_HD void btz_layer_norm(const int32_t *r, size_t d,
					 const int32_t *g, const int32_t *b,
					 int32_t shift, int8_t *out)
{
	int64_t sum = 0, mu, sd;
	uint64_t sq = 0;

	for (size_t c = 0; c < d; c++)
		sum += r[c];
	mu = btz_divr(sum, (int64_t)d);
	for (size_t c = 0; c < d; c++) {
		int64_t z = r[c] - mu;

		sq += (uint64_t)(z * z);
	}
	sd = (int64_t)btz_isqrt64(sq / d);
	if (sd < 1)
		sd = 1;
	for (size_t c = 0; c < d; c++) {
		int64_t n = btz_clamp64(btz_divr((r[c] - mu) * 4096, sd),
					-(1 << 20), 1 << 20);

		out[c] = (int8_t)btz_clamp64(btz_rshift(n * g[c] + b[c], shift),
					     -127, 127);
	}
}

/* The attention weight of a score s below the row's maximum mx. */
static inline BTZ_HD uint16_t btz_att_weight(int32_t s, int32_t mx,
					     int32_t mul, int32_t shift,
					     const uint16_t *table)
{
	int64_t idx = btz_rshift((int64_t)(mx - s) * mul, shift);

	return table[idx > 255 ? 255 : idx];
}

/* Positions a row always attends to under an attention span: the
 * window's first 16, a block of the caches' layout (kernels.h). */
#define BTZ_ATT_SINK 16u

/* Under an attention span (doc/model.md), the row at position p attends
 * to positions 0 .. BTZ_ATT_SINK - 1 and to those from the returned one
 * to p: a multiple of 16, at most span + 15 of them. Where that leaves
 * nothing out, and for span 0 (the whole window), BTZ_ATT_SINK. */
static inline BTZ_HD size_t btz_att_tail(size_t p, uint32_t span)
{
	if (span == 0 || p + 1 < (size_t)span + 2 * BTZ_ATT_SINK)
		return BTZ_ATT_SINK;
	return (p + 1 - span) / 16 * 16;
}

/* The position a row attends to after j, its tail starting at st
 * (btz_att_tail): past the sink, st. */
static inline BTZ_HD size_t btz_att_next(size_t j, size_t st)
{
	return j + 1 == BTZ_ATT_SINK ? st : j + 1;
}

/* One output of a head: the weighted sum num over the weights' sum z. */
static inline BTZ_HD int8_t btz_att_out(int64_t num, int32_t ao_shift,
					int64_t z)
{
	return (int8_t)btz_clamp64(btz_divr(num * ((int64_t)1 << ao_shift), z),
				   -127, 127);
}

/* SwiGLU's product: silu(a) (from the model's table) times u. */
static inline BTZ_HD int8_t btz_swiglu(int16_t silu_a, int8_t u, int32_t mh,
				       int32_t sh)
{
	return (int8_t)btz_clamp64(btz_rshift((int64_t)silu_a * u * mh, sh),
				   -127, 127);
}

/* One output row's 256 exponentials e; returns the first largest, and
 * their sum in *sum. */
static inline BTZ_HD int btz_freq_exps(const int32_t *l, int32_t f_mul,
				       int32_t f_shift,
				       const uint32_t *exp_out, uint32_t *e,
				       uint64_t *sum)
{
	uint32_t emax = 0;
	int32_t mx = l[0];
	int best = 0;

	for (int b = 1; b < 256; b++)
		if (l[b] > mx)
			mx = l[b];
	*sum = 0;
	for (int b = 0; b < 256; b++) {
		int64_t idx = btz_rshift((int64_t)(mx - l[b]) * f_mul, f_shift);

		e[b] = exp_out[idx > 1023 ? 1023 : idx];
		*sum += e[b];
		if (e[b] > emax) {
			emax = e[b];
			best = b;
		}
	}
	return best;
}

/* 256 frequencies totalling total (each >= 1) from one output row. */
static inline BTZ_HD void btz_freq_row(const int32_t *l, int32_t f_mul,
				       int32_t f_shift,
				       const uint32_t *exp_out, uint32_t total,
				       uint32_t *freq)
{
	uint32_t e[256];
	uint64_t sum, given = 0;
	int best = btz_freq_exps(l, f_mul, f_shift, exp_out, e, &sum);

	for (int b = 0; b < 256; b++) {
		freq[b] = 1 + (uint32_t)((uint64_t)e[b] * (total - 256) / sum);
		given += freq[b];
	}
	freq[best] += (uint32_t)(total - given);
}

/* The coder's interval of byte b in a table: { frequencies below b,
 * frequency of b } (what an encoder keeps of a row). */
static inline BTZ_HD void btz_interval(const uint32_t *freq, unsigned b,
				       uint32_t *sym)
{
	uint32_t lo = 0;

	for (unsigned c = 0; c < b; c++)
		lo += freq[c];
	sym[0] = lo;
	sym[1] = freq[b];
}

#endif
