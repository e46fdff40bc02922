/* The trainer's network against the float reference (model/float.c) and
 * its gradient against finite differences, on small random models. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/bytes.h"
#include "model/float.h"
#include "trainer/bf16.h"
#include "trainer/gnet.h"
#include "trainer/net.h"

/* Mean cross-entropy (nats) of the reference network over B windows. */
static double ref_loss(const struct btz_fmodel *fm, const uint8_t *data,
		       size_t B, size_t T)
{
	float *lg = malloc(T * 256 * sizeof(float));
	struct btz_error err;
	double nats = 0;

	for (size_t b = 0; b < B; b++) {
		const uint8_t *w = data + b * T;
		CHECK(btz_fmodel_forward(fm, w, T, lg, &err) == BTZ_OK);
		for (size_t t = 0; t < T; t++) {
			const float *l = lg + t * 256;
			double mx = l[0], s = 0;
			for (int c = 1; c < 256; c++)
				mx = l[c] > mx ? l[c] : mx;
			for (int c = 0; c < 256; c++)
				s += exp(l[c] - mx);
			nats += mx + log(s) - l[w[t]];
		}
	}
	free(lg);
	return nats / (double)(B * T);
}

/* The GPU backend of the comparison: the simulated device, or CUDA with
 * "test_train cuda". */
static const struct btz_gpu_ops *gpu_ops = &btz_gpu_sim_ops;

/* How far got's gradient is from ref's, in units of a tolerance of 1e-3
 * relative plus 1e-5 of ref's largest entry (float sums in another
 * order); ref's largest entry in *gmax. */
static double grad_off(const struct btz_fmodel *ref,
		       const struct btz_fmodel *got, double *gmax)
{
	double worst = 0;

	*gmax = 0;
	for (size_t i = 0; i < ref->arena_floats; i++)
		*gmax = fmax(*gmax, fabs(ref->arena[i]));
	for (size_t i = 0; i < ref->arena_floats; i++) {
		double e = fabs(got->arena[i] - ref->arena[i]) /
			   (1e-3 * fabs(ref->arena[i]) + 1e-5 * *gmax);
		worst = fmax(worst, e);
	}
	return worst;
}

