/* The scalar integer engine: doc/model.md step by step. This file is the
 * specification that faster kernels are tested against; it favours the
 * obvious loop over the clever one. */
#include "model/engine.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coder/rc.h"
#include "common/bytes.h"
#include "model/gpu.h"
#include "model/intops.h"
#include "model/kernels.h"

struct btz_engine {
	const struct btz_model *m;
	const struct btz_kernels *k;
	struct btz_gpu *gpu; /* set: the rows run there, not here */
	void **pk;           /* packed weights (NULL entries: unpacked) */
	const char *gpu_name;
	enum btz_device device;
	struct btz_engine_prof *prof;
	size_t nwin, max_rows;
	size_t qd, kvd, wide; /* H*dh, Hkv*dh, widest row of acc */
	int8_t *kc, *vc;      /* [L][nwin][Hkv][hsz]: a head's rows together */
	size_t hsz;           /* bytes of a head's keys (or values) */
	int blk16;            /* the caches in kernels.h's blocked layout */
	uint32_t span;        /* the model's attention span, 0: none */
	uint32_t *sink_at;    /* [layers][nwin]: where the sink's copy is */
	int8_t *kvrow;        /* [kvd] one row's keys or values */
	int8_t *x, *q, *o, *x1, *a, *u, *h;
	int32_t *acc, *r;
	int32_t *mh;     /* [L][F] each layer's SwiGLU multiplier, for rq8 */
	int8_t *qh;      /* [max_rows][dh]: one head's queries, contiguous */
	int32_t *sblk;   /* [ATT_BLOCK][W] scores of a block of rows or heads */
	uint16_t exp_att[264]; /* the model's table, padded for kernels */
	uint16_t *e; /* [ATT_BLOCK][W] their weights */
	int64_t *z, *num; /* [ATT_BLOCK], [ATT_BLOCK][dh]: weight and value sums */
	int32_t *part;    /* [ATT_BLOCK][dh]: one block's value sums */
	/* The predictor's per-call row descriptions. */
	uint16_t *tok;
	uint32_t *win, *pos;
	uint32_t (*freq)[256];
};

/* rq8 over rows of acc (stride n) into out (stride ostride). */
static void rq8_rows(const struct btz_engine *e, const int32_t *acc,
		     size_t rows, size_t n, const int32_t *mul, int32_t shift,
		     int8_t *out, size_t ostride)
{
	for (size_t r = 0; r < rows; r++)
		e->k->rq8(acc + r * n, n, mul, shift, out + r * ostride);
}

/* Key or value rows of head g of a window: [W][dh], contiguous, so a
 * head's scores are one kernel product (blocked when e->blk16). */
static int8_t *cache_head(const struct btz_engine *e, int8_t *base,
			  size_t layer, size_t win, size_t g)
{
	const struct btz_model *m = e->m;

	return base + ((layer * e->nwin + win) * m->hp.kv_heads + g) * e->hsz;
}

/* Stores one row's keys (or values) at position pos of each head: put16
 * is the blocked layout's store for that cache (kernels.h). */
static void cache_put(const struct btz_engine *e, int8_t *base,
		      void (*put16)(int8_t *, size_t, const int8_t *),
		      size_t layer, size_t win, size_t pos, const int8_t *row)
{
	size_t dh = e->m->dh;

	for (size_t g = 0; g < e->m->hp.kv_heads; g++) {
		int8_t *h = cache_head(e, base, layer, win, g);

		if (e->blk16)
			put16(h, pos, row + g * dh);
		else
			memcpy(h + pos * dh, row + g * dh, dh);
	}
}

/* Asks for the keys and values that window w's row at position p will
 * read, while the row before it attends: unpacking sweeps every window's
 * caches at each step, megabytes that no cache level keeps, and the
 * hardware prefetchers start each window's short runs cold. */
static void prefetch_kv(const struct btz_engine *e, size_t layer, size_t w,
			size_t p)
{
	size_t dh = e->m->dh, bytes = (p + 1) * dh;
	size_t from = (btz_att_tail(p, e->span) - BTZ_ATT_SINK) * dh;

	for (size_t g = 0; g < e->m->hp.kv_heads; g++) {
		const int8_t *K = cache_head(e, e->kc, layer, w, g);
		const int8_t *V = cache_head(e, e->vc, layer, w, g);

		/* The sink, then the tail (from 0: the whole run). */
		for (size_t b = 0; b < BTZ_ATT_SINK * dh && from > 0; b += 64) {
			__builtin_prefetch(K + b, 0, 2);
			__builtin_prefetch(V + b, 0, 2);
		}
		for (size_t b = from; b < bytes; b += 64) {
			__builtin_prefetch(K + b, 0, 2);
			__builtin_prefetch(V + b, 0, 2);
		}
	}
}

