/* Header, footer, chunk block heads and the index: encoding and the
 * validation every reader relies on. Lengths are bounded before use. */
#include "format/btz.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

const uint8_t btz_magic[8] = { 0x89, 'B', 'T', 'Z', '\r', '\n', 0x1a, '\n' };
static const uint8_t end_magic[4] = { 'B', 'T', 'Z', 'E' };

const char *btz_type_name(enum btz_type t)
{
	switch (t) {
	case BTZ_TYPE_FILE: return "file";
	case BTZ_TYPE_DIR: return "directory";
	case BTZ_TYPE_SYMLINK: return "symlink";
	case BTZ_TYPE_HARDLINK: return "hardlink";
	}
	return "?";
}

const char *btz_modality_name(enum btz_modality m)
{
	switch (m) {
	case BTZ_MOD_OTHER: return "other";
	case BTZ_MOD_TEXT: return "text";
	case BTZ_MOD_IMAGE: return "image";
	case BTZ_MOD_AUDIO: return "audio";
	}
	return "?";
}

void btz_header_encode(uint8_t out[BTZ_HEADER_SIZE], uint32_t required,
		       uint32_t optional)
{
	memset(out, 0, BTZ_HEADER_SIZE);
	memcpy(out, btz_magic, 8);
	btz_put_le16(out + 8, BTZ_VERSION);
	btz_put_le16(out + 10, BTZ_HEADER_SIZE);
	btz_put_le32(out + 12, required);
	btz_put_le32(out + 16, optional);
	btz_put_le64(out + 24, XXH3_64bits_withSeed(out, 24, 0));
}

enum btz_status btz_header_decode(const uint8_t in[BTZ_HEADER_SIZE],
				  struct btz_error *err)
{
	uint32_t required;

	if (memcmp(in, btz_magic, 8) != 0)
		return btz_fail(err, BTZ_E_CORRUPT, "not a btz archive");
	if (!BTZ_SUM_OK(btz_get_le64(in + 24), XXH3_64bits_withSeed(in, 24, 0)))
		return btz_fail(err, BTZ_E_CHECKSUM, "header checksum mismatch");
	if (btz_get_le16(in + 8) != BTZ_VERSION)
		return btz_fail(err, BTZ_E_UNSUPPORTED,
				"unsupported format version %u (this btz reads 1)",
				btz_get_le16(in + 8));
	if (btz_get_le16(in + 10) != BTZ_HEADER_SIZE)
		return btz_fail(err, BTZ_E_CORRUPT, "bad header size %u",
				btz_get_le16(in + 10));
	required = btz_get_le32(in + 12);
	if (required & ~BTZ_REQUIRED_KNOWN)
		return btz_fail(err, BTZ_E_UNSUPPORTED,
				"unsupported required features 0x%08x",
				required & ~BTZ_REQUIRED_KNOWN);
	return BTZ_OK;
}

void btz_footer_encode(uint8_t out[BTZ_FOOTER_SIZE], const struct btz_footer *f)
{
	btz_put_le64(out, f->index_offset);
	btz_put_le64(out + 8, f->index_size);
	btz_put_le64(out + 16, f->index_checksum);
	btz_put_le32(out + 24, (uint32_t)XXH3_64bits_withSeed(out, 24, 0));
	memcpy(out + 28, end_magic, 4);
}

enum btz_status btz_footer_decode(const uint8_t in[BTZ_FOOTER_SIZE],
				  uint64_t file_size, struct btz_footer *f,
				  struct btz_error *err)
{
	if (memcmp(in + 28, end_magic, 4) != 0)
		return btz_fail(err, BTZ_E_CORRUPT,
				"no footer (truncated or not a btz archive)");
	if (!BTZ_SUM_OK(btz_get_le32(in + 24),
			(uint32_t)XXH3_64bits_withSeed(in, 24, 0)))
		return btz_fail(err, BTZ_E_CHECKSUM, "footer checksum mismatch");
	f->index_offset = btz_get_le64(in);
	f->index_size = btz_get_le64(in + 8);
	f->index_checksum = btz_get_le64(in + 16);
	if (f->index_offset < BTZ_HEADER_SIZE || f->index_size == 0 ||
	    f->index_size > BTZ_INDEX_MAX ||
	    f->index_offset > file_size ||
	    file_size - f->index_offset < BTZ_FOOTER_SIZE ||
	    file_size - f->index_offset - BTZ_FOOTER_SIZE != f->index_size)
		return btz_fail(err, BTZ_E_CORRUPT,
				"footer does not match the file size "
				"(truncated or extended archive)");
	return BTZ_OK;
}

