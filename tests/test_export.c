/* Tests of the float checkpoint (model/float.h) and the exporter
 * (model/export.h): .btf round trips and rejections, and an exported
 * model whose integer code length stays within 2% of the float network's
 * cross-entropy on held-out text, and the float network recovered from
 * an integer model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/bytes.h"
#include "model/engine.h"
#include "model/export.h"
#include "model/float.h"
#include "tests/check.h"

/* Largest relative rms error of the integer logits. */
#define LOGIT_ERR_MAX 0.10

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* English-like text: Zipf-ish words, capitals after a full stop, commas,
 * occasional line breaks. */
static void make_text(uint8_t *out, size_t n, uint64_t seed)
{
	static const char *words[] = {
		"the", "of", "and", "to", "a", "in", "is", "it", "that", "was",
		"for", "on", "are", "with", "as", "his", "they", "be", "at",
		"one", "have", "this", "from", "or", "had", "by", "word", "but",
		"what", "some", "we", "can", "out", "other", "were", "all",
		"there", "when", "up", "use", "your", "how", "said", "an",
		"each", "she", "which", "do", "their", "time", "if", "will",
		"way", "about", "many", "then", "them", "write", "would",
		"like", "so", "these", "her", "long", "make", "thing", "see",
		"him", "two", "has", "look", "more", "day", "could", "go",
		"come", "did", "number", "sound", "no", "most", "people", "my",
		"over", "know", "water", "than", "call", "first", "who", "may",
		"down", "side", "been", "now", "find", "archive", "model",
	};
	const size_t nw = sizeof(words) / sizeof(words[0]);
	uint64_t s = seed;
	size_t pos = 0;
	int cap = 1;

	while (pos < n) {
		/* Zipf-like: the product of two uniforms favours small ids. */
		size_t i = (size_t)((rng(&s) % nw) * (rng(&s) % nw) / nw);
		const char *w = words[i];
		uint64_t r = rng(&s) % 100;

		for (size_t c = 0; w[c] && pos < n; c++)
			out[pos++] = (uint8_t)(cap && c == 0 ? w[c] - 32 : w[c]);
		cap = 0;
		if (pos >= n)
			break;
		if (r < 8) {
			out[pos++] = '.';
			cap = 1;
			if (pos < n)
				out[pos++] = r < 2 ? '\n' : ' ';
		} else if (r < 14) {
			out[pos++] = ',';
			if (pos < n)
				out[pos++] = ' ';
		} else {
			out[pos++] = ' ';
		}
	}
}

/* Sharpens a random model without training: the last layer norm's
 * channel 0 becomes a constant 1 (g2 = 0, b2 = 1), and wout a Gaussian
 * class-mean classifier of the final hidden states (which carry the
 * current byte and some context): logit_b = alpha (mu_b · h − |mu_b|² / 2)
 * + log prior_b, alpha picked on the training text. The point is a model
 * whose predictions are far from uniform, so that quantization error
 * shows in the code length. */
static void sharpen(struct btz_fmodel *fm, const uint8_t *text, size_t n)
{
	size_t d = fm->hp.d, W = fm->hp.context, N = n / W * W;
	struct btz_flayer *last = &fm->layers[fm->hp.layers - 1];
	double *mu = calloc(256 * d, sizeof(double)), cnt[256] = { 0 };
	float *hid = malloc(sizeof(float) * N * d);
	double best = 1e9, best_alpha = 1;
	struct btz_error err;

	for (size_t off = 0; off < N; off += W)
		CHECK(btz_fmodel_forward_ex(fm, text + off, W, NULL,
					    hid + off * d, NULL, &err) ==
		      BTZ_OK);
	for (size_t t = 0; t < N; t++) {
		hid[t * d] = 1; /* the constant channel */
		cnt[text[t]]++;
		for (size_t c = 1; c < d; c++)
			mu[text[t] * d + c] += hid[t * d + c];
	}
	for (int b = 0; b < 256; b++) {
		double sq = 0;

		for (size_t c = 1; c < d; c++) {
			mu[b * d + c] = cnt[b] ? mu[b * d + c] / cnt[b] : 0;
			sq += mu[b * d + c] * mu[b * d + c];
		}
		mu[b * d] = sq; /* |mu_b|², for the bias below */
	}
	last->g2[0] = 0;
	last->b2[0] = 1;
	for (int pass = 0; pass < 2; pass++)
		for (double alpha = 0.02; alpha <= 8; alpha *= 1.25) {
			double bits = 0, a = pass ? best_alpha : alpha;

			for (int b = 0; b < 256; b++) {
				fm->wout[b * d] = (float)(-a * mu[b * d] / 2 +
					log((cnt[b] + 0.1) / (N + 25.6)));
				for (size_t c = 1; c < d; c++)
					fm->wout[b * d + c] =
						(float)(a * mu[b * d + c]);
			}
			if (pass)
				break;
			/* Cross-entropy on the stored states (every 4th). */
			for (size_t t = 0; t < N; t += 4) {
				double l[256], mx = -1e30, z = 0;

				for (int b = 0; b < 256; b++) {
					l[b] = 0;
					for (size_t c = 0; c < d; c++)
						l[b] += (double)fm->wout[b * d + c] *
							hid[t * d + c];
					mx = l[b] > mx ? l[b] : mx;
				}
				for (int b = 0; b < 256; b++)
					z += exp(l[b] - mx);
				bits += (log(z) - (l[text[t]] - mx)) / log(2.0);
			}
			bits /= (double)((N + 3) / 4);
			if (bits < best) {
				best = bits;
				best_alpha = alpha;
			}
		}
	printf("sharpened wout: alpha %.3f, %.4f bits/byte on training text\n",
	       best_alpha, best);
	free(mu);
	free(hid);
}

