/* Forward and backward passes of the float network over a batch of whole
 * windows. Weight products are large row-major GEMMs split by rows over
 * the OpenMP threads; attention runs per (window, head) in blocks of
 * rows, storing only each row's log-sum-exp and recomputing the
 * probabilities in the backward pass (a T×T matrix per head would not
 * fit in memory, a block of rows fits in L2). */
#include "trainer/net.h"
#include "trainer/bf16.h"
#include "trainer/vec.h"
#include "model/intops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef HAVE_CBLAS
#include <cblas.h>
#endif

/* Rows of a head's attention block: 32 keep a block's scores and their
 * gradient (2 · 32 · T floats, 256 KiB at T = 1024) within a core's L2
 * and skip more of the masked upper triangle than 128 did. */
#define ROWBLOCK 32
/* A thread's attention scratch: two ROWBLOCK × T blocks (scores or
 * weights, and their gradient). */
#define SCRATCH(net) (2 * ROWBLOCK * (net)->z.T)

struct btz_net {
	struct btz_hparams hp;
	struct btz_net_dims z;
	float *x0;
	struct btz_net_layer *ly;
	float *logits;
	float *dx, *dy, *dz, *dq, *dk, *dv, *do_, *da, *du, *dh_;
	float *scratch; /* per thread: SCRATCH(net) floats */
	float *kt, *vt; /* a layer's keys and values, each head dh × T */
	int nthreads;
	int actq; /* see btz_net_set_actq */
	float *arena;
};

static int threads(void)
{
#ifdef _OPENMP
	return omp_get_max_threads();
#else
	return 1;
#endif
}

static int thread_id(void)
{
#ifdef _OPENMP
	return omp_get_thread_num();
#else
	return 0;
#endif
}

void btz_mm(int ta, int tb, int m, int n, int k, float alpha, const float *a,
	    int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
#ifdef HAVE_CBLAS
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
		    tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b,
		    ldb, beta, c, ldc);
#else
	/* The portable fallback: i-p-j order keeps the inner loop unit
	 * stride for the common no-transpose B. */
	for (int i = 0; i < m; i++) {
		float *ci = c + (size_t)i * ldc;
		for (int j = 0; j < n; j++)
			ci[j] = beta == 0 ? 0 : beta * ci[j];
		for (int p = 0; p < k; p++) {
			float av = alpha * (ta ? a[(size_t)p * lda + i]
					       : a[(size_t)i * lda + p]);
			if (av == 0)
				continue;
			if (tb)
				for (int j = 0; j < n; j++)
					ci[j] += av * b[(size_t)j * ldb + p];
			else
				for (int j = 0; j < n; j++)
					ci[j] += av * b[(size_t)p * ldb + j];
		}
	}
#endif
}

void btz_net_windows(const uint8_t *bytes, size_t nwin, size_t T,
		     uint16_t *tok, uint8_t *tgt)
{
	for (size_t i = 0; i < nwin * T; i++) {
		tok[i] = i % T == 0 ? BTZ_BTM_START : bytes[i - 1];
		tgt[i] = bytes[i];
	}
}

/* btz_mm with C's rows split over the threads. */
static void mmp(int ta, int tb, int m, int n, int k, const float *a, int lda,
		const float *b, int ldb, float beta, float *c, int ldc)
{
	/* oneDNN splits a bf16 product over the threads itself (and its
	 * primitives must not run concurrently). */
	if (btz_bf16_mm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc))
		return;
	int nt = threads();

	if (nt > m)
		nt = m;
#pragma omp parallel for num_threads(nt) schedule(static)
	for (int i = 0; i < nt; i++) {
		int m0 = (int)((long)m * i / nt), m1 = (int)((long)m * (i + 1) / nt);
		const float *ai = ta ? a + m0 : a + (size_t)m0 * lda;

		if (m1 > m0)
			btz_mm(ta, tb, m1 - m0, n, k, 1, ai, lda, b, ldb, beta,
			       c + (size_t)m0 * ldc, ldc);
	}
}

