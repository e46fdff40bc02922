/* The integer engine: both schedules give the same integers, tables are
 * valid, and golden hashes pin the arithmetic so any drift fails; the GPU
 * engine, on the simulated device and on CUDA where a GPU is, gives the
 * same integers. "test_engine cuda" runs only the CUDA checks and exits
 * 77 (skipped) where no GPU answers. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "model/engine.h"
#include "model/gpu.h"
#include "model/intops.h"
#include "model/kernels.h"
#include "tests/check.h"

/* Pinned results of the seed-1 model on the fixed text below. Changing
 * the engine's arithmetic or the generator changes them: update them only
 * on purpose, and say so on the issue. */
#define GOLDEN_LOGITS 0x8784d9b4a7a2be71ull
#define GOLDEN_FREQ 0x45d8bf1dc505abc8ull
#define GOLDEN_CODED 0x42779dfed3457511ull
#define GOLDEN_MATCH 0xe5809920b5f6dfbeull

static struct btz_model *gen(uint64_t seed, uint32_t d, uint32_t layers,
			     uint32_t heads, uint32_t kv, uint32_t ff,
			     uint32_t ctx)
{
	struct btz_hparams hp = { d, layers, heads, kv, ff, ctx, 1, 0, 0 };
	struct btz_model *m;
	struct btz_error err;

	if (btz_model_generate(&m, &hp, seed, &err) != BTZ_OK) {
		fprintf(stderr, "generate: %s\n", err.msg);
		exit(1);
	}
	return m;
}

static void text(uint8_t *p, size_t n, uint32_t seed)
{
	static const char *words[] = { "the ", "of ", "and ", "compress",
				       "ion ", "byte ", "model ", "\n",
				       "transformer ", "window, " };
	size_t i = 0;

	while (i < n) {
		const char *w;

		seed = seed * 1103515245u + 12345u;
		w = words[(seed >> 16) % 10];
		for (size_t k = 0; w[k] && i < n; k++)
			p[i++] = (uint8_t)w[k];
	}
}

static int table_ok(const uint32_t *f)
{
	uint64_t s = 0;

	for (int b = 0; b < 256; b++) {
		if (f[b] == 0)
			return 0;
		s += f[b];
	}
	return s == (1u << 24);
}

/* Full-window rows against lockstep one-row steps over three windows. */
static void test_schedules(const struct btz_model *m, uint64_t *hl,
			   uint64_t *hf)
{
	size_t W = m->hp.context, len[3] = { W, W, W / 2 + 3 };
	uint8_t *data = malloc(3 * W);
	int32_t(*la)[256] = malloc(3 * W * sizeof(*la));
	uint32_t(*fa)[256] = malloc(3 * W * sizeof(*fa));
	int32_t lb[3][256];
	uint32_t fb[3][256];
	uint16_t *tok = malloc(W * sizeof(*tok));
	uint32_t *win = calloc(W, sizeof(*win)), *pos = malloc(W * 4);
	struct btz_engine *e;
	struct btz_error err;
	XXH3_state_t *h1 = XXH3_createState(), *h2 = XXH3_createState();

	text(data, 3 * W, 7);
	XXH3_64bits_reset(h1);
	XXH3_64bits_reset(h2);
	CHECK_EQ(btz_engine_create(&e, m, 1, W, &err), BTZ_OK);
	for (size_t w = 0; w < 3; w++) {
		for (size_t t = 0; t < len[w]; t++) {
			tok[t] = t ? data[w * W + t - 1] : BTZ_BTM_START;
			pos[t] = (uint32_t)t;
		}
		CHECK_EQ(btz_engine_rows(e, len[w], tok, win, pos,
					 fa + w * W, la + w * W, &err),
			 BTZ_OK);
		XXH3_64bits_update(h1, la + w * W, len[w] * sizeof(*la));
		XXH3_64bits_update(h2, fa + w * W, len[w] * sizeof(*fa));
	}
	btz_engine_free(e);
	*hl = XXH3_64bits_digest(h1);
	*hf = XXH3_64bits_digest(h2);

	CHECK_EQ(btz_engine_create(&e, m, 3, 3, &err), BTZ_OK);
	for (size_t t = 0; t < W; t++) {
		uint16_t tk[3];
		uint32_t wi[3], ps[3];
		size_t n = 0;

		for (size_t w = 0; w < 3; w++) {
			if (t >= len[w])
				continue;
			tk[n] = t ? data[w * W + t - 1] : BTZ_BTM_START;
			wi[n] = (uint32_t)w;
			ps[n] = (uint32_t)t;
			n++;
		}
		CHECK_EQ(btz_engine_rows(e, n, tk, wi, ps, fb, lb, &err),
			 BTZ_OK);
		for (size_t r = 0; r < n; r++) {
			size_t w = wi[r];

			if (memcmp(lb[r], la[w * W + t], sizeof(lb[r])) != 0 ||
			    memcmp(fb[r], fa[w * W + t], sizeof(fb[r])) != 0) {
				fprintf(stderr, "window %zu position %zu: "
					"schedules differ\n", w, t);
				failures++;
			}
		}
	}
	btz_engine_free(e);

	/* Tables are valid and the network is not degenerate: the
	 * predicted distribution changes with the context. */
	{
		size_t distinct = 0, sharp = 0;

		for (size_t t = 0; t < W; t++) {
			uint32_t mx = 0;

			CHECK(table_ok(fa[t]));
			for (int b = 0; b < 256; b++)
				mx = fa[t][b] > mx ? fa[t][b] : mx;
			sharp += mx > (1u << 24) / 16;
			if (t && memcmp(fa[t], fa[t - 1], sizeof(fa[t])))
				distinct++;
		}
		CHECK(distinct > W / 2);
		CHECK(sharp > 0);
	}
	XXH3_freeState(h1);
	XXH3_freeState(h2);
	free(data);
	free(la);
	free(fa);
	free(tok);
	free(win);
	free(pos);
}