size_t btz_chunk_head_encode(uint8_t *out, const struct btz_chunk *c)
{
	size_t n = 0;

	out[n++] = c->method;
	n += btz_varint_encode(out + n, c->raw_size);
	n += btz_varint_encode(out + n, c->coded_size);
	return n;
}

size_t btz_chunk_head_size(const struct btz_chunk *c)
{
	uint8_t t[BTZ_CHUNK_HEAD_MAX];

	return btz_chunk_head_encode(t, c);
}

void btz_index_init(struct btz_index *ix)
{
	memset(ix, 0, sizeof(*ix));
}

static void member_free(struct btz_member *m)
{
	free(m->path);
	free(m->uname);
	free(m->gname);
	free(m->target);
}

void btz_index_free(struct btz_index *ix)
{
	if (ix == NULL)
		return;
	for (size_t i = 0; i < ix->nmodels; i++)
		free(ix->models[i].name);
	free(ix->models);
	for (size_t i = 0; i < ix->nmembers; i++)
		member_free(&ix->members[i]);
	free(ix->members);
	free(ix->chunks);
	btz_index_init(ix);
}

/* Grows *arr (of elements of size sz) to hold one more. */
static int grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	size_t ncap, bytes;
	void *p;

	if (n < *cap)
		return 1;
	ncap = *cap ? *cap * 2 : 64;
	if (btz_mul_overflow(ncap, sz, &bytes))
		return 0;
	p = realloc(*arr, bytes);
	if (p == NULL)
		return 0;
	*arr = p;
	*cap = ncap;
	return 1;
}

static char *dup_opt(const char *s)
{
	return s ? btz_dup_bytes(s, strlen(s)) : NULL;
}

enum btz_status btz_index_add_member(struct btz_index *ix,
				     const struct btz_member *m,
				     struct btz_error *err)
{
	struct btz_member *d;

	if (!grow((void **)&ix->members, &ix->members_cap, ix->nmembers,
		  sizeof(*d)))
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	d = &ix->members[ix->nmembers];
	*d = *m;
	d->path = dup_opt(m->path);
	d->uname = dup_opt(m->uname ? m->uname : "");
	d->gname = dup_opt(m->gname ? m->gname : "");
	d->target = dup_opt(m->target);
	if (d->path == NULL || d->uname == NULL || d->gname == NULL ||
	    (m->target != NULL && d->target == NULL)) {
		member_free(d);
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	}
	if (m->type == BTZ_TYPE_FILE) {
		d->offset = ix->data_size;
		ix->data_size += m->size;
	} else {
		d->offset = ix->data_size;
		d->size = 0;
	}
	ix->nmembers++;
	return BTZ_OK;
}

enum btz_status btz_index_drop_member(struct btz_index *ix, size_t i,
				      struct btz_error *err)
{
	if (i >= ix->nmembers || (ix->members[i].type == BTZ_TYPE_FILE &&
				  ix->members[i].size != 0))
		return btz_fail(err, BTZ_E_ARG, "cannot drop member %zu", i);
	member_free(&ix->members[i]);
	memmove(&ix->members[i], &ix->members[i + 1],
		(ix->nmembers - i - 1) * sizeof(ix->members[0]));
	ix->nmembers--;
	return BTZ_OK;
}

enum btz_status btz_index_add_chunk(struct btz_index *ix,
				    const struct btz_chunk *c,
				    struct btz_error *err)
{
	if (!grow((void **)&ix->chunks, &ix->chunks_cap, ix->nchunks,
		  sizeof(*c)))
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	ix->chunks[ix->nchunks++] = *c;
	return BTZ_OK;
}