/* Bits/byte of the integer model, as the coder would spend them. */
static double int_bpb(const struct btz_model *m, const uint8_t *data,
		      size_t len)
{
	struct btz_error err;
	double bits;

	if (btz_engine_code_bits(m, data, len, &bits, &err) != BTZ_OK) {
		fprintf(stderr, "engine: %s\n", err.msg);
		failures++;
		return 99;
	}
	return bits / (double)len;
}

/* Relative rms error of the integer logits (in real units: f_mul /
 * 2^f_shift is 32 times their scale) against the float ones, each row
 * centred since softmax ignores a shift. This sees errors that the code
 * length of a model leaning on its residual path would hide. */
static double logit_err(const struct btz_model *m,
			const struct btz_fmodel *fm, const uint8_t *data,
			size_t len)
{
	size_t W = m->hp.context;
	struct btz_engine *e = NULL;
	struct btz_error err;
	uint16_t *tok = malloc(2 * W);
	uint32_t *win = calloc(W, 4), *pos = malloc(4 * W);
	uint32_t(*freq)[256] = malloc(sizeof(*freq) * W);
	int32_t(*il)[256] = malloc(sizeof(*il) * W);
	float *fl = malloc(sizeof(float) * 256 * W);
	double scale = ldexp((double)m->f_mul, -m->f_shift) / 32, num = 0,
	       den = 0;

	CHECK(btz_engine_create(&e, m, 1, W, &err) == BTZ_OK);
	for (size_t off = 0; e != NULL && off + W <= len; off += W) {
		for (size_t t = 0; t < W; t++) {
			tok[t] = t == 0 ? BTZ_BTM_START : data[off + t - 1];
			pos[t] = (uint32_t)t;
		}
		CHECK(btz_engine_rows(e, W, tok, win, pos, freq, il, &err) ==
		      BTZ_OK);
		CHECK(btz_fmodel_forward(fm, data + off, W, fl, &err) ==
		      BTZ_OK);
		for (size_t t = 0; t < W; t++) {
			double mi = 0, mf = 0;

			for (int b = 0; b < 256; b++) {
				mi += il[t][b] * scale / 256;
				mf += fl[t * 256 + b] / 256;
			}
			for (int b = 0; b < 256; b++) {
				double f = fl[t * 256 + b] - mf;
				double i = il[t][b] * scale - mi;

				num += (i - f) * (i - f);
				den += f * f;
			}
		}
	}
	btz_engine_free(e);
	free(tok);
	free(win);
	free(pos);
	free(freq);
	free(il);
	free(fl);
	return den > 0 ? sqrt(num / den) : 1;
}

static double max_abs(const float *w, size_t n)
{
	double mx = 0;

	for (size_t i = 0; i < n; i++)
		mx = fabs(w[i]) > mx ? fabs(w[i]) : mx;
	return mx;
}

