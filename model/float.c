/* The float checkpoint (.btf, doc/checkpoint.md) and the float network.
 * One walk over the tensors in file order serves the allocator, the
 * loader and the saver, so sizes and order have a single description. */
#include "model/float.h"
#include "common/file.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/bytes.h"
#include "model/intops.h"

static const uint8_t btf_magic[8] = { 0x89, 'B', 'T', 'F',
				      '\r', '\n', 0x1a, '\n' };

#define BTF_NAME_MAX 255u
#define BTF_TRAIN_MAX 4095u
/* magic, version, reserved, 7 u32, modality, transform, reserved */
#define BTF_HEAD_FIXED (8 + 2 + 2 + 4 * 7 + 1 + 1 + 2)
#define BTF_HEAD_TAIL (8 + 4) /* steps, valid bits/byte */
#define BTF_SUM_SIZE 8

/* ---- The layout ---- */

#define BTF_PER_LAYER 11

/* The address of the pointer field holding tensor i (file order) and its
 * element count; i < 3 + 11·L. */
static float **btf_tensor(struct btz_fmodel *fm, size_t i, size_t *count)
{
	const struct btz_hparams *hp = &fm->hp;
	size_t d = hp->d, q = d, kv = (size_t)hp->kv_heads * (d / hp->heads);
	size_t F = hp->ff;
	struct btz_flayer *ly;

	switch (i) {
	case 0: *count = 257 * d; return &fm->tok_emb;
	case 1: *count = (size_t)hp->context * d; return &fm->pos_emb;
	case 2: *count = 256 * d; return &fm->wout;
	}
	ly = &fm->layers[(i - 3) / BTF_PER_LAYER];
	switch ((i - 3) % BTF_PER_LAYER) {
	case 0: *count = q * d; return &ly->wq;
	case 1: *count = kv * d; return &ly->wk;
	case 2: *count = kv * d; return &ly->wv;
	case 3: *count = d * q; return &ly->wo;
	case 4: *count = d; return &ly->g1;
	case 5: *count = d; return &ly->b1;
	case 6: *count = F * d; return &ly->w1;
	case 7: *count = F * d; return &ly->w3;
	case 8: *count = d * F; return &ly->w2;
	case 9: *count = d; return &ly->g2;
	default: *count = d; return &ly->b2;
	}
}

static size_t btf_ntensors(const struct btz_hparams *hp)
{
	return 3 + (size_t)hp->layers * BTF_PER_LAYER;
}

/* Floats of all tensors, overflow-checked (hp already checked, so the
 * dimensions are bounded, but a 32-bit size_t cannot hold them all). */
static enum btz_status btf_floats(const struct btz_hparams *hp, size_t *out,
				  struct btz_error *err)
{
	size_t d = hp->d, kv = (size_t)hp->kv_heads * (d / hp->heads);
	size_t per = 0, glob = 0, t, total;

	if (btz_mul_overflow(d, 4 * d + 2 * kv + 4, &per) ||
	    btz_mul_overflow(d, 3 * (size_t)hp->ff, &t) ||
	    btz_add_overflow(per, t, &per) ||
	    btz_mul_overflow(d, 257 + 256 + (size_t)hp->context, &glob) ||
	    btz_mul_overflow(per, hp->layers, &t) ||
	    btz_add_overflow(glob, t, &total) ||
	    btz_mul_overflow(total, 4, &t))
		return btz_fail(err, BTZ_E_LIMIT,
				"float model too large for this machine");
	*out = total;
	return BTZ_OK;
}

enum btz_status btz_fmodel_floats(const struct btz_hparams *hp, size_t *out,
				  struct btz_error *err)
{
	BTZ_TRY(btz_hparams_check(hp, err));
	return btf_floats(hp, out, err);
}

/* ---- Memory ---- */

void btz_fmodel_free(struct btz_fmodel *fm)
{
	if (fm == NULL)
		return;
	free(fm->name);
	free(fm->train_data);
	free(fm->layers);
	free(fm->arena);
	free(fm);
}

