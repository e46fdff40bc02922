/* The training step of trainer/net.c on a GPU backend, in the same order:
 * forward with every activation kept, cross-entropy, then backward layer
 * by layer. Weight products go to the backend's sgemm (cuBLAS), mapped
 * from the row-major products net.c writes; the rest are launches of the
 * element kernels of model/gpu_train_kernels.h. */
#include "trainer/gnet.h"
#include "trainer/net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Row ranges the layer norms' gradient sums are split into. */
#define LN_PARTS 256

struct btz_gnet {
	const struct btz_gpu_ops *ops;
	void *ctx;
	struct btz_hparams hp;
	struct btz_net_dims z;
	size_t np; /* floats of the weights */
	float *mem; /* every device buffer below, one allocation */
	float *w, *gw; /* the weights and their gradient, the arena's layout */
	float *x0, *logits, *loss, *dd, *part;
	float *amax; /* one float: --qat-act's maximum of a tensor */
	int actq; /* see btz_gnet_set_actq */
	float *dx, *dz, *dq, *dk, *dv, *do_, *da, *du, *dh_;
	struct btz_net_layer *ly;
	uint16_t *tok;
	uint8_t *tgt;
	float *host_loss, *host_grad;
};

/* Row-major C(m × n) = alpha·op(A)·op(B) + beta·C, as btz_mm, through the
 * column-major sgemm: a row-major matrix read column-major is its
 * transpose, so C^T = op(B)^T·op(A)^T. */
static enum btz_status mm(struct btz_gnet *g, int ta, int tb, size_t m,
			  size_t n, size_t k, const float *a, size_t lda,
			  const float *b, size_t ldb, float beta, float *c,
			  size_t ldc, struct btz_error *err)
{
	return g->ops->sgemm(g->ctx, tb, ta, n, m, k, 1.0f, b, ldb, a, lda,
			     beta, c, ldc, err);
}

static enum btz_status run(struct btz_gnet *g, enum tk_id id, size_t n,
			   const struct tk_args *a, struct btz_error *err)
{
	return g->ops->tlaunch(g->ctx, id, n, a, err);
}

static struct tk_args args(const struct btz_gnet *g)
{
	struct tk_args a;

	memset(&a, 0, sizeof(a));
	a.tok = g->tok;
	a.tgt = g->tgt;
	a.N = (uint32_t)g->z.N;
	a.T = (uint32_t)g->z.T;
	a.d = (uint32_t)g->z.d;
	a.F = (uint32_t)g->z.F;
	a.H = g->hp.heads;
	a.Hkv = g->hp.kv_heads;
	a.dh = (uint32_t)g->z.dh;
	a.hq = (uint32_t)g->z.hq;
	a.kv = (uint32_t)g->z.kv;
	a.span = btz_hp_span(&g->hp);
	a.scale = (float)(1 / sqrt((double)g->z.dh));
	return a;
}

enum btz_status btz_gnet_new(struct btz_gnet **out,
			     const struct btz_gpu_ops *ops,
			     const struct btz_hparams *hp, size_t batch,
			     struct btz_error *err)
{
	struct btz_gnet *g = calloc(1, sizeof(*g));
	size_t total, off = 0;
	enum btz_status st;