/* Encoding by whole windows and by lockstep positions gives the same
 * bytes; decoding gives the input back; damage never crashes. With the
 * match layer, the whole-window encoder asks the engine for the guessed
 * bytes' frequencies and adjusts intervals alone, where the lockstep one
 * adjusts whole tables: the same bytes again. */
static uint64_t test_coding(const struct btz_model *m, int match)
{
	size_t W = m->hp.context, n = (match ? 20 : 3) * W + 17;
	uint8_t *in = malloc(n), *out = malloc(2 * n), *out2 = malloc(2 * n),
		*back = malloc(n);
	struct btz_predictor p = btz_model_predictor(m), q = p;
	struct btz_error err;
	size_t got = 0, got2 = 0;
	uint64_t h;

	text(in, n, 99);
	p.match = match;
	q = p;
	q.predict_chunk = NULL;
	CHECK_EQ(btz_predict_encode(&p, in, n, out, 2 * n, &got, &err),
		 BTZ_OK);
	CHECK_EQ(btz_predict_encode(&q, in, n, out2, 2 * n, &got2, &err),
		 BTZ_OK);
	CHECK_EQ(got, got2);
	CHECK(memcmp(out, out2, got) == 0);
	CHECK_EQ(btz_predict_decode(&p, out, got, back, n, &err), BTZ_OK);
	CHECK(memcmp(in, back, n) == 0);
	h = XXH3_64bits(out, got);
	for (size_t i = 0; i < got; i += got / 7 + 1) {
		out[i] ^= 0x20;
		btz_predict_decode(&p, out, got, back, n, &err);
		out[i] ^= 0x20;
	}
	free(in);
	free(out);
	free(out2);
	free(back);
	return h;
}

/* The match flag of a model file reaches its predictor, and the layer
 * changes what a model codes (the golden model's own coding is pinned
 * by GOLDEN_MATCH). */
static void test_match_changes(struct btz_model *m)
{
	size_t n = 20 * m->hp.context + 17, a = 0, b = 0;
	uint8_t *in = malloc(n), *x = malloc(2 * n), *y = malloc(2 * n);
	struct btz_predictor p;
	struct btz_error err;

	text(in, n, 7);
	CHECK_EQ(btz_model_predictor(m).match, 0);
	m->hp.flags |= BTZ_BTM_MATCH;
	p = btz_model_predictor(m);
	m->hp.flags &= ~BTZ_BTM_MATCH;
	CHECK_EQ(p.match, 1);
	CHECK_EQ(btz_predict_encode(&p, in, n, x, 2 * n, &a, &err), BTZ_OK);
	p.match = 0;
	CHECK_EQ(btz_predict_encode(&p, in, n, y, 2 * n, &b, &err), BTZ_OK);
	CHECK(a != b || memcmp(x, y, a) != 0);
	free(in);
	free(x);
	free(y);
}

