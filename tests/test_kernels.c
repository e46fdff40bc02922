/* Every kernel table this CPU runs must give the scalar kernel's int32
 * results bit for bit: random inputs over many shapes (tails of k, of
 * rows and of columns), the largest sums (all ±127, k = 16384), and
 * unaligned pointers.  Buffers are allocated to their exact size so that
 * a sanitizer sees any read or write past them; guard words around the
 * output catch stray writes without one. */
#include "model/intops.h"
#include "model/kernels.h"
#include "tests/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 0x5a5a5a5a

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	return p;
}

enum fill { RANDOM, PLUS, MINUS, ALT, ALT_NEG };

static void fill(int8_t *p, size_t len, enum fill f)
{
	for (size_t i = 0; i < len; i++) {
		switch (f) {
		case RANDOM: p[i] = (int8_t)((int)(rnd() % 255) - 127); break;
		case PLUS: p[i] = 127; break;
		case MINUS: p[i] = -127; break;
		case ALT: p[i] = (i & 1) ? -127 : 127; break;
		case ALT_NEG: p[i] = (i & 1) ? 127 : -127; break;
		}
	}
}

static const struct btz_kernels *tested[16];
static size_t ntested;
static unsigned long ncases;

/* Run every tested kernel on one shape and compare with the scalar one.
 * off shifts X and W by 0..3 bytes and out by 0..3 int32s. */
static void one(size_t rows, size_t k, size_t n, enum fill fx, enum fill fw,
		unsigned off)
{
	size_t xo = off % 4, wo = (off / 4) % 4, oo = (off / 16) % 4;
	int8_t *xb = xmalloc(xo + rows * k), *wb = xmalloc(wo + n * k);
	int8_t *X = xb + xo, *W = wb + wo;
	int32_t *want = xmalloc(rows * n * sizeof *want);
	int32_t *ob = xmalloc((oo + rows * n + 1) * sizeof *ob);
	int32_t *got = ob + oo;

	fill(X, rows * k, fx);
	fill(W, n * k, fw);
	btz_kernels_scalar.gemm_s8(X, rows, k, W, n, want);
	/* Each table's gemm_s8, then its gemm_packed where it has one. */
	for (size_t tp = 0; tp < 2 * ntested; tp++) {
		size_t t = tp / 2, bad = 0;
		void *P = NULL;

		if (tp % 2 == 1) {
			if (tested[t]->pack_w == NULL)
				continue;
			P = tested[t]->pack_w(W, k, n);
			if (P == NULL) {
				fprintf(stderr, "%s: pack_w refused k=%zu n=%zu\n",
					tested[t]->name, k, n);
				failures++;
				continue;
			}
		}
		for (size_t i = 0; i < oo + rows * n + 1; i++)
			ob[i] = GUARD;
		if (P != NULL)
			tested[t]->gemm_packed(X, rows, k, W, P, n, got);
		else
			tested[t]->gemm_s8(X, rows, k, W, n, got);
		free(P);
		ncases++;
		for (size_t i = 0; i < oo; i++)
			CHECK_EQ(ob[i], GUARD);
		CHECK_EQ(got[rows * n], GUARD);
		for (size_t i = 0; i < rows * n; i++) {
			if (got[i] == want[i])
				continue;
			if (bad++ < 3)
				fprintf(stderr,
					"%s%s: rows=%zu k=%zu n=%zu fill=%d/%d "
					"off=%u: out[%zu][%zu] = %ld, scalar "
					"%ld\n",
					tested[t]->name, tp % 2 ? " packed" : "",
					rows, k, n, (int)fx,
					(int)fw, off, i / n, i % n,
					(long)got[i], (long)want[i]);
		}
		if (bad)
			failures++;
	}
	free(xb);
	free(wb);
	free(want);
	free(ob);
}

static void wsum_one(const struct btz_kernels *t, const uint16_t *e,
		     size_t estride, size_t nrows, const int8_t *v,
		     size_t stride, size_t n, size_t dh)
{
	static int32_t want[64 * 256], got[64 * 256];

	for (size_t c = 0; c < nrows * dh; c++)
		want[c] = got[c] = (int32_t)(c * 7) - 50;
	btz_kernels_scalar.wsum(e, estride, nrows, v, stride, n, dh, want);
	t->wsum(e, estride, nrows, v, stride, n, dh, got);
	ncases++;
	if (memcmp(want, got, nrows * dh * sizeof(int32_t))) {
		fprintf(stderr, "%s wsum rows=%zu n=%zu dh=%zu stride=%zu "
			"differs\n", t->name, nrows, n, dh, stride);
		failures++;
	}
}

