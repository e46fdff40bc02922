/* btztrain: trains the float network on byte streams with AdamW, keeps a
 * resumable checkpoint, and exports the integer .btm that btzpack uses,
 * measured through the real integer engine. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "archiver/cli.h"
#include "archiver/models.h"
#include "common/bytes.h"
#include "common/file.h"
#include "format/btz.h"
#include "model/btm.h"
#include "model/engine.h"
#include "model/export.h"
#include "model/float.h"
#include "model/transform.h"
#include "trainer/bf16.h"
#include "trainer/gnet.h"
#include "trainer/net.h"
#include "trainer/vec.h"

#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
void openblas_set_num_threads(int n);
#endif

struct opts {
	struct btz_hparams hp;
	const char *out, *dir, *valid, *name, *device, *init;
	const char *manifest, *valid_manifest;
	uint64_t steps, seed, stop_after;
	uint32_t batch, warmup, eval_every;
	int threads;
	double lr, lr_min, wd, clip, qat_from, time_limit, ema;
	size_t valid_bytes, calib_bytes;
	int resume, verbose, quiet, fp32, qat_act;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- input ---- */

static void append_file(const char *path, uint8_t **buf, size_t *len,
			size_t *cap)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");

	if (f == NULL)
		btz_die("%s: %s", path, strerror(errno));
	for (;;) {
		if (*cap - *len < 1 << 20) {
			*cap = *cap * 2 + (1 << 20);
			*buf = realloc(*buf, *cap);
			if (*buf == NULL)
				btz_die("%s: out of memory", path);
		}
		size_t k = fread(*buf + *len, 1, *cap - *len, f);
		*len += k;
		if (k == 0)
			break;
	}
	if (ferror(f))
		btz_die("%s: read error", path);
	if (f != stdin)
		fclose(f);
}

/* Where training windows may start: anywhere on a unit, or, for a
 * layout in tiles, only where btzpack starts a window (a multiple of the
 * window from a chunk's start), so that each window is a tile. */
struct starts {
	size_t *at, n, cap;
};

static void add_start(struct starts *w, size_t at)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 4096;
		w->at = realloc(w->at, w->cap * sizeof(*w->at));
		if (w->at == NULL)
			btz_die("out of memory for window starts");
	}
	w->at[w->n++] = at;
}

static void forward(unsigned t, uint8_t *p, size_t n,
		    const struct btz_rows *r)
{
	if (btz_transform_forward(t, p, n, r) != 0)
		btz_die("out of memory for the layout");
}

/* The layout of p[0, n), as btzpack would code it. A layout that
 * predicts from the row above (med, medt, mixt) needs each image's
 * width: the manifest's lines (NAME, OFFSET, LENGTH, WxH, tab-separated,
 * offsets into p, as scripts/data writes them) give it, and each image is cut,
 * like a payload, into chunks from its first pixel as btzpack cuts them
 * (btz_transform_chunk: 64 windows, or the bands of tiles). Other
 * layouts, and images without a manifest (one long row), are cut into
 * chunks (64 windows, lpcz 128) from p's start. With starts (tiles), the
 * window starts of the images' chunks that have a whole window after
 * them, windows of T bytes. */
static void layout(unsigned t, uint8_t *p, size_t n, const char *manifest,
		   size_t T, struct starts *starts)
{
	FILE *f;
	char line[8192];
	size_t done = 0;
	unsigned lineno = 0;

	if (manifest == NULL || !btz_transform_uses_rows(t)) {
		/* Chunks as btzpack cuts a payload: an adaptive layout
		 * (lms, lpcz) restarts at each, as it does there. */
		size_t c = btz_transform_chunk(t, 0, T);

		for (size_t at = 0; at < n; at += c)
			forward(t, p + at, n - at < c ? n - at : c, NULL);
		return;
	}
	f = fopen(manifest, "r");
	if (f == NULL)
		btz_die("%s: %s", manifest, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL && done < n) {
		unsigned long long off, len;
		unsigned w, h;
		char *tab = strchr(line, '\t');

		lineno++;
		if (tab == NULL ||
		    sscanf(tab + 1, "%llu\t%llu\t%ux%u", &off, &len, &w,
			   &h) != 4 || off < done || len % 3 != 0 || w == 0 ||
		    w > BTZ_ROWS_WIDTH_MAX)
			btz_die("%s: line %u: not NAME, OFFSET, LENGTH, WxH "
				"of an RGB image after the line before it",
				manifest, lineno);
		if (off >= n)
			break;
		if (len > n - off)
			len = n - off;
		/* Bytes no line covers: one long row, as btzpack codes
		 * RGB of unknown width. */
		forward(t, p + done, (size_t)off - done, NULL);
		size_t c = btz_transform_chunk(t, w, T);
		for (size_t at = 0; at < len; at += c) {
			struct btz_rows r = btz_rows_at(w, at);
			size_t k = len - at < c ? len - at : c;

			forward(t, p + off + at, k, &r);
			for (size_t j = 0; starts != NULL && j < k; j += T)
				if (off + at + j + T <= n)
					add_start(starts, off + at + j);
		}
		done = (size_t)(off + len);
	}
	if (ferror(f))
		btz_die("%s: read error", manifest);
	fclose(f);
	forward(t, p + done, n - done, NULL);
	if (starts != NULL && starts->n == 0)
		btz_die("%s: no image holds a whole window", manifest);
}

/* ---- model setup ---- */

