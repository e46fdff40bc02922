/* Throughput of every kernel table this CPU runs, at the engine's shapes:
 * GOP/s counting 2·rows·k·n operations per call, the median of 5 runs of
 * at least 50 ms each. At k = 16 a table with scores16 runs that on the
 * blocked keys, as the engine does, else gemm_s8. Usage: bench_kernels
 * [ROWSxKxN...] [kernel...] (default: the shapes below, every kernel). */
#include "model/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int wanted(int argc, char **argv, const char *name)
{
	int any = 0;

	for (int i = 1; i < argc; i++) {
		if (argv[i][0] >= '0' && argv[i][0] <= '9')
			continue; /* a shape */
		any = 1;
		if (strcmp(argv[i], name) == 0)
			return 1;
	}
	return !any;
}

int main(int argc, char **argv)
{
	size_t shapes[16][3] = {
		{ 1, 128, 512 },   { 64, 128, 512 },   { 64, 512, 128 },
		{ 2048, 128, 512 }, { 2048, 512, 128 },
		/* Attention scores: 8 heads (and a block of 64 rows) of
		 * width 16 against 512 keys. */
		{ 8, 16, 512 },    { 64, 16, 512 },
	};
	size_t nshapes = 7, given = 0;
	const struct btz_kernels *const *all = btz_kernels_all();
	uint64_t s = 0x243f6a8885a308d3u;

	for (int i = 1; i < argc && given < 16; i++) {
		size_t *sh = shapes[given];

		if (argv[i][0] < '0' || argv[i][0] > '9')
			continue;
		if (sscanf(argv[i], "%zux%zux%zu", &sh[0], &sh[1], &sh[2]) != 3 ||
		    sh[0] == 0 || sh[1] == 0 || sh[2] == 0) {
			fprintf(stderr, "bad shape %s (want ROWSxKxN)\n", argv[i]);
			return 2;
		}
		nshapes = ++given;
	}

	printf("GOP/s (2*rows*k*n per call), median of 5\n%-12s", "kernel");
	for (size_t i = 0; i < nshapes; i++) {
		char h[32];

		snprintf(h, sizeof h, "%zux%zux%zu", shapes[i][0],
			 shapes[i][1], shapes[i][2]);
		printf(" %14s", h);
	}
	printf("\n");
	for (size_t ki = 0; all[ki] != NULL; ki++) {
		const struct btz_kernels *kt = all[ki];

		if (!wanted(argc, argv, kt->name))
			continue;
		if (btz_kernels_by_name(kt->name) != kt) {
			printf("%-12s (not supported here)\n", kt->name);
			continue;
		}
		printf("%-12s", kt->name);
		fflush(stdout);
		for (size_t si = 0; si < nshapes; si++) {
			size_t rows = shapes[si][0], k = shapes[si][1],
			       n = shapes[si][2];
			int8_t *X = malloc(rows * k), *W = malloc(n * k);
			int32_t *out = malloc(rows * n * sizeof *out);
			double ops = 2.0 * (double)rows * (double)k * (double)n;
			double rate[5];

			if (X == NULL || W == NULL || out == NULL)
				return 1;
			for (size_t i = 0; i < rows * k; i++) {
				s = s * 6364136223846793005u + 1442695040888963407u;
				X[i] = (int8_t)((int)((s >> 33) % 255) - 127);
			}
			for (size_t i = 0; i < n * k; i++) {
				s = s * 6364136223846793005u + 1442695040888963407u;
				W[i] = (int8_t)((int)((s >> 33) % 255) - 127);
			}
			int8_t *Kb = NULL;

			if (k == 16 && kt->scores16 != NULL) {
				Kb = calloc((n + 15) / 16, 256);
				if (Kb == NULL)
					return 1;
				for (size_t j = 0; j < n; j++)
					btz_kv16_put_key(Kb, j, W + 16 * j);
			}
			for (int run = -1; run < 5; run++) {
				double t0 = now(), t;
				long calls = 0;

				do {
					if (Kb != NULL)
						kt->scores16(X, rows, Kb, n, out);
					else
						kt->gemm_s8(X, rows, k, W, n,
							    out);
					calls++;
					t = now() - t0;
				} while (t < 0.05);
				if (run >= 0) /* run -1 warms up */
					rate[run] = ops * (double)calls / t / 1e9;
			}
			qsort(rate, 5, sizeof *rate, cmp);
			printf(" %14.1f", rate[2]);
			fflush(stdout);
			free(X);
			free(W);
			free(Kb);
			free(out);
		}
		printf("\n");
	}
	return 0;
}