/* The weighted value sum: random and extreme weights (65535) and values
 * (+-127), every dh tail, n up to the 256 the engine allows, one row and
 * several; and every n for the shape the engine uses (dh = stride = 16,
 * the models' heads) with 1, 3, 8 and 64 rows of weights. */
static void wsums(void)
{
	static const size_t dhs[] = { 1, 7, 8, 9, 15, 16, 17, 24, 32, 33, 64,
				      128, 256 };
	static const size_t rows[] = { 1, 3, 8, 64 };
	uint16_t *e = xmalloc(64 * 300 * sizeof(*e));
	int8_t *v = xmalloc(256 * 300);

	for (size_t t = 0; t < ntested; t++) {
		for (size_t i = 0; i < sizeof(dhs) / sizeof(dhs[0]); i++) {
			for (size_t n = 1; n <= 256; n += n < 8 ? 1 : 37) {
				size_t dh = dhs[i], stride = dh + (n % 3) * 5;
				size_t nr = 1 + n % 4, es = n + n % 5;
				int extreme = (n % 2) == 0;

				for (size_t j = 0; j < 64 * 300; j++)
					e[j] = extreme ? 65535 : (uint16_t)rnd();
				for (size_t j = 0; j < 256 * 300; j++)
					v[j] = extreme ? (int8_t)((j & 1) ? 127 : -127)
						       : (int8_t)(rnd() % 255 - 127);
				wsum_one(tested[t], e, es, nr, v, stride, n, dh);
			}
		}
		for (size_t ri = 0; ri < sizeof(rows) / sizeof(rows[0]); ri++)
			for (size_t n = 1; n <= 256; n++) {
				int extreme = n % 4;
				size_t es = n + (n % 3) * 7;

				for (size_t j = 0; j < 64 * 300; j++)
					e[j] = extreme == 1 ? 65535 :
					       extreme == 2 ? (uint16_t)(j & 1 ? 65535 : 255)
							    : (uint16_t)rnd();
				for (size_t j = 0; j < 256 * 16; j++)
					v[j] = extreme == 1 ? (int8_t)(j & 1 ? 127 : -127) :
					       extreme == 2 ? (int8_t)-127
							    : (int8_t)(rnd() % 255 - 127);
				wsum_one(tested[t], e, es, rows[ri], v, 16, n, 16);
			}
	}
	free(e);
	free(v);
}

static void blocked_check(const char *what, const char *name, size_t rows,
			  size_t n, const int32_t *want, const int32_t *got,
			  size_t len)
{
	ncases++;
	if (memcmp(want, got, len * sizeof(int32_t))) {
		fprintf(stderr, "%s %s rows=%zu n=%zu differs\n", name, what,
			rows, n);
		failures++;
	}
}

/* The blocked caches of a head width of 16: first that the scalar
 * specification on them gives what gemm_s8 and wsum give on plain rows
 * (the layout is what kernels.h says), then that every table's kernels
 * give the specification's integers. The blocks start full of noise, as
 * reused caches are, and the weights past n are noise too: neither may
 * reach a result. Random and extreme keys, values (+-127) and weights
 * (65535); every n up to a window of 1024 keys, and value sums of up to
 * 256 positions from every 4th one; 1, 3, 8, 9 and 64 rows. */
