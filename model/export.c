/* Export of a float network to the integer network of doc/model.md.
 *
 * s_X below is the real value of one integer unit of activation X. The
 * float network runs over the calibration bytes and records max |X| for
 * every activation (the maximum, not a percentile: the calibration data
 * then never clamps, and heavy-tailed activations such as the SwiGLU
 * product lose a little resolution instead). From those maxima and the
 * weights every multiplier follows (doc/checkpoint.md, "Export"):
 *
 *   int8 GEMM inputs:  s_X = max |X| / 127
 *   int8 weights:      per output row sw[o] = max |W[o]| / 127, except
 *                      wout (one scale: the 256 logits must share it) and
 *                      the embeddings (one scale s0 with |tok| + |pos| ≤
 *                      127, so x0 never clamps)
 *   rq8 multipliers:   m[o] / 2^s = s_in · sw[o] / s_out
 *   residuals:         s_r = s_in / rx with rx aiming max |r| at 2^22
 *   layer norm:        n ≈ 4096 (r − mean) / std, so
 *                      G = 2^sh g / (4096 s_y), B = 2^sh b / s_y
 *
 * The .btm image is written in file order and then loaded with
 * btz_model_load_mem, so the exported model is exactly what a reader of
 * the file gets: validated by the loader's rules and fingerprinted. */
#include "model/export.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/bytes.h"

#define MUL_MAX 2147483647.0 /* multipliers are < 2^31 */
#define SHIFT_MAX 62
#define RX_MAX 65536
#define R_TARGET 4194304.0 /* 2^22: residuals in units well inside 2^24 */
#define SILU_PEAK 16384.0  /* 2^14: largest |silu table entry| */
#define ACT_FLOOR 1e-12    /* a maximum of 0 still gives a finite scale */

static void put16(struct btz_buf *b, uint16_t v)
{
	uint8_t p[2];

	btz_put_le16(p, v);
	btz_buf_put(b, p, 2);
}

static void put32(struct btz_buf *b, uint32_t v)
{
	uint8_t p[4];

	btz_put_le32(p, v);
	btz_buf_put(b, p, 4);
}

static void puti32(struct btz_buf *b, int32_t v)
{
	put32(b, (uint32_t)v);
}

/* Multipliers m[i] / 2^s ≈ ratio[i] (≥ 0) with one shift s, as large as
 * keeps every m below 2^31 (most precision). */
static enum btz_status mults(const double *ratio, size_t n, int32_t *m,
			     int32_t *shift, const char *what, uint32_t layer,
			     struct btz_error *err)
{
	double mx = 0;
	int s;

	for (size_t i = 0; i < n; i++) {
		if (!(ratio[i] >= 0) || !isfinite(ratio[i]))
			return btz_fail(err, BTZ_E_ARG, "layer %" PRIu32
					": %s multiplier %zu is not finite",
					layer, what, i);
		if (ratio[i] > mx)
			mx = ratio[i];
	}
	for (s = SHIFT_MAX; s > 0; s--)
		if (nearbyint(ldexp(mx, s)) <= MUL_MAX)
			break;
	if (nearbyint(ldexp(mx, s)) > MUL_MAX)
		return btz_fail(err, BTZ_E_LIMIT, "layer %" PRIu32
				": %s multiplier %g needs more than 31 bits",
				layer, what, mx);
	for (size_t i = 0; i < n; i++)
		m[i] = (int32_t)nearbyint(ldexp(ratio[i], s));
	*shift = s;
	return BTZ_OK;
}

static double act_scale(double maxabs)
{
	return (maxabs > ACT_FLOOR ? maxabs : ACT_FLOOR) / 127.0;
}