	*out = NULL;
	if (g == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	g->ops = ops;
	g->hp = *hp;
	btz_net_dims(&g->z, hp, batch);
	if (g->z.dh > TK_DH_MAX) {
		size_t dh = g->z.dh;

		free(g);
		return btz_fail(err, BTZ_E_UNSUPPORTED,
				"GPU training: heads of %zu (at most %d)", dh,
				TK_DH_MAX);
	}
	st = btz_fmodel_floats(hp, &g->np, err);
	if (st != BTZ_OK) {
		free(g);
		return st;
	}

	size_t N = g->z.N, d = g->z.d, F = g->z.F, hq = g->z.hq, kv = g->z.kv;
	size_t lse = batch * hp->heads * g->z.T;
	size_t per = btz_net_layer_floats(hp, batch);
	/* tok and tgt take whole floats at the end. */
	size_t ftok = (N * sizeof(uint16_t) + 3) / 4, ftgt = (N + 3) / 4;

	total = 2 * g->np + N * d + per * hp->layers + N * 256 + N + lse +
		2 * LN_PARTS * d + 1 +
		N * (2 * d + 2 * hq + 2 * kv + 3 * F) + ftok + ftgt;
	g->ly = calloc(hp->layers, sizeof(*g->ly));
	g->host_loss = malloc(N * sizeof(float));
	g->host_grad = malloc(g->np * sizeof(float));
	if (g->ly == NULL || g->host_loss == NULL || g->host_grad == NULL) {
		btz_gnet_free(g);
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	}
	st = ops->init(&g->ctx, err);
	if (st == BTZ_OK)
		st = ops->alloc(g->ctx, (void **)&g->mem, total * sizeof(float),
				err);
	if (st != BTZ_OK) {
		btz_gnet_free(g);
		return btz_fail_prefix(err, "GPU training, %zu MB",
				       total * sizeof(float) >> 20);
	}
#define TAKE(n) (off += (n), g->mem + off - (n))
	g->w = TAKE(g->np);
	g->gw = TAKE(g->np);
	g->x0 = TAKE(N * d);
	for (uint32_t l = 0; l < hp->layers; l++)
		btz_net_layer_bind(&g->ly[l], TAKE(per), hp, batch);
	g->logits = TAKE(N * 256);
	g->loss = TAKE(N);
	g->dd = TAKE(lse);
	g->part = TAKE(2 * LN_PARTS * d);
	g->amax = TAKE(1);
	g->dx = TAKE(N * d);
	g->dz = TAKE(N * d);
	g->dq = TAKE(N * hq);
	g->do_ = TAKE(N * hq);
	g->dk = TAKE(N * kv);
	g->dv = TAKE(N * kv);
	g->da = TAKE(N * F);
	g->du = TAKE(N * F);
	g->dh_ = TAKE(N * F);
	g->tok = (uint16_t *)TAKE(ftok);
	g->tgt = (uint8_t *)TAKE(ftgt);
#undef TAKE
	*out = g;
	return BTZ_OK;
}

void btz_gnet_free(struct btz_gnet *g)
{
	if (g == NULL)
		return;
	if (g->mem != NULL)
		g->ops->release(g->ctx, g->mem);
	if (g->ctx != NULL)
		g->ops->fini(g->ctx);
	free(g->ly);
	free(g->host_loss);
	free(g->host_grad);
	free(g);
}

/* A tensor of fm as the same tensor of the device copy at base. */
#define DEV(base, p) ((base) + ((p) - fm->arena))

/* y = LN(r)·g + b, keeping x̂ and 1/σ. */
static enum btz_status ln_fwd(struct btz_gnet *g, const float *r,
			      const float *gam, const float *bet, float *xhat,
			      float *rstd, float *y, struct btz_error *err)
{
	struct tk_args a = args(g);

	a.src = r;
	a.gam = gam;
	a.bet = bet;
	a.dst = xhat;
	a.dst2 = rstd;
	a.dst3 = y;
	return run(g, TK_LN_FWD, g->z.N, &a, err);
}

/* dy → ∂/∂r in place, adding dg and db. */
static enum btz_status ln_bwd(struct btz_gnet *g, float *dy,
			      const float *xhat, const float *rstd,
			      const float *gam, float *dg, float *db,
			      struct btz_error *err)
{
	struct tk_args a = args(g);