enum btz_status btz_fmodel_alloc(struct btz_fmodel **out,
				 const struct btz_hparams *hp, const char *name,
				 const char *train_data, struct btz_error *err)
{
	struct btz_fmodel *fm;
	size_t total, off = 0, count;

	*out = NULL;
	BTZ_TRY(btz_hparams_check(hp, err));
	BTZ_TRY(btf_floats(hp, &total, err));
	if (name == NULL)
		name = "";
	if (train_data == NULL)
		train_data = "";
	fm = calloc(1, sizeof(*fm));
	if (fm == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	fm->hp = *hp;
	fm->dh = hp->d / hp->heads;
	fm->layers = calloc(hp->layers, sizeof(*fm->layers));
	fm->arena = calloc(total, sizeof(float));
	fm->arena_floats = total;
	fm->name = btz_dup_bytes(name, strlen(name));
	fm->train_data = btz_dup_bytes(train_data, strlen(train_data));
	if (fm->layers == NULL || fm->arena == NULL || fm->name == NULL ||
	    fm->train_data == NULL) {
		btz_fmodel_free(fm);
		return btz_fail(err, BTZ_E_NOMEM,
				"out of memory (float model of %zu floats)",
				total);
	}
	for (size_t i = 0; i < btf_ntensors(hp); i++) {
		float **slot = btf_tensor(fm, i, &count);

		*slot = fm->arena + off;
		off += count;
	}
	*out = fm;
	return BTZ_OK;
}

/* ---- Loader ---- */

static float get_f32(const uint8_t *p)
{
	uint32_t u = btz_get_le32(p);
	float f;

	memcpy(&f, &u, 4);
	return f;
}

static void put_f32(uint8_t *p, float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	btz_put_le32(p, u);
}

enum btz_status btz_fmodel_load_mem(struct btz_fmodel **out, const void *data,
				    size_t n, struct btz_error *err)
{
	const uint8_t *p = data, *name, *train;
	size_t pos, len, name_n, train_n, floats, expect;
	char sname[BTF_NAME_MAX + 1], strain[BTF_TRAIN_MAX + 1];
	struct btz_hparams hp;
	struct btz_fmodel *fm;

	*out = NULL;
	if (n < 8 || memcmp(p, btf_magic, 8) != 0)
		return btz_fail(err, BTZ_E_CORRUPT,
				"not a btz float checkpoint (bad magic)");
	if (n < BTF_HEAD_FIXED + 2 + 1 + 2 + BTF_HEAD_TAIL + BTF_SUM_SIZE)
		return btz_fail(err, BTZ_E_CORRUPT, "truncated (%zu bytes)", n);
	len = n - BTF_SUM_SIZE;
	if (!BTZ_SUM_OK(btz_get_le64(p + len), XXH3_64bits(p, len)))
		return btz_fail(err, BTZ_E_CHECKSUM,
				"checksum mismatch (damaged or truncated file)");
	BTZ_TRY(btz_model_head_decode(p, BTZ_BTF_VERSION, "checkpoint", &hp,
				      err));
	pos = BTF_HEAD_FIXED;
	BTZ_TRY(btz_model_read_str(p, &pos, len, "name", 1, BTF_NAME_MAX, &name,
			 &name_n, err));
	BTZ_TRY(btz_model_read_str(p, &pos, len, "training data", 0, BTF_TRAIN_MAX,
			 &train, &train_n, err));
	if (len - pos < BTF_HEAD_TAIL)
		return btz_fail(err, BTZ_E_CORRUPT, "truncated header");
	BTZ_TRY(btf_floats(&hp, &floats, err));
	/* floats · 4 was checked; pos + 12 + 8 ≤ n. */
	if (btz_add_overflow(pos + BTF_HEAD_TAIL + BTF_SUM_SIZE, floats * 4,
			     &expect) || expect > n)
		return btz_fail(err, BTZ_E_CORRUPT,
				"truncated (%zu bytes, expected %zu)", n,
				pos + BTF_HEAD_TAIL + BTF_SUM_SIZE + floats * 4);
	if (expect < n)
		return btz_fail(err, BTZ_E_CORRUPT,
				"trailing data (%zu bytes, expected %zu)", n,
				expect);
	memcpy(sname, name, name_n);
	sname[name_n] = '\0';
	memcpy(strain, train, train_n);
	strain[train_n] = '\0';
	BTZ_TRY(btz_fmodel_alloc(&fm, &hp, sname, strain, err));
	fm->steps = btz_get_le64(p + pos);
	fm->valid_ubpb = btz_get_le32(p + pos + 8);
	pos += BTF_HEAD_TAIL;
	for (size_t i = 0; i < floats; i++) {
		float f = get_f32(p + pos + 4 * i);

		if (!isfinite(f)) {
			btz_fmodel_free(fm);
			return btz_fail(err, BTZ_E_CORRUPT,
					"tensor value %zu is not finite", i);
		}
		fm->arena[i] = f;
	}
	*out = fm;
	return BTZ_OK;
}

enum btz_status btz_fmodel_load(struct btz_fmodel **out, const char *path,
				struct btz_error *err)
{
	FILE *f;
	uint8_t *b = NULL;
	size_t n = 0, cap = 0, k;
	enum btz_status st;

	*out = NULL;
	f = fopen(path, "rb");
	if (f == NULL)
		return btz_fail(err, BTZ_E_IO, "%s: cannot open: %s", path,
				strerror(errno));
	for (;;) {
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 1 << 16;
			uint8_t *nb = nc > cap ? realloc(b, nc) : NULL;

			if (nb == NULL) {
				free(b);
				fclose(f);
				return btz_fail(err, BTZ_E_NOMEM,
						"%s: out of memory", path);
			}
			b = nb;
			cap = nc;
		}
		k = fread(b + n, 1, cap - n, f);
		n += k;
		if (k == 0)
			break;
	}
	if (ferror(f)) {
		free(b);
		fclose(f);
		return btz_fail(err, BTZ_E_IO, "%s: cannot read", path);
	}
	fclose(f);
	st = btz_fmodel_load_mem(out, b, n, err);
	free(b);
	if (st != BTZ_OK && err != NULL)
		btz_fail_prefix(err, "%s", path);
	return st;
}