void btz_net_dims(struct btz_net_dims *z, const struct btz_hparams *hp,
		  size_t B)
{
	z->B = B;
	z->T = hp->context;
	z->N = B * hp->context;
	z->d = hp->d;
	z->F = hp->ff;
	z->dh = hp->d / hp->heads;
	z->hq = hp->d;
	z->kv = (size_t)hp->kv_heads * z->dh;
}

size_t btz_net_layer_floats(const struct btz_hparams *hp, size_t B)
{
	struct btz_net_dims z;

	btz_net_dims(&z, hp, B);
	return z.N * (z.hq * 2 + z.kv * 2 + z.d * 4 + 2 + z.F * 3) +
	       B * hp->heads * z.T;
}

void btz_net_layer_bind(struct btz_net_layer *ly, float *base,
			const struct btz_hparams *hp, size_t B)
{
	struct btz_net_dims z;
	size_t off = 0;

	btz_net_dims(&z, hp, B);
	size_t N = z.N, d = z.d, F = z.F, hq = z.hq, kv = z.kv;

#define TAKE(n) (off += (n), base + off - (n))
	ly->q = TAKE(N * hq);
	ly->k = TAKE(N * kv);
	ly->v = TAKE(N * kv);
	ly->o = TAKE(N * hq);
	ly->lse = TAKE(B * hp->heads * hp->context);
	ly->xhat1 = TAKE(N * d);
	ly->rstd1 = TAKE(N);
	ly->x1 = TAKE(N * d);
	ly->a = TAKE(N * F);
	ly->u = TAKE(N * F);
	ly->h = TAKE(N * F);
	ly->xhat2 = TAKE(N * d);
	ly->rstd2 = TAKE(N);
	ly->x = TAKE(N * d);
#undef TAKE
}

struct btz_net *btz_net_new(const struct btz_hparams *hp, size_t batch)
{
	struct btz_net *net = calloc(1, sizeof(*net));
	size_t per, total, off = 0;

	if (net == NULL)
		return NULL;
	net->hp = *hp;
	btz_net_dims(&net->z, hp, batch);
	net->nthreads = threads();
	size_t N = net->z.N, d = net->z.d, F = net->z.F;
	size_t hq = net->z.hq, kv = net->z.kv;

	per = btz_net_layer_floats(hp, batch);
	total = N * d + per * hp->layers + N * 256 +
		N * (3 * d + 2 * hq + 4 * kv + 3 * F) +
		(size_t)net->nthreads * SCRATCH(net);
	net->arena = malloc(total * sizeof(float));
	net->ly = calloc(hp->layers, sizeof(*net->ly));
	if (net->arena == NULL || net->ly == NULL) {
		btz_net_free(net);
		return NULL;
	}
#define TAKE(n) (off += (n), net->arena + off - (n))
	net->x0 = TAKE(N * d);
	for (uint32_t l = 0; l < hp->layers; l++)
		btz_net_layer_bind(&net->ly[l], TAKE(per), hp, batch);
	net->logits = TAKE(N * 256);
	net->dx = TAKE(N * d);
	net->dy = TAKE(N * d);
	net->dz = TAKE(N * d);
	net->dq = TAKE(N * hq);
	net->do_ = TAKE(N * hq);
	net->dk = TAKE(N * kv);
	net->dv = TAKE(N * kv);
	net->da = TAKE(N * F);
	net->du = TAKE(N * F);
	net->dh_ = TAKE(N * F);
	net->scratch = TAKE((size_t)net->nthreads * SCRATCH(net));
	net->kt = TAKE(N * kv);
	net->vt = TAKE(N * kv);
#undef TAKE
	return net;
}

void btz_net_free(struct btz_net *net)
{
	if (net == NULL)
		return;
	free(net->arena);
	free(net->ly);
	free(net);
}