	a.src = dy;
	a.src2 = xhat;
	a.dst = dg;
	a.dst2 = db;
	a.dst3 = g->part;
	a.parts = g->z.N < LN_PARTS ? (uint32_t)g->z.N : LN_PARTS;
	BTZ_TRY(run(g, TK_LN_PART, (size_t)a.parts * g->z.d, &a, err));
	BTZ_TRY(run(g, TK_LN_GRAD, g->z.d, &a, err));
	a = args(g);
	a.src = dy;
	a.src2 = xhat;
	a.src3 = rstd;
	a.gam = gam;
	a.dst = dy;
	return run(g, TK_LN_BWD, g->z.N, &a, err);
}

static enum btz_status copy(struct btz_gnet *g, float *dst, const float *src,
			    size_t n, struct btz_error *err)
{
	struct tk_args a = args(g);

	a.src = src;
	a.dst = dst;
	return run(g, TK_COPY, n, &a, err);
}

void btz_gnet_set_actq(struct btz_gnet *g, int on)
{
	g->actq = on;
}

/* net.c's fake_quant_act: v's rows × cols rounded to the int8 grid of
 * the tensor's maximum magnitude in this batch. */
static enum btz_status act_q(struct btz_gnet *g, float *v, size_t rows,
			     size_t cols, struct btz_error *err)
{
	struct tk_args a = args(g);

	if (!g->actq)
		return BTZ_OK;
	a.dst = g->amax;
	BTZ_TRY(run(g, TK_FILL0, 1, &a, err));
	a.src = v;
	a.cols = (uint32_t)cols;
	BTZ_TRY(run(g, TK_ACT_MAX, rows, &a, err));
	a = args(g);
	a.src = g->amax;
	a.dst = v;
	return run(g, TK_ACT_ROUND, rows * cols, &a, err);
}

static enum btz_status forward(struct btz_gnet *g, const struct btz_fmodel *fm,
			       struct btz_error *err)
{
	size_t N = g->z.N, d = g->z.d, F = g->z.F, hq = g->z.hq, kv = g->z.kv;
	struct tk_args a = args(g);
	const float *x = g->x0;

	a.src = DEV(g->w, fm->tok_emb);
	a.src2 = DEV(g->w, fm->pos_emb);
	a.dst = g->x0;
	BTZ_TRY(run(g, TK_EMBED, N * d, &a, err));
	for (uint32_t l = 0; l < g->hp.layers; l++) {
		const struct btz_flayer *w = &fm->layers[l];
		struct btz_net_layer *y = &g->ly[l];

		BTZ_TRY(mm(g, 0, 1, N, hq, d, x, d, DEV(g->w, w->wq), d, 0,
			   y->q, hq, err));
		BTZ_TRY(mm(g, 0, 1, N, kv, d, x, d, DEV(g->w, w->wk), d, 0,
			   y->k, kv, err));
		BTZ_TRY(mm(g, 0, 1, N, kv, d, x, d, DEV(g->w, w->wv), d, 0,
			   y->v, kv, err));
		BTZ_TRY(act_q(g, y->q, N, hq, err));
		BTZ_TRY(act_q(g, y->k, N, kv, err));
		BTZ_TRY(act_q(g, y->v, N, kv, err));
		a = args(g);
		a.q = y->q;
		a.k = y->k;
		a.v = y->v;
		a.ol = y->o;
		a.odd = y->lse;
		BTZ_TRY(run(g, TK_ATTN, g->z.B * g->hp.heads * g->z.T, &a, err));
		BTZ_TRY(act_q(g, y->o, N, hq, err));
		/* r = x + o·Woᵀ */
		BTZ_TRY(copy(g, g->dz, x, N * d, err));
		BTZ_TRY(mm(g, 0, 1, N, d, hq, y->o, hq, DEV(g->w, w->wo), hq, 1,
			   g->dz, d, err));
		BTZ_TRY(ln_fwd(g, g->dz, DEV(g->w, w->g1), DEV(g->w, w->b1),
			       y->xhat1, y->rstd1, y->x1, err));
		BTZ_TRY(act_q(g, y->x1, N, d, err));
		BTZ_TRY(mm(g, 0, 1, N, F, d, y->x1, d, DEV(g->w, w->w1), d, 0,
			   y->a, F, err));
		BTZ_TRY(mm(g, 0, 1, N, F, d, y->x1, d, DEV(g->w, w->w3), d, 0,
			   y->u, F, err));
		BTZ_TRY(act_q(g, y->a, N, F, err));
		BTZ_TRY(act_q(g, y->u, N, F, err));
		a = args(g);
		a.src = y->a;
		a.src2 = y->u;
		a.dst = y->h;
		BTZ_TRY(run(g, TK_SWIGLU, N * F, &a, err));
		BTZ_TRY(act_q(g, y->h, N, F, err));
		BTZ_TRY(copy(g, g->dz, y->x1, N * d, err));
		BTZ_TRY(mm(g, 0, 1, N, d, F, y->h, F, DEV(g->w, w->w2), F, 1,
			   g->dz, d, err));
		BTZ_TRY(ln_fwd(g, g->dz, DEV(g->w, w->g2), DEV(g->w, w->b2),
			       y->xhat2, y->rstd2, y->x, err));
		BTZ_TRY(act_q(g, y->x, N, d, err));
		x = y->x;
	}
	return mm(g, 0, 1, N, 256, d, x, d, DEV(g->w, fm->wout), d, 0,
		  g->logits, 256, err);
}

static enum btz_status backward(struct btz_gnet *g,
				const struct btz_fmodel *fm,
				struct btz_error *err)
{
	size_t N = g->z.N, d = g->z.d, F = g->z.F, hq = g->z.hq, kv = g->z.kv;
	size_t L = g->hp.layers, rows = g->z.B * g->hp.heads * g->z.T;
	const float *x = g->ly[L - 1].x;
	struct tk_args a;