static void blocked16(void)
{
	static const size_t rowss[] = { 1, 3, 8, 9, 64 };
	enum { W = 1024 };
	int8_t *k = xmalloc(W * 16), *v = xmalloc(W * 16);
	int8_t *kb = xmalloc(W * 16), *vb = xmalloc(W * 16);
	int8_t *q = xmalloc(64 * 16);
	uint16_t *e = xmalloc(64 * 300 * sizeof(*e));
	int32_t *want = xmalloc(64 * W * sizeof(int32_t));
	int32_t *got = xmalloc(64 * W * sizeof(int32_t));

	for (size_t ri = 0; ri < sizeof(rowss) / sizeof(rowss[0]); ri++)
		for (size_t n = 1; n <= W; n += n < 40 ? 1 : 29) {
			size_t rows = rowss[ri], es = 256 + n % 7;
			int extreme = n % 5 == 0 ? 1 : n % 5 == 1 ? 2 : 0;

			for (size_t j = 0; j < W * 16; j++) {
				kb[j] = (int8_t)rnd();
				vb[j] = (int8_t)rnd();
			}
			for (size_t j = 0; j < n * 16; j++) {
				k[j] = extreme ? (int8_t)(extreme == 1 || j & 1 ? 127 : -127)
					       : (int8_t)(rnd() % 255 - 127);
				v[j] = extreme ? (int8_t)(extreme == 1 || j & 2 ? -127 : 127)
					       : (int8_t)(rnd() % 255 - 127);
			}
			for (size_t j = 0; j < n; j++) {
				btz_kv16_put_key(kb, j, k + j * 16);
				btz_kv16_put_value(vb, j, v + j * 16);
			}
			for (size_t j = 0; j < rows * 16; j++)
				q[j] = extreme ? (int8_t)(j & 1 ? -127 : 127)
					       : (int8_t)(rnd() % 255 - 127);
			for (size_t j = 0; j < 64 * 300; j++)
				e[j] = extreme ? 65535 : (uint16_t)rnd();

			btz_kernels_scalar.gemm_s8(q, rows, 16, k, n, want);
			btz_scores16_scalar(q, rows, kb, n, got);
			blocked_check("scores16 spec", "scalar", rows, n, want,
				      got, rows * n);
			for (size_t t = 0; t < ntested; t++) {
				if (tested[t]->scores16 == NULL)
					continue;
				memset(got, 0x5a, rows * n * sizeof(int32_t));
				tested[t]->scores16(q, rows, kb, n, got);
				blocked_check("scores16", tested[t]->name, rows,
					      n, want, got, rows * n);
			}

			/* Value sums of the last up to 256 positions before
			 * n, from a multiple of 4. */
			size_t j0 = n > 256 ? (n - 256 + 3) / 4 * 4 : 0;
			size_t m = n - j0;

			for (size_t c = 0; c < rows * 16; c++)
				want[c] = (int32_t)(c * 7) - 50;
			memcpy(got, want, rows * 16 * sizeof(int32_t));
			btz_wsum_scalar(e, es, rows, v + j0 * 16, 16, m, 16,
					want);
			btz_wsum16_scalar(e, es, rows, vb + j0 * 16, m, got);
			blocked_check("wsum16 spec", "scalar", rows, m, want,
				      got, rows * 16);
			for (size_t t = 0; t < ntested; t++) {
				if (tested[t]->wsum16 == NULL)
					continue;
				for (size_t c = 0; c < rows * 16; c++)
					got[c] = (int32_t)(c * 7) - 50;
				tested[t]->wsum16(e, es, rows, vb + j0 * 16, m,
						  got);
				blocked_check("wsum16", tested[t]->name, rows,
					      m, want, got, rows * 16);
			}
		}
	free(k);
	free(v);
	free(kb);
	free(vb);
	free(q);
	free(e);
	free(want);
	free(got);
}

/* SwiGLU's product: every table entry (a over all 256 values, the
 * table's extremes -32768 and 32767 among random entries), u at +-127,
 * every n up to 200 for the tails of 32-value steps. */
static void silu_muls(void)
{
	int16_t silu[256];
	int8_t a[256], u[256];
	int32_t want[256], got[256];

	for (size_t t = 0; t < ntested; t++)
		for (size_t n = 1; n <= 200; n++) {
			for (size_t i = 0; i < 256; i++) {
				silu[i] = i == 7 ? -32768 : i == 200 ? 32767
								     : (int16_t)rnd();
				a[i] = (int8_t)(i + n);
				u[i] = n % 3 == 0 ? (int8_t)(i & 1 ? 127 : -127)
						  : (int8_t)(rnd() % 255 - 127);
			}
			memset(got, 0x5a, sizeof(got));
			btz_silu_mul_scalar(a, u, n, silu, want);
			tested[t]->silu_mul(a, u, n, silu, got);
			ncases++;
			/* ... and nothing written past n. */
			if (memcmp(want, got, n * sizeof(int32_t)) ||
			    got[n] != 0x5a5a5a5a) {
				fprintf(stderr, "%s silu_mul n=%zu differs\n",
					tested[t]->name, n);
				failures++;
			}
		}
}