/* Under an attention span, window w's rows from position p on attend
 * to the sink and to positions from st = btz_att_tail(p) on, and never
 * again to those between: the sink's keys and values are copied over the
 * 16 positions just before st (once for each st), so both parts are
 * one run of the caches (in either layout) from base = st - 16. Returns
 * base (0: nothing left out, nothing copied). */
static size_t sink_before_tail(struct btz_engine *e, size_t layer, size_t w,
			       size_t p)
{
	size_t st = btz_att_tail(p, e->span), dh = e->m->dh;
	uint32_t *at = &e->sink_at[layer * e->nwin + w];

	/* A window starts again at position 0, whose rows keep all: the
	 * record is cleared before any row needs a copy. */
	if (st == BTZ_ATT_SINK) {
		*at = 0;
		return 0;
	}
	if (*at == st)
		return st - BTZ_ATT_SINK;
	*at = (uint32_t)st;
	for (size_t g = 0; g < e->m->hp.kv_heads; g++) {
		int8_t *K = cache_head(e, e->kc, layer, w, g);
		int8_t *V = cache_head(e, e->vc, layer, w, g);

		memcpy(K + (st - BTZ_ATT_SINK) * dh, K, BTZ_ATT_SINK * dh);
		memcpy(V + (st - BTZ_ATT_SINK) * dh, V, BTZ_ATT_SINK * dh);
	}
	return st - BTZ_ATT_SINK;
}

/* Scores of rows queries (dh each) against a head's keys 0..n-1. */
static void scores(const struct btz_engine *e, const int8_t *q, size_t rows,
		   const int8_t *K, size_t n, int32_t *out)
{
	if (e->blk16)
		e->k->scores16(q, rows, K, n, out);
	else
		e->k->gemm_s8(q, rows, e->m->dh, K, n, out);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A product by weight matrix i (7 a layer, then the output's): from its
 * panels packed once at creation where the kernel table packs, timed when
 * profiling. */
#define PK_PER_LAYER 7
#define GEMM(e, i, X, rows, kk, W, n, out)                                   \
	do {                                                                 \
		uint64_t t0_ = (e)->prof ? now_ns() : 0;                     \
		if ((e)->pk != NULL && (e)->pk[i] != NULL)                   \
			(e)->k->gemm_packed(X, rows, kk, W, (e)->pk[i], n,   \
					    out);                            \
		else                                                         \
			(e)->k->gemm_s8(X, rows, kk, W, n, out);             \
		if ((e)->prof)                                               \
			(e)->prof->gemm_ns += now_ns() - t0_;                \
	} while (0)

/* Softmax and weighted sum of nrows rows of scores S (stride ncol) that
 * share the value rows V: the heads of a key/value group at one position
 * (step 0), or one head's consecutive positions p0, p0 + 1, ... (step 1).
 * Row i covers columns 0 .. len0 + i·step - 1 (two passes: its maximum
 * first, never online); its weights are zero past them, ncol being the
 * longest. Column c >= BTZ_ATT_SINK is position c + base (the tail of an
 * attention span, after the sink: doc/model.md), and a row whose own
 * tail starts later skips the columns between, its weights zero there.
 * Then
 * one weighted sum of all the rows in int32 blocks of 256 positions
 * (256 * 65535 * 127 < 2^31, so each block is exact), added up in int64.
 * GCC vectorizes the loops here only when asked; integer results do not
 * depend on it. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("tree-vectorize")))
#endif
static void attend_rows(struct btz_engine *e, const struct btz_layer *ly,
			const int32_t *S, size_t nrows, size_t len0,
			size_t step, size_t p0, size_t base, const int8_t *V,
			int8_t *o, size_t ostride)
{
	size_t dh = e->m->dh, ncol = len0 + (nrows - 1) * step;
	const size_t k = BTZ_ATT_SINK;

	for (size_t i = 0; i < nrows; i++) {
		size_t len = len0 + i * step;
		size_t skip = btz_att_tail(p0 + i * step, e->span) - k - base;
		const int32_t *s = S + i * ncol;
		uint16_t *er = e->e + i * ncol;

		if (skip == 0) {
			int32_t mx = e->k->max_s32(s, len);

			e->z[i] = (int64_t)e->k->att_weights(
				s, len, mx, ly->a_mul, ly->a_shift, e->exp_att,
				er);
		} else {
			/* The sink, then the row's own tail. */
			size_t t = k + skip;
			int32_t m0 = e->k->max_s32(s, k);
			int32_t m1 = e->k->max_s32(s + t, len - t);
			int32_t mx = m0 > m1 ? m0 : m1;

			e->z[i] = (int64_t)e->k->att_weights(
				s, k, mx, ly->a_mul, ly->a_shift, e->exp_att,
				er);
			e->z[i] += (int64_t)e->k->att_weights(
				s + t, len - t, mx, ly->a_mul, ly->a_shift,
				e->exp_att, er + t);
			memset(er + k, 0, skip * sizeof(*er));
		}
		memset(er + len, 0, (ncol - len) * sizeof(*er));
	}
	memset(e->num, 0, nrows * dh * sizeof(*e->num));
	/* Groups of 8 rows (what a kernel call holds in registers), each to
	 * its own last row's length: one head's consecutive positions skip
	 * the zeros past them. */
	for (size_t i0 = 0; i0 < nrows; i0 += 8) {
		size_t nr = nrows - i0 < 8 ? nrows - i0 : 8;
		size_t gcol = len0 + (i0 + nr - 1) * step;
		const uint16_t *eg = e->e + i0 * ncol;
		int64_t *num = e->num + i0 * dh;

		for (size_t j0 = 0; j0 < gcol; j0 += 256) {
			size_t n = gcol - j0 < 256 ? gcol - j0 : 256;

			memset(e->part, 0, nr * dh * sizeof(*e->part));
			if (e->blk16)
				e->k->wsum16(eg + j0, ncol, nr, V + j0 * dh, n,
					     e->part);
			else
				e->k->wsum(eg + j0, ncol, nr, V + j0 * dh, dh,
					   n, dh, e->part);
			for (size_t i = 0; i < nr * dh; i++)
				num[i] += e->part[i];
		}
	}
	e->k->att_out(e->num, e->z, nrows, dh, ly->ao_shift, o, ostride);
}

