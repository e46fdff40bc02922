/* The GPU engine's kernels as element functions: element i of a launch
 * of n computes one output (an embedding entry, a requantized value, a
 * head's attention output, a row's layer norm or frequencies) from the
 * shared integer operations of model/intops.h. The CUDA backend runs
 * element i on thread i; the simulated device runs them in a loop, so the
 * tests check on any machine every index and buffer the GPU uses. */
#ifndef BTZ_MODEL_GPU_KERNELS_H
#define BTZ_MODEL_GPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "model/btm.h"
#include "model/intops.h"

enum gk_id {
	GK_EMBED,  /* n = rows·d */
	GK_RQ8,    /* n = rows·ncol: out = rq8(acc) */
	GK_KVPUT,  /* n = rows·kvd: rq8(acc) into the cache at (win, pos) */
	GK_ATTEND, /* n = rows·H: one head of one row */
	GK_RESID,  /* n = rows·d: res = residual(x, acc) */
	GK_NORM,   /* n = rows: out = layer norm of res */
	GK_SWIGLU, /* n = rows·F: h = silu(a)·u */
	GK_FREQ,   /* n = rows: 256 frequencies from acc */
	GK_GEMM,   /* n = rows·ncol: acc = x·W^T, for shapes cuBLAS refuses */
	GK_SYM,    /* n = rows: the coder's interval of byte tgt[r], and
		    * the frequency of byte qry[r] when qry is set */
};

/* Everything a kernel may read: device pointers and scalars. Each kernel
 * uses the fields its comment in gpu.c names. */
struct gk_args {
	const uint16_t *tok;
	const uint32_t *win, *pos;
	const int8_t *tok_emb, *pos_emb;
	const int8_t *x;     /* int8 input rows (embed output, residual's x) */
	const int8_t *w;     /* GEMM weights [ncol][k] */
	const int32_t *acc;  /* int32 products [rows][ncol] */
	const int32_t *mul;  /* per-column multipliers */
	const int32_t *g, *b;
	const int32_t *res;
	const int8_t *q, *a, *u;
	const int8_t *kc, *vc;
	const uint16_t *att_table;
	const int16_t *silu;
	const uint32_t *exp_out;
	const uint8_t *tgt, *qry;
	int8_t *out8;
	int32_t *out32;
	uint32_t *freq;
	uint32_t *sym; /* GK_SYM's intervals [rows][2] */
	uint32_t *qf;  /* GK_SYM's queried frequencies [rows] */
	uint32_t d, ncol, k, kvd, qd, dh, H, Hkv, W, nwin, layer;
	uint32_t span; /* the model's attention span, 0: none */
	int32_t shift, rx, a_mul, a_shift, ao_shift, mh, f_mul, f_shift;
	uint32_t total;
};

static inline BTZ_HD int32_t gk_dot(const int8_t *a, const int8_t *b,
				    size_t n)
{
	int32_t s = 0;

	for (size_t c = 0; c < n; c++)
		s += (int32_t)a[c] * b[c];
	return s;
}

/* Softmax and weighted sum of one head of one row, as the CPU engine's
 * attend_tail: scores over positions 0..pos, two passes (the maximum,
 * then weights and sums), exact int64 sums. */
static inline BTZ_HD void gk_attend(size_t i, const struct gk_args *a)
{
	size_t r = i / a->H, h = i % a->H, dh = a->dh;
	size_t g = h * a->Hkv / a->H, p = a->pos[r];
	size_t base = (((size_t)a->layer * a->nwin + a->win[r]) * a->Hkv + g) *
		      a->W * dh;
	const int8_t *K = a->kc + base, *V = a->vc + base;
	const int8_t *q = a->q + r * a->qd + h * dh;
	int64_t num[BTZ_BTM_DH_MAX], z = 0;
	int32_t mx = INT32_MIN;
	/* Past the sink, the span's tail (all of it without a span). */
	size_t st = btz_att_tail(p, a->span);

	for (size_t j = 0; j <= p; j = btz_att_next(j, st)) {
		int32_t s = gk_dot(q, K + j * dh, dh);

		if (s > mx)
			mx = s;
	}
	for (size_t c = 0; c < dh; c++)
		num[c] = 0;
	for (size_t j = 0; j <= p; j = btz_att_next(j, st)) {
		uint16_t e = btz_att_weight(gk_dot(q, K + j * dh, dh), mx,
					    a->a_mul, a->a_shift,
					    a->att_table);

		z += e;
		for (size_t c = 0; c < dh; c++)
			num[c] += (int64_t)e * V[j * dh + c];
	}
	for (size_t c = 0; c < dh; c++)
		a->out8[r * a->qd + h * dh + c] =
			btz_att_out(num[c], a->ao_shift, z);
}

static inline BTZ_HD void gk_run(enum gk_id id, size_t i,
				 const struct gk_args *a)
{
	size_t r, c;

	switch (id) {
	case GK_EMBED:
		r = i / a->d;
		c = i % a->d;
		a->out8[i] = btz_embed(a->tok_emb[a->tok[r] * a->d + c],
				       a->pos_emb[a->pos[r] * a->d + c]);
		break;
	case GK_RQ8:
		a->out8[i] = btz_rq8(a->acc[i], a->mul[i % a->ncol], a->shift);
		break;
	case GK_KVPUT: {
		size_t g, at;

		r = i / a->kvd;
		c = i % a->kvd;
		g = c / a->dh;
		at = ((((size_t)a->layer * a->nwin + a->win[r]) * a->Hkv + g) *
			      a->W + a->pos[r]) * a->dh + c % a->dh;
		a->out8[at] = btz_rq8(a->acc[i], a->mul[c], a->shift);
		break;
	}
	case GK_ATTEND:
		gk_attend(i, a);
		break;
	case GK_RESID:
		c = i % a->d;
		a->out32[i] = btz_residual(a->x[i], a->acc[i], a->rx, a->mul[c],
					   a->shift);
		break;
	case GK_NORM:
		btz_layer_norm(a->res + i * a->d, a->d, a->g, a->b, a->shift,
			       a->out8 + i * a->d);
		break;
	case GK_SWIGLU:
		a->out8[i] = btz_swiglu(a->silu[a->a[i] + 128], a->u[i], a->mh,
					a->shift);
		break;
	case GK_FREQ:
		btz_freq_row(a->acc + i * 256, a->f_mul, a->f_shift,
			     a->exp_out, a->total, a->freq + i * 256);
		break;
	case GK_SYM:
		btz_interval(a->freq + i * 256, a->tgt[i], a->sym + 2 * i);
		if (a->qry != NULL)
			a->qf[i] = a->freq[i * 256 + a->qry[i]];
		break;
	case GK_GEMM:
		r = i / a->ncol;
		c = i % a->ncol;
		a->out32[i] = gk_dot(a->x + r * a->k, a->w + c * a->k, a->k);
		break;
	}
}

#endif