/* One att_weights call against the scalar table's: the sum and every
 * weight (e1, e2 hold n). */
static void weights_case(const struct btz_kernels *t, const int32_t *sc,
			 size_t n, int32_t mx, int32_t mul, int32_t shift,
			 const uint16_t *table, uint16_t *e1, uint16_t *e2)
{
	ncases++;
	if (btz_kernels_scalar.att_weights(sc, n, mx, mul, shift, table, e1) !=
		    t->att_weights(sc, n, mx, mul, shift, table, e2) ||
	    memcmp(e1, e2, n * sizeof(*e1))) {
		fprintf(stderr, "%s att_weights over %zu positions, mul=%d "
			"shift=%d, differs\n", t->name, n, mul, shift);
		failures++;
	}
}

/* Every table index in order, then the clamp; and 2^21 positions of the
 * largest weight, more than a vector sum's int32 lanes hold unemptied. */
static void weights_long(const struct btz_kernels *t, const uint16_t *table)
{
	size_t n = ((size_t)1 << 21) + 45;
	int32_t *sc = xmalloc(n * sizeof(*sc));
	uint16_t *e1 = xmalloc(n * sizeof(*e1)), *e2 = xmalloc(n * sizeof(*e2));
	uint16_t full[264];

	for (size_t j = 0; j < n; j++)
		sc[j] = -(int32_t)(j % 300);
	weights_case(t, sc, 300, 0, 1, 0, table, e1, e2); /* index mx - s */
	for (int i = 0; i < 264; i++)
		full[i] = 65535;
	weights_case(t, sc, n, 0, 1, 0, full, e1, e2);
	free(sc);
	free(e1);
	free(e2);
}

/* The index on word lanes (att_index16 in kernels_x86.c): for each
 * shift from 33, the least multiplier whose index of 65535 reaches 255
 * (one less takes the 64-bit form), the largest, a random one between;
 * every d = mx - s from 0 past 65535, then random ones to 2^20. */
static void weights_words(const struct btz_kernels *t, const uint16_t *table)
{
	size_t n = 70000;
	int32_t *sc = xmalloc(n * sizeof(*sc));
	uint16_t *e1 = xmalloc(n * sizeof(*e1)), *e2 = xmalloc(n * sizeof(*e2));

	for (int sh = 33; sh <= 40; sh++) {
		uint64_t least = (((uint64_t)255 << sh) -
				  ((uint64_t)1 << (sh - 1)) + 65534) / 65535;

		for (int k = 0; k < 8; k++) {
			uint64_t mul = k % 4 == 0 ? least :
				       k % 4 == 1 ? least - 1 :
				       k % 4 == 2 ? INT32_MAX :
				       least + rnd() % ((uint64_t)INT32_MAX - least + 1);
			int32_t mx = (int32_t)(rnd() % 1000001) - 500000;

			if (least > INT32_MAX)
				mul = INT32_MAX;
			for (size_t j = 0; j < n; j++)
				sc[j] = mx - (int32_t)(k < 4 ? j : rnd() % (1u << 20));
			sc[n / 2] = mx;
			weights_case(t, sc, n, mx, (int32_t)mul, sh, table, e1,
				     e2);
		}
	}
	free(sc);
	free(e1);
	free(e2);
}

/* Over four tables: no entry 0; 0 from entry 189 on (as every shipped
 * model's: a kernel may read it in three quarters); 0 from 191 on, 190
 * not (the least that may); 0 from 192 on but not at 191, or 0 at
 * 191-223 but not past (they may not). */
