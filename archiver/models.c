/* Model lookup and the model chunk method. */
#include "archiver/models.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archiver/cli.h"
#include "common/bytes.h"
#include "model/engine.h"
#include "model/gpu.h"
#include "model/transform.h"

/* A model whose layout predicts from the row above codes a chunk after
 * its rows (doc/format.md, "Model payload"): varint width, varint x0,
 * then the coder's stream. Other models' payloads are the stream alone. */
static enum btz_status mm_encode(void *ctx, const uint8_t *in, size_t n,
				 const struct btz_rows *rows, uint8_t *out,
				 size_t cap, size_t *out_size,
				 struct btz_error *err)
{
	struct btz_model_method *mm = ctx;

	unsigned t = mm->model->hp.transform;
	struct btz_rows r = { 0, 0, 0 };
	uint8_t *tmp = NULL, pre[2 * BTZ_VARINT_MAX];
	size_t k = 0, got = 0;
	enum btz_status st;

	if ((n - 1) / mm->pred.window + 1 > btz_transform_chunk_windows(t))
		return btz_fail(err, BTZ_E_BUF, "chunk too long for model");
	if (btz_transform_uses_rows(t)) {
		if (rows != NULL && btz_rows_known(rows))
			r = *rows;
		k = btz_varint_encode(pre, r.width);
		k += btz_varint_encode(pre + k, r.x0);
		if (k >= cap)
			return btz_fail(err, BTZ_E_BUF, "no room");
		memcpy(out, pre, k);
	}
	if (t != BTZ_TRANSFORM_NONE) {
		tmp = malloc(n);
		if (tmp == NULL)
			return btz_fail(err, BTZ_E_NOMEM, "out of memory");
		memcpy(tmp, in, n);
		if (btz_transform_forward(t, tmp, n, &r) != 0) {
			free(tmp);
			return btz_fail(err, BTZ_E_NOMEM, "out of memory");
		}
		in = tmp;
	}
	st = btz_predict_encode(&mm->pred, in, n, out + k, cap - k, &got,
				err);
	*out_size = k + got;
	free(tmp);
	return st;
}

/* The rows a payload starts with, when the model's layout uses them:
 * advances *in past them; 0 when they are malformed or out of range. */
static int mm_rows(const struct btz_model_method *mm, const uint8_t **in,
		   size_t *n, struct btz_rows *r)
{
	uint64_t w = 0, x0 = 0;
	size_t a, b;

	r->width = r->x0 = 0;
	if (!btz_transform_uses_rows(mm->model->hp.transform))
		return 1;
	a = btz_varint_decode(*in, *n, &w);
	b = a ? btz_varint_decode(*in + a, *n - a, &x0) : 0;
	if (b == 0 || w > BTZ_ROWS_WIDTH_MAX || x0 > BTZ_ROWS_WIDTH_MAX)
		return 0;
	r->width = (uint32_t)w;
	r->x0 = (uint32_t)x0;
	/* What a writer writes: rows it knows, or 0, 0. */
	if (!btz_rows_known(r) && (w != 0 || x0 != 0))
		return 0;
	*in += a + b;
	*n -= a + b;
	return 1;
}

/* Chunks a model decodes at once: on a GPU enough windows a step to
 * keep it busy (a step is dozens of small launches whatever its rows);
 * on the CPU one, since the threads already share the work chunk by
 * chunk. BTZ_LOCKSTEP overrides it, for tests and measurements. */
static size_t mm_lockstep(void *ctx)
{
	const char *env = getenv("BTZ_LOCKSTEP");

	(void)ctx;
	if (env != NULL && *env != '\0')
		return (size_t)strtoul(env, NULL, 10);
	return btz_engine_device() == BTZ_DEVICE_CPU ? 1 : 8;
}