#define ATT_BLOCK 64

/* Attention of one row (window w, position p) for every head. The heads
 * that share a key/value head g are consecutive (h·Hkv/H = g), so their
 * query vectors form one matrix and their scores one kernel product with
 * g's key rows: with one key/value head, a single product of 8 rows
 * instead of 8 products of one. */
static void attend(struct btz_engine *e, size_t layer,
		   const struct btz_layer *ly, const int8_t *q, size_t w,
		   size_t p, int8_t *o)
{
	const struct btz_model *m = e->m;
	size_t dh = m->dh, H = m->hp.heads, Hkv = m->hp.kv_heads;
	size_t per = H / Hkv;

	size_t base = sink_before_tail(e, layer, w, p);

	for (size_t g = 0; g < Hkv; g++) {
		const int8_t *K = cache_head(e, e->kc, layer, w, g) + base * dh;
		const int8_t *V = cache_head(e, e->vc, layer, w, g) + base * dh;

		for (size_t h0 = g * per; h0 < (g + 1) * per; h0 += ATT_BLOCK) {
			size_t nh = (g + 1) * per - h0;

			if (nh > ATT_BLOCK)
				nh = ATT_BLOCK;
			scores(e, q + h0 * dh, nh, K, p + 1 - base, e->sblk);
			attend_rows(e, ly, e->sblk, nh, p + 1 - base, 0, p,
				    base, V, o + h0 * dh, dh);
		}
	}
}

/* Attention of rows that are consecutive positions p0, p0+1, ... of one
 * window (the packing pass): per head, the scores of a block of rows are
 * one int8 product Q_block . K^T through the kernel table, the same
 * integers attend() sums one by one. */
static void attend_block(struct btz_engine *e, size_t layer,
			 const struct btz_layer *ly, size_t nrows, size_t w,
			 size_t p0)
{
	const struct btz_model *m = e->m;
	size_t dh = m->dh, H = m->hp.heads, Hkv = m->hp.kv_heads;

	/* Blocks of rows outside, heads inside: a block's sink copy
	 * overwrites positions that earlier blocks read and that no row of
	 * it or of a later block reads. Under a span, blocks of 16 rows:
	 * the columns that a block computes and its first rows skip stay
	 * below 32. */
	size_t blk = e->span ? 16 : ATT_BLOCK;

	for (size_t r0 = 0; r0 < nrows; r0 += blk) {
		size_t r1 = nrows - r0 < blk ? nrows : r0 + blk;
		size_t base = sink_before_tail(e, layer, w, p0 + r0);
		size_t ncol = p0 + r1 - base;

		for (size_t h = 0; h < H; h++) {
			size_t g = h * Hkv / H;
			const int8_t *K = cache_head(e, e->kc, layer, w, g) +
					  base * dh;
			const int8_t *V = cache_head(e, e->vc, layer, w, g) +
					  base * dh;

			for (size_t r = r0; r < r1; r++)
				memcpy(e->qh + (r - r0) * dh,
				       e->q + r * e->qd + h * dh, dh);
			scores(e, e->qh, r1 - r0, K, ncol, e->sblk);
			attend_rows(e, ly, e->sblk, r1 - r0,
				    p0 + r0 + 1 - base, 1, p0 + r0, base, V,
				    e->o + r0 * e->qd + h * dh, e->qd);
		}
	}
}

