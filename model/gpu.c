/* The GPU engine's schedule: btz_engine_rows step by step, each step a
 * device product or a kernel of model/gpu_kernels.h on every row at once. */
#include "model/gpu.h"

#include <stdlib.h>
#include <string.h>

#include "coder/rc.h"
#include "model/engine.h"

struct gpu_layer {
	int8_t *wq, *wk, *wv, *wo, *w1, *w3, *w2;
	int32_t *mq, *mk, *mv, *mo, *m1, *m3, *m2;
	int32_t *g1, *b1, *g2, *b2;
};

struct btz_gpu {
	const struct btz_gpu_ops *ops;
	void *ctx;
	const struct btz_model *m;
	size_t nwin, max_rows, qd, kvd, wide;
	size_t cap;   /* rows the row buffers hold (a multiple of 4) */
	void *rowmem; /* the row buffers, one allocation */
	/* Device memory: the model's tensors and tables, ... */
	int8_t *tok_emb, *pos_emb, *wout;
	uint16_t *att_table;
	int16_t *silu;
	uint32_t *exp_out;
	struct gpu_layer *ly; /* host array of device pointers */
	/* ... the key/value caches [L][nwin][Hkv][W][dh], and the rows. */
	int8_t *kc, *vc;
	int8_t *x, *x1, *q, *o, *a, *u, *h;
	int32_t *acc, *res;
	uint16_t *tok;
	uint8_t *tgt, *qry;
	uint32_t *win, *pos, *freq, *sym, *qf;
	void **owned; /* every allocation, for btz_gpu_free */
	size_t nowned;
};

