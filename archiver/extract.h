/* Reading members' data back: chunks are decoded ahead in parallel, in
 * the order they are needed, and handed out in data-stream order. */
#ifndef BTZ_ARCHIVER_EXTRACT_H
#define BTZ_ARCHIVER_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "archiver/pool.h"
#include "format/io.h"
#include "format/method.h"

struct djob;

/* The most chunks decoded as one group (btz_method_lockstep). */
#define BTZ_LOCKSTEP_MAX 64

struct btz_dstream {
	const struct btz_reader *r;
	const struct btz_methods *ms;
	struct btz_pool *pool;
	size_t *need; /* chunk indices to decode, increasing */
	size_t nneed, next;
	struct djob *ring;
	struct djob **groups; /* BTZ_LOCKSTEP_MAX per ring slot */
	size_t lockstep[256]; /* chunks a group of each method takes */
	size_t nring, head, count;
	struct djob *cur; /* the chunk being consumed */
};

/* Plans decoding of the chunks that the members marked in sel[] (NULL =
 * all) cover. nring bounds chunks in flight (memory: 2 x chunk each). */
enum btz_status btz_dstream_init(struct btz_dstream *ds,
				 const struct btz_reader *r,
				 const struct btz_methods *ms,
				 struct btz_pool *pool, size_t nring,
				 const unsigned char *sel,
				 struct btz_error *err);
void btz_dstream_free(struct btz_dstream *ds);

/* Receives a member's bytes in order; returns 0, or -1 to stop (having
 * filled err). */
typedef int (*btz_sink)(void *ctx, const uint8_t *p, size_t n,
			uint64_t off, struct btz_error *err);

/* Feeds member m's bytes to sink and checks its content checksum. The
 * error message names the chunk that failed. */
enum btz_status btz_member_read(struct btz_dstream *ds,
				const struct btz_member *m, btz_sink sink,
				void *ctx, struct btz_error *err);

/* Decodes everything and checks every checksum, writing nothing; the
 * error names the member and chunk. Used by -t and by the fuzzer. */
enum btz_status btz_archive_verify(const struct btz_reader *r,
				   const struct btz_methods *ms,
				   struct btz_pool *pool, size_t nring,
				   struct btz_error *err);

#endif
