/* The float training network's kernels (trainer/gnet.c) as element
 * functions, like model/gpu_kernels.h for inference: element i of a
 * launch of n computes one output (an entry, a row's layer norm, one head
 * of one row's attention, one key's gradients). CUDA runs element i on
 * thread i; the simulated device loops, so tests compare the whole GPU
 * training step with the CPU's (trainer/net.c) on any machine.
 *
 * Training is float and need not be bit-exact: these follow net.c's
 * formulas, not its summation order. */
#ifndef BTZ_MODEL_GPU_TRAIN_KERNELS_H
#define BTZ_MODEL_GPU_TRAIN_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "model/intops.h"

/* The widest head a thread's attention sums hold. */
#define TK_DH_MAX 64

enum tk_id {
	TK_FILL0,     /* n: dst = 0 */
	TK_COPY,      /* n: dst = src */
	TK_EMBED,     /* n = N·d: dst = tok_emb[tok] + pos_emb[t] */
	TK_LN_FWD,    /* n = N: dst = x̂, dst2 = 1/σ, dst3 = x̂·gam + bet */
	TK_LN_PART,   /* n = parts·d: Σ dy·x̂, Σ dy over a part of the rows
		       * (src = dy, src2 = x̂) into dst3[part][d][2] */
	TK_LN_GRAD,   /* n = d: dst += Σ dy·x̂, dst2 += Σ dy, from the parts */
	TK_LN_BWD,    /* n = N: dst = ∂/∂r from dy = src (dst may be src) */
	TK_SWIGLU,    /* n = N·F: dst = silu(src)·src2 */
	TK_SWIGLU_BWD,/* n = N·F: dst = ∂/∂a, dst2 = ∂/∂u from dh = src3 */
	TK_ATTN,      /* n = B·H·T: one head of one row: o, lse */
	TK_ATTN_D,    /* n = B·H·T: dd = Σ dO·O per head and row */
	TK_ATTN_DQ,   /* n = B·H·T: dq of one head of one row */
	TK_ATTN_DKV,  /* n = B·Hkv·T: dk, dv of one key of one kv head */
	TK_XENT,      /* n = N: dst2[r] = loss; logits dst → ∂/∂logits */
	TK_EMB_BWD,   /* n = N·d: dst[tok] += src (atomically) */
	TK_ACT_MAX,   /* n = rows: dst[0] = max(dst[0], |src| over the row
		       * of cols) (atomically; dst[0] starts at 0) */
	TK_ACT_ROUND, /* n = rows·cols: dst rounded to the int8 grid of
		       * maximum src[0], as --qat-act on the CPU */
};

/* Device pointers and sizes; each kernel uses what its comment names.
 * Rows are r = b·T + t; q, o, dq, dout are [N][hq], k, v, dk, dv
 * [N][kv], lse and dd [B][H][T]. */
struct tk_args {
	const uint16_t *tok;
	const uint8_t *tgt;
	const float *src, *src2, *src3;
	float *dst, *dst2, *dst3;
	const float *gam, *bet;
	const float *q, *k, *v, *o, *lse, *dd, *dout;
	float *dq, *dk, *dv, *ol, *odd; /* outputs: o, lse, dd */
	uint32_t N, T, d, F, H, Hkv, dh, hq, kv, parts, cols;
	uint32_t span; /* the model's attention span, 0: none */
	float scale, inv;
	int grad;
};

#ifdef __CUDA_ARCH__
#define TK_ATOMIC_ADD(p, v) atomicAdd((p), (v))
/* Non-negative floats order as their bit patterns do as ints. */
#define TK_ATOMIC_MAX0(p, v) atomicMax((int *)(p), __float_as_int(v))
#else
#define TK_ATOMIC_ADD(p, v) (*(p) += (v))
#define TK_ATOMIC_MAX0(p, v) (*(p) = *(p) < (v) ? (v) : *(p))
#endif

static inline BTZ_HD float tk_dot(const float *a, const float *b, uint32_t n)
{
	float s = 0;

	for (uint32_t c = 0; c < n; c++)
		s += a[c] * b[c];
	return s;
}

static inline BTZ_HD void tk_ln_fwd(size_t r, const struct tk_args *a)
{
	const float *x = a->src + r * a->d;
	float mean = 0, var = 0, rs;

	for (uint32_t c = 0; c < a->d; c++)
		mean += x[c];
	mean /= (float)a->d;
	for (uint32_t c = 0; c < a->d; c++)
		var += (x[c] - mean) * (x[c] - mean);
	var /= (float)a->d;
	rs = 1.0f / sqrtf(var + 1e-5f);
	a->dst2[r] = rs;
	for (uint32_t c = 0; c < a->d; c++) {
		float xh = (x[c] - mean) * rs;

		a->dst[r * a->d + c] = xh;
		a->dst3[r * a->d + c] = xh * a->gam[c] + a->bet[c];
	}
}

