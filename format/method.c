/* The built-in chunk methods and the choice among candidates per chunk. */
#include "format/method.h"

#include <inttypes.h>
#include <lzma.h>
#include <string.h>
#include <xxhash.h>

uint64_t btz_chunk_checksum(const uint8_t *p, size_t n, uint64_t offset)
{
	return XXH3_64bits_withSeed(p, n, offset);
}

static enum btz_status stored_encode(void *ctx, const uint8_t *in, size_t n,
				     const struct btz_rows *rows, uint8_t *out,
				     size_t cap, size_t *out_size,
				     struct btz_error *err)
{
	(void)ctx;
	(void)rows;
	if (n > cap)
		return btz_fail(err, BTZ_E_BUF, "stored: no room");
	memcpy(out, in, n);
	*out_size = n;
	return BTZ_OK;
}

static enum btz_status stored_decode(void *ctx, const uint8_t *in, size_t n,
				     uint8_t *out, size_t raw,
				     struct btz_error *err)
{
	(void)ctx;
	if (n != raw)
		return btz_fail(err, BTZ_E_CORRUPT,
				"stored chunk size mismatch");
	memcpy(out, in, n);
	return BTZ_OK;
}

static enum btz_status repeat_decode(void *ctx, const uint8_t *in, size_t n,
				     uint8_t *out, size_t raw,
				     struct btz_error *err)
{
	(void)ctx;
	if (n != 1)
		return btz_fail(err, BTZ_E_CORRUPT,
				"repeat chunk payload is not one byte");
	memset(out, in[0], raw);
	return BTZ_OK;
}

static const struct btz_method stored = {
	.id = BTZ_METHOD_STORED, .name = "stored",
	.encode = stored_encode, .decode = stored_decode,
};

static const struct btz_method repeat = {
	.id = BTZ_METHOD_REPEAT, .name = "repeat",
	.encode = NULL, .decode = repeat_decode,
};

/* The decoder's dictionary must cover everything the encoder could refer
 * to; within one chunk that is at most the chunk itself. */
static uint32_t lzma_dict(size_t raw, uint32_t preset_dict)
{
	uint32_t d = raw < LZMA_DICT_SIZE_MIN ? LZMA_DICT_SIZE_MIN
					      : (uint32_t)raw;

	return preset_dict && preset_dict < d ? preset_dict : d;
}

static enum btz_status lzma2_encode(void *ctx, const uint8_t *in, size_t n,
				    const struct btz_rows *rows, uint8_t *out,
				    size_t cap, size_t *out_size,
				    struct btz_error *err)
{
	const uint32_t *preset = ctx;
	lzma_options_lzma opt;
	lzma_filter f[2];
	size_t pos = 0;
	lzma_ret ret;

	(void)rows;

	if (lzma_lzma_preset(&opt, *preset))
		return btz_fail(err, BTZ_E_ARG, "lzma2: bad preset");
	opt.dict_size = lzma_dict(n, opt.dict_size);
	f[0].id = LZMA_FILTER_LZMA2;
	f[0].options = &opt;
	f[1].id = LZMA_VLI_UNKNOWN;
	ret = lzma_raw_buffer_encode(f, NULL, in, n, out, &pos, cap);
	if (ret == LZMA_BUF_ERROR)
		return btz_fail(err, BTZ_E_BUF, "lzma2: no room");
	if (ret == LZMA_MEM_ERROR)
		return btz_fail(err, BTZ_E_NOMEM, "lzma2: out of memory");
	if (ret != LZMA_OK)
		return btz_fail(err, BTZ_E_ARG, "lzma2: encoder error %d",
				(int)ret);
	*out_size = pos;
	return BTZ_OK;
}

static enum btz_status lzma2_decode(void *ctx, const uint8_t *in, size_t n,
				    uint8_t *out, size_t raw,
				    struct btz_error *err)
{
	lzma_options_lzma opt;
	lzma_filter f[2];
	size_t in_pos = 0, out_pos = 0;
	lzma_ret ret;

	(void)ctx;
	memset(&opt, 0, sizeof(opt));
	opt.dict_size = lzma_dict(raw, 0);
	f[0].id = LZMA_FILTER_LZMA2;
	f[0].options = &opt;
	f[1].id = LZMA_VLI_UNKNOWN;
	ret = lzma_raw_buffer_decode(f, NULL, in, &in_pos, n, out, &out_pos,
				     raw);
	if (ret == LZMA_MEM_ERROR)
		return btz_fail(err, BTZ_E_NOMEM, "lzma2: out of memory");
	if ((ret != LZMA_OK && ret != LZMA_STREAM_END) || in_pos != n ||
	    out_pos != raw)
		return btz_fail(err, BTZ_E_CORRUPT,
				"lzma2 data is corrupt");
	return BTZ_OK;
}

void btz_method_lzma2(struct btz_method *m, uint32_t *preset)
{
	memset(m, 0, sizeof(*m));
	m->id = BTZ_METHOD_LZMA2;
	m->name = "lzma2";
	m->ctx = preset;
	m->encode = lzma2_encode;
	m->decode = lzma2_decode;
}