/* y = LN(r)·g + b per row, keeping x̂ and 1/σ for the backward pass. */
static void ln_fwd(const struct btz_net *net, const float *r, const float *g,
		   const float *b, float *xhat, float *rstd, float *y)
{
	size_t d = net->z.d;

#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < net->z.N; i++) {
		const float *ri = r + i * d;
		double mean = 0, var = 0;

		for (size_t c = 0; c < d; c++)
			mean += ri[c];
		mean /= (double)d;
		for (size_t c = 0; c < d; c++)
			var += (ri[c] - mean) * (ri[c] - mean);
		var /= (double)d;
		float rs = (float)(1 / sqrt(var + 1e-5));
		rstd[i] = rs;
		for (size_t c = 0; c < d; c++) {
			float xh = (float)(ri[c] - mean) * rs;
			xhat[i * d + c] = xh;
			y[i * d + c] = xh * g[c] + b[c];
		}
	}
}

/* dr from dy (in place allowed: dr may equal dy), adding dg, db. */
static void ln_bwd(const struct btz_net *net, const float *dy,
		   const float *xhat, const float *rstd, const float *g,
		   float *dr, float *dg, float *db)
{
	size_t d = net->z.d;

	for (size_t i = 0; i < net->z.N; i++)
		for (size_t c = 0; c < d; c++) {
			dg[c] += dy[i * d + c] * xhat[i * d + c];
			db[c] += dy[i * d + c];
		}
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < net->z.N; i++) {
		const float *yi = dy + i * d, *xi = xhat + i * d;
		float m1 = 0, m2 = 0;

		for (size_t c = 0; c < d; c++) {
			float dxh = yi[c] * g[c];
			m1 += dxh;
			m2 += dxh * xi[c];
		}
		m1 /= (float)d;
		m2 /= (float)d;
		for (size_t c = 0; c < d; c++)
			dr[i * d + c] = rstd[i] * (yi[c] * g[c] - m1 - xi[c] * m2);
	}
}

/* xt's block for window b's key/value head g: dh × T, x's [T][dh]
 * transposed, for btz_vec_att_qk; once a layer, not once a head. */
static float *kv_block(const struct btz_net *net, float *xt, size_t b,
		       size_t g)
{
	return xt + (b * net->hp.kv_heads + g) * net->z.dh * net->z.T;
}

static void transpose_kv(const struct btz_net *net, const float *x, float *xt)
{
	size_t T = net->z.T, kv = net->z.kv, dh = net->z.dh;
	size_t Hkv = net->hp.kv_heads;

#pragma omp parallel for schedule(static)
	for (size_t task = 0; task < net->z.B * Hkv; task++) {
		size_t b = task / Hkv, g = task % Hkv;
		const float *from = x + b * T * kv + g * dh;
		float *to = kv_block(net, xt, b, g);

		for (size_t t = 0; t < T; t++)
			for (size_t c = 0; c < dh; c++)
				to[c * T + t] = from[t * kv + c];
	}
}

/* A block of rows under an attention span reads two runs of keys, laid
 * out as the integer engine lays them (model/engine.c): columns 0 .. 15
 * are keys 0 .. 15 (the sink) and a column c >= 16 is key c + base,
 * base = the block's first tail start - 16; base 0 is one run. Each
 * product below runs over the runs, with our kernels (own) or BLAS. */
struct runs {
	int own;
	size_t base, ncol, dh, T, kv;
	int n;
	struct { size_t key0, c0, cols; } r[2]; /* first key, column; columns */
};

/* The block of rows r0 .. ke - 1: its runs. */
static struct runs block_runs(const struct btz_net *net, int own,
			      size_t r0, size_t ke)
{
	const size_t k = BTZ_ATT_SINK;
	struct runs u = { own, 0, ke, net->z.dh, net->z.T, net->z.kv, 1,
			  { { 0, 0, ke }, { 0, 0, 0 } } };

	u.base = btz_att_tail(r0, btz_hp_span(&net->hp)) - k;
	if (u.base > 0) {
		u.ncol = ke - u.base;
		u.n = 2;
		u.r[0].cols = k;
		u.r[1].key0 = u.base + k;
		u.r[1].c0 = k;
		u.r[1].cols = u.ncol - k;
	}
	return u;
}