	BTZ_TRY(mm(g, 1, 0, 256, d, N, g->logits, 256, x, d, 1,
		   DEV(g->gw, fm->wout), d, err));
	BTZ_TRY(mm(g, 0, 0, N, d, 256, g->logits, 256, DEV(g->w, fm->wout), d,
		   0, g->dx, d, err));
	for (size_t l = L; l-- > 0;) {
		const struct btz_flayer *w = &fm->layers[l];
		struct btz_net_layer *y = &g->ly[l];
		const float *xin = l == 0 ? g->x0 : g->ly[l - 1].x;

		/* dx becomes ∂/∂r2. */
		BTZ_TRY(ln_bwd(g, g->dx, y->xhat2, y->rstd2, DEV(g->w, w->g2),
			       DEV(g->gw, w->g2), DEV(g->gw, w->b2), err));
		BTZ_TRY(mm(g, 1, 0, d, F, N, g->dx, d, y->h, F, 1,
			   DEV(g->gw, w->w2), F, err));
		BTZ_TRY(mm(g, 0, 0, N, F, d, g->dx, d, DEV(g->w, w->w2), F, 0,
			   g->dh_, F, err));
		a = args(g);
		a.src = y->a;
		a.src2 = y->u;
		a.src3 = g->dh_;
		a.dst = g->da;
		a.dst2 = g->du;
		BTZ_TRY(run(g, TK_SWIGLU_BWD, N * F, &a, err));
		BTZ_TRY(mm(g, 1, 0, F, d, N, g->da, F, y->x1, d, 1,
			   DEV(g->gw, w->w1), d, err));
		BTZ_TRY(mm(g, 1, 0, F, d, N, g->du, F, y->x1, d, 1,
			   DEV(g->gw, w->w3), d, err));
		BTZ_TRY(mm(g, 0, 0, N, d, F, g->da, F, DEV(g->w, w->w1), d, 1,
			   g->dx, d, err));
		BTZ_TRY(mm(g, 0, 0, N, d, F, g->du, F, DEV(g->w, w->w3), d, 1,
			   g->dx, d, err));
		/* dx becomes ∂/∂r. */
		BTZ_TRY(ln_bwd(g, g->dx, y->xhat1, y->rstd1, DEV(g->w, w->g1),
			       DEV(g->gw, w->g1), DEV(g->gw, w->b1), err));
		BTZ_TRY(mm(g, 1, 0, d, hq, N, g->dx, d, y->o, hq, 1,
			   DEV(g->gw, w->wo), hq, err));
		BTZ_TRY(mm(g, 0, 0, N, hq, d, g->dx, d, DEV(g->w, w->wo), hq, 0,
			   g->do_, hq, err));
		a = args(g);
		a.dout = g->do_;
		a.o = y->o;
		a.odd = g->dd;
		BTZ_TRY(run(g, TK_ATTN_D, rows, &a, err));
		a = args(g);
		a.q = y->q;
		a.k = y->k;
		a.v = y->v;
		a.lse = y->lse;
		a.dd = g->dd;
		a.dout = g->do_;
		a.dq = g->dq;
		a.dk = g->dk;
		a.dv = g->dv;
		BTZ_TRY(run(g, TK_ATTN_DQ, rows, &a, err));
		BTZ_TRY(run(g, TK_ATTN_DKV, g->z.B * g->hp.kv_heads * g->z.T, &a,
			    err));
		BTZ_TRY(mm(g, 1, 0, hq, d, N, g->dq, hq, xin, d, 1,
			   DEV(g->gw, w->wq), d, err));
		BTZ_TRY(mm(g, 1, 0, kv, d, N, g->dk, kv, xin, d, 1,
			   DEV(g->gw, w->wk), d, err));
		BTZ_TRY(mm(g, 1, 0, kv, d, N, g->dv, kv, xin, d, 1,
			   DEV(g->gw, w->wv), d, err));
		BTZ_TRY(mm(g, 0, 0, N, d, hq, g->dq, hq, DEV(g->w, w->wq), d, 1,
			   g->dx, d, err));
		BTZ_TRY(mm(g, 0, 0, N, d, kv, g->dk, kv, DEV(g->w, w->wk), d, 1,
			   g->dx, d, err));
		BTZ_TRY(mm(g, 0, 0, N, d, kv, g->dv, kv, DEV(g->w, w->wv), d, 1,
			   g->dx, d, err));
	}
	/* Positions are fixed: no gradient. */
	a = args(g);
	a.src = g->dx;
	a.dst = DEV(g->gw, fm->tok_emb);
	return run(g, TK_EMB_BWD, N * d, &a, err);
}

enum btz_status btz_gnet_step(struct btz_gnet *g, const struct btz_fmodel *fm,
			      const uint16_t *tok, const uint8_t *tgt,
			      struct btz_fmodel *grad, double *loss,
			      struct btz_error *err)
{
	struct tk_args a;
	double sum = 0;