static void check_model(const struct btz_hparams *hp, size_t B,
			uint64_t seed)
{
	struct btz_fmodel *fm = NULL, *gr = NULL;
	struct btz_error err;
	size_t T = hp->context;
	uint8_t *data = malloc(B * T), *tgt = malloc(B * T);
	uint16_t *tok = malloc(B * T * sizeof(*tok));
	uint64_t s = seed;

	CHECK(btz_fmodel_generate(&fm, hp, seed, &err) == BTZ_OK);
	CHECK(btz_fmodel_alloc(&gr, hp, "g", NULL, &err) == BTZ_OK);
	/* Layer norms away from 1/0, so their gradients are exercised. */
	for (uint32_t l = 0; l < hp->layers; l++)
		for (uint32_t c = 0; c < hp->d; c++) {
			fm->layers[l].g1[c] = 0.5f + (btz_splitmix64(&s) % 100) / 100.0f;
			fm->layers[l].b2[c] = ((int)(btz_splitmix64(&s) % 21) - 10) / 50.0f;
		}
	for (size_t i = 0; i < B * T; i++) /* a skewed alphabet */
		data[i] = (uint8_t)("etaoin shrdlu"[btz_splitmix64(&s) % 13]);
	btz_net_windows(data, B, T, tok, tgt);

	struct btz_net *net = btz_net_new(hp, B);
	CHECK(net != NULL);
	memset(gr->arena, 0, gr->arena_floats * sizeof(float));
	double loss = btz_net_step(net, fm, tok, tgt, gr);
	double ref = ref_loss(fm, data, B, T);
	printf("d%u L%u H%u/%u W%u B%zu: loss %.6f, reference %.6f\n", hp->d,
	       hp->layers, hp->heads, hp->kv_heads, hp->context, B, loss, ref);
	CHECK(fabs(loss - ref) < 1e-4 * ref);
	if (btz_hp_span(hp) > 0) {
		/* The span leaves positions out: without it, another loss. */
		uint32_t flags = fm->hp.flags;

		btz_hp_set_span(&fm->hp, 0);
		CHECK(ref_loss(fm, data, B, T) != ref);
		fm->hp.flags = flags;
	}
	/* Activations rounded to int8 grids (--qat-act): the loss moves,
	 * by little; off again, it is back. */
	btz_net_set_actq(net, 1);
	double lq = btz_net_step(net, fm, tok, tgt, NULL);
	btz_net_set_actq(net, 0);
	printf("  activations rounded: loss %.6f\n", lq);
	CHECK(lq != loss && fabs(lq - loss) < 0.02 * loss);
	CHECK(btz_net_step(net, fm, tok, tgt, NULL) == loss);

	/* The GPU training step: the same loss and gradient up to float
	 * rounding (its sums run in another order). */
	struct btz_gnet *gn = NULL;
	struct btz_fmodel *gg = NULL;
	double gloss = 0, gfwd = 0, gmax, worst;
	CHECK(btz_fmodel_alloc(&gg, hp, "g", NULL, &err) == BTZ_OK);
	CHECK(btz_gnet_new(&gn, gpu_ops, hp, B, &err) == BTZ_OK);
	if (gn == NULL) {
		fprintf(stderr, "GPU net: %s\n", err.msg);
		return;
	}
	memset(gg->arena, 0, gg->arena_floats * sizeof(float));
	CHECK(btz_gnet_step(gn, fm, tok, tgt, gg, &gloss, &err) == BTZ_OK);
	CHECK(btz_gnet_step(gn, fm, tok, tgt, NULL, &gfwd, &err) == BTZ_OK);
	worst = grad_off(gr, gg, &gmax);
	printf("  GPU step (%s): loss %.6f (forward only %.6f), "
	       "gradient within %.2f of its tolerance\n", gpu_ops->name, gloss,
	       gfwd, worst);
	CHECK(fabs(gloss - loss) < 1e-5 * loss);
	CHECK(fabs(gfwd - gloss) < 1e-6 * gloss);
	CHECK(worst <= 1);
	CHECK(gmax > 0);

	/* With activations rounded (--qat-act on the GPU), the CPU's loss
	 * and gradient again. */
	struct btz_fmodel *gq = NULL;
	double cq, gql = 0;
	CHECK(btz_fmodel_alloc(&gq, hp, "g", NULL, &err) == BTZ_OK);
	memset(gq->arena, 0, gq->arena_floats * sizeof(float));
	memset(gg->arena, 0, gg->arena_floats * sizeof(float));
	btz_net_set_actq(net, 1);
	btz_gnet_set_actq(gn, 1);
	cq = btz_net_step(net, fm, tok, tgt, gq);
	CHECK(btz_gnet_step(gn, fm, tok, tgt, gg, &gql, &err) == BTZ_OK);
	btz_net_set_actq(net, 0);
	btz_gnet_set_actq(gn, 0);
	worst = grad_off(gq, gg, &gmax);
	printf("  GPU step, activations rounded: loss %.6f (CPU %.6f), "
	       "gradient within %.2f of its tolerance\n", gql, cq, worst);
	CHECK(cq == lq);
	CHECK(fabs(gql - cq) < 1e-5 * cq);
	CHECK(worst <= 1);
	btz_fmodel_free(gq);
	btz_gnet_free(gn);
	btz_fmodel_free(gg);

	/* Central differences on entries of every trained tensor: the
	 * analytic gradient must match to a few percent, or to an absolute
	 * 2e-4 where the gradient is tiny (float32 loss noise). */
	size_t checked = 0, bad = 0;
	size_t pos0 = (size_t)(fm->pos_emb - fm->arena);
	size_t pos1 = pos0 + (size_t)T * hp->d;
	for (size_t k = 0; k < 160; k++) {
		size_t i = btz_splitmix64(&s) % fm->arena_floats;
		if (i >= pos0 && i < pos1)
			continue; /* positions are fixed */
		float keep = fm->arena[i], h = 1e-2f;
		fm->arena[i] = keep + h;
		double lp = btz_net_step(net, fm, tok, tgt, NULL);
		fm->arena[i] = keep - h;
		double lm = btz_net_step(net, fm, tok, tgt, NULL);
		fm->arena[i] = keep;
		double num = (lp - lm) / (2 * h), ana = gr->arena[i];
		checked++;
		if (fabs(num - ana) > 0.05 * fabs(num) + 2e-4) {
			bad++;
			printf("  float %zu: analytic %.6g, numeric %.6g\n", i, ana,
			       num);
		}
	}
	printf("  %zu gradient entries checked, %zu off\n", checked, bad);
	CHECK(bad == 0);
	CHECK(checked > 100);
	btz_net_free(net);
	btz_fmodel_free(fm);
	btz_fmodel_free(gr);
	free(data);
	free(tgt);
	free(tok);
}