/* C = a Q Kᵀ (K's rows, or KT's columns for our kernel). */
static void runs_qk(const struct runs *u, size_t n, float a, const float *Q,
		    size_t ldq, const float *KT, const float *K, float *C)
{
	for (int i = 0; i < u->n; i++) {
		size_t key0 = u->r[i].key0, c0 = u->r[i].c0;
		size_t cols = u->r[i].cols;

		if (u->own)
			btz_vec_att_qk(n, cols, u->dh, a, Q, ldq, KT + key0,
				       u->T, C + c0, u->ncol);
		else
			btz_mm(0, 1, (int)n, (int)cols, (int)u->dh, a, Q,
			       (int)ldq, K + key0 * u->kv, (int)u->kv, 0,
			       C + c0, (int)u->ncol);
	}
}

/* C = P V. */
static void runs_pv(const struct runs *u, size_t n, const float *P,
		    const float *V, float *C, size_t ldc)
{
	for (int i = 0; i < u->n; i++) {
		size_t key0 = u->r[i].key0, c0 = u->r[i].c0;
		size_t cols = u->r[i].cols;

		if (u->own)
			btz_vec_att_pv(n, cols, u->dh, P + c0, u->ncol,
				       V + key0 * u->kv, u->kv, C, ldc, i > 0);
		else
			btz_mm(0, 0, (int)n, (int)u->dh, (int)cols, 1, P + c0,
			       (int)u->ncol, V + key0 * u->kv, (int)u->kv,
			       i > 0, C, (int)ldc);
	}
}

/* Rows of C (key rows, stride kv) += Pᵀ D. */
static void runs_ptd(const struct runs *u, size_t n, const float *P,
		     const float *D, size_t ldd, float *C)
{
	for (int i = 0; i < u->n; i++) {
		size_t key0 = u->r[i].key0, c0 = u->r[i].c0;
		size_t cols = u->r[i].cols;

		if (u->own)
			btz_vec_att_ptd(n, cols, u->dh, P + c0, u->ncol, D,
					ldd, C + key0 * u->kv, u->kv);
		else
			btz_mm(1, 0, (int)cols, (int)u->dh, (int)n, 1, P + c0,
			       (int)u->ncol, D, (int)ldd, 1, C + key0 * u->kv,
			       (int)u->kv);
	}
}

/* Softmax's exponentials of row t's scores s (the block's columns u)
 * less sub: the columns of keys 0 .. t that the span keeps, those of
 * the keys it leaves out (after the sink, before t's own tail) and past
 * t set to 0. Returns their sum; with max set, sub is ignored and the
 * kept scores' maximum is returned in *max first. */
static float kept_exp(const struct btz_net *net, const struct runs *u,
		      float *s, size_t t, float sub, float *max)
{
	const size_t k = BTZ_ATT_SINK;
	size_t st = btz_att_tail(t, btz_hp_span(&net->hp));
	size_t len = t + 1 - u->base, tail = st - u->base;
	float sum;

	if (tail == k) {
		if (max != NULL)
			sub = *max = btz_vec_max(s, len);
		sum = btz_vec_exp_sum(s, len, sub);
	} else {
		if (max != NULL) {
			float m0 = btz_vec_max(s, k);
			float m1 = btz_vec_max(s + tail, len - tail);

			sub = *max = m0 > m1 ? m0 : m1;
		}
		memset(s + k, 0, (tail - k) * sizeof(*s));
		sum = btz_vec_exp_sum(s, k, sub) +
		      btz_vec_exp_sum(s + tail, len - tail, sub);
	}
	memset(s + len, 0, (u->ncol - len) * sizeof(*s));
	return sum;
}