/* ---- Saver ---- */

enum btz_status btz_fmodel_save_mem(const struct btz_fmodel *fm,
				    uint8_t **out, size_t *n,
				    struct btz_error *err)
{
	const char *train = fm->train_data ? fm->train_data : "";
	size_t name_n, train_n, floats, head, total, pos;
	uint8_t *b;

	*out = NULL;
	*n = 0;
	BTZ_TRY(btz_hparams_check(&fm->hp, err));
	BTZ_TRY(btf_floats(&fm->hp, &floats, err));
	if (fm->name == NULL || (name_n = strlen(fm->name)) < 1 ||
	    name_n > BTF_NAME_MAX)
		return btz_fail(err, BTZ_E_ARG, "model name must be 1..%u bytes",
				BTF_NAME_MAX);
	train_n = strlen(train);
	if (train_n > BTF_TRAIN_MAX)
		return btz_fail(err, BTZ_E_ARG,
				"training data description over %u bytes",
				BTF_TRAIN_MAX);
	if (fm->arena == NULL || fm->arena_floats != floats)
		return btz_fail(err, BTZ_E_ARG, "float model has no tensors");
	for (size_t i = 0; i < floats; i++)
		if (!isfinite(fm->arena[i]))
			return btz_fail(err, BTZ_E_ARG,
					"tensor value %zu is not finite", i);
	head = BTF_HEAD_FIXED + 2 + name_n + 2 + train_n + BTF_HEAD_TAIL;
	total = head + floats * 4 + BTF_SUM_SIZE;
	b = malloc(total);
	if (b == NULL)
		return btz_fail(err, BTZ_E_NOMEM,
				"out of memory (checkpoint of %zu bytes)", total);
	btz_model_head_encode(b, btf_magic, BTZ_BTF_VERSION, &fm->hp);
	pos = BTF_HEAD_FIXED;
	btz_put_le16(b + pos, (uint16_t)name_n);
	memcpy(b + pos + 2, fm->name, name_n);
	pos += 2 + name_n;
	btz_put_le16(b + pos, (uint16_t)train_n);
	if (train_n)
		memcpy(b + pos + 2, train, train_n);
	pos += 2 + train_n;
	btz_put_le64(b + pos, fm->steps);
	btz_put_le32(b + pos + 8, fm->valid_ubpb);
	pos += BTF_HEAD_TAIL;
	for (size_t i = 0; i < floats; i++)
		put_f32(b + pos + 4 * i, fm->arena[i]);
	pos += floats * 4;
	btz_put_le64(b + pos, XXH3_64bits(b, pos));
	*out = b;
	*n = total;
	return BTZ_OK;
}