static int8_t q8(double v)
{
	double r = nearbyint(v);

	return (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
}

/* Per-row int8 weights: sw[o] = max |W[o]| / 127 (0 for a zero row). */
static void quant_rows(struct btz_buf *b, const float *w, size_t rows,
		       size_t cols, double *sw)
{
	for (size_t o = 0; o < rows; o++) {
		double mx = 0;

		for (size_t c = 0; c < cols; c++)
			if (fabs(w[o * cols + c]) > mx)
				mx = fabs(w[o * cols + c]);
		sw[o] = mx / 127.0;
		for (size_t c = 0; c < cols; c++) {
			int8_t v = mx > 0 ? q8(w[o * cols + c] / sw[o]) : 0;

			btz_buf_put(b, &v, 1);
		}
	}
}

/* One scale for a whole tensor. */
static void quant_tensor(struct btz_buf *b, const float *w, size_t count,
			 double s)
{
	for (size_t i = 0; i < count; i++) {
		int8_t v = s > 0 ? q8(w[i] / s) : 0;

		btz_buf_put(b, &v, 1);
	}
}

static double maxabs(const float *w, size_t n)
{
	double mx = 0;

	for (size_t i = 0; i < n; i++)
		if (fabs(w[i]) > mx)
			mx = fabs(w[i]);
	return mx;
}

/* A rq8 projection: weights, multipliers, shift. */
static enum btz_status put_rq8(struct btz_buf *b, const float *w, size_t rows,
			       size_t cols, double s_in, double s_out,
			       double *sw, double *ratio, int32_t *m,
			       const char *what, uint32_t l,
			       struct btz_error *err)
{
	int32_t s;

	quant_rows(b, w, rows, cols, sw);
	for (size_t o = 0; o < rows; o++)
		ratio[o] = s_in * sw[o] / s_out;
	BTZ_TRY(mults(ratio, rows, m, &s, what, l, err));
	for (size_t o = 0; o < rows; o++)
		puti32(b, m[o]);
	puti32(b, s);
	return BTZ_OK;
}

/* The residual r = x·rx + rshift(acc · m[c], s) of a branch whose GEMM
 * has input scale s_br and weights w [d][k]; returns s_r. */
static enum btz_status put_residual(struct btz_buf *b, const float *w,
				    size_t d, size_t k, double s_x,
				    double s_br, double max_r, double *sw,
				    double *ratio, int32_t *m, double *s_r,
				    const char *what, uint32_t l,
				    struct btz_error *err)
{
	double rx = nearbyint(s_x * R_TARGET /
			      (max_r > ACT_FLOOR ? max_r : ACT_FLOOR));
	int32_t s;

	rx = rx < 1 ? 1 : rx > RX_MAX ? RX_MAX : rx;
	*s_r = s_x / rx; /* the x term is then exact */
	quant_rows(b, w, d, k, sw);
	for (size_t c = 0; c < d; c++)
		ratio[c] = s_br * sw[c] / *s_r;
	BTZ_TRY(mults(ratio, d, m, &s, what, l, err));
	for (size_t c = 0; c < d; c++)
		puti32(b, m[c]);
	puti32(b, s);
	puti32(b, (int32_t)rx);
	return BTZ_OK;
}

/* Layer norm gains and biases for output scale s_y: G = 2^sh g /
 * (4096 s_y), B = 2^sh b / s_y, one shift as large as keeps both below
 * 2^31 (then |n·G + B| < 2^20 · 2^31 + 2^31 < 2^62). */
static enum btz_status put_ln(struct btz_buf *b, const float *g,
			      const float *bias, size_t d, double s_y,
			      double *ratio, const char *what, uint32_t l,
			      struct btz_error *err)
{
	double mx = 0;
	int s;

	for (size_t c = 0; c < d; c++) {
		double gg = fabs(g[c]) / (4096.0 * s_y), bb = fabs(bias[c]) / s_y;

		mx = gg > mx ? gg : mx;
		mx = bb > mx ? bb : mx;
	}
	for (s = SHIFT_MAX; s > 0; s--)
		if (nearbyint(ldexp(mx, s)) <= MUL_MAX)
			break;
	if (nearbyint(ldexp(mx, s)) > MUL_MAX)
		return btz_fail(err, BTZ_E_LIMIT, "layer %" PRIu32
				": %s gain %g needs more than 31 bits", l,
				what, mx);
	for (size_t c = 0; c < d; c++)
		ratio[c] = g[c] / (4096.0 * s_y);
	for (size_t c = 0; c < d; c++)
		puti32(b, (int32_t)nearbyint(ldexp(ratio[c], s)));
	for (size_t c = 0; c < d; c++)
		puti32(b, (int32_t)nearbyint(ldexp(bias[c] / s_y, s)));
	puti32(b, s);
	return BTZ_OK;
}

static double silu(double a)
{
	return a / (1.0 + exp(-a));
}

/* The SiLU table's output scale s_t for input scale s_a: its largest
 * entry is then SILU_PEAK. */
static double silu_out_scale(double s_a)
{
	double s_t = 0;

	for (int i = 0; i < 256; i++)
		if (fabs(silu((i - 128) * s_a)) > s_t)
			s_t = fabs(silu((i - 128) * s_a));
	return s_t > 0 ? s_t / SILU_PEAK : 1;
}

static void put_header(struct btz_buf *b, const struct btz_fmodel *fm)
{
	const char *train = fm->train_data ? fm->train_data : "";
	size_t nn = fm->name ? strlen(fm->name) : 0, tn = strlen(train);
	uint8_t z[8] = { 0 };

	btz_buf_put(b, btz_btm_magic, 8);
	put16(b, BTZ_BTM_VERSION);
	put16(b, 0);
	put32(b, fm->hp.d);
	put32(b, fm->hp.layers);
	put32(b, fm->hp.heads);
	put32(b, fm->hp.kv_heads);
	put32(b, fm->hp.ff);
	put32(b, fm->hp.context);
	put32(b, fm->hp.flags);
	btz_buf_put_u8(b, fm->hp.modality);
	btz_buf_put_u8(b, fm->hp.transform);
	put16(b, 0);
	/* The loader rejects lengths out of range; callers see its message. */
	put16(b, (uint16_t)(nn > 65535 ? 65535 : nn));
	btz_buf_put(b, fm->name ? fm->name : "", nn > 65535 ? 65535 : nn);
	put16(b, (uint16_t)(tn > 65535 ? 65535 : tn));
	btz_buf_put(b, train, tn > 65535 ? 65535 : tn);
	btz_buf_put_le64(b, fm->steps);
	put32(b, fm->valid_ubpb);
	btz_buf_put(b, z, 4); /* integer bits/byte: unknown */
}

static enum btz_status export_image(struct btz_buf *b,
				    const struct btz_fmodel *fm,
				    const struct btz_fstats *st,
				    struct btz_error *err)
{
	const struct btz_hparams *hp = &fm->hp;
	size_t d = hp->d, dh = fm->dh, F = hp->ff, W = hp->context;
	size_t kvd = (size_t)hp->kv_heads * dh, big = F > d ? F : d;
	double mt, mp, s0 = 0, s_a = 0, s_t, s_in, s_wout;
	double *sw = NULL, *ratio = NULL;
	int32_t *m = NULL, sh;
	enum btz_status rc = BTZ_OK;

	sw = malloc(sizeof(double) * big);
	ratio = malloc(sizeof(double) * big);
	m = malloc(sizeof(int32_t) * big);
	if (sw == NULL || ratio == NULL || m == NULL) {
		rc = btz_fail(err, BTZ_E_NOMEM, "export: out of memory");
		goto out;
	}
	put_header(b, fm);

	/* Embeddings: one scale, and the integer sum never above 127. */
	mt = maxabs(fm->tok_emb, 257 * d);
	mp = maxabs(fm->pos_emb, W * d);
	for (int div = 127; div > 64; div--) {
		s0 = (mt + mp) / div;
		if (s0 <= 0 || fabs(nearbyint(mt / s0)) +
				       fabs(nearbyint(mp / s0)) <= 127)
			break;
	}
	if (!(s0 > 0))
		s0 = 1; /* all-zero embeddings */
	quant_tensor(b, fm->tok_emb, 257 * d, s0);
	quant_tensor(b, fm->pos_emb, W * d, s0);

	/* exp_att[i] = 65535 e^(−i/16); exp_out[i] = 2^22 e^(−i/32). */
	for (int i = 0; i < 256; i++)
		put16(b, (uint16_t)nearbyint(65535.0 * exp(-i / 16.0)));
	/* One SiLU table for every layer: one scale for a. */
	for (uint32_t l = 0; l < hp->layers; l++)
		if (act_scale(st->a[l]) > s_a)
			s_a = act_scale(st->a[l]);
	s_t = silu_out_scale(s_a);
	for (int i = 0; i < 256; i++)
		put16(b, (uint16_t)(int16_t)nearbyint(silu((i - 128) * s_a) /
						      s_t));
	for (int i = 0; i < 1024; i++)
		put32(b, (uint32_t)nearbyint(4194304.0 * exp(-i / 32.0)));

	/* wout: one scale; logit index step = 1/32 natural unit. */
	s_wout = maxabs(fm->wout, 256 * d) / 127.0;
	quant_tensor(b, fm->wout, 256 * d, s_wout);
	s_in = hp->layers ? act_scale(st->x[hp->layers - 1]) : s0;
	ratio[0] = 32.0 * s_in * s_wout;
	rc = mults(ratio, 1, m, &sh, "f_mul", hp->layers, err);
	if (rc != BTZ_OK)
		goto out;
	puti32(b, m[0]);
	puti32(b, sh);

	s_in = s0;
	for (uint32_t l = 0; l < hp->layers; l++) {
		const struct btz_flayer *ly = &fm->layers[l];
		double s_q = act_scale(st->q[l]), s_k = act_scale(st->k[l]);
		double s_v = act_scale(st->v[l]), s_o, s_r, s_x1, s_u, s_h;
		double s_r2, s_x;
		int ao;

#define TRY(e) do { if ((rc = (e)) != BTZ_OK) goto out; } while (0)
		TRY(put_rq8(b, ly->wq, d, d, s_in, s_q, sw, ratio, m, "mq", l,
			    err));
		TRY(put_rq8(b, ly->wk, kvd, d, s_in, s_k, sw, ratio, m, "mk", l,
			    err));
		TRY(put_rq8(b, ly->wv, kvd, d, s_in, s_v, sw, ratio, m, "mv", l,
			    err));
		/* Score steps of 1/16 natural unit; o = 2^ao · Σ p v. */
		ratio[0] = s_q * s_k * 16.0 / sqrt((double)dh);
		TRY(mults(ratio, 1, m, &sh, "a_mul", l, err));
		puti32(b, m[0]);
		puti32(b, sh);
		for (ao = 7; ao > 0; ao--)
			if (st->o[l] * ldexp(1.0, ao) / s_v <= 127.0)
				break;
		puti32(b, ao);
		s_o = s_v / ldexp(1.0, ao);
		TRY(put_residual(b, ly->wo, d, d, s_in, s_o, st->r[l], sw,
				 ratio, m, &s_r, "mo", l, err));
		s_x1 = act_scale(st->x1[l]);
		TRY(put_ln(b, ly->g1, ly->b1, d, s_x1, ratio, "g1/b1", l, err));
		s_u = act_scale(st->u[l]);
		s_h = act_scale(st->h[l]);
		TRY(put_rq8(b, ly->w1, F, d, s_x1, s_a, sw, ratio, m, "m1", l,
			    err));
		TRY(put_rq8(b, ly->w3, F, d, s_x1, s_u, sw, ratio, m, "m3", l,
			    err));
		ratio[0] = s_t * s_u / s_h;
		TRY(mults(ratio, 1, m, &sh, "mh", l, err));
		puti32(b, m[0]);
		puti32(b, sh);
		TRY(put_residual(b, ly->w2, d, F, s_x1, s_h, st->r2[l], sw,
				 ratio, m, &s_r2, "m2", l, err));
		s_x = act_scale(st->x[l]);
		TRY(put_ln(b, ly->g2, ly->b2, d, s_x, ratio, "g2/b2", l, err));
#undef TRY
		(void)s_r;
		(void)s_r2;
		s_in = s_x;
	}
	if (!b->ok)
		rc = btz_fail(err, BTZ_E_NOMEM, "export: out of memory");
out:
	free(sw);
	free(ratio);
	free(m);
	return rc;
}

enum btz_status btz_export(struct btz_model **out,
			   const struct btz_fmodel *fm, const uint8_t *calib,
			   size_t calib_len, struct btz_error *err)
{
	struct btz_fstats st;
	struct btz_buf b;
	enum btz_status rc;
	size_t W = fm->hp.context;

	*out = NULL;
	BTZ_TRY(btz_hparams_check(&fm->hp, err));
	if (calib_len == 0)
		return btz_fail(err, BTZ_E_ARG,
				"export: no calibration bytes");
	memset(&st, 0, sizeof(st));
	for (size_t off = 0; off < calib_len; off += W)
		BTZ_TRY(btz_fmodel_forward_ex(fm, calib + off,
					      calib_len - off < W ?
						      calib_len - off : W,
					      NULL, NULL, &st, err));
	btz_buf_init(&b);
	rc = export_image(&b, fm, &st, err);
	if (rc == BTZ_OK) {
		btz_buf_put_le64(&b, XXH3_64bits(b.data, b.len));
		if (!b.ok)
			rc = btz_fail(err, BTZ_E_NOMEM,
				      "export: out of memory");
	}
	if (rc == BTZ_OK) {
		rc = btz_model_load_mem(out, b.data, b.len, err);
		if (rc != BTZ_OK && err != NULL)
			btz_fail_prefix(err, "export produced an invalid model");
	}
	btz_buf_free(&b);
	return rc;
}

/* ---- Import: the float network an integer model quantizes ---- */

/* W[o][c] = Wi[o][c] · k[o], k[o] = (m[o] / 2^s) · s_out / s_in. */
static void deq_rows(float *w, const int8_t *wi, size_t rows, size_t cols,
		     const int32_t *m, int32_t s, double s_out, double s_in)
{
	for (size_t o = 0; o < rows; o++) {
		double k = ldexp((double)m[o], -s) * s_out / s_in;

		for (size_t c = 0; c < cols; c++)
			w[o * cols + c] = (float)(wi[o * cols + c] * k);
	}
}

/* A tensor's largest weight when s_out = s_in (deq_rows's k scales it). */
static double maxabs_i8(const int8_t *wi, size_t rows, size_t cols,
			const int32_t *m, int32_t s)
{
	double mx = 0;

	for (size_t o = 0; o < rows; o++)
		for (size_t c = 0; c < cols; c++) {
			double v = fabs(wi[o * cols + c] * ldexp(m[o], -s));

			mx = v > mx ? v : mx;
		}
	return mx;
}

/* The free scale x of a product A(x)·B(1/x) that gives both factors the
 * same largest weight, a and b being their largest at x = 1. */
static double balance(double a, double b)
{
	return a > 0 && b > 0 ? sqrt(b / a) : 1;
}

/* Layer norm gains g = G · 4096 s_y / 2^sh, biases b = B · s_y / 2^sh,
 * with s_y the output scale that makes the mean |g| 1 (a fresh norm's). */
static double deq_ln(float *g, float *b, const int32_t *G, const int32_t *B,
		     int32_t sh, size_t d)
{
	double sum = 0, s_y;

	for (size_t c = 0; c < d; c++)
		sum += fabs(ldexp(G[c], -sh) * 4096.0);
	s_y = sum > 0 ? (double)d / sum : 1;
	for (size_t c = 0; c < d; c++) {
		g[c] = (float)(ldexp(G[c], -sh) * 4096.0 * s_y);
		b[c] = (float)(ldexp(B[c], -sh) * s_y);
	}
	return s_y;
}

/* Squared distance of the SiLU table from the one scale s_a gives. */
static double silu_fit(const int16_t *t, double s_a)
{
	double s_t = silu_out_scale(s_a), e = 0;

	for (int i = 0; i < 256; i++) {
		double r = t[i] - silu((i - 128) * s_a) / s_t;

		e += r * r;
	}
	return e;
}

/* s_a, which only the SiLU table records: the best of a logarithmic grid
 * over 12 decades, then refined by golden sections. */
static void silu_scales(const int16_t *t, double *s_a, double *s_t)
{
	double best = 1e300, lo, hi, x = 1e-8;
	const double phi = 0.6180339887498949;

	for (double e = -8; e <= 4; e += 0.01) {
		double v = silu_fit(t, pow(10, e));

		if (v < best) {
			best = v;
			x = e;
		}
	}
	lo = x - 0.01;
	hi = x + 0.01;
	for (int i = 0; i < 60; i++) {
		double a = hi - phi * (hi - lo), b = lo + phi * (hi - lo);

		if (silu_fit(t, pow(10, a)) < silu_fit(t, pow(10, b)))
			hi = b;
		else
			lo = a;
	}
	*s_a = pow(10, (lo + hi) / 2);
	*s_t = silu_out_scale(*s_a);
}

enum btz_status btz_import(struct btz_fmodel **out, const struct btz_model *m,
			   struct btz_error *err)
{
	const struct btz_hparams *hp = &m->hp;
	size_t d = hp->d, F = hp->ff, W = hp->context, dh = m->dh;
	size_t kvd = (size_t)hp->kv_heads * dh;
	struct btz_fmodel *fm;
	double s0, s_in, s_a, s_t, mp = 0;

	*out = NULL;
	BTZ_TRY(btz_fmodel_alloc(&fm, hp, m->name, m->train_data, err));
	fm->steps = m->steps;
	fm->valid_ubpb = m->valid_ubpb_float;
	/* x0's scale is free (the first layer's weights absorb it): the one
	 * that gives the positions amplitude 1, as btztrain makes them. */
	for (size_t i = 0; i < W * d; i++)
		mp = abs(m->pos_emb[i]) > mp ? abs(m->pos_emb[i]) : mp;
	s0 = mp > 0 ? 1 / mp : 1.0 / 127;
	for (size_t i = 0; i < 257 * d; i++)
		fm->tok_emb[i] = (float)(m->tok_emb[i] * s0);
	for (size_t i = 0; i < W * d; i++)
		fm->pos_emb[i] = (float)(m->pos_emb[i] * s0);
	silu_scales(m->silu, &s_a, &s_t);

	s_in = s0;
	for (uint32_t l = 0; l < hp->layers; l++) {
		const struct btz_layer *L = &m->layers[l];
		struct btz_flayer *ly = &fm->layers[l];
		/* Scores need s_q · s_k only; v's scale is free, o's follows. */
		double qk = ldexp(L->a_mul, -L->a_shift) * sqrt((double)dh) /
			    16.0;
		double s_q = balance(maxabs_i8(L->wq, d, d, L->mq, L->sq),
				     maxabs_i8(L->wk, kvd, d, L->mk, L->sk) *
					     qk);
		double s_r = s_in / L->rx, s_v, s_x1, s_u, s_h, s_r2;

		deq_rows(ly->wq, L->wq, d, d, L->mq, L->sq, s_q, s_in);
		deq_rows(ly->wk, L->wk, kvd, d, L->mk, L->sk, qk / s_q, s_in);
		s_v = balance(maxabs_i8(L->wv, kvd, d, L->mv, L->sv) / s_in,
			      maxabs_i8(L->wo, d, d, L->mo, L->so) * s_r *
				      ldexp(1.0, L->ao_shift));
		deq_rows(ly->wv, L->wv, kvd, d, L->mv, L->sv, s_v, s_in);
		deq_rows(ly->wo, L->wo, d, d, L->mo, L->so, s_r,
			 s_v / ldexp(1.0, L->ao_shift));
		s_x1 = deq_ln(ly->g1, ly->b1, L->g1, L->b1, L->ln1_shift, d);

		/* h = silu(a) · u: a's scale is the table's, u's is free. */
		s_r2 = s_x1 / L->rx2;
		deq_rows(ly->w1, L->w1, F, d, L->m1, L->s1, s_a, s_x1);
		s_u = balance(maxabs_i8(L->w3, F, d, L->m3, L->s3) / s_x1,
			      maxabs_i8(L->w2, d, F, L->m2, L->s2) * s_r2 /
				      (s_t / ldexp(L->mh, -L->sh)));
		s_h = s_t * s_u / ldexp(L->mh, -L->sh);
		deq_rows(ly->w3, L->w3, F, d, L->m3, L->s3, s_u, s_x1);
		deq_rows(ly->w2, L->w2, d, F, L->m2, L->s2, s_r2, s_h);
		s_in = deq_ln(ly->g2, ly->b2, L->g2, L->b2, L->ln2_shift, d);
	}
	/* Logits in steps of 1/32 natural unit: f_mul = 32 s_in s_wout. */
	{
		double s_wout = ldexp(m->f_mul, -m->f_shift) / (32.0 * s_in);

		for (size_t i = 0; i < 256 * d; i++)
			fm->wout[i] = (float)(m->wout[i] * s_wout);
	}
	*out = fm;
	return BTZ_OK;
}