static void attn_fwd(struct btz_net *net, struct btz_net_layer *a)
{
	size_t T = net->z.T, hq = net->z.hq, kv = net->z.kv, dh = net->z.dh;
	size_t H = net->hp.heads, Hkv = net->hp.kv_heads;
	float scale = (float)(1 / sqrt((double)dh));
	int own = btz_vec_att_ok(dh); /* our products, else BLAS's */

	if (own)
		transpose_kv(net, a->k, net->kt);
#pragma omp parallel for schedule(dynamic)
	for (size_t task = 0; task < net->z.B * H; task++) {
		size_t b = task / H, h = task % H, g = h * Hkv / H;
		float *S = net->scratch + (size_t)thread_id() * SCRATCH(net);
		const float *KT = kv_block(net, net->kt, b, g);
		const float *kb = a->k + b * T * kv + g * dh;
		const float *vb = a->v + b * T * kv + g * dh;
		float *lse = a->lse + (b * H + h) * T;

		for (size_t r0 = 0; r0 < T; r0 += ROWBLOCK) {
			size_t n = T - r0 < ROWBLOCK ? T - r0 : ROWBLOCK;
			struct runs u = block_runs(net, own, r0, r0 + n);
			const float *qr = a->q + (b * T + r0) * hq + h * dh;

			runs_qk(&u, n, scale, qr, hq, KT, kb, S);
			float inv[ROWBLOCK];
			float *o = a->o + (b * T + r0) * hq + h * dh;

			for (size_t i = 0; i < n; i++) {
				size_t t = r0 + i;
				float mx;
				float sum = kept_exp(net, &u, S + i * u.ncol, t,
						     0, &mx);

				inv[i] = 1 / sum;
				lse[t] = mx + logf(sum);
			}
			/* The weights stay unnormalized: scaling the dh outputs
			 * of a row costs less than its t + 1 weights. */
			runs_pv(&u, n, S, vb, o, hq);
			for (size_t i = 0; i < n; i++)
				btz_vec_scale(o + i * hq, dh, inv[i]);
		}
	}
}

/* From dO (net->do_) to dq, dk, dv. Tasks are (window, key/value head),
 * so the heads sharing a key/value head add into it in one thread. */
static void attn_bwd(struct btz_net *net, const struct btz_net_layer *a)
{
	size_t T = net->z.T, hq = net->z.hq, kv = net->z.kv, dh = net->z.dh;
	size_t H = net->hp.heads, Hkv = net->hp.kv_heads;
	float scale = (float)(1 / sqrt((double)dh));
	int own = btz_vec_att_ok(dh);

	if (own) {
		transpose_kv(net, a->k, net->kt);
		transpose_kv(net, a->v, net->vt);
	}
	memset(net->dk, 0, net->z.N * kv * sizeof(float));
	memset(net->dv, 0, net->z.N * kv * sizeof(float));
#pragma omp parallel for schedule(dynamic)
	for (size_t task = 0; task < net->z.B * Hkv; task++) {
		size_t b = task / Hkv, g = task % Hkv;
		float *P = net->scratch + (size_t)thread_id() * SCRATCH(net);
		float *dP = P + ROWBLOCK * T;
		const float *KT = kv_block(net, net->kt, b, g);
		const float *VT = kv_block(net, net->vt, b, g);
		const float *kb = a->k + b * T * kv + g * dh;
		const float *vb = a->v + b * T * kv + g * dh;
		float *dkb = net->dk + b * T * kv + g * dh;
		float *dvb = net->dv + b * T * kv + g * dh;

		for (size_t h = 0; h < H; h++) {
			if (h * Hkv / H != g)
				continue;
			const float *lse = a->lse + (b * H + h) * T;
			for (size_t r0 = 0; r0 < T; r0 += ROWBLOCK) {
				size_t n = T - r0 < ROWBLOCK ? T - r0 : ROWBLOCK;
				size_t row = (b * T + r0) * hq + h * dh;
				struct runs u = block_runs(net, own, r0, r0 + n);
				const float *qr = a->q + row, *orow = a->o + row;
				const float *dor = net->do_ + row;

				runs_qk(&u, n, scale, qr, hq, KT, kb, P);
				for (size_t i = 0; i < n; i++)
					kept_exp(net, &u, P + i * u.ncol, r0 + i,
						 lse[r0 + i], NULL);
				runs_ptd(&u, n, P, dor, hq, dvb);
				runs_qk(&u, n, 1, dor, hq, VT, vb, dP);
				for (size_t i = 0; i < n; i++) {
					float *p = P + i * u.ncol;
					float *dp = dP + i * u.ncol;
					float di = 0;
					for (size_t c = 0; c < dh; c++)
						di += dor[i * hq + c] * orow[i * hq + c];
					btz_vec_dsoftmax(dp, p, u.ncol, di, scale);
				}
				runs_pv(&u, n, dP, kb, net->dq + row, hq);
				runs_ptd(&u, n, dP, qr, hq, dkb);
			}
		}
	}
}