/* Whether the rows are positions p0, p0+1, ... of one window. */
static int consecutive(size_t nrows, const uint32_t *win, const uint32_t *pos)
{
	for (size_t r = 1; r < nrows; r++)
		if (win[r] != win[0] || pos[r] != pos[0] + r)
			return 0;
	return nrows >= 2;
}

/* Where new engines run (btz_engine_set_device); tools set it once at
 * startup, before any thread. */
static enum btz_device engine_device = BTZ_DEVICE_CPU;

void btz_engine_set_device(enum btz_device d)
{
	engine_device = d;
}

enum btz_device btz_engine_device(void)
{
	return engine_device;
}

int btz_cuda_usable(char *why, size_t cap)
{
#ifdef HAVE_CUDA
	return btz_cuda_probe(why, cap);
#else
	if (cap > 0)
		snprintf(why, cap, "this btz was built without CUDA");
	return 0;
#endif
}

int btz_device_gpu(int strict, char *why, size_t cap)
{
	const char *sim = getenv("BTZ_GPU_SIM");

	if (strict && sim != NULL && strcmp(sim, "1") == 0)
		return BTZ_DEVICE_SIM;
	if (btz_cuda_usable(why, cap))
		return BTZ_DEVICE_CUDA;
	return strict ? -1 : BTZ_DEVICE_CPU;
}

const struct btz_gpu_ops *btz_gpu_backend(enum btz_device d)
{
	if (d == BTZ_DEVICE_SIM)
		return &btz_gpu_sim_ops;
#ifdef HAVE_CUDA
	if (d == BTZ_DEVICE_CUDA)
		return &btz_gpu_cuda_ops;
#endif
	return NULL;
}

void btz_engine_profile(struct btz_engine *e, struct btz_engine_prof *p)
{
	e->prof = p;
}

const char *btz_engine_kernel(const struct btz_engine *e)
{
	return e->gpu ? e->gpu_name : e->k->name;
}