/* btz_att_tail as doc/model.md defines it: the sink and the last span
 * to span + 15 positions, whole blocks of 16. */
static void test_att_tail(void)
{
	CHECK_EQ(btz_att_tail(1023, 0), 16);
	CHECK_EQ(btz_att_tail(1023, 512), 512);
	CHECK_EQ(btz_att_tail(1022, 512), 496);
	CHECK_EQ(btz_att_tail(542, 512), 16);
	CHECK_EQ(btz_att_tail(543, 512), 32);
	CHECK_EQ(btz_att_tail(5, 16), 16);
	CHECK_EQ(btz_att_tail(47, 16), 32);
	for (size_t p = 0; p < 200; p++) {
		size_t st = btz_att_tail(p, 32);

		CHECK(st % 16 == 0 && st >= 16);
		/* Everything, or the sink and 32 to 47 positions. */
		CHECK(st == 16 || (p + 1 - st >= 32 && p + 1 - st < 48));
	}
}

/* A span leaves positions out: the same weights with and without it
 * agree before the first row it cuts and differ after. */
static void test_span_changes(struct btz_model *m)
{
	uint32_t flags = m->hp.flags, span = btz_hp_span(&m->hp);
	uint64_t a, b, c, d;

	test_schedules(m, &a, &b);
	btz_hp_set_span(&m->hp, 0);
	test_schedules(m, &c, &d);
	m->hp.flags = flags;
	CHECK(a != c && b != d);
	CHECK(span > 0 && span + 32 <= m->hp.context);
}

/* An engine's window that starts again (a new chunk) gives what a fresh
 * engine gives, whatever the rows before it left in the caches: here a
 * window that ended where the span's tail starts where the new one's
 * first does (32, span 32, one row a call as in decoding). */
static void test_span_restart(const struct btz_model *m)
{
	size_t W = m->hp.context, n[2] = { 70, W };
	uint8_t *data = malloc(2 * W);
	int32_t(*a)[256] = malloc(W * sizeof(*a));
	int32_t(*b)[256] = malloc(W * sizeof(*b));
	uint32_t(*f)[256] = malloc(sizeof(*f));
	struct btz_engine *e, *fresh;
	struct btz_error err;

	CHECK_EQ(btz_hp_span(&m->hp), 32);
	text(data, 2 * W, 11);
	CHECK_EQ(btz_engine_create(&e, m, 1, 1, &err), BTZ_OK);
	CHECK_EQ(btz_engine_create(&fresh, m, 1, 1, &err), BTZ_OK);
	for (size_t w = 0; w < 2; w++)
		for (size_t t = 0; t < n[w]; t++) {
			uint16_t tok = t ? data[w * W + t - 1] : BTZ_BTM_START;
			uint32_t win = 0, pos = (uint32_t)t;

			CHECK_EQ(btz_engine_rows(e, 1, &tok, &win, &pos, f,
						 a + t, &err),
				 BTZ_OK);
			if (w == 1)
				CHECK_EQ(btz_engine_rows(fresh, 1, &tok, &win,
							 &pos, f, b + t, &err),
					 BTZ_OK);
		}
	CHECK(memcmp(a, b, W * sizeof(*a)) == 0);
	btz_engine_free(e);
	btz_engine_free(fresh);
	free(data);
	free(a);
	free(b);
	free(f);
}

/* The models other than the golden one, and their CPU hashes. */
struct other {
	struct btz_model *m;
	uint64_t hl, hf, hc, hm;
};
#define NO 4

/* Engines on device dev give the CPU's integers for every model. */
static void test_device(enum btz_device dev, const char *name,
			const struct btz_model *m, struct other *o, size_t no)
{
	uint64_t hl, hf, hc, hm;

	btz_engine_set_device(dev);
	test_schedules(m, &hl, &hf);
	hc = test_coding(m, 0);
	hm = test_coding(m, 1);
	printf("device %s: logits %016" PRIx64 " coded %016" PRIx64
	       " match %016" PRIx64 "\n", name, hl, hc, hm);
	CHECK_EQ(hl, GOLDEN_LOGITS);
	CHECK_EQ(hf, GOLDEN_FREQ);
	CHECK_EQ(hc, GOLDEN_CODED);
	CHECK_EQ(hm, GOLDEN_MATCH);
	for (size_t i = 0; i < no; i++) {
		test_schedules(o[i].m, &hl, &hf);
		CHECK_EQ(hl, o[i].hl);
		CHECK_EQ(hf, o[i].hf);
		CHECK_EQ(test_coding(o[i].m, 0), o[i].hc);
		CHECK_EQ(test_coding(o[i].m, 1), o[i].hm);
	}
	btz_engine_set_device(BTZ_DEVICE_CPU);
}