static void weights(void)
{
	static const int32_t shifts[] = { 0, 1, 5, 16, 24, 31, 40, 62 };
	uint16_t tables[5][264], e1[300], e2[300];
	int32_t sc[300];

	for (int i = 0; i < 264; i++) {
		tables[0][i] = (uint16_t)(i < 256 ? 65535 - i * 200 : 0);
		tables[1][i] = (uint16_t)(i < 189 ? 65535 - i * 346 : 0);
		tables[2][i] = (uint16_t)(i < 191 ? 65535 - i * 342 : 0);
		tables[3][i] = (uint16_t)(i < 192 ? 65535 - i * 341 : 0);
		tables[4][i] = (uint16_t)(i < 191 ? 65535 - i * 342 :
					  i < 224 || i >= 256 ? 0 : 7);
	}
	for (size_t ti = 0; ti < 5 * ntested; ti++) {
		size_t t = ti % ntested;
		const uint16_t *table = tables[ti / ntested];

		for (size_t si = 0; si < sizeof(shifts) / sizeof(shifts[0]);
		     si++) {
			for (size_t n = 1; n < 300; n += n < 20 ? 1 : 23) {
				int32_t mx = INT32_MIN, mul;

				for (size_t j = 0; j < n; j++) {
					sc[j] = (int32_t)(rnd() % 8388607u) -
						4194303;
					mx = sc[j] > mx ? sc[j] : mx;
				}
				mul = (n & 1) ? INT32_MAX
					      : (int32_t)(rnd() & 0x7fffffff);
				weights_case(tested[t], sc, n, mx, mul,
					     shifts[si], table, e1, e2);
			}
		}
		weights_long(tested[t], table);
		weights_words(tested[t], table);
	}
}

/* The row maximum: every length to 300 (every tail), the maximum at
 * every place in turn (first, inside, in the tail), the int32 extremes. */
static void maxima(void)
{
	int32_t s[300];

	for (size_t t = 0; t < ntested; t++)
		for (size_t n = 1; n <= 300; n++)
			for (size_t at = 0; at < n; at += n < 40 ? 1 : 13) {
				for (size_t j = 0; j < n; j++)
					s[j] = n % 3 == 0 ? INT32_MIN :
					       (int32_t)(rnd() % 2000001u) - 1000000;
				s[at] = n % 5 == 0 ? INT32_MAX :
					n % 3 == 0 ? INT32_MIN + 1 : 1000001;
				ncases++;
				if (tested[t]->max_s32(s, n) !=
				    btz_kernels_scalar.max_s32(s, n)) {
					fprintf(stderr, "%s max_s32 n=%zu at=%zu "
						"differs\n", tested[t]->name, n,
						at);
					failures++;
				}
			}
}

static void norm_one(const struct btz_kernels *t, const int32_t *r, size_t d,
		     const int32_t *g, const int32_t *b, int32_t shift)
{
	int8_t want[512], got[512];

	btz_kernels_scalar.layer_norm(r, d, g, b, shift, want);
	t->layer_norm(r, d, g, b, shift, got);
	ncases++;
	if (memcmp(want, got, d)) {
		fprintf(stderr, "%s layer_norm d=%zu shift=%d differs\n",
			t->name, d, shift);
		failures++;
	}
}

/* Layer norm: widths that take the vector path and some that do not;
 * residuals spread wide, narrow (sd 1-3: quotients far past the clamp),
 * constant (sd 0) and at the +-2^24 bounds; gains and biases over all of
 * int32; every shift. */
