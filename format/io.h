/* Writing and reading whole archives: the streaming writer (header, chunk
 * blocks, then index and footer; never seeks, so it can write to a pipe)
 * and the random-access reader (footer first, then the index). */
#ifndef BTZ_FORMAT_IO_H
#define BTZ_FORMAT_IO_H

#include <stdint.h>

#include "common/file.h"
#include "format/btz.h"

struct btz_writer {
	int fd;
	uint64_t pos;         /* bytes written so far */
	uint64_t chunk_bytes; /* data-stream bytes covered by chunks */
	struct btz_index ix;
};

enum btz_status btz_writer_open(struct btz_writer *w, int fd,
				struct btz_error *err);
enum btz_status btz_writer_add_member(struct btz_writer *w,
				      const struct btz_member *m,
				      struct btz_error *err);
/* c->offset must equal the bytes already covered by chunks. */
enum btz_status btz_writer_add_chunk(struct btz_writer *w,
				     const struct btz_chunk *c,
				     const uint8_t *payload,
				     struct btz_error *err);
/* Writes index and footer; fails if chunks and files disagree in size. */
enum btz_status btz_writer_finish(struct btz_writer *w, struct btz_error *err);
void btz_writer_free(struct btz_writer *w);

struct btz_reader {
	int fd;
	uint64_t size;
	struct btz_index ix;
};

/* fd must be seekable (a regular file); the caller keeps ownership. */
enum btz_status btz_reader_open(struct btz_reader *r, int fd,
				struct btz_error *err);
/* Reads chunk i's payload (coded_size bytes) into buf and checks its
 * block header against the index. Thread-safe (pread). */
enum btz_status btz_reader_read_chunk(const struct btz_reader *r, size_t i,
				      uint8_t *buf, struct btz_error *err);
void btz_reader_free(struct btz_reader *r);

/* pread(2) until done, retrying on EINTR (btz_write_all: common/file.h). */
enum btz_status btz_pread_all(int fd, void *p, size_t n, uint64_t off,
			      struct btz_error *err);

#endif