/* Device memory of n elements of size sz, recorded for freeing. */
static enum btz_status dalloc(struct btz_gpu *g, void *out, size_t n,
			      size_t sz, struct btz_error *err)
{
	void *p = NULL;
	void **grown;

	if (n != 0 && sz > SIZE_MAX / n)
		return btz_fail(err, BTZ_E_NOMEM, "GPU engine: size overflow");
	grown = (void **)realloc(g->owned, (g->nowned + 1) * sizeof(void *));
	if (grown == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	g->owned = grown;
	BTZ_TRY(g->ops->alloc(g->ctx, &p, n * sz != 0 ? n * sz : 1, err));
	g->owned[g->nowned++] = p;
	memcpy(out, &p, sizeof(p));
	return BTZ_OK;
}

/* A device copy of a host tensor. */
static enum btz_status upload(struct btz_gpu *g, void *out, const void *src,
			      size_t n, size_t sz, struct btz_error *err)
{
	void *p;

	BTZ_TRY(dalloc(g, &p, n, sz, err));
	memcpy(out, &p, sizeof(p));
	return g->ops->put(g->ctx, p, src, n * sz, err);
}

#define UP(dst, src, n) upload(g, &(dst), (src), (n), sizeof(*(src)), err)

static enum btz_status upload_model(struct btz_gpu *g, struct btz_error *err)
{
	const struct btz_model *m = g->m;
	size_t d = m->hp.d, F = m->hp.ff, W = m->hp.context;
	size_t qd = g->qd, kvd = g->kvd;

	BTZ_TRY(UP(g->tok_emb, m->tok_emb, 257 * d));
	BTZ_TRY(UP(g->pos_emb, m->pos_emb, W * d));
	BTZ_TRY(UP(g->wout, m->wout, 256 * d));
	BTZ_TRY(UP(g->att_table, m->exp_att, 256));
	BTZ_TRY(UP(g->silu, m->silu, 256));
	BTZ_TRY(UP(g->exp_out, m->exp_out, 1024));
	for (size_t l = 0; l < m->hp.layers; l++) {
		const struct btz_layer *s = &m->layers[l];
		struct gpu_layer *t = &g->ly[l];

		BTZ_TRY(UP(t->wq, s->wq, qd * d));
		BTZ_TRY(UP(t->wk, s->wk, kvd * d));
		BTZ_TRY(UP(t->wv, s->wv, kvd * d));
		BTZ_TRY(UP(t->wo, s->wo, d * qd));
		BTZ_TRY(UP(t->w1, s->w1, F * d));
		BTZ_TRY(UP(t->w3, s->w3, F * d));
		BTZ_TRY(UP(t->w2, s->w2, d * F));
		BTZ_TRY(UP(t->mq, s->mq, qd));
		BTZ_TRY(UP(t->mk, s->mk, kvd));
		BTZ_TRY(UP(t->mv, s->mv, kvd));
		BTZ_TRY(UP(t->mo, s->mo, d));
		BTZ_TRY(UP(t->m1, s->m1, F));
		BTZ_TRY(UP(t->m3, s->m3, F));
		BTZ_TRY(UP(t->m2, s->m2, d));
		BTZ_TRY(UP(t->g1, s->g1, d));
		BTZ_TRY(UP(t->b1, s->b1, d));
		BTZ_TRY(UP(t->g2, s->g2, d));
		BTZ_TRY(UP(t->b2, s->b2, d));
	}
	return BTZ_OK;
}

static enum btz_status setup(struct btz_gpu *g, struct btz_error *err)
{
	const struct btz_model *m = g->m;
	size_t cache = btz_model_kv_bytes(m) / 2;

	g->wide = m->hp.ff;
	if (g->wide < g->qd)
		g->wide = g->qd;
	if (g->wide < 256)
		g->wide = 256;
	if (g->wide < m->hp.d)
		g->wide = m->hp.d;
	BTZ_TRY(g->ops->init(&g->ctx, err));
	g->ly = (struct gpu_layer *)calloc(m->hp.layers, sizeof(*g->ly));
	if (g->ly == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	BTZ_TRY(upload_model(g, err));
	if (g->nwin != 0 && cache > SIZE_MAX / g->nwin)
		return btz_fail(err, BTZ_E_NOMEM, "GPU engine: size overflow");
	BTZ_TRY(dalloc(g, &g->kc, g->nwin * cache, 1, err));
	BTZ_TRY(dalloc(g, &g->vc, g->nwin * cache, 1, err));
	return BTZ_OK;
}

/* Row buffers for rows (rounded up to 4: products read rows in fours),
 * carved from one device allocation that grows when a call needs more:
 * decoding needs a row a window, packing a whole chunk. */
static enum btz_status ensure_rows(struct btz_gpu *g, size_t rows,
				   struct btz_error *err)
{
	const struct btz_model *m = g->m;
	size_t R = (rows + 3) / 4 * 4, d = m->hp.d, F = m->hp.ff;
	size_t per = 2 * d + 2 * g->qd + 3 * F + 4 * g->wide + 4 * d + 2 + 4 +
		     4 + 4 * 256 + 1 + 8 + 1 + 4;
	void **slot[] = {
		(void **)&g->x,	  (void **)&g->x1,  (void **)&g->q,
		(void **)&g->o,	  (void **)&g->a,   (void **)&g->u,
		(void **)&g->h,	  (void **)&g->acc, (void **)&g->res,
		(void **)&g->tok, (void **)&g->win, (void **)&g->pos,
		(void **)&g->freq, (void **)&g->tgt, (void **)&g->sym,
		(void **)&g->qry, (void **)&g->qf,
	};
	size_t size[] = { R * d,      R * d,	   R * g->qd,	  R * g->qd,
			  R * F,      R * F,	   R * F,	  R * g->wide * 4,
			  R * d * 4,  R * 2,	   R * 4,	  R * 4,
			  R * 256 * 4, R,	   R * 8,	  R,
			  R * 4 };
	size_t total = 0;
	char *base;

	if (R <= g->cap)
		return BTZ_OK;
	if (R > (SIZE_MAX - 4096) / (per + 16 * 256))
		return btz_fail(err, BTZ_E_NOMEM, "GPU engine: size overflow");
	for (size_t i = 0; i < sizeof(size) / sizeof(*size); i++)
		total += (size[i] + 255) / 256 * 256;
	if (g->rowmem != NULL)
		g->ops->release(g->ctx, g->rowmem);
	g->rowmem = NULL;
	g->cap = 0;
	BTZ_TRY(g->ops->alloc(g->ctx, &g->rowmem, total, err));
	base = (char *)g->rowmem;
	for (size_t i = 0; i < sizeof(size) / sizeof(*size); i++) {
		*slot[i] = base;
		base += (size[i] + 255) / 256 * 256;
	}
	g->cap = R;
	return BTZ_OK;
}

enum btz_status btz_gpu_create(struct btz_gpu **out,
			       const struct btz_gpu_ops *ops,
			       const struct btz_model *m, size_t nwin,
			       size_t max_rows, struct btz_error *err)
{
	struct btz_gpu *g = (struct btz_gpu *)calloc(1, sizeof(*g));
	enum btz_status st;

	*out = NULL;
	if (g == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	g->ops = ops;
	g->m = m;
	g->nwin = nwin;
	g->max_rows = max_rows;
	g->qd = (size_t)m->hp.heads * m->dh;
	g->kvd = (size_t)m->hp.kv_heads * m->dh;
	st = setup(g, err);
	if (st != BTZ_OK) {
		btz_gpu_free(g);
		return st;
	}
	*out = g;
	return BTZ_OK;
}

void btz_gpu_free(struct btz_gpu *g)
{
	if (g == NULL)
		return;
	if (g->rowmem != NULL)
		g->ops->release(g->ctx, g->rowmem);
	for (size_t i = 0; i < g->nowned; i++)
		g->ops->release(g->ctx, g->owned[i]);
	if (g->ctx != NULL)
		g->ops->fini(g->ctx);
	free(g->owned);
	free(g->ly);
	free(g);
}

/* The arguments every kernel of a call shares. */
static struct gk_args base_args(const struct btz_gpu *g)
{
	const struct btz_model *m = g->m;
	struct gk_args a;

	memset(&a, 0, sizeof(a));
	a.tok = g->tok;
	a.win = g->win;
	a.pos = g->pos;
	a.d = m->hp.d;
	a.qd = (uint32_t)g->qd;
	a.kvd = (uint32_t)g->kvd;
	a.dh = m->dh;
	a.H = m->hp.heads;
	a.Hkv = m->hp.kv_heads;
	a.W = m->hp.context;
	a.nwin = (uint32_t)g->nwin;
	return a;
}

#define RUN(id, n, args) BTZ_TRY(g->ops->launch(g->ctx, (id), (n), &(args), err))
#define GEMM(X, k, Wt, n, out) \
	BTZ_TRY(g->ops->gemm(g->ctx, (X), rows, (k), (Wt), (n), (out), err))

/* out = rq8(acc) over rows × ncol. */
static enum btz_status rq8(struct btz_gpu *g, size_t rows, size_t ncol,
			   const int32_t *mul, int32_t shift, int8_t *out,
			   struct btz_error *err)
{
	struct gk_args a = base_args(g);

	a.acc = g->acc;
	a.ncol = (uint32_t)ncol;
	a.mul = mul;
	a.shift = shift;
	a.out8 = out;
	RUN(GK_RQ8, rows * ncol, a);
	return BTZ_OK;
}

/* Residual of x and acc, then layer norm into out. */
static enum btz_status resid_norm(struct btz_gpu *g, size_t rows,
				  const int8_t *x, int32_t rx,
				  const int32_t *mul, int32_t shift,
				  const int32_t *gam, const int32_t *bet,
				  int32_t ln_shift, int8_t *out,
				  struct btz_error *err)
{
	struct gk_args a = base_args(g);

	a.x = x;
	a.acc = g->acc;
	a.rx = rx;
	a.mul = mul;
	a.shift = shift;
	a.out32 = g->res;
	RUN(GK_RESID, rows * g->m->hp.d, a);
	a = base_args(g);
	a.res = g->res;
	a.g = gam;
	a.b = bet;
	a.shift = ln_shift;
	a.out8 = out;
	RUN(GK_NORM, rows, a);
	return BTZ_OK;
}

static enum btz_status layer(struct btz_gpu *g, size_t l, size_t rows,
			     struct btz_error *err)
{
	const struct btz_model *m = g->m;
	const struct btz_layer *s = &m->layers[l];
	const struct gpu_layer *t = &g->ly[l];
	size_t d = m->hp.d, F = m->hp.ff;
	struct gk_args a;

	GEMM(g->x, d, t->wq, g->qd, g->acc);
	BTZ_TRY(rq8(g, rows, g->qd, t->mq, s->sq, g->q, err));
	/* Keys and values of every row enter the caches before any row
	 * attends, as in the CPU engine. */
	for (int kv = 0; kv < 2; kv++) {
		GEMM(g->x, d, kv ? t->wv : t->wk, g->kvd, g->acc);
		a = base_args(g);
		a.acc = g->acc;
		a.mul = kv ? t->mv : t->mk;
		a.shift = kv ? s->sv : s->sk;
		a.layer = (uint32_t)l;
		a.out8 = kv ? g->vc : g->kc;
		RUN(GK_KVPUT, rows * g->kvd, a);
	}
	a = base_args(g);
	a.q = g->q;
	a.kc = g->kc;
	a.vc = g->vc;
	a.layer = (uint32_t)l;
	a.att_table = g->att_table;
	a.span = btz_hp_span(&m->hp);
	a.a_mul = s->a_mul;
	a.a_shift = s->a_shift;
	a.ao_shift = s->ao_shift;
	a.out8 = g->o;
	RUN(GK_ATTEND, rows * m->hp.heads, a);
	GEMM(g->o, g->qd, t->wo, d, g->acc);
	BTZ_TRY(resid_norm(g, rows, g->x, s->rx, t->mo, s->so, t->g1, t->b1,
			   s->ln1_shift, g->x1, err));
	GEMM(g->x1, d, t->w1, F, g->acc);
	BTZ_TRY(rq8(g, rows, F, t->m1, s->s1, g->a, err));
	GEMM(g->x1, d, t->w3, F, g->acc);
	BTZ_TRY(rq8(g, rows, F, t->m3, s->s3, g->u, err));
	a = base_args(g);
	a.a = g->a;
	a.u = g->u;
	a.silu = g->silu;
	a.mh = s->mh;
	a.shift = s->sh;
	a.out8 = g->h;
	RUN(GK_SWIGLU, rows * F, a);
	GEMM(g->h, F, t->w2, d, g->acc);
	return resid_norm(g, rows, g->x1, s->rx2, t->m2, s->s2, t->g2, t->b2,
			  s->ln2_shift, g->x, err);
}

/* Every row through the network to its frequencies, left on the device. */
static enum btz_status forward(struct btz_gpu *g, size_t rows,
			       const uint16_t *tok, const uint32_t *win,
			       const uint32_t *pos, struct btz_error *err)
{
	const struct btz_model *m = g->m;
	size_t d = m->hp.d;
	struct gk_args a;

	if (rows > g->max_rows)
		return btz_fail(err, BTZ_E_ARG, "engine: %zu rows, room for %zu",
				rows, g->max_rows);
	for (size_t r = 0; r < rows; r++)
		if (tok[r] > BTZ_BTM_START || win[r] >= g->nwin ||
		    pos[r] >= m->hp.context)
			return btz_fail(err, BTZ_E_ARG,
					"engine: row %zu out of range", r);
	BTZ_TRY(ensure_rows(g, rows, err));
	BTZ_TRY(g->ops->put(g->ctx, g->tok, tok, rows * sizeof(*tok), err));
	BTZ_TRY(g->ops->put(g->ctx, g->win, win, rows * sizeof(*win), err));
	BTZ_TRY(g->ops->put(g->ctx, g->pos, pos, rows * sizeof(*pos), err));
	a = base_args(g);
	a.tok_emb = g->tok_emb;
	a.pos_emb = g->pos_emb;
	a.out8 = g->x;
	RUN(GK_EMBED, rows * d, a);
	for (size_t l = 0; l < m->hp.layers; l++)
		BTZ_TRY(layer(g, l, rows, err));
	GEMM(g->x, d, g->wout, 256, g->acc);
	a = base_args(g);
	a.acc = g->acc;
	a.f_mul = m->f_mul;
	a.f_shift = m->f_shift;
	a.exp_out = g->exp_out;
	a.total = BTZ_RC_TOTAL;
	a.freq = g->freq;
	RUN(GK_FREQ, rows, a);
	return BTZ_OK;
}

enum btz_status btz_gpu_rows(struct btz_gpu *g, size_t rows,
			     const uint16_t *tok, const uint32_t *win,
			     const uint32_t *pos, uint32_t (*freq)[256],
			     int32_t (*logits)[256], struct btz_error *err)
{
	if (rows == 0)
		return BTZ_OK;
	BTZ_TRY(forward(g, rows, tok, win, pos, err));
	if (logits != NULL)
		BTZ_TRY(g->ops->get(g->ctx, logits, g->acc,
				    rows * 256 * sizeof(int32_t), err));
	return g->ops->get(g->ctx, freq, g->freq,
			   rows * 256 * sizeof(uint32_t), err);
}

enum btz_status btz_gpu_rows_sym(struct btz_gpu *g, size_t rows,
				 const uint16_t *tok, const uint32_t *win,
				 const uint32_t *pos, const uint8_t *tgt,
				 uint32_t (*sym)[2], const uint8_t *query,
				 uint32_t *qfreq, struct btz_error *err)
{
	struct gk_args a;

	if (rows == 0)
		return BTZ_OK;
	BTZ_TRY(forward(g, rows, tok, win, pos, err));
	BTZ_TRY(g->ops->put(g->ctx, g->tgt, tgt, rows, err));
	a = base_args(g);
	a.freq = g->freq;
	a.tgt = g->tgt;
	a.sym = g->sym;
	if (query != NULL) {
		BTZ_TRY(g->ops->put(g->ctx, g->qry, query, rows, err));
		a.qry = g->qry;
		a.qf = g->qf;
	}
	RUN(GK_SYM, rows, a);
	if (query != NULL)
		BTZ_TRY(g->ops->get(g->ctx, qfreq, g->qf,
				    rows * sizeof(uint32_t), err));
	return g->ops->get(g->ctx, sym, g->sym, rows * 2 * sizeof(uint32_t),
			   err);
}