static void mm_decode_many(void *ctx, struct btz_method_part *parts,
			   size_t k)
{
	struct btz_model_method *mm = ctx;
	struct btz_predict_part *pp = calloc(k, sizeof(*pp));
	struct btz_rows *rows = calloc(k, sizeof(*rows));
	size_t *at = calloc(k, sizeof(*at)), m = 0,
	       maxwin = btz_transform_chunk_windows(mm->model->hp.transform);
	struct btz_error err;

	if (pp == NULL || at == NULL || rows == NULL) {
		for (size_t i = 0; i < k; i++)
			parts[i].st = btz_fail(&parts[i].err, BTZ_E_NOMEM,
					       "out of memory");
		goto done;
	}
	for (size_t i = 0; i < k; i++) {
		size_t nwin = (parts[i].raw - 1) / mm->pred.window + 1;

		/* A writer never makes longer model chunks; refusing them
		 * keeps a hostile archive from asking for huge caches. */
		if (parts[i].raw > 0 && nwin > maxwin) {
			parts[i].st = btz_fail(&parts[i].err, BTZ_E_CORRUPT,
					       "model chunk of %zu windows "
					       "(at most %zu)", nwin, maxwin);
			continue;
		}
		const uint8_t *in = parts[i].in;
		size_t n = parts[i].n;

		if (!mm_rows(mm, &in, &n, &rows[m])) {
			parts[i].st = btz_fail(&parts[i].err, BTZ_E_CORRUPT,
					       "model chunk: bad rows");
			continue;
		}
		pp[m] = (struct btz_predict_part){ .in = in,
						   .in_size = n,
						   .out = parts[i].out,
						   .n = parts[i].raw };
		at[m++] = i;
	}
	btz_predict_decode_many(&mm->pred, pp, m, &err);
	for (size_t j = 0; j < m; j++) {
		struct btz_method_part *p = &parts[at[j]];

		p->st = pp[j].st;
		p->err = pp[j].err;
		if (p->st == BTZ_OK &&
		    btz_transform_inverse(mm->model->hp.transform, p->out,
					  p->raw, &rows[j]) != 0)
			p->st = btz_fail(&p->err, BTZ_E_NOMEM, "out of memory");
	}
done:
	free(pp);
	free(rows);
	free(at);
}

static enum btz_status mm_decode(void *ctx, const uint8_t *in, size_t n,
				 uint8_t *out, size_t raw,
				 struct btz_error *err)
{
	struct btz_method_part part = { .in = in, .n = n, .out = out,
					.raw = raw };

	mm_decode_many(ctx, &part, 1);
	if (part.st != BTZ_OK && err != NULL)
		*err = part.err;
	return part.st;
}

/* Planes (doc/format.md, "Planes payload"): sample i of a chunk of c
 * interleaved channels is sample i / c of plane i % c. Every plane is
 * then what a mono chunk would be: its own predictor state and windows,
 * where the interleaved samples would each be predicted from the other
 * channel's. A plane after the first may instead hold its channel minus
 * the first (mod 2^16, so any samples): most of a stereo pair is in
 * both channels. */
#define PLANE_SAME 0
#define PLANE_DIFF 1

static void planes_split(const uint8_t *in, size_t n, unsigned c,
			 uint8_t *out)
{
	size_t per = n / c;

	for (size_t i = 0; i < n / 2; i++)
		memcpy(out + i % c * per + i / c * 2, in + 2 * i, 2);
}

static void planes_join(const uint8_t *in, size_t n, unsigned c,
			uint8_t *out)
{
	size_t per = n / c;

	for (size_t i = 0; i < n / 2; i++)
		memcpy(out + 2 * i, in + i % c * per + i / c * 2, 2);
}

/* Plane p's little-endian samples minus (sign -1) or plus (+1) plane
 * ref's, mod 2^16, in place. */
static void plane_diff(uint8_t *p, const uint8_t *ref, size_t per, int sign)
{
	for (size_t j = 0; j < per; j += 2) {
		uint16_t a = btz_get_le16(p + j), b = btz_get_le16(ref + j);

		btz_put_le16(p + j, (uint16_t)(sign < 0 ? a - b : a + b));
	}
}

/* Σ |first difference| of plane p's samples, or of p minus ref's (mod
 * 2^16) when ref is not NULL: how loud what a predictor leaves would
 * be, for a thousandth of the model's work. */
static uint64_t plane_activity(const uint8_t *p, const uint8_t *ref,
			       size_t per)
{
	uint64_t sum = 0;
	int prev = 0;

	for (size_t j = 0; j < per; j += 2) {
		uint16_t u = btz_get_le16(p + j);
		int x = (int16_t)(ref ? (uint16_t)(u - btz_get_le16(ref + j)) : u);

		sum += (uint64_t)(x > prev ? x - prev : prev - x);
		prev = x;
	}
	return sum;
}

/* u8 channel count, then per plane a u8 mode, a varint coded size and
 * the model's payload. A chunk that is not whole frames of 2 to
 * BTZ_PLANES_MAX channels is not for this method (BTZ_E_BUF: the caller
 * keeps another). Each later plane is coded both ways and the smaller
 * kept, unless one form is clearly quieter (activity below 7/8 of the
 * other's), which then is coded alone: speech recorded in stereo is
 * nearly the same in both channels, and its difference wins by far;
 * music's forms come within 8% and are both tried. */