void btz_net_set_actq(struct btz_net *net, int on)
{
	net->actq = on;
}

/* Each of v's rows of cols rounded to the int8 grid the export gives
 * the activation from its calibration maximum: here the batch's. */
static void fake_quant_act(const struct btz_net *net, float *v, size_t rows,
			   size_t cols)
{
	float m = 0;

	if (!net->actq)
		return;
#pragma omp parallel for schedule(static) reduction(max : m)
	for (size_t i = 0; i < rows; i++) {
		float r = btz_vec_max_abs(v + i * cols, cols);
		m = r > m ? r : m;
	}
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < rows; i++)
		btz_vec_round_grid(v + i * cols, cols, m);
}

double btz_net_step(struct btz_net *net, const struct btz_fmodel *fm,
		    const uint16_t *tok, const uint8_t *tgt,
		    struct btz_fmodel *grad)
{
	size_t N = net->z.N, T = net->z.T, d = net->z.d, F = net->z.F;
	int hq = (int)net->z.hq, kv = (int)net->z.kv, id = (int)d, iF = (int)F;
	uint32_t L = net->hp.layers;
	double loss = 0;

#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < N; i++)
		for (size_t c = 0; c < d; c++)
			net->x0[i * d + c] = fm->tok_emb[tok[i] * d + c] +
					     fm->pos_emb[(i % T) * d + c];
	const float *x = net->x0;
	for (uint32_t l = 0; l < L; l++) {
		const struct btz_flayer *w = &fm->layers[l];
		struct btz_net_layer *a = &net->ly[l];

		mmp(0, 1, (int)N, hq, id, x, id, w->wq, id, 0, a->q, hq);
		mmp(0, 1, (int)N, kv, id, x, id, w->wk, id, 0, a->k, kv);
		mmp(0, 1, (int)N, kv, id, x, id, w->wv, id, 0, a->v, kv);
		fake_quant_act(net, a->q, N, (size_t)hq);
		fake_quant_act(net, a->k, N, (size_t)kv);
		fake_quant_act(net, a->v, N, (size_t)kv);
		attn_fwd(net, a);
		fake_quant_act(net, a->o, N, (size_t)hq);
		memcpy(net->dz, x, N * d * sizeof(float)); /* r = x + o·Woᵀ */
		mmp(0, 1, (int)N, id, hq, a->o, hq, w->wo, hq, 1, net->dz, id);
		ln_fwd(net, net->dz, w->g1, w->b1, a->xhat1, a->rstd1, a->x1);
		fake_quant_act(net, a->x1, N, d);
		mmp(0, 1, (int)N, iF, id, a->x1, id, w->w1, id, 0, a->a, iF);
		mmp(0, 1, (int)N, iF, id, a->x1, id, w->w3, id, 0, a->u, iF);
		fake_quant_act(net, a->a, N, F);
		fake_quant_act(net, a->u, N, F);
#pragma omp parallel for schedule(static)
		for (size_t i = 0; i < N; i++)
			btz_vec_swiglu(a->a + i * F, a->u + i * F, a->h + i * F, F);
		fake_quant_act(net, a->h, N, F);
		memcpy(net->dz, a->x1, N * d * sizeof(float));
		mmp(0, 1, (int)N, id, iF, a->h, iF, w->w2, iF, 1, net->dz, id);
		ln_fwd(net, net->dz, w->g2, w->b2, a->xhat2, a->rstd2, a->x);
		fake_quant_act(net, a->x, N, d);
		x = a->x;
	}
	mmp(0, 1, (int)N, 256, id, x, id, fm->wout, id, 0, net->logits, 256);
	float inv = 1.0f / (float)N;
#pragma omp parallel for schedule(static) reduction(+ : loss)
	for (size_t i = 0; i < N; i++) {
		float *lg = net->logits + i * 256, lt = lg[tgt[i]];
		float mx = btz_vec_max(lg, 256);
		float sum = btz_vec_exp_sum(lg, 256, mx);

		loss += mx + logf(sum) - lt;
		if (grad != NULL) { /* softmax − one-hot, of the mean */
			btz_vec_scale(lg, 256, inv / sum);
			lg[tgt[i]] -= inv;
		}
	}
	loss /= (double)N;
	if (grad == NULL)
		return loss;