static uint32_t lzma_default_preset = 9;
static const struct btz_method lzma2_any = {
	.id = BTZ_METHOD_LZMA2, .name = "lzma2", .ctx = &lzma_default_preset,
	.encode = lzma2_encode, .decode = lzma2_decode,
};

void btz_methods_init(struct btz_methods *ms)
{
	memset(ms, 0, sizeof(*ms));
	ms->by_id[BTZ_METHOD_STORED] = &stored;
	ms->by_id[BTZ_METHOD_LZMA2] = &lzma2_any;
	ms->by_id[BTZ_METHOD_REPEAT] = &repeat;
}

const char *btz_method_name(const struct btz_methods *ms, uint8_t id)
{
	if (ms->by_id[id] != NULL)
		return ms->by_id[id]->name;
	return btz_method_model(id) >= 0 ? "model" : "unknown";
}

static int is_constant(const uint8_t *p, size_t n)
{
	return n > 0 && p[0] == p[n - 1] && memcmp(p, p + 1, n - 1) == 0;
}

enum btz_status btz_chunk_encode(const struct btz_method *const *cand,
				 size_t ncand, const uint8_t *in, size_t n,
				 const struct btz_rows *rows, uint64_t offset,
				 uint8_t *out, uint8_t *scratch,
				 struct btz_chunk *c, struct btz_error *err)
{
	uint8_t *best_buf = NULL;
	size_t best = n;

	if (n == 0 || n > BTZ_CHUNK_MAX)
		return btz_fail(err, BTZ_E_ARG, "chunk size %zu out of range",
				n);
	c->raw_size = n;
	c->offset = offset;
	c->checksum = btz_chunk_checksum(in, n, offset);
	if (is_constant(in, n)) {
		c->method = BTZ_METHOD_REPEAT;
		c->coded_size = 1;
		out[0] = in[0];
		return BTZ_OK;
	}
	c->method = BTZ_METHOD_STORED;
	/* Each candidate gets room for one byte less than the best so far,
	 * so a method only wins by being strictly smaller. */
	for (size_t i = 0; i < ncand && best > 1; i++) {
		uint8_t *dst = best_buf == out ? scratch : out;
		size_t got = 0;
		enum btz_status s;

		s = cand[i]->encode(cand[i]->ctx, in, n, rows, dst, best - 1,
				    &got, err);
		if (s == BTZ_E_BUF)
			continue;
		if (s != BTZ_OK)
			return s;
		best = got;
		best_buf = dst;
		c->method = cand[i]->id;
	}
	if (best_buf == NULL)
		memcpy(out, in, n);
	else if (best_buf != out)
		memcpy(out, best_buf, best);
	c->coded_size = best;
	return BTZ_OK;
}

/* A decoded chunk against its checksum. */
static enum btz_status verify(const struct btz_chunk *c, const uint8_t *out,
			      struct btz_error *err)
{
	if (!BTZ_SUM_OK(btz_chunk_checksum(out, c->raw_size, c->offset),
			c->checksum))
		return btz_fail(err, BTZ_E_CHECKSUM,
				"checksum mismatch (data is corrupt)");
	return BTZ_OK;
}

size_t btz_method_lockstep(const struct btz_methods *ms, uint8_t id)
{
	const struct btz_method *m = ms->by_id[id];
	size_t k;

	if (m == NULL || m->lockstep == NULL || m->decode_many == NULL)
		return 1;
	k = m->lockstep(m->ctx);
	return k > 1 ? k : 1;
}

void btz_chunk_decode_many(const struct btz_methods *ms,
			   const struct btz_chunk *const *c,
			   struct btz_method_part *parts, size_t k)
{
	const struct btz_method *m = k ? ms->by_id[c[0]->method] : NULL;

	if (m == NULL || m->decode_many == NULL || k == 1) {
		for (size_t i = 0; i < k; i++)
			parts[i].st = btz_chunk_decode(ms, c[i], parts[i].in,
						       parts[i].out,
						       &parts[i].err);
		return;
	}
	for (size_t i = 0; i < k; i++) {
		parts[i].n = c[i]->coded_size;
		parts[i].raw = c[i]->raw_size;
	}
	m->decode_many(m->ctx, parts, k);
	for (size_t i = 0; i < k; i++)
		if (parts[i].st == BTZ_OK)
			parts[i].st = verify(c[i], parts[i].out, &parts[i].err);
}

enum btz_status btz_chunk_decode(const struct btz_methods *ms,
				 const struct btz_chunk *c, const uint8_t *in,
				 uint8_t *out, struct btz_error *err)
{
	const struct btz_method *m = ms->by_id[c->method];

	if (m == NULL) {
		if (btz_method_model(c->method) >= 0)
			return btz_fail(err, BTZ_E_MODEL,
					"needs model %d, which is not loaded",
					btz_method_model(c->method));
		return btz_fail(err, BTZ_E_CORRUPT, "unknown method 0x%02x",
				c->method);
	}
	BTZ_TRY(m->decode(m->ctx, in, c->coded_size, out, c->raw_size, err));
	return verify(c, out, err);
}