enum btz_status btz_engine_rows(struct btz_engine *e, size_t nrows,
				const uint16_t *tok, const uint32_t *win,
				const uint32_t *pos, uint32_t (*freq)[256],
				int32_t (*logits)[256], struct btz_error *err)
{
	const struct btz_model *m = e->m;
	size_t d = m->hp.d, F = m->hp.ff;
	uint64_t t_start = e->prof ? now_ns() : 0, t_attn;

	if (e->gpu) {
		enum btz_status st = btz_gpu_rows(e->gpu, nrows, tok, win, pos,
						  freq, logits, err);

		if (e->prof) {
			e->prof->total_ns += now_ns() - t_start;
			e->prof->rows += nrows;
		}
		return st;
	}
	if (nrows > e->max_rows)
		return btz_fail(err, BTZ_E_ARG, "engine: %zu rows, room for %zu",
				nrows, e->max_rows);
	for (size_t r = 0; r < nrows; r++) {
		if (tok[r] > BTZ_BTM_START || win[r] >= e->nwin ||
		    pos[r] >= m->hp.context)
			return btz_fail(err, BTZ_E_ARG,
					"engine: row %zu out of range", r);
		for (size_t c = 0; c < d; c++)
			e->x[r * d + c] = btz_embed(m->tok_emb[tok[r] * d + c],
						    m->pos_emb[pos[r] * d + c]);
	}
	for (size_t l = 0; l < m->hp.layers; l++) {
		const struct btz_layer *ly = &m->layers[l];

		size_t pi = l * PK_PER_LAYER;

		GEMM(e, pi, e->x, nrows, d, ly->wq, e->qd, e->acc);
		rq8_rows(e, e->acc, nrows, e->qd, ly->mq, ly->sq, e->q, e->qd);
		/* Keys and values of every row enter the caches before any
		 * row attends: a window's later rows see its earlier ones. */
		GEMM(e, pi + 1, e->x, nrows, d, ly->wk, e->kvd, e->acc);
		for (size_t r = 0; r < nrows; r++) {
			e->k->rq8(e->acc + r * e->kvd, e->kvd, ly->mk,
				  ly->sk, e->kvrow);
			cache_put(e, e->kc, btz_kv16_put_key, l, win[r], pos[r],
				  e->kvrow);
		}
		GEMM(e, pi + 2, e->x, nrows, d, ly->wv, e->kvd, e->acc);
		for (size_t r = 0; r < nrows; r++) {
			e->k->rq8(e->acc + r * e->kvd, e->kvd, ly->mv,
				  ly->sv, e->kvrow);
			cache_put(e, e->vc, btz_kv16_put_value, l, win[r], pos[r],
				  e->kvrow);
		}
		t_attn = e->prof ? now_ns() : 0;
		if (consecutive(nrows, win, pos))
			attend_block(e, l, ly, nrows, win[0], pos[0]);
		else
			for (size_t r = 0; r < nrows; r++) {
				if (r + 1 < nrows)
					prefetch_kv(e, l, win[r + 1],
						    pos[r + 1]);
				attend(e, l, ly, e->q + r * e->qd, win[r],
				       pos[r], e->o + r * e->qd);
			}
		if (e->prof)
			e->prof->attn_ns += now_ns() - t_attn;
		GEMM(e, pi + 3, e->o, nrows, e->qd, ly->wo, d, e->acc);
		for (size_t r = 0; r < nrows; r++) {
			e->k->residual(e->x + r * d, e->acc + r * d, d,
				       ly->rx, ly->mo, ly->so, e->r);
			e->k->layer_norm(e->r, d, ly->g1, ly->b1, ly->ln1_shift,
				       e->x1 + r * d);
		}
		GEMM(e, pi + 4, e->x1, nrows, d, ly->w1, F, e->acc);
		rq8_rows(e, e->acc, nrows, F, ly->m1, ly->s1, e->a, F);
		GEMM(e, pi + 5, e->x1, nrows, d, ly->w3, F, e->acc);
		rq8_rows(e, e->acc, nrows, F, ly->m3, ly->s3, e->u, F);
		/* btz_swiglu through the vector requantization: silu(a)·u
		 * is exact in int32 (|silu| <= 2^15, |u| <= 127), and then
		 * rshift(silu(a)·u·mh, sh) clamped is rq8 with mh for every
		 * column. */
		e->k->silu_mul(e->a, e->u, nrows * F, m->silu, e->acc);
		rq8_rows(e, e->acc, nrows, F, e->mh + l * F, ly->sh, e->h, F);
		GEMM(e, pi + 6, e->h, nrows, F, ly->w2, d, e->acc);
		for (size_t r = 0; r < nrows; r++) {
			e->k->residual(e->x1 + r * d, e->acc + r * d, d,
				       ly->rx2, ly->m2, ly->s2, e->r);
			e->k->layer_norm(e->r, d, ly->g2, ly->b2, ly->ln2_shift,
				       e->x + r * d);
		}
	}
	GEMM(e, m->hp.layers * PK_PER_LAYER, e->x, nrows, d, m->wout, 256,
	     e->acc);
	for (size_t r = 0; r < nrows; r++) {
		if (logits != NULL)
			memcpy(logits[r], e->acc + r * 256, sizeof(logits[r]));
		e->k->freq_row(e->acc + r * 256, m->f_mul, m->f_shift,
			       m->exp_out, BTZ_RC_TOTAL, freq[r]);
	}
	if (e->prof) {
		e->prof->total_ns += now_ns() - t_start;
		e->prof->rows += nrows;
	}
	return BTZ_OK;
}

enum btz_status btz_engine_rows_sym(struct btz_engine *e, size_t nrows,
				    const uint16_t *tok, const uint32_t *win,
				    const uint32_t *pos, const uint8_t *tgt,
				    uint32_t (*sym)[2], const uint8_t *query,
				    uint32_t *qfreq, struct btz_error *err)
{
	if (e->gpu) {
		uint64_t t0 = e->prof ? now_ns() : 0;
		enum btz_status st = btz_gpu_rows_sym(e->gpu, nrows, tok, win,
						      pos, tgt, sym, query,
						      qfreq, err);

		if (e->prof) {
			e->prof->total_ns += now_ns() - t0;
			e->prof->rows += nrows;
		}
		return st;
	}
	BTZ_TRY(btz_engine_rows(e, nrows, tok, win, pos, e->freq, NULL, err));
	for (size_t r = 0; r < nrows; r++) {
		btz_interval(e->freq[r], tgt[r], sym[r]);
		if (query != NULL)
			qfreq[r] = e->freq[r][query[r]];
	}
	return BTZ_OK;
}

size_t btz_model_kv_bytes(const struct btz_model *m)
{
	return 2 * (size_t)m->hp.layers * m->hp.context * m->hp.kv_heads *
	       m->dh;
}