static void norms(void)
{
	static const size_t ds[] = { 8, 16, 24, 32, 48, 64, 96, 128, 256, 512 };
	int32_t r[512], g[512], b[512];

	for (size_t t = 0; t < ntested; t++)
		for (size_t di = 0; di < sizeof(ds) / sizeof(ds[0]); di++)
			for (int k = 0; k < 60; k++) {
				size_t d = ds[di];
				int32_t shift = k % 7 == 0 ? 0 : (int32_t)(rnd() % 63);
				int32_t base = (int32_t)(rnd() % 2000001u) - 1000000;

				for (size_t c = 0; c < d; c++) {
					int32_t v;

					switch (k % 5) {
					case 0: v = (int32_t)(rnd() % 33554433u) -
						    16777216;
						break;
					case 1: v = base + (int32_t)(rnd() % 7) - 3;
						break;
					case 2: v = base;
						break;
					case 3: v = (c & 1) ? 16777216 : -16777216;
						break;
					default: v = base + (int32_t)(rnd() % 4001) -
						     2000;
					}
					r[c] = v;
					g[c] = (int32_t)rnd();
					b[c] = (int32_t)rnd();
					if (k % 3 == 0) {
						g[c] >>= 16;
						b[c] >>= 8;
					}
				}
				norm_one(tested[t], r, d, g, b, shift);
			}
	/* Quotients that are exact integers, where a multiply by a rounded
	 * reciprocal lands one below: sd = 8192 m (m odd) and a residual
	 * m above the mean make N = 8192 m + sd = 2 sd = B. The row: mu +- m
	 * and seven pairs mu +- a, with a chosen to give that sd. */
	for (size_t t = 0; t < ntested; t++)
		for (int64_t m = 1; m < 40; m += 2) {
			int64_t sd = 8192 * m, a = 0, mu = (int64_t)(rnd() % 1000) - 500;

			for (int64_t x = sd; x < 2 * sd && a == 0; x++)
				if ((int64_t)btz_isqrt64((uint64_t)(2 * m * m +
								     14 * x * x) /
							 16) == sd)
					a = x;
			if (a == 0 || mu + a > 16777216)
				continue;
			r[0] = (int32_t)(mu + m);
			r[1] = (int32_t)(mu - m);
			for (int c = 2; c < 16; c++)
				r[c] = (int32_t)(c & 1 ? mu - a : mu + a);
			for (int c = 0; c < 16; c++) {
				g[c] = 1000 + c;
				b[c] = 0;
			}
			norm_one(tested[t], r, 16, g, b, 0);
		}
}

/* A random accumulator and multiplier, the int32 extremes among them;
 * returns the draw (0-3: an extreme), for other extremes to follow. */
static uint32_t acc_mul(int32_t *acc, int32_t *mul)
{
	uint32_t r = rnd() % 8;

	*acc = r == 0 ? INT32_MAX : r == 1 ? -INT32_MAX : (int32_t)rnd();
	*mul = r == 2 ? INT32_MAX : r == 3 ? -INT32_MAX
					   : (int32_t)rnd() >> (rnd() % 31);
	return r;
}

/* Requantization: random accumulators and multipliers over the whole
 * int32 range and the extremes, every shift the engine may use, every
 * length tail. */
static void requant(void)
{
	int32_t acc[80], mul[80];
	int8_t want[80], got[80];

	for (size_t t = 0; t < ntested; t++) {
		for (int32_t shift = 0; shift <= 62; shift++) {
			for (size_t n = 0; n <= 80; n += n < 20 ? 1 : 15) {
				for (size_t i = 0; i < n; i++)
					acc_mul(&acc[i], &mul[i]);
				btz_kernels_scalar.rq8(acc, n, mul, shift, want);
				tested[t]->rq8(acc, n, mul, shift, got);
				ncases++;
				if (memcmp(want, got, n) != 0) {
					fprintf(stderr, "%s rq8 n=%zu shift=%d "
						"differs\n", tested[t]->name, n,
						(int)shift);
					failures++;
				}
			}
		}
	}
}

/* The residual: as requant, with inputs over all of int8 and rx over
 * the model's range [0, 2^16]. */
static void residuals(void)
{
	int32_t acc[80], mul[80], want[80], got[80];
	int8_t x[80];

	for (size_t t = 0; t < ntested; t++)
		for (int32_t shift = 0; shift <= 62; shift++)
			for (size_t n = 0; n <= 80; n += n < 20 ? 1 : 15) {
				int32_t rx = shift % 4 == 0 ? 65536 :
					     (int32_t)(rnd() % 65537u);

				for (size_t i = 0; i < n; i++) {
					uint32_t r = acc_mul(&acc[i], &mul[i]);

					x[i] = r == 4 ? 127 : r == 5 ? -127 :
					       (int8_t)(rnd() % 255 - 127);
				}
				btz_kernels_scalar.residual(x, acc, n, rx, mul,
							    shift, want);
				tested[t]->residual(x, acc, n, rx, mul, shift,
						    got);
				ncases++;
				if (memcmp(want, got, n * sizeof(*want)) != 0) {
					fprintf(stderr, "%s residual n=%zu "
						"shift=%d differs\n",
						tested[t]->name, n, (int)shift);
					failures++;
				}
			}
}