enum btz_status btz_fmodel_save(const struct btz_fmodel *fm,
				const char *path, struct btz_error *err)
{
	enum btz_status st;
	uint8_t *b;
	size_t n;

	BTZ_TRY(btz_fmodel_save_mem(fm, &b, &n, err));
	st = btz_file_write_atomic(path, b, n, err);
	free(b);
	return st;
}

/* ---- Generator ---- */

/* Uniform in [−a, a): standard deviation a / sqrt(3). */
static float uniform(uint64_t *s, double a)
{
	return (float)(((double)(btz_splitmix64(s) >> 11) * 0x1p-52 - 1.0) * a);
}

/* Weights of standard deviation sqrt(1 / fan_in). */
static void fill(float *w, size_t count, size_t fan_in, uint64_t *s)
{
	double a = sqrt(3.0 / (double)fan_in);

	for (size_t i = 0; i < count; i++)
		w[i] = uniform(s, a);
}

enum btz_status btz_fmodel_generate(struct btz_fmodel **out,
				    const struct btz_hparams *hp,
				    uint64_t seed, struct btz_error *err)
{
	struct btz_fmodel *fm;
	size_t d = hp->d, F = hp->ff, kv;
	uint64_t s = seed;
	char name[40];

	snprintf(name, sizeof(name), "random-float-%" PRIu64, seed);
	BTZ_TRY(btz_fmodel_alloc(&fm, hp, name, "generated", err));
	kv = (size_t)hp->kv_heads * fm->dh;
	fill(fm->tok_emb, 257 * d, 3, &s); /* std 1/sqrt(3) ≈ 0.58 */
	for (size_t t = 0; t < hp->context; t++)
		for (size_t c = 0; c < d; c++) {
			double f = pow(10000.0, -(double)(c & ~(size_t)1) /
							(double)d);

			fm->pos_emb[t * d + c] = (float)(0.1 *
				(c & 1 ? cos((double)t * f) : sin((double)t * f)));
		}
	fill(fm->wout, 256 * d, d, &s);
	for (uint32_t l = 0; l < hp->layers; l++) {
		struct btz_flayer *ly = &fm->layers[l];

		fill(ly->wq, d * d, d, &s);
		fill(ly->wk, kv * d, d, &s);
		fill(ly->wv, kv * d, d, &s);
		fill(ly->wo, d * d, d, &s);
		fill(ly->w1, F * d, d, &s);
		fill(ly->w3, F * d, d, &s);
		fill(ly->w2, d * F, F, &s);
		for (size_t c = 0; c < d; c++) {
			ly->g1[c] = ly->g2[c] = 1.0f;
			ly->b1[c] = ly->b2[c] = 0.0f;
		}
	}
	*out = fm;
	return BTZ_OK;
}

/* ---- The float network ---- */

static void track(double *m, const float *x, size_t n)
{
	double v = *m;

	for (size_t i = 0; i < n; i++)
		if (fabs((double)x[i]) > v)
			v = fabs((double)x[i]);
	*m = v;
}