static void *xcalloc(size_t n, size_t size, int *ok)
{
	void *p = NULL;

	if (*ok && (n == 0 || size <= SIZE_MAX / n))
		p = calloc(n ? n : 1, size);
	if (p == NULL)
		*ok = 0;
	return p;
}

/* Every weight matrix packed for the kernel table, once per engine. */
static int pack_weights(struct btz_engine *e)
{
	const struct btz_model *m = e->m;
	size_t L = m->hp.layers, d = m->hp.d, F = m->hp.ff;

	e->pk = calloc(L * PK_PER_LAYER + 1, sizeof(*e->pk));
	if (e->pk == NULL)
		return 0;
	for (size_t l = 0; l < L; l++) {
		const struct btz_layer *ly = &m->layers[l];
		void **p = e->pk + l * PK_PER_LAYER;

		p[0] = e->k->pack_w(ly->wq, d, e->qd);
		p[1] = e->k->pack_w(ly->wk, d, e->kvd);
		p[2] = e->k->pack_w(ly->wv, d, e->kvd);
		p[3] = e->k->pack_w(ly->wo, e->qd, d);
		p[4] = e->k->pack_w(ly->w1, d, F);
		p[5] = e->k->pack_w(ly->w3, d, F);
		p[6] = e->k->pack_w(ly->w2, F, d);
	}
	e->pk[L * PK_PER_LAYER] = e->k->pack_w(m->wout, d, 256);
	/* A NULL entry (out of memory) only means the unpacked product. */
	return 1;
}

enum btz_status btz_engine_create(struct btz_engine **out,
				  const struct btz_model *m, size_t nwin,
				  size_t max_rows, struct btz_error *err)
{
	struct btz_engine *e = calloc(1, sizeof(*e));
	size_t d = m->hp.d, F = m->hp.ff, W = m->hp.context, cache;
	int ok = e != NULL;
	/* On a GPU, this side keeps only the predictor's row lists. */
	size_t cw, cr;

	*out = NULL;
	if (!ok)
		return btz_fail(err, BTZ_E_NOMEM, "engine: out of memory");
	e->m = m;
	e->k = btz_kernels_select(NULL);
	e->device = engine_device;
	if (engine_device != BTZ_DEVICE_CPU) {
		const struct btz_gpu_ops *ops = btz_gpu_backend(engine_device);
		enum btz_status st;

		if (ops == NULL) {
			free(e);
			return btz_fail(err, BTZ_E_UNSUPPORTED,
					"this btz was built without CUDA");
		}
		e->gpu_name = ops->name;
		st = btz_gpu_create(&e->gpu, ops, m, nwin, max_rows, err);
		if (st != BTZ_OK) {
			free(e);
			return st;
		}
	}
	cw = e->gpu ? 0 : nwin;
	cr = e->gpu ? 0 : max_rows;
	memcpy(e->exp_att, m->exp_att, 256 * sizeof(uint16_t));
	e->nwin = nwin;
	e->max_rows = max_rows;
	e->qd = (size_t)m->hp.heads * m->dh;
	e->kvd = (size_t)m->hp.kv_heads * m->dh;
	e->wide = d > F ? d : F;
	if (e->qd > e->wide)
		e->wide = e->qd;
	if (e->wide < 256)
		e->wide = 256;
	/* The blocked layout where the kernels have it: kernels.h. */
	e->span = btz_hp_span(&m->hp);
	e->blk16 = m->dh == 16 && e->k->scores16 != NULL &&
		   e->k->wsum16 != NULL;
	e->hsz = e->blk16 ? (W + 15) / 16 * 256 : W * (size_t)m->dh;
	cache = (size_t)m->hp.layers * m->hp.kv_heads * e->hsz;
	if (cw != 0 && cache > SIZE_MAX / 2 / cw)
		ok = 0;
	e->kc = xcalloc(cw, cache, &ok);
	e->vc = xcalloc(cw, cache, &ok);
	e->sink_at = xcalloc(cw, m->hp.layers * sizeof(uint32_t), &ok);
	e->x = xcalloc(cr, d, &ok);
	e->x1 = xcalloc(cr, d, &ok);
	e->q = xcalloc(cr, e->qd, &ok);
	e->o = xcalloc(cr, e->qd, &ok);
	e->a = xcalloc(cr, F, &ok);
	e->u = xcalloc(cr, F, &ok);
	e->h = xcalloc(cr, F, &ok);
	e->acc = xcalloc(cr, e->wide * sizeof(int32_t), &ok);
	e->r = xcalloc(d, sizeof(int32_t), &ok);
	e->mh = xcalloc(m->hp.layers * F, sizeof(int32_t), &ok);
	for (size_t l = 0; ok && l < m->hp.layers; l++)
		for (size_t c = 0; c < F; c++)
			e->mh[l * F + c] = m->layers[l].mh;
	e->qh = xcalloc(cr, m->dh, &ok);
	e->kvrow = xcalloc(1, e->kvd, &ok);
	e->sblk = xcalloc(e->gpu ? 1 : (size_t)ATT_BLOCK * W, sizeof(int32_t),
			  &ok);
	e->e = xcalloc(e->gpu ? 1 : (size_t)ATT_BLOCK * W, sizeof(uint16_t),
		       &ok);
	e->z = xcalloc(ATT_BLOCK, sizeof(*e->z), &ok);
	e->num = xcalloc((size_t)ATT_BLOCK * m->dh, sizeof(*e->num), &ok);
	e->part = xcalloc((size_t)ATT_BLOCK * m->dh, sizeof(*e->part), &ok);
	e->tok = xcalloc(max_rows, sizeof(*e->tok), &ok);
	e->win = xcalloc(max_rows, sizeof(*e->win), &ok);
	e->pos = xcalloc(max_rows, sizeof(*e->pos), &ok);
	e->freq = xcalloc(max_rows, sizeof(*e->freq), &ok);
	if (ok && e->gpu == NULL && e->k->pack_w != NULL)
		ok = pack_weights(e);
	if (!ok) {
		btz_engine_free(e);
		return btz_fail(err, BTZ_E_NOMEM,
				"engine: out of memory for %zu windows", nwin);
	}
	*out = e;
	return BTZ_OK;
}