/* The bytes of each int8 weight tensor of a and b are equal. */
static int same_weights(const struct btz_model *a, const struct btz_model *b)
{
	size_t d = a->hp.d, F = a->hp.ff, kv = (size_t)a->hp.kv_heads * a->dh;
	int same = memcmp(a->tok_emb, b->tok_emb, 257 * d) == 0 &&
		   memcmp(a->wout, b->wout, 256 * d) == 0;

	for (uint32_t l = 0; same && l < a->hp.layers; l++) {
		const struct btz_layer *x = &a->layers[l], *y = &b->layers[l];

		same = memcmp(x->wq, y->wq, d * d) == 0 &&
		       memcmp(x->wk, y->wk, kv * d) == 0 &&
		       memcmp(x->wv, y->wv, kv * d) == 0 &&
		       memcmp(x->wo, y->wo, d * d) == 0 &&
		       memcmp(x->w1, y->w1, F * d) == 0 &&
		       memcmp(x->w3, y->w3, F * d) == 0 &&
		       memcmp(x->w2, y->w2, d * F) == 0;
	}
	return same;
}

/* btz_import(m): a float network that computes what m computes (its
 * logits no further from m's than the network m was exported from, its
 * cross-entropy within 0.1% of m's code length), that exports to m's
 * weights and code length again, with btztrain's scales where m leaves
 * them free. ibpb and lerr are m's code length and logit error against
 * the network it came from. */
static void test_import(const struct btz_model *m,
			const struct btz_fmodel *orig, const uint8_t *cal,
			size_t ncal, const uint8_t *test, size_t ntest,
			double ibpb, double lerr)
{
	struct btz_fmodel *fm = NULL;
	struct btz_model *m2 = NULL;
	struct btz_error err;
	double fbpb, lerr2, ibpb2, g = 0, q, k;
	size_t d = m->hp.d;
	int silu_err = 0;

	if (btz_import(&fm, m, &err) != BTZ_OK) {
		fprintf(stderr, "import: %s\n", err.msg);
		failures++;
		return;
	}
	CHECK(strcmp(fm->name, m->name) == 0);
	CHECK(memcmp(&fm->hp, &m->hp, sizeof(fm->hp)) == 0);
	CHECK_EQ(fm->steps, orig->steps);
	CHECK(btz_fmodel_xent(fm, test, ntest, &fbpb, &err) == BTZ_OK);
	lerr2 = logit_err(m, fm, test, 4096);
	printf("imported model:  float %.4f bits/byte (integer %.4f), logit "
	       "rms error %.2f%% (exported from: %.2f%%)\n", fbpb, ibpb,
	       100 * lerr2, 100 * lerr);
	CHECK(fabs(fbpb - ibpb) <= 0.001 * ibpb);
	CHECK(lerr2 < 0.02 && lerr2 <= lerr);
	for (size_t c = 0; c < d; c++)
		g += fabs(fm->layers[0].g1[c]) / (double)d;
	/* The scales m leaves free: btztrain's positions and norms, and
	 * the factors of q·k balanced. */
	CHECK(fabs(g - 1) < 1e-5);
	CHECK(fabs(max_abs(fm->pos_emb, m->hp.context * d) - 1) < 1e-6);
	q = max_abs(fm->layers[0].wq, d * d);
	k = max_abs(fm->layers[0].wk, (size_t)m->hp.kv_heads * m->dh * d);
	CHECK(fabs(q - k) <= 1e-5 * q);
	CHECK(btz_export(&m2, fm, cal, ncal, &err) == BTZ_OK);
	if (m2 != NULL) {
		CHECK(same_weights(m, m2));
		/* The SiLU table holds the one scale that m records only
		 * through its values: 1% off moves entries by 14. */
		for (int i = 0; i < 256; i++) {
			int e = abs(m->silu[i] - m2->silu[i]);

			silu_err = e > silu_err ? e : silu_err;
		}
		CHECK(silu_err <= 2);
		ibpb2 = int_bpb(m2, test, ntest);
		printf("re-exported:     integer %.4f bits/byte, SiLU table "
		       "within %d\n", ibpb2, silu_err);
		CHECK(fabs(ibpb2 - ibpb) <= 0.002 * ibpb);
		btz_model_free(m2);
	}
	btz_fmodel_free(fm);
}

/* Rewrites the trailing checksum of a .btf or .btm image. */
static void reseal(uint8_t *b, size_t n)
{
	btz_put_le64(b + n - 8, XXH3_64bits(b, n - 8));
}