static inline BTZ_HD void tk_ln_bwd(size_t r, const struct tk_args *a)
{
	const float *dy = a->src + r * a->d, *xh = a->src2 + r * a->d;
	float m1 = 0, m2 = 0, rs = a->src3[r];

	for (uint32_t c = 0; c < a->d; c++) {
		float dxh = dy[c] * a->gam[c];

		m1 += dxh;
		m2 += dxh * xh[c];
	}
	m1 /= (float)a->d;
	m2 /= (float)a->d;
	/* Reads dy[c] before writing the same entry: dst may be src. */
	for (uint32_t c = 0; c < a->d; c++)
		a->dst[r * a->d + c] =
			rs * (dy[c] * a->gam[c] - m1 - xh[c] * m2);
}

/* Row r's head h and its kv head's row base (b, t from r). */
static inline BTZ_HD void tk_head(size_t i, const struct tk_args *a,
				  size_t *b, size_t *h, size_t *t)
{
	*t = i % a->T;
	*h = i / a->T % a->H;
	*b = i / a->T / a->H;
}

/* Softmax over keys 0..t of row t, head h (those the span keeps): two
 * passes (maximum, then weights), the output normalized at the end. */
static inline BTZ_HD void tk_attn(size_t i, const struct tk_args *a)
{
	size_t b, h, t;
	float acc[TK_DH_MAX], mx = -INFINITY, sum = 0;

	tk_head(i, a, &b, &h, &t);
	size_t g = h * a->Hkv / a->H, r = b * a->T + t;
	const float *q = a->q + r * a->hq + h * a->dh;
	const float *kb = a->k + b * a->T * a->kv + g * a->dh;
	const float *vb = a->v + b * a->T * a->kv + g * a->dh;
	size_t st = btz_att_tail(t, a->span);

	for (size_t j = 0; j <= t; j = btz_att_next(j, st)) {
		float s = a->scale * tk_dot(q, kb + j * a->kv, a->dh);

		mx = s > mx ? s : mx;
	}
	for (uint32_t c = 0; c < a->dh; c++)
		acc[c] = 0;
	for (size_t j = 0; j <= t; j = btz_att_next(j, st)) {
		float p = expf(a->scale * tk_dot(q, kb + j * a->kv, a->dh) - mx);

		sum += p;
		for (uint32_t c = 0; c < a->dh; c++)
			acc[c] += p * vb[j * a->kv + c];
	}
	for (uint32_t c = 0; c < a->dh; c++)
		a->ol[r * a->hq + h * a->dh + c] = acc[c] / sum;
	a->odd[i] = mx + logf(sum);
}

static inline BTZ_HD void tk_attn_d(size_t i, const struct tk_args *a)
{
	size_t b, h, t;

	tk_head(i, a, &b, &h, &t);
	size_t off = (b * a->T + t) * a->hq + h * a->dh;
	a->odd[i] = tk_dot(a->dout + off, a->o + off, a->dh);
}

/* dq_t = Σ_j dS_tj k_j, dS = P·(dO·v − D)·scale, P recomputed from lse. */
static inline BTZ_HD void tk_attn_dq(size_t i, const struct tk_args *a)
{
	size_t b, h, t;
	float acc[TK_DH_MAX];

	tk_head(i, a, &b, &h, &t);
	size_t g = h * a->Hkv / a->H, off = (b * a->T + t) * a->hq + h * a->dh;
	const float *q = a->q + off, *dO = a->dout + off;
	const float *kb = a->k + b * a->T * a->kv + g * a->dh;
	const float *vb = a->v + b * a->T * a->kv + g * a->dh;
	float lse = a->lse[i], D = a->dd[i];
	size_t st = btz_att_tail(t, a->span);

	for (uint32_t c = 0; c < a->dh; c++)
		acc[c] = 0;
	for (size_t j = 0; j <= t; j = btz_att_next(j, st)) {
		float p = expf(a->scale * tk_dot(q, kb + j * a->kv, a->dh) - lse);
		float ds = p * (tk_dot(dO, vb + j * a->kv, a->dh) - D) * a->scale;

		for (uint32_t c = 0; c < a->dh; c++)
			acc[c] += ds * kb[j * a->kv + c];
	}
	for (uint32_t c = 0; c < a->dh; c++)
		a->dq[off + c] = acc[c];
}

/* Key j of kv head g: dv_j = Σ P_tj dO_t and dk_j = Σ dS_tj q_t over the
 * rows t >= j of every head that shares g. */