static enum btz_status pl_encode(void *ctx, const uint8_t *in, size_t n,
				 const struct btz_rows *rows, uint8_t *out,
				 size_t cap, size_t *out_size,
				 struct btz_error *err)
{
	struct btz_model_method *mm = ctx;
	unsigned c = rows != NULL ? rows->channels : 0;
	uint8_t *buf = NULL, *tmp[2] = { NULL, NULL };
	size_t at = 1, per;
	enum btz_status st = BTZ_OK;

	if (c < 2 || c > BTZ_PLANES_MAX || n % (2 * c) != 0 || cap < 1)
		return btz_fail(err, BTZ_E_BUF, "not whole frames of 2 to %d "
				"channels", BTZ_PLANES_MAX);
	per = n / c;
	buf = malloc(n);
	tmp[0] = malloc(cap);
	tmp[1] = malloc(cap);
	if (buf == NULL || tmp[0] == NULL || tmp[1] == NULL) {
		st = btz_fail(err, BTZ_E_NOMEM, "out of memory");
		goto done;
	}
	out[0] = (uint8_t)c;
	planes_split(in, n, c, buf);
	for (unsigned ch = 0; ch < c; ch++) {
		uint8_t v[BTZ_VARINT_MAX], *p = buf + ch * per;
		size_t got[2] = { SIZE_MAX, SIZE_MAX }, k;
		int mode, first = PLANE_SAME, last = ch ? PLANE_DIFF : PLANE_SAME;

		if (ch > 0) {
			uint64_t same = plane_activity(p, NULL, per);
			uint64_t diff = plane_activity(p, buf, per);

			if (8 * diff < 7 * same)
				first = PLANE_DIFF;
			else if (8 * same < 7 * diff)
				last = PLANE_SAME;
		}
		for (mode = first; mode <= last; mode++) {
			if (mode == PLANE_DIFF)
				plane_diff(p, buf, per, -1);
			st = mm_encode(mm, p, per, NULL, tmp[mode], cap,
				       &got[mode], err);
			if (mode == PLANE_DIFF)
				plane_diff(p, buf, per, +1);
			if (st == BTZ_E_BUF)
				got[mode] = SIZE_MAX; /* the other may fit */
			else if (st != BTZ_OK)
				goto done;
		}
		mode = got[PLANE_DIFF] < got[PLANE_SAME] ? PLANE_DIFF
							 : PLANE_SAME;
		if (got[mode] == SIZE_MAX ||
		    (k = btz_varint_encode(v, got[mode])) + 1 + got[mode] >
			    cap - at) {
			st = btz_fail(err, BTZ_E_BUF, "no room");
			goto done;
		}
		out[at] = (uint8_t)mode;
		memcpy(out + at + 1, v, k);
		memcpy(out + at + 1 + k, tmp[mode], got[mode]);
		at += 1 + k + got[mode];
	}
	*out_size = at;
	st = BTZ_OK;
done:
	free(buf);
	free(tmp[0]);
	free(tmp[1]);
	return st;
}

static enum btz_status pl_decode(void *ctx, const uint8_t *in, size_t n,
				 uint8_t *out, size_t raw,
				 struct btz_error *err)
{
	struct btz_method_part parts[BTZ_PLANES_MAX];
	uint8_t mode[BTZ_PLANES_MAX];
	unsigned c = n > 0 ? in[0] : 0;
	size_t at = 1, per;
	uint8_t *buf;