/* The output row's frequencies: each table's freq_row against
 * btz_freq_row (intops.h) on random rows, every f_shift class, ties for
 * the largest, and tables from one entry (sums of 1) to all 2^22 (sums
 * of 2^30); totals of 2^24 and 2^20. */
/* btz_isqrt64 (layer norm's square root) by its definition, r² <= v <
 * (r + 1)²: at 0-2^16, at and beside every square of 1-2^32 in steps
 * and its last, at 2^64 - 1, and random. */
static void isqrt_case(uint64_t v)
{
	unsigned __int128 r = btz_isqrt64(v);

	ncases++;
	if (r * r > v || (r + 1) * (r + 1) <= v) {
		fprintf(stderr, "isqrt(%llu) = %llu\n", (unsigned long long)v,
			(unsigned long long)r);
		failures++;
	}
}

static void isqrts(void)
{
	for (uint64_t v = 0; v <= 65536; v++)
		isqrt_case(v);
	for (uint64_t m = 1; m <= ((uint64_t)1 << 32); m += 1 + m / 1024) {
		isqrt_case(m * m - 1);
		if (m < ((uint64_t)1 << 32)) {
			isqrt_case(m * m);
			isqrt_case(m * m + 1);
		}
	}
	isqrt_case(((uint64_t)1 << 32) * ((uint64_t)1 << 32) - 1);
	isqrt_case(UINT64_MAX - 1);
	for (int k = 0; k < 100000; k++)
		isqrt_case((((uint64_t)rnd() << 32) | rnd()) >> (rnd() % 64));
}

/* Attention outputs: widths 16 and 8 (vectors), 12 and 4 (not multiples
 * of 8); sums of every size to past the vector form's bound 2^(47 - ao)
 * (a row with one such sum goes scalar), signs mixed, at and beside
 * multiples of the weights' sum (the rounding's edges), and sums z from
 * 1 to past 2^50 (the vector form's other bound); each ao_shift 0-7,
 * outputs written at a stride. */
static void att_outs(void)
{
	static const size_t widths[] = { 16, 8, 12, 4 };
	int64_t z[4];
	int8_t want[4 * 20], got[4 * 20];

	for (size_t t = 0; t < ntested; t++)
		for (size_t wi = 0; wi < 4; wi++)
			for (int k = 0; k < 3000; k++) {
				size_t dh = widths[wi], rows = 1 + k % 4;
				int32_t ao = k % 8;
				/* Exactly the rows' sums: a read past them
				 * shows under AddressSanitizer. */
				int64_t *num = xmalloc(rows * dh * sizeof(*num));

				for (size_t i = 0; i < rows; i++) {
					int bits = (int)(rnd() % 53);

					z[i] = (int64_t)(((uint64_t)rnd() << 32 |
							  rnd()) >> (63 - bits)) + 1;
					for (size_t c = 0; c < dh; c++) {
						uint64_t r = (uint64_t)rnd() << 32 | rnd();
						int64_t v = (int64_t)(r >> (14 + rnd() % 50));

						if (rnd() % 3 == 0 && bits < 40)
							v = (v % 300) * z[i] / 2 +
							    (int64_t)(rnd() % 3) - 1;
						num[i * dh + c] = rnd() & 1 ? -v : v;
					}
				}
				memset(want, 0x5a, sizeof want);
				memset(got, 0x5a, sizeof got);
				btz_kernels_scalar.att_out(num, z, rows, dh, ao,
							   want, 20);
				tested[t]->att_out(num, z, rows, dh, ao, got, 20);
				free(num);
				ncases++;
				if (memcmp(want, got, sizeof want)) {
					fprintf(stderr, "%s att_out dh=%zu ao=%d "
						"differs\n", tested[t]->name,
						dh, ao);
					failures++;
				}
			}
}