int main(int argc, char **argv)
{
	struct btz_model *m = gen(1, 64, 2, 8, 2, 256, 64);
	/* As many key/value heads as heads; and odd widths (dh = 5, a
	 * key/value row of 10, ff 100) that cuBLAS's int8 products refuse,
	 * so the GPU engine's own product kernel runs too. The last two
	 * have attention spans (of 32 and of 16 positions): heads of 16
	 * (the blocked caches where the CPU has them) over windows of 160,
	 * and the odd widths again. */
	struct other o[NO] = { { gen(2, 32, 1, 8, 8, 128, 32), 0, 0, 0, 0 },
			       { gen(3, 40, 2, 8, 2, 100, 48), 0, 0, 0, 0 },
			       { gen(4, 32, 2, 2, 1, 64, 160), 0, 0, 0, 0 },
			       { gen(5, 40, 2, 8, 2, 100, 96), 0, 0, 0, 0 } };
	uint64_t hl, hf, hc, hm;
	char why[256];
	int cuda_only = argc > 1 && strcmp(argv[1], "cuda") == 0, skip = 0;

	btz_hp_set_span(&o[2].m->hp, 32);
	btz_hp_set_span(&o[3].m->hp, 16);
	for (size_t i = 0; i < NO; i++) {
		test_schedules(o[i].m, &o[i].hl, &o[i].hf);
		o[i].hc = test_coding(o[i].m, 0);
		o[i].hm = test_coding(o[i].m, 1);
	}
	if (cuda_only) {
		if (!btz_cuda_usable(why, sizeof(why))) {
			printf("test_engine cuda: skipped: %s\n", why);
			skip = 1;
		} else {
			test_device(BTZ_DEVICE_CUDA, "cuda", m, o, NO);
		}
		goto done;
	}

	test_schedules(m, &hl, &hf);
	hc = test_coding(m, 0);
	hm = test_coding(m, 1);
	printf("logits %016" PRIx64 " freq %016" PRIx64 " coded %016" PRIx64
	       " match %016" PRIx64 "\n", hl, hf, hc, hm);
	CHECK_EQ(hl, GOLDEN_LOGITS);
	CHECK_EQ(hf, GOLDEN_FREQ);
	CHECK_EQ(hc, GOLDEN_CODED);
	CHECK_EQ(hm, GOLDEN_MATCH);
	test_match_changes(m);
	test_att_tail();
	test_span_changes(o[2].m);
	test_span_changes(o[3].m);
	test_span_restart(o[2].m);
	/* Every kernel this CPU runs gives the pinned integers, in both
	 * schedules (the engine picks its kernel from BTZ_KERNEL). */
	for (const struct btz_kernels *const *k = btz_kernels_all(); *k; k++) {
		if (btz_kernels_by_name((*k)->name) == NULL) {
			printf("kernel %s: not supported here, skipped\n",
			       (*k)->name);
			continue;
		}
		setenv("BTZ_KERNEL", (*k)->name, 1);
		test_schedules(m, &hl, &hf);
		hc = test_coding(m, 0);
		hm = test_coding(m, 1);
		printf("kernel %s: logits %016" PRIx64 " coded %016" PRIx64
		       " match %016" PRIx64 "\n", (*k)->name, hl, hc, hm);
		CHECK_EQ(hl, GOLDEN_LOGITS);
		CHECK_EQ(hf, GOLDEN_FREQ);
		CHECK_EQ(hc, GOLDEN_CODED);
		CHECK_EQ(hm, GOLDEN_MATCH);
		for (size_t i = 0; i < NO; i++) {
			test_schedules(o[i].m, &hl, &hf);
			CHECK_EQ(hl, o[i].hl);
			CHECK_EQ(hf, o[i].hf);
		}
	}
	unsetenv("BTZ_KERNEL");
	test_device(BTZ_DEVICE_SIM, "sim", m, o, NO);
done:
	btz_model_free(m);
	for (size_t i = 0; i < NO; i++)
		btz_model_free(o[i].m);
	if (failures) {
		fprintf(stderr, "test_engine: %d checks failed\n", failures);
		return 1;
	}
	if (skip)
		return 77;
	printf("test_engine: all checks passed\n");
	return 0;
}