/* bf16 products against float32 ones, every transposition, with and
 * without accumulation: within bf16's rounding (8-bit mantissas). */
static void check_bf16(void)
{
	static const int shapes[][3] = { { 64, 48, 32 }, { 37, 19, 70 },
					 { 300, 128, 257 } };
	uint64_t s = 9;
	int worst_ok = 1;

	if (!btz_bf16_enable(1)) {
		printf("bf16 products: not on this build or CPU, not checked\n");
		return;
	}
	for (int i = 0; i < 3; i++)
		for (int v = 0; v < 8; v++) {
			int m = shapes[i][0], n = shapes[i][1], k = shapes[i][2];
			int ta = v & 1, tb = v >> 1 & 1, acc = v >> 2;
			int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5;
			int ldc = n + 2;
			size_t na = (size_t)lda * (ta ? k : m);
			size_t nb = (size_t)ldb * (tb ? n : k);
			float *a = malloc(na * 4), *b = malloc(nb * 4);
			float *c1 = malloc((size_t)ldc * m * 4);
			float *c2 = malloc((size_t)ldc * m * 4);
			double err = 0, big = 0;

			for (size_t j = 0; j < na; j++)
				a[j] = (float)(btz_splitmix64(&s) % 2001) / 1000 - 1;
			for (size_t j = 0; j < nb; j++)
				b[j] = (float)(btz_splitmix64(&s) % 2001) / 1000 - 1;
			for (size_t j = 0; j < (size_t)ldc * m; j++)
				c1[j] = c2[j] = (float)(j % 7);
			btz_mm(ta, tb, m, n, k, 1, a, lda, b, ldb, (float)acc,
			       c1, ldc);
			CHECK(btz_bf16_mm(ta, tb, m, n, k, a, lda, b, ldb,
					  (float)acc, c2, ldc));
			for (int r = 0; r < m; r++)
				for (int c = 0; c < ldc; c++) {
					double x = c1[r * ldc + c];

					big = fmax(big, fabs(x));
					err = fmax(err, fabs(x - c2[r * ldc + c]));
				}
			/* Each input off by up to 2^-9: sums of k products
			 * off by ~sqrt(k)·2^-8 typically. */
			if (err > 0.01 * big) {
				printf("  bf16 %dx%dx%d ta %d tb %d acc %d: "
				       "error %.4g of %.4g\n", m, n, k, ta, tb,
				       acc, err, big);
				worst_ok = 0;
			}
			free(a);
			free(b);
			free(c1);
			free(c2);
		}
	printf("bf16 products: %s\n", worst_ok ? "within 1%" : "off");
	CHECK(worst_ok);
	btz_bf16_enable(0);
}

int main(int argc, char **argv)
{
	/* Full heads, shared key/value heads, one head; windows shorter and
	 * longer than the trainer's 32-row attention blocks. */
	struct btz_hparams a = { 16, 2, 2, 2, 64, 24, 1, 0, 0 };
	struct btz_hparams b = { 32, 2, 8, 2, 64, 300, 1, 0, 0 };
	struct btz_hparams c = { 16, 1, 1, 1, 32, 130, 1, 0, 0 };
	/* Attention spans: 32 positions over windows of 300, 16 over 130. */
	struct btz_hparams d = b, e = c;

	btz_hp_set_span(&d, 32);
	btz_hp_set_span(&e, 16);

	if (argc > 1 && strcmp(argv[1], "cuda") == 0) {
		char why[256];

		if (!btz_cuda_usable(why, sizeof(why))) {
			printf("test_train cuda: skipped: %s\n", why);
			return 77;
		}
#ifdef HAVE_CUDA
		gpu_ops = &btz_gpu_cuda_ops;
#endif
	}
	check_bf16();
	check_model(&a, 3, 1);
	check_model(&b, 2, 2);
	check_model(&c, 2, 3);
	check_model(&d, 2, 4);
	check_model(&e, 2, 5);
	return failures ? 1 : 0;
}