static void freq_rows(void)
{
	static const int32_t shifts[] = { 0, 1, 5, 16, 24, 31, 40, 62 };
	static uint32_t tab[4][1024];
	int32_t l[256];
	uint32_t f1[256], f2[256];

	for (int i = 0; i < 1024; i++) {
		/* A decay like a model's, to 0 in its last entries. */
		tab[0][i] = i ? (uint32_t)((uint64_t)tab[0][i - 1] * 63 / 64)
			      : 1u << 22;
		tab[1][i] = 1 + rnd() % (1u << 22);
		tab[2][i] = 1u << 22;
		tab[3][i] = i == 0;
	}
	for (size_t t = 0; t < ntested; t++) {
		for (int c = 0; c < 400; c++) {
			const uint32_t *x = tab[c % 4];
			int32_t shift = shifts[c / 4 % 8];
			int32_t mul = c % 3 ? (int32_t)(rnd() & 0x7fffffff)
					    : INT32_MAX;
			uint32_t total = c % 5 ? 1u << 24 : 1u << 20;

			for (int b = 0; b < 256; b++)
				l[b] = c % 7 == 0   ? 5
				       : c % 7 == 1 ? (int32_t)(rnd() % 3)
						    : (int32_t)(rnd() % 2097153u) -
							      1048576;
			btz_freq_row(l, mul, shift, x, total, f1);
			tested[t]->freq_row(l, mul, shift, x, total, f2);
			ncases++;
			if (memcmp(f1, f2, sizeof(f1))) {
				fprintf(stderr, "%s freq_row case %d (shift %d, "
					"mul %d) differs\n", tested[t]->name, c,
					shift, mul);
				failures++;
			}
		}
	}
}

int main(void)
{
	static const size_t ks[] = { 1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 63,
				     64, 65, 100, 128, 255, 256, 257, 512,
				     1000, 4096 };
	static const size_t ns[] = { 1, 2, 3, 5, 8, 17, 64, 256 };
	static const enum fill fills[] = { PLUS, MINUS, ALT, ALT_NEG };
	const struct btz_kernels *const *all = btz_kernels_all();
	unsigned off = 0;

	for (size_t i = 0; all[i] != NULL; i++) {
		if (all[i] == &btz_kernels_scalar)
			continue;
		if (btz_kernels_by_name(all[i]->name) == all[i]) {
			printf("testing %s\n", all[i]->name);
			tested[ntested++] = all[i];
		} else {
			printf("skipped %s (not supported here)\n",
			       all[i]->name);
		}
	}
	isqrts();
	if (ntested == 0) {
		printf("no kernel besides scalar to test\n");
		return failures ? 1 : 0;
	}

	/* Random: every rows 1..70 for each k and n would be slow at large
	 * k; large k get a sweep of rows that covers every remainder by the
	 * tile heights (4, 2, 1) and block edges. */
	for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++)
		for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
			size_t k = ks[ki], n = ns[ni];

			for (size_t rows = 1; rows <= 70; rows++) {
				if (k * n > 4096 && rows > 9 && rows != 16 &&
				    rows != 17 && rows != 63 && rows != 64 &&
				    rows != 65 && rows != 70)
					continue;
				if (k * n > 65536 && rows > 9 && rows != 64 &&
				    rows != 70)
					continue;
				one(rows, k, n, RANDOM, RANDOM, off++ % 64);
			}
		}
	/* More rows than one row block (128 KB of X at k = 1000 is 128
	 * rows), with a row and column tail. */
	one(135, 1000, 19, RANDOM, RANDOM, 21);
	one(2050, 64, 33, RANDOM, RANDOM, 42);

	/* The largest sums: every product ±16129, k = 16384; every kind of
	 * tile (rows 2, 5, and 17 for the packed path) and odd k. */
	for (size_t a = 0; a < 4; a++)
		for (size_t b = 0; b < 4; b++) {
			one(2, 16384, 3, fills[a], fills[b], off++ % 64);
			one(5, 16384, 3, fills[a], fills[b], off++ % 64);
			one(5, 16383, 17, fills[a], fills[b], off++ % 64);
			one(17, 16384, 3, fills[a], fills[b], off++ % 64);
			one(17, 16381, 33, fills[a], fills[b], off++ % 64);
		}

	wsums();
	blocked16();
	silu_muls();
	maxima();
	norms();
	requant();
	residuals();
	weights();
	att_outs();
	freq_rows();
	printf("%lu kernel calls compared with scalar, %d failures\n", ncases,
	       failures);
	return failures ? 1 : 0;
}