static void test_btf_file(const struct btz_fmodel *fm)
{
	struct btz_fmodel *g = NULL;
	struct btz_error err;
	uint8_t *a, *b, *c;
	size_t na, nb, nt;
	uint64_t s = 7;
	int rejected;

	CHECK(btz_fmodel_save_mem(fm, &a, &na, &err) == BTZ_OK);
	CHECK(btz_fmodel_load_mem(&g, a, na, &err) == BTZ_OK);
	if (g == NULL)
		return;
	CHECK(btz_fmodel_save_mem(g, &b, &nb, &err) == BTZ_OK);
	CHECK_EQ(nb, na);
	CHECK(nb == na && memcmp(a, b, na) == 0);
	CHECK_EQ(g->arena_floats, fm->arena_floats);
	CHECK(memcmp(g->arena, fm->arena, 4 * fm->arena_floats) == 0);
	CHECK(strcmp(g->name, fm->name) == 0);
	CHECK_EQ(g->steps, fm->steps);
	CHECK_EQ(g->valid_ubpb, fm->valid_ubpb);
	btz_fmodel_free(g);
	free(b);
	/* Through a file as well. */
	CHECK(btz_fmodel_save(fm, "test_export.btf", &err) == BTZ_OK);
	CHECK(btz_fmodel_load(&g, "test_export.btf", &err) == BTZ_OK);
	if (g != NULL) {
		CHECK(btz_fmodel_save_mem(g, &b, &nb, &err) == BTZ_OK);
		CHECK(nb == na && memcmp(a, b, na) == 0);
		free(b);
		btz_fmodel_free(g);
	}
	remove("test_export.btf");
	CHECK(btz_fmodel_load(&g, "test_export.btf", &err) == BTZ_E_IO);

	/* Truncations: short ones all, longer ones sampled, and n − 1. */
	rejected = 0;
	for (size_t i = 0; i < 400; i++) {
		nt = i < 200 ? i : i < 399 ? rng(&s) % na : na - 1;
		if (btz_fmodel_load_mem(&g, a, nt, &err) != BTZ_OK &&
		    g == NULL)
			rejected++;
		else
			btz_fmodel_free(g);
	}
	CHECK_EQ(rejected, 400);
	/* Bit flips anywhere. */
	c = malloc(na);
	rejected = 0;
	for (int i = 0; i < 300; i++) {
		size_t at = i < 100 ? (size_t)i : rng(&s) % na;

		memcpy(c, a, na);
		c[at] ^= (uint8_t)(1u << (rng(&s) % 8));
		if (btz_fmodel_load_mem(&g, c, na, &err) != BTZ_OK)
			rejected++;
		else
			btz_fmodel_free(g);
	}
	CHECK_EQ(rejected, 300);
	/* Hostile but correctly sealed: each must be refused by a field
	 * check, not by the checksum. */
	memcpy(c, a, na);
	btz_put_le32(c + 12, 1u << 30); /* d */
	reseal(c, na);
	CHECK(btz_fmodel_load_mem(&g, c, na, &err) != BTZ_OK);
	CHECK(err.status != BTZ_E_CHECKSUM);
	memcpy(c, a, na);
	btz_put_le32(c + 24, 3); /* kv_heads not dividing heads */
	reseal(c, na);
	CHECK(btz_fmodel_load_mem(&g, c, na, &err) != BTZ_OK);
	memcpy(c, a, na);
	btz_put_le32(c + 32, 0xffffffffu); /* context */
	reseal(c, na);
	CHECK(btz_fmodel_load_mem(&g, c, na, &err) != BTZ_OK);
	memcpy(c, a, na);
	btz_put_le32(c + na - 12, 0x7fc00000u); /* last float: NaN */
	reseal(c, na);
	CHECK(btz_fmodel_load_mem(&g, c, na, &err) != BTZ_OK);
	CHECK(err.status == BTZ_E_CORRUPT);
	memcpy(c, a, na);
	btz_put_le16(c + 44, 0xffff); /* name length past the end */
	reseal(c, na);
	CHECK(btz_fmodel_load_mem(&g, c, na, &err) != BTZ_OK);
	/* One tensor byte short, resealed: a size mismatch. */
	memcpy(c, a, na);
	reseal(c, na - 1);
	CHECK(btz_fmodel_load_mem(&g, c, na - 1, &err) != BTZ_OK);
	CHECK(err.status == BTZ_E_CORRUPT);
	/* The .btm magic is not a checkpoint. */
	memcpy(c, a, na);
	c[3] = 'M';
	reseal(c, na);
	CHECK(btz_fmodel_load_mem(&g, c, na, &err) != BTZ_OK);
	free(c);
	free(a);
}

