/* The streaming writer and the random-access reader of .btz archives. */
#include "format/io.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

enum btz_status btz_pread_all(int fd, void *p, size_t n, uint64_t off,
			      struct btz_error *err)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t k = pread(fd, b, n, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return btz_fail(err, BTZ_E_IO, "read failed: %s",
					strerror(errno));
		if (k == 0)
			return btz_fail(err, BTZ_E_CORRUPT,
					"unexpected end of file");
		b += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return BTZ_OK;
}

enum btz_status btz_writer_open(struct btz_writer *w, int fd,
				struct btz_error *err)
{
	uint8_t h[BTZ_HEADER_SIZE];

	memset(w, 0, sizeof(*w));
	w->fd = fd;
	btz_index_init(&w->ix);
	btz_header_encode(h, 0, 0);
	BTZ_TRY(btz_write_all(fd, h, sizeof(h), err));
	w->pos = sizeof(h);
	return BTZ_OK;
}

enum btz_status btz_writer_add_member(struct btz_writer *w,
				      const struct btz_member *m,
				      struct btz_error *err)
{
	size_t plen = m->path ? strlen(m->path) : 0;

	if (plen == 0 || plen > BTZ_PATH_MAX)
		return btz_fail(err, BTZ_E_LIMIT,
				"member name empty or longer than %d bytes",
				BTZ_PATH_MAX);
	if ((m->uname && strlen(m->uname) > BTZ_NAME_MAX) ||
	    (m->gname && strlen(m->gname) > BTZ_NAME_MAX))
		return btz_fail(err, BTZ_E_LIMIT,
				"user or group name longer than %d bytes",
				BTZ_NAME_MAX);
	if ((m->type == BTZ_TYPE_SYMLINK || m->type == BTZ_TYPE_HARDLINK) &&
	    (m->target == NULL || m->target[0] == '\0' ||
	     strlen(m->target) > BTZ_PATH_MAX))
		return btz_fail(err, BTZ_E_LIMIT,
				"link target empty or longer than %d bytes",
				BTZ_PATH_MAX);
	return btz_index_add_member(&w->ix, m, err);
}

enum btz_status btz_writer_add_chunk(struct btz_writer *w,
				     const struct btz_chunk *c,
				     const uint8_t *payload,
				     struct btz_error *err)
{
	uint8_t head[BTZ_CHUNK_HEAD_MAX];
	struct btz_chunk rec = *c;
	size_t n;

	if (c->offset != w->chunk_bytes || c->raw_size == 0 ||
	    c->raw_size > BTZ_CHUNK_MAX || c->coded_size == 0 ||
	    c->coded_size > c->raw_size)
		return btz_fail(err, BTZ_E_ARG, "chunk out of order or size");
	n = btz_chunk_head_encode(head, c);
	BTZ_TRY(btz_write_all(w->fd, head, n, err));
	BTZ_TRY(btz_write_all(w->fd, payload, c->coded_size, err));
	rec.pos = w->pos;
	w->pos += n + c->coded_size;
	w->chunk_bytes += c->raw_size;
	return btz_index_add_chunk(&w->ix, &rec, err);
}

enum btz_status btz_writer_finish(struct btz_writer *w, struct btz_error *err)
{
	struct btz_footer f;
	uint8_t foot[BTZ_FOOTER_SIZE];
	struct btz_buf b;
	enum btz_status s;

	if (w->chunk_bytes != w->ix.data_size)
		return btz_fail(err, BTZ_E_ARG,
				"chunks hold %" PRIu64 " bytes, files %" PRIu64,
				w->chunk_bytes, w->ix.data_size);
	btz_buf_init(&b);
	s = btz_index_encode(&w->ix, &b, err);
	if (s == BTZ_OK && b.len > BTZ_INDEX_MAX)
		s = btz_fail(err, BTZ_E_LIMIT, "index exceeds 1 GiB");
	if (s == BTZ_OK)
		s = btz_write_all(w->fd, b.data, b.len, err);
	if (s == BTZ_OK) {
		f.index_offset = w->pos;
		f.index_size = b.len;
		f.index_checksum = XXH3_64bits_withSeed(b.data, b.len, 0);
		btz_footer_encode(foot, &f);
		s = btz_write_all(w->fd, foot, sizeof(foot), err);
		w->pos += b.len + sizeof(foot);
	}
	btz_buf_free(&b);
	return s;
}

void btz_writer_free(struct btz_writer *w)
{
	btz_index_free(&w->ix);
}

enum btz_status btz_reader_open(struct btz_reader *r, int fd,
				struct btz_error *err)
{
	uint8_t h[BTZ_HEADER_SIZE], foot[BTZ_FOOTER_SIZE];
	struct btz_footer f;
	struct stat st;
	uint8_t *ixbuf;
	enum btz_status s;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	btz_index_init(&r->ix);
	if (fstat(fd, &st) != 0)
		return btz_fail(err, BTZ_E_IO, "%s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return btz_fail(err, BTZ_E_ARG, "not a regular file");
	r->size = (uint64_t)st.st_size;
	if (r->size < BTZ_HEADER_SIZE + BTZ_FOOTER_SIZE) {
		if (r->size >= 8) {
			BTZ_TRY(btz_pread_all(fd, h, 8, 0, err));
			if (memcmp(h, btz_magic, 8) == 0)
				return btz_fail(err, BTZ_E_CORRUPT,
						"truncated archive (%" PRIu64
						" bytes)", r->size);
		}
		return btz_fail(err, BTZ_E_CORRUPT, "not a btz archive");
	}
	BTZ_TRY(btz_pread_all(fd, h, sizeof(h), 0, err));
	BTZ_TRY(btz_header_decode(h, err));
	BTZ_TRY(btz_pread_all(fd, foot, sizeof(foot),
			      r->size - BTZ_FOOTER_SIZE, err));
	BTZ_TRY(btz_footer_decode(foot, r->size, &f, err));
	ixbuf = malloc(f.index_size);
	if (ixbuf == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "out of memory for index");
	s = btz_pread_all(fd, ixbuf, f.index_size, f.index_offset, err);
	if (s == BTZ_OK &&
	    !BTZ_SUM_OK(XXH3_64bits_withSeed(ixbuf, f.index_size, 0),
			f.index_checksum))
		s = btz_fail(err, BTZ_E_CHECKSUM, "index checksum mismatch");
	if (s == BTZ_OK)
		s = btz_index_decode(ixbuf, f.index_size, f.index_offset,
				     &r->ix, err);
	free(ixbuf);
	if (s != BTZ_OK)
		btz_index_free(&r->ix);
	return s;
}

enum btz_status btz_reader_read_chunk(const struct btz_reader *r, size_t i,
				      uint8_t *buf, struct btz_error *err)
{
	const struct btz_chunk *c = &r->ix.chunks[i];
	uint8_t want[BTZ_CHUNK_HEAD_MAX], got[BTZ_CHUNK_HEAD_MAX];
	size_t n = btz_chunk_head_encode(want, c);

	BTZ_TRY(btz_pread_all(r->fd, got, n, c->pos, err));
	if (memcmp(want, got, n) != 0)
		return btz_fail(err, BTZ_E_CORRUPT,
				"block header disagrees with the index");
	return btz_pread_all(r->fd, buf, c->coded_size, c->pos + n, err);
}

void btz_reader_free(struct btz_reader *r)
{
	btz_index_free(&r->ix);
}