void btz_engine_free(struct btz_engine *e)
{
	if (e == NULL)
		return;
	btz_gpu_free(e->gpu);
	if (e->pk != NULL)
		for (size_t i = 0; i <= e->m->hp.layers * PK_PER_LAYER; i++)
			free(e->pk[i]);
	free(e->pk);
	free(e->kc);
	free(e->vc);
	free(e->sink_at);
	free(e->x);
	free(e->x1);
	free(e->q);
	free(e->o);
	free(e->a);
	free(e->u);
	free(e->h);
	free(e->mh);
	free(e->acc);
	free(e->r);
	free(e->qh);
	free(e->kvrow);
	free(e->sblk);
	free(e->e);
	free(e->z);
	free(e->num);
	free(e->part);
	free(e->tok);
	free(e->win);
	free(e->pos);
	free(e->freq);
	free(e);
}

/* The predictor: a run is one engine sized for its windows. */
/* GPU engines kept between runs: making one allocates device memory,
 * uploads the weights and starts cuBLAS (milliseconds, as long as a
 * chunk's whole packing), so a finished run's engine serves the next run
 * of the same model on any thread. Its caches need no clearing: a window
 * restarts at position 0 and reads only positions it has written. */
#define POOL_MAX 64
#define GPU_CALL_ROWS 65536
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct btz_engine *pool[POOL_MAX];
static size_t npool;

static struct btz_engine *pool_take(const struct btz_model *m, size_t nwin,
				    size_t rows)
{
	struct btz_engine *e = NULL;

	pthread_mutex_lock(&pool_lock);
	for (size_t i = 0; i < npool; i++)
		if (pool[i]->m == m && pool[i]->device == engine_device &&
		    pool[i]->nwin >= nwin &&
		    pool[i]->max_rows >= rows) {
			e = pool[i];
			pool[i] = pool[--npool];
			break;
		}
	pthread_mutex_unlock(&pool_lock);
	return e;
}