int main(void)
{
	struct btz_hparams hp = {
		.d = 64, .layers = 2, .heads = 8, .kv_heads = 2, .ff = 256,
		.context = 128, .modality = 1,
	};
	const size_t ncal = 65536, ntrain = 16384, ntest = 16384;
	uint8_t *cal = malloc(ncal), *train = malloc(ntrain);
	uint8_t *test = malloc(ntest), *img, *img2;
	size_t nimg, nimg2;
	struct btz_fmodel *fm = NULL;
	struct btz_model *m = NULL, *m2 = NULL;
	struct btz_error err;
	double fbpb, ibpb, rbpb, gap, lerr;

	make_text(cal, ncal, 1);
	make_text(train, ntrain, 2);
	make_text(test, ntest, 3);
	if (btz_fmodel_generate(&fm, &hp, 1, &err) != BTZ_OK) {
		fprintf(stderr, "generate: %s\n", err.msg);
		return 1;
	}
	fm->steps = 12345;
	fm->valid_ubpb = 4000000;

	/* The raw random model: close to uniform, so an easy case. */
	CHECK(btz_fmodel_xent(fm, test, ntest, &rbpb, &err) == BTZ_OK);
	CHECK(btz_export(&m, fm, cal, ncal, &err) == BTZ_OK);
	if (m != NULL) {
		ibpb = int_bpb(m, test, ntest);
		printf("random model:    float %.4f bits/byte, integer %.4f\n",
		       rbpb, ibpb);
		CHECK(fabs(ibpb - rbpb) <= 0.02 * rbpb);
		lerr = logit_err(m, fm, test, 4096);
		printf("random model:    logit rms error %.2f%%\n", 100 * lerr);
		CHECK(lerr < LOGIT_ERR_MAX);
		btz_model_free(m);
		m = NULL;
	} else {
		fprintf(stderr, "export: %s\n", err.msg);
	}

	CHECK(btz_export(&m, fm, cal, 0, &err) == BTZ_E_ARG);
	CHECK(m == NULL);

	/* A sharpened model: predictions far from uniform. */
	sharpen(fm, train, ntrain);
	CHECK(btz_fmodel_xent(fm, test, ntest, &fbpb, &err) == BTZ_OK);
	CHECK(fbpb < 0.75 * rbpb);
	test_btf_file(fm);
	if (btz_export(&m, fm, cal, ncal, &err) != BTZ_OK) {
		fprintf(stderr, "export: %s\n", err.msg);
		return 1;
	}
	CHECK(strcmp(m->name, fm->name) == 0);
	CHECK_EQ(m->steps, fm->steps);
	CHECK_EQ(m->valid_ubpb_float, fm->valid_ubpb);
	CHECK(btz_model_save_mem(m, &img, &nimg, &err) == BTZ_OK);
	CHECK(btz_model_load_mem(&m2, img, nimg, &err) == BTZ_OK);
	if (m2 != NULL) {
		CHECK(memcmp(m2->fingerprint, m->fingerprint, 16) == 0);
		CHECK(btz_model_save_mem(m2, &img2, &nimg2, &err) == BTZ_OK);
		CHECK(nimg2 == nimg && memcmp(img, img2, nimg) == 0);
		free(img2);
		btz_model_free(m2);
	}
	free(img);
	ibpb = int_bpb(m, test, ntest);
	gap = (ibpb - fbpb) / fbpb;
	printf("sharpened model: float %.4f bits/byte, integer %.4f "
	       "(%+.2f%%)\n", fbpb, ibpb, 100 * gap);
	lerr = logit_err(m, fm, test, 4096);
	printf("sharpened model: logit rms error %.2f%%\n", 100 * lerr);
	CHECK(lerr < LOGIT_ERR_MAX);
	if (fabs(gap) > 0.02) {
		fprintf(stderr, "integer %.4f vs float %.4f bits/byte: "
			"gap %.2f%% over 2%%\n", ibpb, fbpb, 100 * gap);
		failures++;
	}
	test_import(m, fm, cal, ncal, test, ntest, ibpb, lerr);
	/* No export above chose ao_shift > 0 (nor did any shipped model's),
	 * so make m one that has: v at half scale (mv halved), o as before
	 * (ao_shift 1); a valid integer model that import must follow. */
	for (uint32_t l = 0; l < hp.layers; l++) {
		struct btz_layer *L = &m->layers[l];

		for (size_t o = 0; o < (size_t)hp.kv_heads * m->dh; o++)
			((int32_t *)L->mv)[o] /= 2;
		L->ao_shift = 1;
	}
	ibpb = int_bpb(m, test, ntest);
	test_import(m, fm, cal, ncal, test, ntest, ibpb, lerr);
	btz_model_free(m);
	btz_fmodel_free(fm);
	free(cal);
	free(train);
	free(test);
	return failures ? 1 : 0;
}
