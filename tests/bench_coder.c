/* Benchmark of the range coder given cumulative tables: MB/s of encode and
 * decode (one symbol = one byte), median of several runs, for three mixes of
 * tables. Each symbol uses one of a small set of precomputed tables chosen at
 * random, as a model would hand a new table for every byte. Not a test.
 * Usage: bench_coder [megabytes] [runs] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coder/rc.h"

enum { NTAB = 16 };

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Geometric weights decaying by `decay` from a random top byte over a
 * random order: decay near 0 is sharp, 1 is flat. */
static void table_make(uint32_t freq[256], double decay, uint64_t *rng)
{
	uint8_t order[256];
	double w[256], sum = 0, x = 1;
	uint64_t tot = 0;

	for (int s = 0; s < 256; s++)
		order[s] = (uint8_t)s;
	for (int s = 255; s > 0; s--) {
		int j = (int)(rng_next(rng) % (uint64_t)(s + 1));
		uint8_t t = order[s];

		order[s] = order[j];
		order[j] = t;
	}
	for (int s = 0; s < 256; s++, x *= decay) {
		w[order[s]] = x;
		sum += x;
	}
	for (int s = 0; s < 256; s++) {
		freq[s] = 1 + (uint32_t)(w[s] / sum * (BTZ_RC_TOTAL - 256));
		tot += freq[s];
	}
	freq[order[0]] += (uint32_t)(BTZ_RC_TOTAL - tot);
}

static void bench(const char *name, double decay, size_t n, int runs)
{
	static uint32_t freq[NTAB][256], cum[NTAB][257];
	uint8_t *sym = malloc(n), *tab = malloc(n), *dec = malloc(n);
	size_t cap = 3 * n + 16, size = 0;
	uint8_t *buf = malloc(cap);
	double *te = malloc(runs * sizeof(double));
	double *td = malloc(runs * sizeof(double));
	double bits = 0;
	uint64_t rng = 2024;

	if (!sym || !tab || !dec || !buf || !te || !td) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	for (int t = 0; t < NTAB; t++) {
		table_make(freq[t], decay, &rng);
		btz_rc_cum_from_freq(cum[t], freq[t]);
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t u = (uint32_t)(rng_next(&rng) >> 40);
		unsigned s = 0;

		tab[i] = (uint8_t)(rng_next(&rng) % NTAB);
		for (unsigned step = 128; step > 0; step >>= 1)
			if (cum[tab[i]][s + step] <= u)
				s += step;
		sym[i] = (uint8_t)s;
		bits += BTZ_RC_TOTAL_BITS - log2((double)freq[tab[i]][s]);
	}
	for (int r = 0; r < runs; r++) {
		struct btz_rc_enc e;
		struct btz_rc_dec d;
		enum btz_status st = BTZ_OK;
		double t0 = now();

		btz_rc_enc_init(&e, buf, cap);
		for (size_t i = 0; i < n; i++) {
			const uint32_t *c = cum[tab[i]];

			st |= btz_rc_enc_put_cum(&e, c[sym[i]],
						 c[sym[i] + 1] - c[sym[i]]);
		}
		st |= btz_rc_enc_finish(&e, &size);
		te[r] = now() - t0;
		t0 = now();
		btz_rc_dec_init(&d, buf, size);
		for (size_t i = 0; i < n; i++)
			dec[i] = (uint8_t)btz_rc_dec_get_cum(&d, cum[tab[i]]);
		st |= btz_rc_dec_finish(&d);
		td[r] = now() - t0;
		if (st != BTZ_OK || memcmp(dec, sym, n) != 0) {
			fprintf(stderr, "%s: round trip failed\n", name);
			exit(1);
		}
	}
	qsort(te, runs, sizeof(double), cmp_double);
	qsort(td, runs, sizeof(double), cmp_double);
	printf("%-6s %5.3f bit/byte (coded %.3f): encode %7.1f MB/s, "
	       "decode %7.1f MB/s\n", name, bits / (double)n,
	       8.0 * (double)size / (double)n, (double)n / te[runs / 2] / 1e6,
	       (double)n / td[runs / 2] / 1e6);
	free(sym);
	free(tab);
	free(dec);
	free(buf);
	free(te);
	free(td);
}

int main(int argc, char **argv)
{
	size_t mb = argc > 1 ? strtoul(argv[1], NULL, 10) : 16;
	int runs = argc > 2 ? atoi(argv[2]) : 5;

	if (mb == 0 || runs <= 0) {
		fprintf(stderr, "usage: bench_coder [megabytes] [runs]\n");
		return 2;
	}
	printf("%zu MiB per run, median of %d runs, %d tables\n", mb, runs,
	       NTAB);
	bench("sharp", 0.0012, mb << 20, runs);
	bench("text", 0.55, mb << 20, runs);
	bench("flat", 1.0, mb << 20, runs);
	return 0;
}