void btz_engine_pool_drop(const struct btz_model *m)
{
	pthread_mutex_lock(&pool_lock);
	for (size_t i = 0; i < npool;) {
		if (pool[i]->m == m) {
			btz_engine_free(pool[i]);
			pool[i] = pool[--npool];
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&pool_lock);
}

static enum btz_status pred_begin(void *ctx, size_t nwin, void **run,
				  struct btz_error *err)
{
	const struct btz_model *m = ctx;
	size_t W = m->hp.context, rows = nwin > W ? nwin : W;

	/* A GPU takes a whole chunk, every window of it, as one call, up to
	 * GPU_CALL_ROWS: a decoder of many chunks has more windows than a
	 * packing call needs rows, and never packs. */
	if (engine_device != BTZ_DEVICE_CPU) {
		size_t whole = nwin <= SIZE_MAX / W ? nwin * W : SIZE_MAX;
		size_t cap = rows > GPU_CALL_ROWS ? rows : GPU_CALL_ROWS;

		rows = whole < cap ? whole : cap;
	}
	if (engine_device != BTZ_DEVICE_CPU &&
	    (*run = pool_take(m, nwin, rows)) != NULL)
		return BTZ_OK;
	return btz_engine_create((struct btz_engine **)run, m, nwin, rows,
				 err);
}

static void pred_end(void *ctx, void *run)
{
	struct btz_engine *e = run;

	(void)ctx;
	if (e != NULL && e->gpu != NULL) {
		pthread_mutex_lock(&pool_lock);
		if (npool < POOL_MAX) {
			e->prof = NULL;
			pool[npool++] = e;
			e = NULL;
		}
		pthread_mutex_unlock(&pool_lock);
	}
	btz_engine_free(e);
}

static enum btz_status pred_predict(void *ctx, void *run,
				    const uint8_t *const *windows,
				    size_t nwin, size_t pos,
				    uint32_t (*freq)[256],
				    struct btz_error *err)
{
	struct btz_engine *e = run;

	(void)ctx;
	for (size_t i = 0; i < nwin; i++) {
		e->tok[i] = pos == 0 ? BTZ_BTM_START : windows[i][pos - 1];
		e->win[i] = (uint32_t)i;
		e->pos[i] = (uint32_t)pos;
	}
	return btz_engine_rows(e, nwin, e->tok, e->win, e->pos, freq, NULL,
			       err);
}

/* The chunk's windows as rows, as many whole windows a call as the
 * engine takes: one on the CPU (a consecutive block, attend_block's
 * case), all of them on a GPU. */
static enum btz_status pred_chunk(void *ctx, void *run, const uint8_t *in,
				  size_t n, const uint8_t *query,
				  uint32_t *qfreq, uint32_t (*sym)[2],
				  struct btz_error *err)
{
	struct btz_engine *e = run;
	size_t W = e->m->hp.context;
	size_t per = e->gpu ? e->max_rows / W * W : W;

	(void)ctx;
	for (size_t t0 = 0; t0 < n; t0 += per) {
		size_t k = n - t0 < per ? n - t0 : per;

		for (size_t t = 0; t < k; t++) {
			size_t at = t0 + t, p = at % W;

			e->tok[t] = p == 0 ? BTZ_BTM_START : in[at - 1];
			/* On the CPU every window reuses window 0's cache,
			 * which stays in the core's cache (a window restarts
			 * at position 0 and reads only what it wrote). */
			e->win[t] = e->gpu ? (uint32_t)(at / W) : 0;
			e->pos[t] = (uint32_t)p;
		}
		BTZ_TRY(btz_engine_rows_sym(e, k, e->tok, e->win, e->pos,
					    in + t0, sym + t0,
					    query ? query + t0 : NULL,
					    query ? qfreq + t0 : NULL, err));
	}
	return BTZ_OK;
}

struct btz_predictor btz_model_predictor(const struct btz_model *m)
{
	return (struct btz_predictor){
		.ctx = (void *)m,
		.window = m->hp.context,
		.begin = pred_begin,
		.predict = pred_predict,
		.end = pred_end,
		.predict_chunk = pred_chunk,
		.match = (m->hp.flags & BTZ_BTM_MATCH) != 0,
	};
}

enum btz_status btz_engine_code_bits(const struct btz_model *m,
				     const uint8_t *data, size_t len,
				     double *bits, struct btz_error *err)
{
	size_t W = m->hp.context;
	struct btz_engine *e = NULL;
	uint16_t *tok = malloc(W * sizeof(*tok));
	uint32_t *win = calloc(W, sizeof(*win)), *pos = malloc(W * 4);
	uint32_t(*freq)[256] = malloc(sizeof(*freq) * W);
	enum btz_status st = BTZ_OK;

	*bits = 0;
	if (tok == NULL || win == NULL || pos == NULL || freq == NULL)
		st = btz_fail(err, BTZ_E_NOMEM, "out of memory");
	else
		st = btz_engine_create(&e, m, 1, W, err);
	for (size_t off = 0; st == BTZ_OK && off < len; off += W) {
		size_t n = len - off < W ? len - off : W;

		for (size_t t = 0; t < n; t++) {
			tok[t] = t == 0 ? BTZ_BTM_START : data[off + t - 1];
			pos[t] = (uint32_t)t;
		}
		st = btz_engine_rows(e, n, tok, win, pos, freq, NULL, err);
		for (size_t t = 0; st == BTZ_OK && t < n; t++)
			*bits -= log2(freq[t][data[off + t]] / 16777216.0);
	}
	btz_engine_free(e);
	free(tok);
	free(win);
	free(pos);
	free(freq);
	return st;
}