static inline BTZ_HD void tk_attn_dkv(size_t i, const struct tk_args *a)
{
	size_t j = i % a->T, g = i / a->T % a->Hkv, b = i / a->T / a->Hkv;
	size_t kr = (b * a->T + j) * a->kv + g * a->dh;
	const float *kj = a->k + kr, *vj = a->v + kr;
	float dk[TK_DH_MAX], dv[TK_DH_MAX];

	for (uint32_t c = 0; c < a->dh; c++)
		dk[c] = dv[c] = 0;
	for (size_t h = 0; h < a->H; h++) {
		if (h * a->Hkv / a->H != g)
			continue;
		/* From the first key of j's warp, so that a warp's threads
		 * read the same row at once (rows before j add nothing). */
		for (size_t t = j - j % 32; t < a->T; t++) {
			if (t < j)
				continue;
			/* Past the sink, key j leaves a span's tail for
			 * good. */
			if (j >= BTZ_ATT_SINK && j < btz_att_tail(t, a->span))
				break;
			size_t off = (b * a->T + t) * a->hq + h * a->dh;
			size_t li = (b * a->H + h) * a->T + t;
			const float *q = a->q + off, *dO = a->dout + off;
			float p = expf(a->scale * tk_dot(q, kj, a->dh) -
				       a->lse[li]);
			float ds = p * (tk_dot(dO, vj, a->dh) - a->dd[li]) *
				   a->scale;

			for (uint32_t c = 0; c < a->dh; c++) {
				dv[c] += p * dO[c];
				dk[c] += ds * q[c];
			}
		}
	}
	for (uint32_t c = 0; c < a->dh; c++) {
		a->dk[kr + c] = dk[c];
		a->dv[kr + c] = dv[c];
	}
}

/* Cross-entropy of row r; with grad, the logits become softmax − one-hot
 * of the mean (inv = 1/N). */
static inline BTZ_HD void tk_xent(size_t r, const struct tk_args *a)
{
	float *lg = a->dst + r * 256, mx = lg[0], sum = 0;
	unsigned y = a->tgt[r];
	float ly = lg[y];

	for (int c = 1; c < 256; c++)
		mx = lg[c] > mx ? lg[c] : mx;
	for (int c = 0; c < 256; c++)
		sum += expf(lg[c] - mx);
	a->dst2[r] = mx + logf(sum) - ly;
	if (!a->grad)
		return;
	for (int c = 0; c < 256; c++)
		lg[c] = expf(lg[c] - mx) / sum * a->inv;
	lg[y] -= a->inv;
}

static inline BTZ_HD void tk_run(enum tk_id id, size_t i,
				 const struct tk_args *a)
{
	switch (id) {
	case TK_FILL0:
		a->dst[i] = 0;
		break;
	case TK_COPY:
		a->dst[i] = a->src[i];
		break;
	case TK_EMBED: {
		size_t r = i / a->d, c = i % a->d;

		a->dst[i] = a->src[(size_t)a->tok[r] * a->d + c] +
			    a->src2[(r % a->T) * a->d + c];
		break;
	}
	case TK_LN_FWD:
		tk_ln_fwd(i, a);
		break;
	case TK_LN_PART: {
		/* Sums over N rows in two stages: one thread a column would
		 * leave a GPU all but idle. */
		size_t p = i / a->d, c = i % a->d;
		size_t r0 = p * a->N / a->parts, r1 = (p + 1) * a->N / a->parts;
		float sg = 0, sb = 0;

		for (size_t r = r0; r < r1; r++) {
			float dy = a->src[r * a->d + c];

			sg += dy * a->src2[r * a->d + c];
			sb += dy;
		}
		a->dst3[2 * i] = sg;
		a->dst3[2 * i + 1] = sb;
		break;
	}
	case TK_LN_GRAD: {
		float sg = 0, sb = 0;

		for (size_t p = 0; p < a->parts; p++) {
			sg += a->dst3[2 * (p * a->d + i)];
			sb += a->dst3[2 * (p * a->d + i) + 1];
		}
		a->dst[i] += sg;
		a->dst2[i] += sb;
		break;
	}
	case TK_LN_BWD:
		tk_ln_bwd(i, a);
		break;
	case TK_SWIGLU: {
		float x = a->src[i];

		a->dst[i] = x / (1 + expf(-x)) * a->src2[i];
		break;
	}
	case TK_SWIGLU_BWD: {
		float x = a->src[i], u = a->src2[i], dh = a->src3[i];
		float s = 1 / (1 + expf(-x)), silu = x * s;

		a->dst[i] = dh * u * (s + silu * (1 - s));
		a->dst2[i] = dh * silu;
		break;
	}
	case TK_ATTN:
		tk_attn(i, a);
		break;
	case TK_ATTN_D:
		tk_attn_d(i, a);
		break;
	case TK_ATTN_DQ:
		tk_attn_dq(i, a);
		break;
	case TK_ATTN_DKV:
		tk_attn_dkv(i, a);
		break;
	case TK_XENT:
		tk_xent(i, a);
		break;
	case TK_EMB_BWD: {
		size_t r = i / a->d, c = i % a->d;

		TK_ATOMIC_ADD(&a->dst[(size_t)a->tok[r] * a->d + c], a->src[i]);
		break;
	}
	case TK_ACT_MAX: {
		const float *x = a->src + i * a->cols;
		float m = 0;

		for (uint32_t c = 0; c < a->cols; c++)
			m = fabsf(x[c]) > m ? fabsf(x[c]) : m;
		TK_ATOMIC_MAX0(a->dst, m);
		break;
	}
	case TK_ACT_ROUND: {
		float m = a->src[0];

		if (m > 0)
			a->dst[i] = rintf(a->dst[i] * (127 / m)) * (m / 127);
		break;
	}
	}
}

#endif