/* a · b over k floats, in eight running sums (a fixed order, and one
 * the compiler can vectorize without reassociating). */
static float dot(const float *a, const float *b, size_t k)
{
	float acc[8] = { 0 }, sum = 0;
	size_t c = 0;

	for (; c + 8 <= k; c += 8)
		for (int i = 0; i < 8; i++)
			acc[i] += a[c + i] * b[c + i];
	for (; c < k; c++)
		sum += a[c] * b[c];
	for (int i = 0; i < 8; i++)
		sum += acc[i];
	return sum;
}

/* out[r][o] = x[r] · w[o] for rows r < n: x [n][k], w [m][k]. */
static void matmul(float *out, const float *x, const float *w, size_t n,
		   size_t k, size_t m)
{
	for (size_t r = 0; r < n; r++)
		for (size_t o = 0; o < m; o++)
			out[r * m + o] = dot(x + r * k, w + o * k, k);
}

/* y = (r − mean) / sqrt(var + 1e-5) · g + b, per row of d. */
static void layer_norm(float *y, const float *r, const float *g,
		       const float *b, size_t n, size_t d)
{
	for (size_t t = 0; t < n; t++) {
		const float *x = r + t * d;
		double mean = 0, var = 0, inv;

		for (size_t c = 0; c < d; c++)
			mean += x[c];
		mean /= (double)d;
		for (size_t c = 0; c < d; c++)
			var += (x[c] - mean) * (x[c] - mean);
		var /= (double)d;
		inv = 1.0 / sqrt(var + 1e-5);
		for (size_t c = 0; c < d; c++)
			y[t * d + c] = (float)((x[c] - mean) * inv * g[c] + b[c]);
	}
}

enum btz_status btz_fmodel_forward_ex(const struct btz_fmodel *fm,
				      const uint8_t *bytes, size_t n,
				      float *logits, float *hidden,
				      struct btz_fstats *st,
				      struct btz_error *err)
{
	const struct btz_hparams *hp = &fm->hp;
	size_t d = hp->d, dh = fm->dh, H = hp->heads, Hkv = hp->kv_heads;
	size_t kvd = Hkv * dh, F = hp->ff, big;
	float *x, *q, *k, *v, *o, *r, *x1, *a, *u, *p, *lg;
	float *buf;
	double scale = 1.0 / sqrt((double)dh);