	if (fm->arena_floats != g->np)
		return btz_fail(err, BTZ_E_ARG, "GPU training: model of %zu "
				"floats, net for %zu", fm->arena_floats, g->np);
	BTZ_TRY(g->ops->put(g->ctx, g->w, fm->arena, g->np * sizeof(float),
			    err));
	BTZ_TRY(g->ops->put(g->ctx, g->tok, tok, g->z.N * sizeof(*tok), err));
	BTZ_TRY(g->ops->put(g->ctx, g->tgt, tgt, g->z.N, err));
	BTZ_TRY(forward(g, fm, err));
	a = args(g);
	a.dst = g->logits;
	a.dst2 = g->loss;
	a.grad = grad != NULL;
	a.inv = 1.0f / (float)g->z.N;
	BTZ_TRY(run(g, TK_XENT, g->z.N, &a, err));
	if (grad != NULL) {
		a = args(g);
		a.dst = g->gw;
		BTZ_TRY(run(g, TK_FILL0, g->np, &a, err));
		BTZ_TRY(backward(g, fm, err));
		BTZ_TRY(g->ops->get(g->ctx, g->host_grad, g->gw,
				    g->np * sizeof(float), err));
		for (size_t i = 0; i < g->np; i++)
			grad->arena[i] += g->host_grad[i];
	}
	BTZ_TRY(g->ops->get(g->ctx, g->host_loss, g->loss,
			    g->z.N * sizeof(float), err));
	for (size_t i = 0; i < g->z.N; i++)
		sum += g->host_loss[i];
	*loss = sum / (double)g->z.N;
	return BTZ_OK;
}