	/* Backward, layer by layer; dx holds ∂/∂(layer output). */
	mmp(1, 0, 256, id, (int)N, net->logits, 256, x, id, 1, grad->wout, id);
	mmp(0, 0, (int)N, id, 256, net->logits, 256, fm->wout, id, 0, net->dx,
	    id);
	for (uint32_t l = L; l-- > 0;) {
		const struct btz_flayer *w = &fm->layers[l];
		struct btz_flayer *gw = &grad->layers[l];
		struct btz_net_layer *a = &net->ly[l];
		const float *xin = l == 0 ? net->x0 : net->ly[l - 1].x;

		ln_bwd(net, net->dx, a->xhat2, a->rstd2, w->g2, net->dx,
		       gw->g2, gw->b2); /* dx is now ∂/∂r2 */
		mmp(1, 0, id, iF, (int)N, net->dx, id, a->h, iF, 1, gw->w2, iF);
		mmp(0, 0, (int)N, iF, id, net->dx, id, w->w2, iF, 0, net->dh_,
		    iF);
#pragma omp parallel for schedule(static)
		for (size_t i = 0; i < N; i++)
			btz_vec_swiglu_bwd(a->a + i * F, a->u + i * F,
					   net->dh_ + i * F, net->da + i * F,
					   net->du + i * F, F);
		mmp(1, 0, iF, id, (int)N, net->da, iF, a->x1, id, 1, gw->w1, id);
		mmp(1, 0, iF, id, (int)N, net->du, iF, a->x1, id, 1, gw->w3, id);
		mmp(0, 0, (int)N, id, iF, net->da, iF, w->w1, id, 1, net->dx, id);
		mmp(0, 0, (int)N, id, iF, net->du, iF, w->w3, id, 1, net->dx, id);
		ln_bwd(net, net->dx, a->xhat1, a->rstd1, w->g1, net->dx,
		       gw->g1, gw->b1); /* dx is now ∂/∂r */
		mmp(1, 0, id, hq, (int)N, net->dx, id, a->o, hq, 1, gw->wo, hq);
		mmp(0, 0, (int)N, hq, id, net->dx, id, w->wo, hq, 0, net->do_,
		    hq);
		attn_bwd(net, a);
		mmp(1, 0, hq, id, (int)N, net->dq, hq, xin, id, 1, gw->wq, id);
		mmp(1, 0, kv, id, (int)N, net->dk, kv, xin, id, 1, gw->wk, id);
		mmp(1, 0, kv, id, (int)N, net->dv, kv, xin, id, 1, gw->wv, id);
		mmp(0, 0, (int)N, id, hq, net->dq, hq, w->wq, id, 1, net->dx, id);
		mmp(0, 0, (int)N, id, kv, net->dk, kv, w->wk, id, 1, net->dx, id);
		mmp(0, 0, (int)N, id, kv, net->dv, kv, w->wv, id, 1, net->dx, id);
	}
	for (size_t i = 0; i < N; i++) /* positions are fixed: no gradient */
		for (size_t c = 0; c < d; c++)
			grad->tok_emb[tok[i] * d + c] += net->dx[i * d + c];
	return loss;
}