	if (c < 2 || c > BTZ_PLANES_MAX || raw % (2 * c) != 0)
		return btz_fail(err, BTZ_E_CORRUPT, "planes: %u channels of "
				"16-bit samples in %zu bytes", c, raw);
	per = raw / c;
	for (unsigned ch = 0; ch < c; ch++) {
		uint64_t s = 0;
		size_t k = at < n ? btz_varint_decode(in + at + 1, n - at - 1,
						      &s)
				  : 0;

		if (k == 0 || s == 0 || s > n - at - 1 - k)
			return btz_fail(err, BTZ_E_CORRUPT, "planes: channel "
					"%u: bad coded size", ch);
		mode[ch] = in[at];
		if (mode[ch] > (ch ? PLANE_DIFF : PLANE_SAME))
			return btz_fail(err, BTZ_E_CORRUPT, "planes: channel "
					"%u: unknown mode %u", ch, mode[ch]);
		parts[ch] = (struct btz_method_part){ .in = in + at + 1 + k,
						      .n = (size_t)s,
						      .raw = per };
		at += 1 + k + (size_t)s;
	}
	if (at != n)
		return btz_fail(err, BTZ_E_CORRUPT, "planes: %zu bytes after "
				"the last channel", n - at);
	buf = malloc(raw);
	if (buf == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	for (unsigned ch = 0; ch < c; ch++)
		parts[ch].out = buf + ch * per;
	mm_decode_many(ctx, parts, c);
	for (unsigned ch = 0; ch < c; ch++)
		if (parts[ch].st != BTZ_OK) {
			enum btz_status st = parts[ch].st;

			if (err != NULL) {
				*err = parts[ch].err;
				btz_fail_prefix(err, "channel %u", ch);
			}
			free(buf);
			return st;
		}
	for (unsigned ch = 1; ch < c; ch++)
		if (mode[ch] == PLANE_DIFF)
			plane_diff(buf + ch * per, buf, per, +1);
	planes_join(buf, raw, c, out);
	free(buf);
	return BTZ_OK;
}

enum btz_device_choice btz_device_arg(const char *s)
{
	if (strcmp(s, "auto") == 0)
		return BTZ_RUN_AUTO;
	if (strcmp(s, "cpu") == 0)
		return BTZ_RUN_CPU;
	if (strcmp(s, "cuda") != 0)
		btz_die("--device: '%s' is not cpu, cuda or auto", s);
	return BTZ_RUN_CUDA;
}

void btz_device_choose(enum btz_device_choice want)
{
	char why[256] = "";
	int d = BTZ_DEVICE_CPU;

	if (want != BTZ_RUN_CPU)
		d = btz_device_gpu(want == BTZ_RUN_CUDA, why, sizeof(why));
	if (d < 0)
		btz_die("--device=cuda: %s", why);
	btz_engine_set_device((enum btz_device)d);
	if (!btz_verbose || want == BTZ_RUN_CPU)
		return;
	if (d == BTZ_DEVICE_SIM)
		btz_note("models run on the simulated GPU (BTZ_GPU_SIM)");
	else if (d == BTZ_DEVICE_CUDA)
		btz_note("models run on the GPU (CUDA)");
	else
		btz_note("models run on the CPU: %s", why);
}

void btz_model_method_init(struct btz_model_method *mm, struct btz_model *m,
			   unsigned k)
{
	memset(mm, 0, sizeof(*mm));
	mm->model = m;
	mm->pred = btz_model_predictor(m);
	mm->method.id = (uint8_t)(0x80 + k);
	mm->method.name = m->name;
	mm->method.ctx = mm;
	mm->method.encode = mm_encode;
	mm->method.decode = mm_decode;
	mm->method.lockstep = mm_lockstep;
	mm->method.decode_many = mm_decode_many;
	if (k < BTZ_PLANES_MODELS) {
		mm->planes.id = (uint8_t)(BTZ_METHOD_PLANES0 + k);
		mm->planes.name = m->name;
		mm->planes.ctx = mm;
		mm->planes.encode = pl_encode;
		mm->planes.decode = pl_decode;
	}
}

void btz_model_method_free(struct btz_model_method *mm)
{
	btz_model_free(mm->model);
	mm->model = NULL;
}

/* Appends to a bounded report of what was searched and found. */
static void say(char *buf, size_t cap, const char *fmt, const char *a,
		const char *b)
{
	size_t n = strlen(buf);

	if (n + 1 < cap)
		snprintf(buf + n, cap - n, fmt, a, b);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Tries one file; returns 1 and sets *out on a match. */
static int try_file(const char *path, const uint8_t fp[16],
		    struct btz_model **out, char *found, size_t cap)
{
	struct btz_model *m;
	struct btz_error err;
	char hex[33];

	if (btz_model_load(&m, path, &err) != BTZ_OK) {
		say(found, cap, "; %s (%s)", path, "unreadable or invalid");
		return 0;
	}
	if (memcmp(m->fingerprint, fp, 16) == 0) {
		*out = m;
		return 1;
	}
	btz_fingerprint_hex(hex, m->fingerprint);
	say(found, cap, "; %s (%s)", path, hex);
	btz_model_free(m);
	return 0;
}

static int try_dir(const char *dir, const uint8_t fp[16],
		   struct btz_model **out, char *found, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	int hit = 0;

	if (d == NULL)
		return 0;
	while (!hit && (ent = readdir(d)) != NULL) {
		char *path;

		if (!ends_with(ent->d_name, ".btm"))
			continue;
		path = malloc(strlen(dir) + strlen(ent->d_name) + 2);
		if (path == NULL)
			break;
		sprintf(path, "%s/%s", dir, ent->d_name);
		hit = try_file(path, fp, out, found, cap);
		free(path);
	}
	closedir(d);
	return hit;
}

static int try_path(const char *p, const uint8_t fp[16],
		    struct btz_model **out, char *found, size_t cap)
{
	struct stat st;

	if (stat(p, &st) != 0)
		return 0;
	return S_ISDIR(st.st_mode) ? try_dir(p, fp, out, found, cap)
				   : try_file(p, fp, out, found, cap);
}

enum btz_status btz_model_find(struct btz_model **out, const uint8_t fp[16],
			       const char *name, char *const *paths,
			       size_t npaths, struct btz_error *err)
{
	char searched[1024] = "", found[2048] = "", hex[33];
	const char *env = getenv("BTZ_MODEL_PATH");

	*out = NULL;
	for (size_t i = 0; i < npaths; i++) {
		say(searched, sizeof(searched), "%s--model=%s",
		    searched[0] ? ", " : "", paths[i]);
		if (try_path(paths[i], fp, out, found, sizeof(found)))
			return BTZ_OK;
	}
	if (env != NULL && *env != '\0') {
		char *copy = strdup(env), *save = NULL;

		if (copy == NULL)
			return btz_fail(err, BTZ_E_NOMEM, "out of memory");
		for (char *dir = strtok_r(copy, ":", &save); dir != NULL;
		     dir = strtok_r(NULL, ":", &save)) {
			say(searched, sizeof(searched), "%sBTZ_MODEL_PATH %s",
			    searched[0] ? ", " : "", dir);
			if (try_dir(dir, fp, out, found, sizeof(found))) {
				free(copy);
				return BTZ_OK;
			}
		}
		free(copy);
	}
	/* The installed directory, then its retired/, where a model that an
	 * update replaced stays so that its archives still unpack (btzpack
	 * never picks from it). */
	for (int retired = 0; retired < 2; retired++) {
		const char *dir = btz_models_dir();
		char *d = malloc(strlen(dir) + sizeof("/retired"));
		int hit;

		if (d == NULL)
			return btz_fail(err, BTZ_E_NOMEM, "out of memory");
		sprintf(d, "%s%s", dir, retired ? "/retired" : "");
		say(searched, sizeof(searched), "%s%s",
		    searched[0] ? ", " : "", d);
		hit = try_dir(d, fp, out, found, sizeof(found));
		free(d);
		if (hit)
			return BTZ_OK;
	}
	btz_fingerprint_hex(hex, fp);
	return btz_fail(err, BTZ_E_MODEL,
			"needs model '%s' (fingerprint %s); searched %s; "
			"found %s", name, hex, searched,
			found[0] ? found + 2 : "no model files");
}

const char *btz_models_dir(void)
{
	const char *env = getenv("BTZ_MODELS_DIR");

	return env != NULL && *env != '\0' ? env : BTZ_MODELDIR;
}

static int btm_entry(const struct dirent *e)
{
	return ends_with(e->d_name, ".btm");
}

/* Appends dir's .btm files, in name order, to the list. */
static void list_dir(const char *dir, char ***list, size_t *n)
{
	struct dirent **ents;
	int k = scandir(dir, &ents, btm_entry, alphasort);

	for (int i = 0; i < k; i++) {
		char **grown = realloc(*list, (*n + 1) * sizeof(**list));
		char *path = malloc(strlen(dir) + strlen(ents[i]->d_name) + 2);

		if (grown == NULL || path == NULL) {
			free(path);
			if (grown != NULL)
				*list = grown;
		} else {
			sprintf(path, "%s/%s", dir, ents[i]->d_name);
			*list = grown;
			(*list)[(*n)++] = path;
		}
		free(ents[i]);
	}
	if (k >= 0)
		free(ents);
}

size_t btz_model_default_paths(char ***out)
{
	const char *env = getenv("BTZ_MODEL_PATH");
	size_t n = 0;

	*out = NULL;
	if (env != NULL && *env != '\0') {
		char *copy = strdup(env), *save = NULL;

		for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL;
		     dir != NULL; dir = strtok_r(NULL, ":", &save))
			list_dir(dir, out, &n);
		free(copy);
	}
	list_dir(btz_models_dir(), out, &n);
	return n;
}