static double gauss(uint64_t *s)
{
	double u1 = ((btz_splitmix64(s) >> 11) + 1) * 0x1.0p-53;
	double u2 = (btz_splitmix64(s) >> 11) * 0x1.0p-53;

	return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

static void init_normal(float *w, size_t n, double sd, uint64_t *s)
{
	for (size_t i = 0; i < n; i++)
		w[i] = (float)(sd * gauss(s));
}

/* Fresh weights: unit-variance token embeddings, sinusoidal positions of
 * amplitude 1 (fixed: never trained), linear maps of variance 1/fan_in
 * (the residual branches' outputs smaller), layer norms g = 1, b = 0. */
static void init_model(struct btz_fmodel *fm, uint64_t seed)
{
	const struct btz_hparams *hp = &fm->hp;
	size_t d = hp->d, F = hp->ff, kv = (size_t)hp->kv_heads * fm->dh;
	double branch = 1 / sqrt(2.0 * hp->layers);
	uint64_t s = seed;

	init_normal(fm->tok_emb, 257 * d, 1, &s);
	for (size_t t = 0; t < hp->context; t++)
		for (size_t i = 0; i < d; i += 2) {
			double f = pow(10000, -(double)i / (double)d);
			fm->pos_emb[t * d + i] = (float)sin((double)t * f);
			if (i + 1 < d)
				fm->pos_emb[t * d + i + 1] = (float)cos((double)t * f);
		}
	init_normal(fm->wout, 256 * d, 1 / sqrt((double)d), &s);
	for (uint32_t l = 0; l < hp->layers; l++) {
		struct btz_flayer *w = &fm->layers[l];
		init_normal(w->wq, d * d, 1 / sqrt((double)d), &s);
		init_normal(w->wk, kv * d, 1 / sqrt((double)d), &s);
		init_normal(w->wv, kv * d, 1 / sqrt((double)d), &s);
		init_normal(w->wo, d * d, branch / sqrt((double)d), &s);
		init_normal(w->w1, F * d, 1 / sqrt((double)d), &s);
		init_normal(w->w3, F * d, 1 / sqrt((double)d), &s);
		init_normal(w->w2, d * F, branch / sqrt((double)F), &s);
		for (size_t c = 0; c < d; c++) {
			w->g1[c] = w->g2[c] = 1;
			w->b1[c] = w->b2[c] = 0;
		}
	}
}

/* --init's weights: a checkpoint's float network, or the one a .btm
 * quantizes (btz_import), so that a shipped model can be trained further
 * by whoever has only the model. */
static enum btz_status load_init(const char *path, struct btz_fmodel **out,
				 struct btz_error *err)
{
	uint8_t head[8] = { 0 };
	FILE *f = fopen(path, "rb");
	struct btz_model *m = NULL;
	enum btz_status st;

	if (f != NULL) {
		size_t n = fread(head, 1, sizeof(head), f);

		fclose(f);
		if (n == sizeof(head) &&
		    memcmp(head, btz_btm_magic, sizeof(head)) == 0) {
			BTZ_TRY(btz_model_load(&m, path, err));
			st = btz_import(out, m, err);
			btz_model_free(m);
			return st;
		}
	}
	return btz_fmodel_load(out, path, err);
}

static size_t off_of(const struct btz_fmodel *fm, const float *p)
{
	return (size_t)(p - fm->arena);
}

/* Per float: 0 = frozen (positions), 1 = trained without weight decay
 * (token embeddings, layer norms), 2 = trained with decay (matrices). */
static uint8_t *param_classes(const struct btz_fmodel *fm)
{
	uint8_t *c = malloc(fm->arena_floats);
	size_t d = fm->hp.d;

	if (c == NULL)
		btz_die("out of memory");
	memset(c, 2, fm->arena_floats);
	memset(c + off_of(fm, fm->tok_emb), 1, 257 * d);
	memset(c + off_of(fm, fm->pos_emb), 0, (size_t)fm->hp.context * d);
	for (uint32_t l = 0; l < fm->hp.layers; l++) {
		const struct btz_flayer *w = &fm->layers[l];
		memset(c + off_of(fm, w->g1), 1, d);
		memset(c + off_of(fm, w->b1), 1, d);
		memset(c + off_of(fm, w->g2), 1, d);
		memset(c + off_of(fm, w->b2), 1, d);
	}
	return c;
}

/* Rounds w to the int8 grid the exporter will use (scale max|w|/127 per
 * row of `cols`), so training sees the weights the engine will run:
 * quantization-aware training with a straight-through gradient. */
static void fake_quant(float *w, size_t rows, size_t cols, float extra_max)
{
	for (size_t r = 0; r < rows; r++) {
		float *p = w + r * cols, mx = btz_vec_max_abs(p, cols);

		btz_vec_round_grid(p, cols, mx > extra_max ? mx : extra_max);
	}
}

static void quantize_view(struct btz_fmodel *q)
{
	const struct btz_hparams *hp = &q->hp;
	size_t d = hp->d, F = hp->ff, kv = (size_t)hp->kv_heads * q->dh;
	float mt = btz_vec_max_abs(q->tok_emb, 257 * d);
	float mp = btz_vec_max_abs(q->pos_emb, (size_t)hp->context * d);

	/* tok and pos share one scale (their sum must not clamp). */
	fake_quant(q->tok_emb, 1, 257 * d, mt + mp);
	fake_quant(q->wout, 1, 256 * d, 0);
	for (uint32_t l = 0; l < hp->layers; l++) {
		struct btz_flayer *w = &q->layers[l];
		fake_quant(w->wq, d, d, 0);
		fake_quant(w->wk, kv, d, 0);
		fake_quant(w->wv, kv, d, 0);
		fake_quant(w->wo, d, d, 0);
		fake_quant(w->w1, F, d, 0);
		fake_quant(w->w3, F, d, 0);
		fake_quant(w->w2, d, F, 0);
	}
}

/* The weights the forward pass sees: the master weights, or with QAT a
 * copy of them on the int8 grid (gradients then pass straight through
 * to the master weights). */
static const struct btz_fmodel *forward_view(const struct btz_fmodel *fm,
					     struct btz_fmodel *fw, int qat)
{
	if (!qat)
		return fm;
	memcpy(fw->arena, fm->arena, fm->arena_floats * sizeof(float));
	quantize_view(fw);
	return fw;
}

/* ---- the optimizer state file ---- */

static const uint8_t state_magic[8] = { 'B', 'T', 'Z', 'T', 'R', 'S', 'T', 1 };

struct state {
	uint64_t step, rng, tokens;
	double seconds;
	float *m, *v;
	size_t n;
};

static void save_state(const char *path, const struct state *st)
{
	size_t n = 8 + 8 * 4 + 8 + st->n * 8 + 8;
	uint8_t *p = malloc(n), *q = p;
	struct btz_error err;
	uint64_t secs;

	if (p == NULL)
		btz_die("out of memory");
	memcpy(q, state_magic, 8);
	q += 8;
	memcpy(&secs, &st->seconds, 8);
	uint64_t f[5] = { st->step, st->rng, st->tokens, secs, st->n };
	for (int i = 0; i < 5; i++, q += 8)
		btz_put_le64(q, f[i]);
	for (size_t i = 0; i < st->n; i++, q += 8) {
		uint32_t a, b;
		memcpy(&a, &st->m[i], 4);
		memcpy(&b, &st->v[i], 4);
		btz_put_le32(q, a);
		btz_put_le32(q + 4, b);
	}
	btz_put_le64(q, XXH3_64bits(p, n - 8));
	if (btz_file_write_atomic(path, p, n, &err) != BTZ_OK)
		btz_die("%s", err.msg);
	free(p);
}

static void load_state(const char *path, struct state *st)
{
	uint8_t *p = NULL;
	size_t len = 0, cap = 0;

	append_file(path, &p, &len, &cap);
	if (len != 8 + 40 + st->n * 8 + 8 || memcmp(p, state_magic, 8) != 0 ||
	    btz_get_le64(p + len - 8) != XXH3_64bits(p, len - 8) ||
	    btz_get_le64(p + 40) != st->n)
		btz_die("%s: not the optimizer state of this checkpoint", path);
	uint64_t secs = btz_get_le64(p + 32);
	st->step = btz_get_le64(p + 8);
	st->rng = btz_get_le64(p + 16);
	st->tokens = btz_get_le64(p + 24);
	memcpy(&st->seconds, &secs, 8);
	for (size_t i = 0; i < st->n; i++) {
		uint32_t a = btz_get_le32(p + 48 + 8 * i);
		uint32_t b = btz_get_le32(p + 52 + 8 * i);
		memcpy(&st->m[i], &a, 4);
		memcpy(&st->v[i], &b, 4);
	}
	free(p);
}

/* ---- training ---- */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static double lr_at(const struct opts *o, uint64_t step)
{
	if (step < o->warmup)
		return o->lr * (double)(step + 1) / o->warmup;
	double t = (double)(step - o->warmup) /
		   (double)(o->steps > o->warmup ? o->steps - o->warmup : 1);
	if (t > 1)
		t = 1;
	return o->lr_min + (o->lr - o->lr_min) * 0.5 * (1 + cos(M_PI * t));
}

/* A batch of random windows, each laid out like a pack-time window: the
 * start symbol at position 0, then the bytes before each target. */
/* Windows start at one of starts (tiles), else on a multiple of unit (a
 * whole pixel or sample), as a payload's windows do in btzpack. */
static void sample_batch(const uint8_t *data, size_t len, size_t T, size_t B,
			 size_t unit, const struct starts *starts,
			 uint64_t *rng, uint16_t *tok, uint8_t *tgt)
{
	for (size_t b = 0; b < B; b++) {
		size_t off = starts->n > 0
				     ? starts->at[btz_splitmix64(rng) % starts->n]
			     : len > T ? btz_splitmix64(rng) %
					 ((len - T) / unit + 1) * unit
				       : 0;
		btz_net_windows(data + off, 1, T, tok + b * T, tgt + b * T);
	}
}

/* The network a step runs on: the CPU's (net) or a GPU's (gnet). */
struct trainer_net {
	struct btz_net *net;
	struct btz_gnet *gnet;
};

/* btz_net_step on whichever it is; a GPU failure is fatal. */
static double net_step(struct trainer_net *tn, const struct btz_fmodel *fm,
		       const uint16_t *tok, const uint8_t *tgt,
		       struct btz_fmodel *grad)
{
	struct btz_error err;
	double loss;

	if (tn->gnet == NULL)
		return btz_net_step(tn->net, fm, tok, tgt, grad);
	if (btz_gnet_step(tn->gnet, fm, tok, tgt, grad, &loss, &err) != BTZ_OK)
		btz_die("%s", err.msg);
	return loss;
}

/* The backend --device asks for: NULL for the CPU (btz_device_gpu). */
static const struct btz_gpu_ops *train_device(const char *want, int quiet)
{
	char why[256] = "";
	int d;

	if (strcmp(want, "cpu") == 0)
		return NULL;
	if (strcmp(want, "cuda") != 0 && strcmp(want, "auto") != 0)
		btz_die("--device: '%s' is not cpu, cuda or auto", want);
	d = btz_device_gpu(strcmp(want, "cuda") == 0, why, sizeof(why));
	if (d < 0)
		btz_die("--device=cuda: %s", why);
	if (d == BTZ_DEVICE_CPU && !quiet)
		fprintf(stderr, "%s: training on the CPU: %s\n", btz_progname,
			why);
	return btz_gpu_backend((enum btz_device)d);
}

/* Float bits/byte over consecutive whole windows of valid (batched). */
static double valid_bpb(struct trainer_net *net, const struct btz_fmodel *fm,
			const uint8_t *data, size_t len, size_t T, size_t B,
			uint16_t *tok, uint8_t *tgt)
{
	double nats = 0;
	size_t batches = len / (T * B);

	for (size_t k = 0; k < batches; k++) {
		btz_net_windows(data + k * T * B, B, T, tok, tgt);
		nats += net_step(net, fm, tok, tgt, NULL);
	}
	return batches ? nats / (double)batches / M_LN2 : 0;
}

/* Integer bits/byte through the engine: what the coder would spend. */
static double engine_bpb(const struct btz_model *m, const uint8_t *data,
			 size_t len)
{
	struct btz_error err;
	double bits;

	if (btz_engine_code_bits(m, data, len, &bits, &err) != BTZ_OK)
		btz_die("engine: %s", err.msg);
	return bits / (double)len;
}

/* Quantizes the trained network, measures it through the integer engine
 * on the validation bytes, and writes the .btm. */
static void export_model(const struct opts *o, struct btz_fmodel *fm,
			 const struct state *st, const uint8_t *train,
			 size_t tlen, const uint8_t *valid, size_t vlen)
{
	struct btz_model *m = NULL;
	struct btz_error err;
	size_t clen = tlen < o->calib_bytes ? tlen : o->calib_bytes;

	fm->steps = st->step;
	if (btz_export(&m, fm, train, clen, &err) != BTZ_OK)
		btz_die("export: %s", err.msg);
	if (vlen > 0) {
		double ib = engine_bpb(m, valid, vlen);
		m->valid_ubpb_int = (uint32_t)(ib * 1e6);
		if (fm->valid_ubpb == 0) /* no step, no float measurement */
			fprintf(stderr, "%s: validation %.4f bits/byte "
				"integer, exported without training\n",
				btz_progname, ib);
		else
			fprintf(stderr,
				"%s: validation %.4f bits/byte float, %.4f "
				"integer (%+.2f%%), %.0f s of training, %" PRIu64
				" tokens\n",
				btz_progname, fm->valid_ubpb / 1e6, ib,
				100 * (ib / (fm->valid_ubpb / 1e6) - 1),
				st->seconds, st->tokens);
	}
	if (btz_model_save(m, o->out, &err) != BTZ_OK)
		btz_die("%s", err.msg);
	btz_model_free(m);
}

static void fmt_time(char *buf, size_t n, double s)
{
	if (s < 0 || s > 1e7)
		snprintf(buf, n, "?");
	else if (s >= 3600)
		snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
	else
		snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p == NULL)
		btz_die("out of memory");
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static void usage(FILE *f)
{
	fputs(
"Usage: btztrain [OPTION]... -o MODEL.btm FILE...\n"
"Train a byte-level transformer on FILEs ('-' reads standard input) and\n"
"export it as an integer model for btzpack.\n"
"\n"
"  -o, --output=FILE     the exported model (.btm); never overwritten unless -f\n"
"  -C, --dir=DIR         checkpoint directory (default MODEL.btm.train)\n"
"      --resume          continue the run saved in the checkpoint directory\n"
"      --init=FILE       start from these weights, with a fresh optimizer:\n"
"                        a checkpoint's model.btf, or a model (.btm) to\n"
"                        train further\n"
"      --valid=FILE      validation bytes (default: none)\n"
"      --valid-bytes=N   bytes of it to measure (default 256K; K, M suffixes)\n"
"      --modality=M      text, image, audio or other (default text)\n"
"      --transform=T     layout the model sees: none, swap16 (16-bit\n"
"                        samples high byte first), green (RGB as\n"
"                        G, R-G, B-G), lms (16-bit samples as the\n"
"                        residual of adaptive prediction), lmsz (lms\n"
"                        in zigzag order), lpcz (lmsz after linear\n"
"                        prediction), med (RGB as the residual of\n"
"                        JPEG-LS's predictor), medt (med in tiles of\n"
"                        256 pixels) or mixt (medt with a blend of\n"
"                        seven predictors); default none\n"
"      --manifest=FILE   with med, medt, mixt: each image's offset,\n"
"                        length and width in the training bytes (a\n"
"                        manifest of scripts/data); --valid-manifest=FILE,\n"
"                        the same for the validation bytes\n"
"      --match           code through the match layer, which guesses a\n"
"                        byte from the last place its context occurred\n"
"                        in the chunk (default for a new text model;\n"
"                        else as --init or --resume load); --no-match,\n"
"                        not\n"
"      --span=N          attention span: each position attends to the\n"
"                        window's first 16 and to the last N to N+15\n"
"                        (N a multiple of 16 below the context; 0, every\n"
"                        position; default as --init or --resume load,\n"
"                        else 0)\n"
"      --name=NAME       model name (default: the output's file name)\n"
"  -d, --dim=N           model width (default 128)\n"
"      --layers=N        layers (default 4)\n"
"      --heads=N         attention heads (default 8)\n"
"      --kv-heads=N      key/value heads (default 1)\n"
"      --ff=N            MLP width (default 4 x dim)\n"
"      --context=N       window in bytes (default 1024)\n"
"  -b, --batch=N         windows per step (default 16)\n"
"  -n, --steps=N         optimizer steps (default 2000; 0 with --init or\n"
"                        --resume exports what they load)\n"
"      --lr=X            peak learning rate (default 2e-3)\n"
"      --lr-min=X        final learning rate (default lr/10)\n"
"      --warmup=N        warm-up steps (default 100)\n"
"      --weight-decay=X  AdamW decay of the matrices (default 0.01)\n"
"      --clip=X          gradient norm limit (default 1)\n"
"      --qat=X           quantization-aware from this fraction of the steps\n"
"                        on (default 0.75; 1 = never)\n"
"      --qat-act         from then on, activations too\n"
"      --ema=X           validate and export the weights' running average\n"
"                        (each step's weight 1 - X; default 0, none)\n"
"      --eval-every=N    steps between validations (default 200)\n"
"      --time-limit=S    stop (resumably) after S seconds of training\n"
"      --stop-after=N    stop (resumably) after N steps of this run\n"
"      --calib-bytes=N   training bytes for the export's calibration\n"
"                        (default 64K)\n"
"      --seed=N          initialization and sampling seed (default 1)\n"
"      --device=WHERE    train on cpu, cuda or auto (default: a GPU if\n"
"                        one answers)\n"
"      --fp32            float32 weight products on the CPU (default: bf16\n"
"                        through oneDNN where the CPU has AVX-512 BF16)\n"
"  -T, --threads=N       threads, 0 = one per processor (default)\n"
"  -f, --force           overwrite the output model\n"
"  -q, --quiet           no progress line\n"
"  -h, --help            this help\n"
"  -V, --version         version\n",
	      f);
}

static uint64_t parse_u64(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);

	if (errno || end == s || *end || s[0] == '-')
		btz_die("%s: not a number: '%s'", opt, s);
	return v;
}

