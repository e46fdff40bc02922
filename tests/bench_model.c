/* make bench: packing and unpacking speed of the integer engine for
 * generated models of about 0.25M, 1M and 4M parameters at 2 KiB context,
 * on real text, with where the time goes. Packing runs whole windows
 * (one engine pass per window); unpacking advances 64 windows in lockstep,
 * one byte per step. Both are measured through the real coder path too.
 * Usage: bench_model [TEXT-FILE [BYTES]] (default: generated text). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/engine.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t params(const struct btz_hparams *hp)
{
	uint64_t d = hp->d, dh = d / hp->heads, q = hp->heads * dh,
		 kv = hp->kv_heads * dh;

	return 257 * d + 256 * d +
	       hp->layers * (d * q + 2 * d * kv + q * d + 3 * d * hp->ff);
}

struct job {
	struct btz_predictor pred;
	const uint8_t *in;
	size_t n;
	uint8_t *coded, *back;
	size_t coded_n;
	int decode;
	enum btz_status st;
};

static void *run_job(void *arg)
{
	struct job *j = arg;
	struct btz_error err;

	if (j->decode)
		j->st = btz_predict_decode(&j->pred, j->coded, j->coded_n,
					   j->back, j->n, &err);
	else
		j->st = btz_predict_encode(&j->pred, j->in, j->n, j->coded,
					   2 * j->n + 64, &j->coded_n, &err);
	return NULL;
}

/* Two chunks on two threads, as btzpack -T 2 does; returns seconds. */
static double two_threads(struct job *jobs, int decode)
{
	pthread_t t[2];
	double t0 = now();

	for (int i = 0; i < 2; i++) {
		jobs[i].decode = decode;
		pthread_create(&t[i], NULL, run_job, &jobs[i]);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	return now() - t0;
}

static void profile(const struct btz_model *m, const uint8_t *in,
		    size_t nwin, int lockstep)
{
	size_t W = m->hp.context;
	struct btz_engine *e;
	struct btz_engine_prof p = { 0, 0, 0, 0 };
	struct btz_error err;
	uint32_t(*freq)[256] = malloc((nwin > W ? nwin : W) * sizeof(*freq));
	uint16_t *tok = malloc((nwin > W ? nwin : W) * sizeof(*tok));
	uint32_t *win = calloc(nwin > W ? nwin : W, 4);
	uint32_t *pos = calloc(nwin > W ? nwin : W, 4);

	btz_engine_create(&e, m, lockstep ? nwin : 1, nwin > W ? nwin : W,
			  &err);
	btz_engine_profile(e, &p);
	if (lockstep) {
		for (size_t t = 0; t < W; t++) {
			for (size_t i = 0; i < nwin; i++) {
				tok[i] = t ? in[i * W + t - 1] : BTZ_BTM_START;
				win[i] = (uint32_t)i;
				pos[i] = (uint32_t)t;
			}
			btz_engine_rows(e, nwin, tok, win, pos, freq, NULL,
					&err);
		}
	} else {
		for (size_t i = 0; i < nwin; i++) {
			for (size_t t = 0; t < W; t++) {
				tok[t] = t ? in[i * W + t - 1] : BTZ_BTM_START;
				pos[t] = (uint32_t)t;
			}
			btz_engine_rows(e, W, tok, win, pos, freq, NULL, &err);
		}
	}
	printf("    %-8s one thread %8.1f KB/s: products %4.1f%%, attention "
	       "%4.1f%%, rest %4.1f%% (kernel %s)\n",
	       lockstep ? "unpack" : "pack",
	       p.rows / (p.total_ns * 1e-9) / 1e3,
	       100.0 * p.gemm_ns / p.total_ns, 100.0 * p.attn_ns / p.total_ns,
	       100.0 * (p.total_ns - p.gemm_ns - p.attn_ns) / p.total_ns,
	       btz_engine_kernel(e));
	btz_engine_free(e);
	free(freq);
	free(tok);
	free(win);
	free(pos);
}

int main(int argc, char **argv)
{
	static const struct btz_hparams sizes[] = {
		{ 64, 4, 8, 8, 256, 2048, 1, 0, 0 },
		{ 128, 4, 8, 8, 512, 2048, 1, 0, 0 },
		{ 256, 4, 8, 8, 1024, 2048, 1, 0, 0 },
		/* the shipped text model's shape: one key/value head, 1 KiB,
		 * the match layer */
		{ 128, 4, 8, 1, 512, 1024, 1, 0, BTZ_BTM_MATCH },
	};
	size_t chunk = 16 * 2048, n = 2 * chunk;
	uint8_t *text = malloc(n);

	setvbuf(stdout, NULL, _IOLBF, 0); /* rows appear as they finish */
	if (argc > 1) {
		FILE *f = fopen(argv[1], "rb");

		if (f == NULL || fread(text, 1, n, f) != n) {
			fprintf(stderr, "bench_model: cannot read %zu bytes of "
				"%s\n", n, argv[1]);
			return 1;
		}
		fclose(f);
	} else {
		for (size_t i = 0; i < n; i++)
			text[i] = "the quick brown fox jumps over a dog\n"[i % 37];
	}
	printf("model engine: 2 chunks of %zu bytes (16 windows of 2 KiB or "
	       "32 of 1 KiB) on 2 threads; then one thread profiled\n", chunk);
	printf("%-24s %10s %12s %12s %8s\n", "model", "params", "pack KB/s",
	       "unpack KB/s", "unpk/pk");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct btz_model *m;
		struct btz_error err;
		struct job jobs[2];
		double tp, tu;
		char name[64];

		if (btz_model_generate(&m, &sizes[s], 1, &err) != BTZ_OK) {
			fprintf(stderr, "bench_model: %s\n", err.msg);
			return 1;
		}
		for (int i = 0; i < 2; i++) {
			jobs[i].pred = btz_model_predictor(m);
			jobs[i].in = text + i * chunk;
			jobs[i].n = chunk;
			jobs[i].coded = malloc(2 * chunk + 64);
			jobs[i].back = malloc(chunk);
		}
		tp = two_threads(jobs, 0);
		tu = two_threads(jobs, 1);
		for (int i = 0; i < 2; i++)
			if (jobs[i].st != BTZ_OK ||
			    memcmp(jobs[i].back, jobs[i].in, chunk) != 0) {
				fprintf(stderr, "bench_model: round trip "
					"failed\n");
				return 1;
			}
		snprintf(name, sizeof(name), "d%u L%u H%u/%u F%u W%u",
			 m->hp.d, m->hp.layers, m->hp.heads, m->hp.kv_heads,
			 m->hp.ff, m->hp.context);
		printf("%-24s %10" PRIu64 " %12.1f %12.1f %8.2f\n", name,
		       params(&m->hp), n / tp / 1e3, n / tu / 1e3, tp / tu);
		profile(m, text, 4, 0);
		profile(m, text, 16, 1);
		for (int i = 0; i < 2; i++) {
			free(jobs[i].coded);
			free(jobs[i].back);
		}
		btz_model_free(m);
	}
	free(text);
	return 0;
}