	if (n < 1 || n > hp->context)
		return btz_fail(err, BTZ_E_ARG,
				"forward: %zu bytes, window is 1..%" PRIu32, n,
				hp->context);
	big = F > 256 ? F : 256;
	buf = malloc(sizeof(float) *
		     (n * (4 * d + 2 * kvd + d + 2 * big) + n));
	if (buf == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "forward: out of memory");
	x = buf;
	q = x + n * d;
	k = q + n * d;
	v = k + n * kvd;
	o = v + n * kvd;
	r = o + n * d;
	x1 = r + n * d;
	a = x1 + n * d;
	u = a + n * big;
	p = u + n * big;
	for (size_t t = 0; t < n; t++) {
		size_t tok = t == 0 ? BTZ_BTM_START : bytes[t - 1];

		for (size_t c = 0; c < d; c++)
			x[t * d + c] = fm->tok_emb[tok * d + c] +
				       fm->pos_emb[t * d + c];
	}
	if (st)
		track(&st->x0, x, n * d);
	for (uint32_t l = 0; l < hp->layers; l++) {
		const struct btz_flayer *ly = &fm->layers[l];

		matmul(q, x, ly->wq, n, d, d);
		matmul(k, x, ly->wk, n, d, kvd);
		matmul(v, x, ly->wv, n, d, kvd);
		for (size_t t = 0; t < n; t++)
			for (size_t h = 0; h < H; h++) {
				size_t g = h * Hkv / H;
				const float *qh = q + t * d + h * dh;
				double mx = -INFINITY, z = 0;
				/* Past the sink, the span's tail (all of it
				 * without a span). */
				size_t st = btz_att_tail(t, btz_hp_span(hp));

				for (size_t j = 0; j <= t;
				     j = btz_att_next(j, st)) {
					const float *kj = k + j * kvd + g * dh;
					double s = 0;

					for (size_t c = 0; c < dh; c++)
						s += (double)qh[c] * kj[c];
					p[j] = (float)(s * scale);
					if (p[j] > mx)
						mx = p[j];
				}
				for (size_t j = 0; j <= t;
				     j = btz_att_next(j, st)) {
					p[j] = (float)exp(p[j] - mx);
					z += p[j];
				}
				for (size_t c = 0; c < dh; c++) {
					double acc = 0;

					for (size_t j = 0; j <= t;
					     j = btz_att_next(j, st))
						acc += (double)p[j] *
						       v[j * kvd + g * dh + c];
					o[t * d + h * dh + c] = (float)(acc / z);
				}
			}
		matmul(r, o, ly->wo, n, d, d);
		for (size_t i = 0; i < n * d; i++)
			r[i] += x[i];
		layer_norm(x1, r, ly->g1, ly->b1, n, d);
		if (st) {
			track(&st->q[l], q, n * d);
			track(&st->k[l], k, n * kvd);
			track(&st->v[l], v, n * kvd);
			track(&st->o[l], o, n * d);
			track(&st->r[l], r, n * d);
			track(&st->x1[l], x1, n * d);
		}
		matmul(a, x1, ly->w1, n, d, F);
		matmul(u, x1, ly->w3, n, d, F);
		if (st) {
			track(&st->a[l], a, n * F);
			track(&st->u[l], u, n * F);
		}
		for (size_t i = 0; i < n * F; i++)
			a[i] = (float)(a[i] / (1.0 + exp(-(double)a[i])) * u[i]);
		if (st)
			track(&st->h[l], a, n * F);
		matmul(r, a, ly->w2, n, F, d);
		for (size_t i = 0; i < n * d; i++)
			r[i] += x1[i];
		layer_norm(x, r, ly->g2, ly->b2, n, d);
		if (st) {
			track(&st->r2[l], r, n * d);
			track(&st->x[l], x, n * d);
		}
	}
	if (hidden)
		memcpy(hidden, x, n * d * sizeof(float));
	if (logits || st) {
		lg = logits ? logits : a; /* a has room for n · 256 */
		matmul(lg, x, fm->wout, n, d, 256);
		if (st)
			track(&st->logits, lg, n * 256);
	}
	free(buf);
	return BTZ_OK;
}

enum btz_status btz_fmodel_forward(const struct btz_fmodel *fm,
				   const uint8_t *b, size_t n, float *logits,
				   struct btz_error *err)
{
	return btz_fmodel_forward_ex(fm, b, n, logits, NULL, NULL, err);
}

enum btz_status btz_fmodel_xent(const struct btz_fmodel *fm,
				const uint8_t *data, size_t len, double *bpb,
				struct btz_error *err)
{
	size_t W = fm->hp.context;
	double bits = 0;
	float *lg;

	*bpb = 0;
	if (len == 0)
		return BTZ_OK;
	lg = malloc(sizeof(float) * 256 * W);
	if (lg == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "xent: out of memory");
	for (size_t off = 0; off < len; off += W) {
		size_t n = len - off < W ? len - off : W;
		enum btz_status s;

		s = btz_fmodel_forward(fm, data + off, n, lg, err);
		if (s != BTZ_OK) {
			free(lg);
			return s;
		}
		for (size_t t = 0; t < n; t++) {
			const float *l = lg + t * 256;
			double mx = l[0], z = 0;

			for (int b = 1; b < 256; b++)
				if (l[b] > mx)
					mx = l[b];
			for (int b = 0; b < 256; b++)
				z += exp(l[b] - mx);
			bits += (log(z) - (l[data[off + t]] - mx)) / log(2.0);
		}
	}
	free(lg);
	*bpb = bits / (double)len;
	return BTZ_OK;
}