static size_t parse_bytes(const char *opt, const char *s)
{
	uint64_t v;

	if (btz_parse_size(s, &v) != 0 || v > SIZE_MAX)
		btz_die("%s: not a byte count: '%s'", opt, s);
	return (size_t)v;
}

static double parse_real(const char *opt, const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !isfinite(v) || v < 0)
		btz_die("%s: not a number: '%s'", opt, s);
	return v;
}

static uint32_t parse_u32(const char *opt, const char *s)
{
	uint64_t v = parse_u64(opt, s);

	if (v > UINT32_MAX)
		btz_die("%s: too large: '%s'", opt, s);
	return (uint32_t)v;
}

enum { O_RESUME = 256, O_VALID, O_VALID_BYTES, O_MODALITY, O_TRANSFORM,
       O_NAME, O_LAYERS,
       O_HEADS, O_KV, O_FF, O_CONTEXT, O_LR, O_LR_MIN, O_WARMUP, O_WD, O_CLIP,
       O_QAT, O_EVAL, O_TIME, O_STOP, O_CALIB, O_SEED, O_DEVICE, O_INIT, O_FP32,
       O_EMA,
       O_MANIFEST, O_VALID_MANIFEST, O_QAT_ACT, O_MATCH, O_NO_MATCH,
       O_SPAN };

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", 1, 0, 'o' },	{ "dir", 1, 0, 'C' },
		{ "resume", 0, 0, O_RESUME },	{ "valid", 1, 0, O_VALID },
		{ "valid-bytes", 1, 0, O_VALID_BYTES },
		{ "modality", 1, 0, O_MODALITY }, { "name", 1, 0, O_NAME },
		{ "transform", 1, 0, O_TRANSFORM },
		{ "match", 0, 0, O_MATCH },	{ "no-match", 0, 0, O_NO_MATCH },
		{ "span", 1, 0, O_SPAN },
		{ "manifest", 1, 0, O_MANIFEST },
		{ "valid-manifest", 1, 0, O_VALID_MANIFEST },
		{ "dim", 1, 0, 'd' },		{ "layers", 1, 0, O_LAYERS },
		{ "heads", 1, 0, O_HEADS },	{ "kv-heads", 1, 0, O_KV },
		{ "ff", 1, 0, O_FF },		{ "context", 1, 0, O_CONTEXT },
		{ "batch", 1, 0, 'b' },		{ "steps", 1, 0, 'n' },
		{ "lr", 1, 0, O_LR },		{ "lr-min", 1, 0, O_LR_MIN },
		{ "warmup", 1, 0, O_WARMUP },	{ "weight-decay", 1, 0, O_WD },
		{ "clip", 1, 0, O_CLIP },	{ "qat", 1, 0, O_QAT },
		{ "qat-act", 0, 0, O_QAT_ACT },	{ "ema", 1, 0, O_EMA },
		{ "eval-every", 1, 0, O_EVAL }, { "time-limit", 1, 0, O_TIME },
		{ "stop-after", 1, 0, O_STOP },
		{ "calib-bytes", 1, 0, O_CALIB }, { "seed", 1, 0, O_SEED },
		{ "device", 1, 0, O_DEVICE },	{ "init", 1, 0, O_INIT },
		{ "fp32", 0, 0, O_FP32 },
		{ "threads", 1, 0, 'T' },	{ "force", 0, 0, 'f' },
		{ "quiet", 0, 0, 'q' },		{ "help", 0, 0, 'h' },
		{ "version", 0, 0, 'V' },	{ 0, 0, 0, 0 }
	};
	struct opts o = {
		.hp = { .d = 128, .layers = 4, .heads = 8, .kv_heads = 1,
			.ff = 0, .context = 1024, .modality = BTZ_MOD_TEXT },
		.steps = 2000, .seed = 1, .batch = 16, .warmup = 100,
		.eval_every = 200, .lr = 2e-3, .lr_min = -1, .wd = 0.01,
		.clip = 1, .qat_from = 0.75, .valid_bytes = 262144,
		.calib_bytes = 65536, .device = "auto",
	};
	int force = 0, c, transform_set = -1, match_set = -1;
	long span_set = -1;

	btz_cli_init(argv[0]);

	/* OpenMP threads that spin while waiting lose whole time slices when
	 * another process shares the cores (100x slower measured on a busy
	 * 2-core machine); the policy is read only at start-up, so set it and
	 * start again, once. */
	if (getenv("OMP_WAIT_POLICY") == NULL) {
		setenv("OMP_WAIT_POLICY", "passive", 1);
		execv("/proc/self/exe", argv);
	}

	while ((c = getopt_long(argc, argv, "o:C:d:b:n:T:fqhV", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'o': o.out = optarg; break;
		case 'C': o.dir = optarg; break;
		case O_RESUME: o.resume = 1; break;
		case O_VALID: o.valid = optarg; break;
		case O_MANIFEST: o.manifest = optarg; break;
		case O_VALID_MANIFEST: o.valid_manifest = optarg; break;
		case O_VALID_BYTES:
			o.valid_bytes = parse_bytes("--valid-bytes", optarg);
			break;
		case O_MODALITY: {
			static const char *names[] = { "other", "text", "image",
						       "audio" };
			int k;
			for (k = 0; k < 4 && strcmp(optarg, names[k]); k++)
				;
			if (k == 4)
				btz_die("--modality: unknown modality '%s'", optarg);
			o.hp.modality = (uint8_t)k;
			break;
		}
		case O_TRANSFORM: {
			int t = btz_transform_parse(optarg);
			if (t < 0)
				btz_die("--transform: unknown layout '%s' (none, "
				    "swap16, green, lms, lmsz, med, medt, lpcz "
				    "or mixt)", optarg);
			o.hp.transform = (uint8_t)t;
			transform_set = t;
			break;
		}
		case O_MATCH: match_set = 1; break;
		case O_NO_MATCH: match_set = 0; break;
		case O_SPAN:
			span_set = (long)parse_u32("--span", optarg);
			if (span_set % BTZ_BTM_SPAN_UNIT != 0 ||
			    span_set > BTZ_BTM_SPAN_MAX)
				btz_die("--span=%s: not a multiple of %u below "
					"2^20", optarg, BTZ_BTM_SPAN_UNIT);
			break;
		case O_NAME: o.name = optarg; break;
		case 'd': o.hp.d = parse_u32("--dim", optarg); break;
		case O_LAYERS: o.hp.layers = parse_u32("--layers", optarg); break;
		case O_HEADS: o.hp.heads = parse_u32("--heads", optarg); break;
		case O_KV: o.hp.kv_heads = parse_u32("--kv-heads", optarg); break;
		case O_FF: o.hp.ff = parse_u32("--ff", optarg); break;
		case O_CONTEXT:
			o.hp.context = parse_u32("--context", optarg);
			break;
		case 'b': o.batch = parse_u32("--batch", optarg); break;
		case 'n': o.steps = parse_u64("--steps", optarg); break;
		case O_LR: o.lr = parse_real("--lr", optarg); break;
		case O_LR_MIN: o.lr_min = parse_real("--lr-min", optarg); break;
		case O_WARMUP: o.warmup = parse_u32("--warmup", optarg); break;
		case O_WD: o.wd = parse_real("--weight-decay", optarg); break;
		case O_CLIP: o.clip = parse_real("--clip", optarg); break;
		case O_QAT: o.qat_from = parse_real("--qat", optarg); break;
		case O_QAT_ACT: o.qat_act = 1; break;
		case O_EMA: o.ema = parse_real("--ema", optarg); break;
		case O_EVAL:
			o.eval_every = parse_u32("--eval-every", optarg);
			break;
		case O_TIME:
			o.time_limit = parse_real("--time-limit", optarg);
			break;
		case O_STOP: o.stop_after = parse_u64("--stop-after", optarg); break;
		case O_CALIB:
			o.calib_bytes = parse_bytes("--calib-bytes", optarg);
			break;
		case O_SEED: o.seed = parse_u64("--seed", optarg); break;
		case O_DEVICE: o.device = optarg; break;
		case O_INIT: o.init = optarg; break;
		case O_FP32: o.fp32 = 1; break;
		case 'T':
			o.threads = btz_parse_threads(optarg);
			if (o.threads <= 0)
				btz_die("--threads: not a thread count: '%s'", optarg);
			break;
		case 'f': force = 1; break;
		case 'q': o.quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': puts("btztrain " PACKAGE_VERSION); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (o.out == NULL)
		btz_die("no output model given (-o MODEL.btm); see --help");
	if (optind >= argc)
		btz_die("no training data given; see --help");
	if (o.resume && o.init)
		btz_die("--init and --resume exclude each other");
	if (o.hp.ff == 0)
		o.hp.ff = 4 * o.hp.d;
	if (o.lr_min < 0)
		o.lr_min = o.lr / 10;
	/* 0 steps re-exports what --init or --resume loads. */
	if (o.batch == 0 || (o.steps == 0 && !o.init && !o.resume))
		btz_die("--batch and --steps must be at least 1");
	if (o.ema >= 1)
		btz_die("--ema: %g is not below 1", o.ema);
	if (!force && access(o.out, F_OK) == 0)
		btz_die("%s: already exists (use -f to overwrite)", o.out);

	struct btz_error err;
	/* --init and --resume take the shape of what they load. */
	if (!o.init && !o.resume && btz_hparams_check(&o.hp, &err) != BTZ_OK)
		btz_die("%s", err.msg);
	char *dir = o.dir ? strdup(o.dir) : NULL;
	if (dir == NULL) {
		dir = malloc(strlen(o.out) + 7);
		if (dir == NULL)
			btz_die("out of memory");
		sprintf(dir, "%s.train", o.out);
	}
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		btz_die("%s: %s", dir, strerror(errno));
	/* One run per directory: two would overwrite each other's state. */
	char *lock = path_in(dir, "lock");
	int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (lfd < 0)
		btz_die("%s: %s", lock, strerror(errno));
	if (flock(lfd, LOCK_EX | LOCK_NB) != 0)
		btz_die("%s: in use by another btztrain", dir);
	char *ckpt = path_in(dir, "model.btf"), *stpath = path_in(dir, "state");
	char *curve = path_in(dir, "curve.tsv");
	char *emapath = path_in(dir, "ema.btf");

#ifdef _OPENMP
	if (o.threads)
		omp_set_num_threads((int)o.threads);
#endif
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
	openblas_set_num_threads(1); /* we split the products ourselves */
#endif

	/* Data. */
	uint8_t *train = NULL, *valid = NULL;
	size_t tlen = 0, tcap = 0, vlen = 0, vcap = 0;
	size_t datasets = 0;
	char data_desc[4096] = "";
	for (int i = optind; i < argc; i++) {
		append_file(argv[i], &train, &tlen, &tcap);
		const char *base = strrchr(argv[i], '/');
		size_t used = strlen(data_desc);
		snprintf(data_desc + used, sizeof(data_desc) - used, "%s%s",
			 datasets++ ? ", " : "", base ? base + 1 : argv[i]);
	}
	if (o.valid) {
		append_file(o.valid, &valid, &vlen, &vcap);
		if (vlen > o.valid_bytes)
			vlen = o.valid_bytes;
	}

	/* Model and optimizer state. */
	struct btz_fmodel *fm = NULL, *fw = NULL, *gr = NULL;
	const char *name = o.name;
	if (name == NULL) {
		name = strrchr(o.out, '/') ? strrchr(o.out, '/') + 1 : o.out;
	}
	if (o.resume) {
		if (btz_fmodel_load(&fm, ckpt, &err) != BTZ_OK)
			btz_die("--resume: %s", err.msg);
		o.hp = fm->hp;
	} else if (o.init) {
		/* Its weights and shape, a fresh optimizer and schedule; the
		 * provenance says where the weights came from. */
		struct btz_fmodel *from = NULL;
		char desc[sizeof(data_desc) + 512];

		if (load_init(o.init, &from, &err) != BTZ_OK)
			btz_die("--init: %s", err.msg);
		o.hp = from->hp;
		/* A network carried onto a new layout: the weights fit any
		 * layout of the same modality. */
		if (transform_set >= 0) {
			if (btz_window_unit(o.hp.modality, (unsigned)transform_set) !=
			    btz_window_unit(o.hp.modality, o.hp.transform))
				btz_die("--transform=%s does not fit the windows "
				    "of %s's %s model",
				    btz_transform_name((unsigned)transform_set),
				    o.init, btz_modality_name(o.hp.modality));
			o.hp.transform = (uint8_t)transform_set;
			if (btz_hparams_check(&o.hp, &err) != BTZ_OK)
				btz_die("--transform: %s", err.msg);
		}
		snprintf(desc, sizeof(desc), "%s; from %s (%" PRIu64
			 " steps on %s)", data_desc, o.init, from->steps,
			 from->train_data ? from->train_data : "?");
		if (btz_fmodel_alloc(&fm, &o.hp, name, desc, &err) != BTZ_OK)
			btz_die("%s", err.msg);
		memcpy(fm->arena, from->arena, fm->arena_floats * sizeof(float));
		btz_fmodel_free(from);
	} else {
		if (btz_fmodel_alloc(&fm, &o.hp, name, data_desc, &err) != BTZ_OK)
			btz_die("%s", err.msg);
		init_model(fm, o.seed);
	}
	/* The match layer: as asked, else as loaded; a new text model has
	 * it (it measured 3-4% smaller on held-out books). */
	if (match_set >= 0)
		o.hp.flags = match_set ? o.hp.flags | BTZ_BTM_MATCH
				       : o.hp.flags & ~BTZ_BTM_MATCH;
	else if (!o.resume && !o.init && o.hp.modality == BTZ_MOD_TEXT)
		o.hp.flags |= BTZ_BTM_MATCH;
	/* The attention span: as asked, else as loaded (0 when new). */
	if (span_set >= 0) {
		btz_hp_set_span(&o.hp, (uint32_t)span_set);
		if (btz_hparams_check(&o.hp, &err) != BTZ_OK)
			btz_die("--span: %s", err.msg);
	}
	fm->hp.flags = o.hp.flags;
	/* A resumed run takes the shape and layout of its checkpoint. */
	size_t T = o.hp.context, B = o.batch;
	size_t unit = btz_window_unit(o.hp.modality, o.hp.transform);
	if (tlen < T + 1)
		btz_die("training data: %zu bytes, fewer than one window of %zu",
		    tlen, T + 1);
	struct starts starts = { NULL, 0, 0 };
	layout(o.hp.transform, train, tlen, o.manifest, T,
	       btz_transform_tiles(o.hp.transform) ? &starts : NULL);
	if (valid)
		layout(o.hp.transform, valid, vlen, o.valid_manifest, T, NULL);
	if (btz_fmodel_alloc(&fw, &o.hp, name, data_desc, &err) != BTZ_OK ||
	    btz_fmodel_alloc(&gr, &o.hp, name, data_desc, &err) != BTZ_OK)
		btz_die("%s", err.msg);
	size_t np = fm->arena_floats;
	/* The running average of the weights (--ema): what is validated,
	 * checkpointed beside them and exported. It starts at the starting
	 * weights, or where the checkpoint's stood. */
	struct btz_fmodel *fe = NULL;
	if (o.ema > 0) {
		struct btz_fmodel *saved = NULL;
		if (btz_fmodel_alloc(&fe, &o.hp, fm->name, fm->train_data,
				     &err) != BTZ_OK)
			btz_die("%s", err.msg);
		if (o.resume && access(emapath, F_OK) == 0) {
			if (btz_fmodel_load(&saved, emapath, &err) != BTZ_OK)
				btz_die("--resume: %s", err.msg);
			if (saved->arena_floats != np)
				btz_die("--resume: %s: another shape", emapath);
		}
		memcpy(fe->arena, saved ? saved->arena : fm->arena,
		       np * sizeof(float));
		btz_fmodel_free(saved);
	}
	struct btz_fmodel *fv = fe ? fe : fm; /* validated and exported */
	struct state st = { .rng = o.seed ^ 0x5bd1e995u, .n = np };
	st.m = calloc(np, sizeof(float));
	st.v = calloc(np, sizeof(float));
	uint8_t *cls = param_classes(fm);
	if (st.m == NULL || st.v == NULL)
		btz_die("out of memory");
	if (o.resume)
		load_state(stpath, &st);
	struct trainer_net tnet = { NULL, NULL }, *net = &tnet;
	int bf16_on = 0;
	const struct btz_gpu_ops *gops = train_device(o.device, o.quiet);
	if (gops != NULL) {
		if (btz_gnet_new(&tnet.gnet, gops, &o.hp, B, &err) != BTZ_OK)
			btz_die("%s", err.msg);
		if (!o.quiet)
			fprintf(stderr, "%s: training on the %s\n", btz_progname,
				gops == &btz_gpu_sim_ops ? "simulated GPU"
							 : "GPU (CUDA)");
	} else {
		tnet.net = btz_net_new(&o.hp, B);
		bf16_on = btz_bf16_enable(!o.fp32);
	}
	uint16_t *tok = malloc(B * T * sizeof(*tok));
	uint8_t *tgt = malloc(B * T);
	if ((tnet.net == NULL && tnet.gnet == NULL) || tok == NULL ||
	    tgt == NULL)
		btz_die("out of memory for a batch of %zu windows of %zu", B, T);

	size_t nparams = 0;
	for (size_t i = 0; i < np; i++)
		nparams += cls[i] != 0;
	char span_desc[32] = "";
	if (btz_hp_span(&o.hp) > 0)
		snprintf(span_desc, sizeof(span_desc), ", span %u",
			 btz_hp_span(&o.hp));
	if (!o.quiet)
		fprintf(stderr,
			"%s: %zu parameters (d %u, %u layers, %u/%u heads, ff %u, "
			"context %u%s, layout %s), %zu training bytes, %zu "
			"validation; %s products\n", btz_progname, nparams,
			o.hp.d, o.hp.layers, o.hp.heads, o.hp.kv_heads, o.hp.ff,
			o.hp.context, span_desc,
			btz_transform_name(o.hp.transform), tlen,
			vlen, gops != NULL ? "GPU float32"
			: bf16_on	   ? "bf16 (oneDNN)"
					   : "float32");

	FILE *cf = fopen(curve, o.resume ? "a" : "w");
	if (cf == NULL)
		btz_die("%s: %s", curve, strerror(errno));
	if (!o.resume)
		fprintf(cf, "step\ttokens\tseconds\ttrain_bpb\tvalid_bpb\n");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	double t0 = now(), tlast = 0, run_loss = 0;
	uint64_t run_n = 0, start_step = st.step, qat_step =
		(uint64_t)(o.qat_from * (double)o.steps);
	while (st.step < o.steps && !stop_requested) {
		int qat = st.step >= qat_step;
		if (tnet.net != NULL)
			btz_net_set_actq(tnet.net, qat && o.qat_act);
		else
			btz_gnet_set_actq(tnet.gnet, qat && o.qat_act);
		sample_batch(train, tlen, T, B, unit, &starts, &st.rng, tok,
			     tgt);
		memset(gr->arena, 0, np * sizeof(float));
		double loss = net_step(net, forward_view(fm, fw, qat), tok, tgt,
				       gr);
		if (!isfinite(loss))
			btz_die("step %" PRIu64 ": the loss is not finite "
			    "(lower --lr?)", st.step);

		double norm = 0;
		for (size_t i = 0; i < np; i++)
			norm += (double)gr->arena[i] * gr->arena[i];
		norm = sqrt(norm);
		float gs = norm > o.clip ? (float)(o.clip / norm) : 1;
		double lr = lr_at(&o, st.step);
		double b1 = 0.9, b2 = 0.95;
		double c1 = 1 - pow(b1, (double)(st.step + 1));
		double c2 = 1 - pow(b2, (double)(st.step + 1));
		float flr = (float)(lr / c1), fwd = (float)(lr * o.wd);
		float ic2 = (float)(1 / c2);
#pragma omp parallel for schedule(static)
		for (size_t i = 0; i < np; i++) {
			if (cls[i] == 0)
				continue;
			float g = gr->arena[i] * gs;
			st.m[i] = (float)b1 * st.m[i] + (float)(1 - b1) * g;
			st.v[i] = (float)b2 * st.v[i] + (float)(1 - b2) * g * g;
			float upd = st.m[i] / (sqrtf(st.v[i] * ic2) + 1e-8f);
			if (cls[i] == 2)
				fm->arena[i] -= fwd * fm->arena[i];
			fm->arena[i] -= flr * upd;
		}
		if (fe != NULL) {
			float a = (float)(1 - o.ema);
#pragma omp parallel for schedule(static)
			for (size_t i = 0; i < np; i++)
				fe->arena[i] += a * (fm->arena[i] - fe->arena[i]);
		}
		st.step++;
		st.tokens += B * T;
		run_loss += loss;
		run_n++;

		double el = now() - t0;
		int eval = o.eval_every && (st.step % o.eval_every == 0 ||
					    st.step == o.steps);
		if ((o.time_limit > 0 && el >= o.time_limit) ||
		    (o.stop_after && st.step - start_step >= o.stop_after))
			stop_requested = 1;
		if (eval || stop_requested) {
			double vb = 0;
			if (vlen >= T * B)
				vb = valid_bpb(net, forward_view(fv, fw, qat),
					       valid, vlen, T, B, tok, tgt);
			fprintf(cf, "%" PRIu64 "\t%" PRIu64 "\t%.0f\t%.4f\t%.4f\n",
				st.step, st.tokens, st.seconds + el,
				run_loss / (double)run_n / M_LN2, vb);
			fflush(cf);
			fm->steps = fv->steps = st.step;
			fm->valid_ubpb = fv->valid_ubpb = (uint32_t)(vb * 1e6);
			double saved = st.seconds;
			st.seconds += el;
			if (btz_fmodel_save(fm, ckpt, &err) != BTZ_OK ||
			    (fe && btz_fmodel_save(fe, emapath, &err) != BTZ_OK))
				btz_die("%s", err.msg);
			save_state(stpath, &st);
			st.seconds = saved;
			if (!o.quiet)
				fprintf(stderr, "\r%-79s\rstep %" PRIu64
					": train %.4f, valid %.4f bits/byte%s\n",
					"", st.step,
					run_loss / (double)run_n / M_LN2, vb,
					qat ? " (quantized weights)" : "");
			run_loss = 0;
			run_n = 0;
		}
		if (!o.quiet && (el - tlast >= 2 || st.step == o.steps)) {
			double rate = (double)(st.step - start_step) * B * T / el;
			char eta[32];
			fmt_time(eta, sizeof(eta),
				 (double)(o.steps - st.step) * B * T / rate);
			fprintf(stderr,
				"\rstep %" PRIu64 "/%" PRIu64 "  %.1fK tokens/s  "
				"loss %.3f bits/byte  lr %.2e  ETA %s   ",
				st.step, o.steps, rate / 1e3, loss / M_LN2, lr, eta);
			tlast = el;
		}
	}
	double run_s = now() - t0;
	st.seconds += run_s;
	fclose(cf);
	if (!o.quiet)
		fprintf(stderr, "\n%s: %" PRIu64 " steps of %zu tokens in %.1f s: "
			"%.0f tokens/s\n", btz_progname, st.step - start_step, B * T,
			run_s, (double)(st.step - start_step) * B * T / run_s);
	if (st.step < o.steps)
		fprintf(stderr, "%s: stopped at step %" PRIu64 " of %" PRIu64
			"; continue with --resume -C %s\n", btz_progname, st.step,
			o.steps, dir);
	else
		export_model(&o, fv, &st, train, tlen, valid, vlen);
	btz_net_free(tnet.net);
	btz_gnet_free(tnet.gnet);
	btz_fmodel_free(fm);
	btz_fmodel_free(fw);
	btz_fmodel_free(gr);
	btz_fmodel_free(fe);
	free(st.m);
	free(st.v);
	free(cls);
	free(tok);
	free(starts.at);
	free(tgt);
	free(train);
	free(valid);
	free(dir);
	free(ckpt);
	free(stpath);
	free(curve);
	free(emapath);
	free(lock);
	close(lfd);
	return 0;
}