enum btz_status btz_index_add_model(struct btz_index *ix,
				    const uint8_t fingerprint[16],
				    const char *name, struct btz_error *err)
{
	struct btz_model_ref *p;

	if (ix->nmodels >= BTZ_MODELS_MAX)
		return btz_fail(err, BTZ_E_LIMIT, "more than %d models",
				BTZ_MODELS_MAX);
	p = realloc(ix->models, (ix->nmodels + 1) * sizeof(*p));
	if (p == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	ix->models = p;
	memcpy(p[ix->nmodels].fingerprint, fingerprint, 16);
	p[ix->nmodels].name = dup_opt(name);
	if (p[ix->nmodels].name == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	ix->nmodels++;
	return BTZ_OK;
}

static uint64_t zigzag(int64_t s)
{
	return ((uint64_t)s << 1) ^ (uint64_t)(s >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

enum btz_status btz_index_encode(const struct btz_index *ix,
				 struct btz_buf *out, struct btz_error *err)
{
	btz_buf_put_varint(out, ix->nmodels);
	for (size_t i = 0; i < ix->nmodels; i++) {
		btz_buf_put(out, ix->models[i].fingerprint, 16);
		btz_buf_put_str(out, ix->models[i].name,
				strlen(ix->models[i].name));
	}
	btz_buf_put_varint(out, ix->nmembers);
	for (size_t i = 0; i < ix->nmembers; i++) {
		const struct btz_member *m = &ix->members[i];

		btz_buf_put_u8(out, (uint8_t)m->type);
		btz_buf_put_u8(out, (uint8_t)m->modality);
		btz_buf_put_str(out, m->path, strlen(m->path));
		btz_buf_put_varint(out, m->mode & BTZ_MODE_MAX);
		btz_buf_put_varint(out, m->uid);
		btz_buf_put_varint(out, m->gid);
		btz_buf_put_str(out, m->uname, strlen(m->uname));
		btz_buf_put_str(out, m->gname, strlen(m->gname));
		btz_buf_put_varint(out, zigzag(m->mtime));
		btz_buf_put_varint(out, m->mtime_nsec);
		if (m->type == BTZ_TYPE_FILE) {
			btz_buf_put_varint(out, m->size);
			btz_buf_put_le64(out, m->checksum);
		} else if (m->type == BTZ_TYPE_SYMLINK ||
			   m->type == BTZ_TYPE_HARDLINK) {
			btz_buf_put_str(out, m->target, strlen(m->target));
		}
	}
	btz_buf_put_varint(out, ix->nchunks);
	for (size_t i = 0; i < ix->nchunks; i++) {
		const struct btz_chunk *c = &ix->chunks[i];

		btz_buf_put_u8(out, c->method);
		btz_buf_put_varint(out, c->raw_size);
		btz_buf_put_varint(out, c->coded_size);
		btz_buf_put_le64(out, c->checksum);
	}
	if (!out->ok)
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	return BTZ_OK;
}

/* Reads a str field into a fresh C string, enforcing [min, max] bytes. */
static char *read_str(struct btz_rd *r, size_t min, size_t max)
{
	const uint8_t *s;
	size_t n = btz_rd_str(r, &s, max);

	if (!r->ok || n < min || (n && memchr(s, 0, n) != NULL)) {
		r->ok = 0;
		return NULL;
	}
	return btz_dup_bytes(s, n);
}

#define CORRUPT(what) btz_fail(err, BTZ_E_CORRUPT, "index: %s", what)

static enum btz_status decode_member(struct btz_rd *r, struct btz_member *m,
				     size_t i, struct btz_error *err)
{
	uint64_t mode, nsec;

	memset(m, 0, sizeof(*m));
	m->type = btz_rd_u8(r);
	m->modality = btz_rd_u8(r);
	if (r->ok && m->type > BTZ_TYPE_HARDLINK)
		return btz_fail(err, BTZ_E_CORRUPT,
				"index: member %zu: unknown type %u", i,
				(unsigned)m->type);
	if (r->ok && m->modality > BTZ_MOD_AUDIO)
		return btz_fail(err, BTZ_E_CORRUPT,
				"index: member %zu: unknown modality %u", i,
				(unsigned)m->modality);
	m->path = read_str(r, 1, BTZ_PATH_MAX);
	mode = btz_rd_varint(r);
	m->uid = btz_rd_varint(r);
	m->gid = btz_rd_varint(r);
	m->uname = read_str(r, 0, BTZ_NAME_MAX);
	m->gname = read_str(r, 0, BTZ_NAME_MAX);
	m->mtime = unzigzag(btz_rd_varint(r));
	nsec = btz_rd_varint(r);
	if (m->type == BTZ_TYPE_FILE) {
		m->size = btz_rd_varint(r);
		m->checksum = btz_rd_le64(r);
	} else if (m->type == BTZ_TYPE_SYMLINK ||
		   m->type == BTZ_TYPE_HARDLINK) {
		m->target = read_str(r, 1, BTZ_PATH_MAX);
	}
	if (!r->ok) {
		if (m->path == NULL && r->ok == 0)
			return btz_fail(err, BTZ_E_CORRUPT,
					"index: member %zu: bad or truncated "
					"record", i);
		return btz_fail(err, BTZ_E_CORRUPT,
				"index: member %zu (%s): bad or truncated "
				"record", i, m->path ? m->path : "?");
	}
	if (mode > BTZ_MODE_MAX || nsec > 999999999u)
		return btz_fail(err, BTZ_E_CORRUPT,
				"index: member %zu (%s): mode or time out of "
				"range", i, m->path);
	m->mode = (uint32_t)mode;
	m->mtime_nsec = (uint32_t)nsec;
	return BTZ_OK;
}

enum btz_status btz_index_decode(const uint8_t *in, size_t n,
				 uint64_t index_offset, struct btz_index *ix,
				 struct btz_error *err)
{
	struct btz_rd r;
	uint64_t count, pos, offset;
	enum btz_status s;

	btz_index_init(ix);
	btz_rd_init(&r, in, n);

	count = btz_rd_varint(&r);
	if (!r.ok || count > BTZ_MODELS_MAX)
		return CORRUPT("bad model count");
	for (uint64_t i = 0; i < count; i++) {
		const uint8_t *fp = btz_rd_bytes(&r, 16);
		char *name = read_str(&r, 1, BTZ_NAME_MAX);

		if (!r.ok || fp == NULL)
			return CORRUPT("bad model entry");
		s = btz_index_add_model(ix, fp, name, err);
		free(name);
		if (s != BTZ_OK)
			return s;
	}

	/* A member takes at least 11 bytes: bound the count before growing. */
	count = btz_rd_varint(&r);
	if (!r.ok || count > (n - r.pos) / 11)
		return CORRUPT("bad member count");
	for (uint64_t i = 0; i < count; i++) {
		struct btz_member m;

		s = decode_member(&r, &m, (size_t)i, err);
		if (s == BTZ_OK && ix->data_size + m.size < ix->data_size)
			s = CORRUPT("file sizes overflow");
		if (s == BTZ_OK)
			s = btz_index_add_member(ix, &m, err);
		member_free(&m);
		if (s != BTZ_OK)
			return s;
	}

	/* A chunk entry takes at least 11 bytes. */
	count = btz_rd_varint(&r);
	if (!r.ok || count > (n - r.pos) / 11)
		return CORRUPT("bad chunk count");
	pos = BTZ_HEADER_SIZE;
	offset = 0;
	for (uint64_t i = 0; i < count; i++) {
		struct btz_chunk c;

		c.method = btz_rd_u8(&r);
		c.raw_size = btz_rd_varint(&r);
		c.coded_size = btz_rd_varint(&r);
		c.checksum = btz_rd_le64(&r);
		if (!r.ok)
			return CORRUPT("truncated chunk table");
		if (c.raw_size == 0 || c.raw_size > BTZ_CHUNK_MAX ||
		    c.coded_size == 0 || c.coded_size > c.raw_size)
			return btz_fail(err, BTZ_E_CORRUPT,
					"index: chunk %" PRIu64
					": sizes out of range", i);
		c.offset = offset;
		c.pos = pos;
		offset += c.raw_size;
		pos += btz_chunk_head_size(&c) + c.coded_size;
		if (pos > index_offset)
			return btz_fail(err, BTZ_E_CORRUPT,
					"index: chunk %" PRIu64
					" runs past the index", i);
		s = btz_index_add_chunk(ix, &c, err);
		if (s != BTZ_OK)
			return s;
	}
	if (r.pos != n)
		return CORRUPT("trailing bytes");
	if (pos != index_offset)
		return CORRUPT("chunks do not end where the index starts");
	if (offset != ix->data_size)
		return btz_fail(err, BTZ_E_CORRUPT,
				"index: chunks hold %" PRIu64
				" bytes but files need %" PRIu64,
				offset, ix->data_size);
	return BTZ_OK;
}

size_t btz_index_chunk_at(const struct btz_index *ix, uint64_t offset)
{
	size_t lo = 0, hi = ix->nchunks;

	/* Last chunk whose offset <= offset. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ix->chunks[mid].offset <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return ix->nchunks;
	lo--;
	if (offset - ix->chunks[lo].offset >= ix->chunks[lo].raw_size)
		return ix->nchunks;
	return lo;
}
