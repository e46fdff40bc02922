/* The .btz container, version 1: header, chunk blocks, index and footer.
 * doc/format.md is the specification; this header mirrors its tables.
 * Nothing here knows how a chunk's payload was produced (see method.h). */
#ifndef BTZ_FORMAT_BTZ_H
#define BTZ_FORMAT_BTZ_H

#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"
#include "common/status.h"

#define BTZ_HEADER_SIZE 32
#define BTZ_FOOTER_SIZE 32
#define BTZ_VERSION 1
/* Required-feature bits this reader understands (none in v1). */
#define BTZ_REQUIRED_KNOWN 0u

#define BTZ_CHUNK_MAX ((uint64_t)1 << 26)
#define BTZ_INDEX_MAX ((uint64_t)1 << 30)
#define BTZ_MODELS_MAX 127
#define BTZ_PATH_MAX 4095
#define BTZ_NAME_MAX 255
#define BTZ_MODE_MAX 07777

extern const uint8_t btz_magic[8];


enum btz_type {
	BTZ_TYPE_FILE = 0,
	BTZ_TYPE_DIR = 1,
	BTZ_TYPE_SYMLINK = 2,
	BTZ_TYPE_HARDLINK = 3,
};

enum btz_modality {
	BTZ_MOD_OTHER = 0,
	BTZ_MOD_TEXT = 1,
	BTZ_MOD_IMAGE = 2,
	BTZ_MOD_AUDIO = 3,
};

/* Where a chunk of RGB pixels lies in its image: the image's width in
 * pixels and the column of the chunk's first pixel. Width 0: unknown
 * (raw data, padded rows); such a chunk is one long row. A packer that
 * knows it (a PPM's or BMP's header) gives it to the chunk's methods. */
struct btz_rows {
	uint32_t width, x0;
	/* Audio: the chunk's 16-bit samples interleave this many channels
	 * (0 or 1: one). */
	uint32_t channels;
};
#define BTZ_ROWS_WIDTH_MAX ((uint32_t)1 << 24)

/* Whether r places pixels in an image: a width of 1 to
 * BTZ_ROWS_WIDTH_MAX and a column inside it. */
static inline int btz_rows_known(const struct btz_rows *r)
{
	return r->width > 0 && r->width <= BTZ_ROWS_WIDTH_MAX &&
	       r->x0 < r->width;
}

/* The rows of a chunk that starts off bytes (whole pixels) into the
 * pixels of an image width pixels wide; width 0: unknown. */
static inline struct btz_rows btz_rows_at(uint32_t width, uint64_t off)
{
	struct btz_rows r = { width, width ? (uint32_t)(off / 3 % width) : 0,
			      0 };

	return r;
}

/* Strings are owned, NUL-terminated copies; the format forbids NUL inside. */
struct btz_member {
	enum btz_type type;
	enum btz_modality modality;
	char *path;
	uint32_t mode;
	uint64_t uid, gid;
	char *uname, *gname;
	int64_t mtime;
	uint32_t mtime_nsec;
	uint64_t size;     /* files only */
	uint64_t checksum; /* files only: XXH3-64 of contents, seed 0 */
	char *target;      /* symlinks and hard links */
	uint64_t offset;   /* derived: data-stream offset of a file's bytes */
};

struct btz_chunk {
	uint8_t method;
	uint64_t raw_size;
	uint64_t coded_size;
	uint64_t checksum; /* XXH3-64 of decoded bytes, seed = offset */
	uint64_t offset;   /* derived: data-stream offset */
	uint64_t pos;      /* derived: file offset of the block */
};

struct btz_model_ref {
	uint8_t fingerprint[16];
	char *name;
};

struct btz_index {
	struct btz_model_ref *models;
	size_t nmodels;
	struct btz_member *members;
	size_t nmembers, members_cap;
	struct btz_chunk *chunks;
	size_t nchunks, chunks_cap;
	uint64_t data_size; /* sum of raw sizes (= sum of file sizes) */
};

const char *btz_type_name(enum btz_type t);
const char *btz_modality_name(enum btz_modality m);

void btz_header_encode(uint8_t out[BTZ_HEADER_SIZE], uint32_t required,
		       uint32_t optional);
enum btz_status btz_header_decode(const uint8_t in[BTZ_HEADER_SIZE],
				  struct btz_error *err);

struct btz_footer {
	uint64_t index_offset;
	uint64_t index_size;
	uint64_t index_checksum;
};

void btz_footer_encode(uint8_t out[BTZ_FOOTER_SIZE],
		       const struct btz_footer *f);
enum btz_status btz_footer_decode(const uint8_t in[BTZ_FOOTER_SIZE],
				  uint64_t file_size, struct btz_footer *f,
				  struct btz_error *err);

/* Chunk block header: method, raw size, coded size. Returns its length. */
#define BTZ_CHUNK_HEAD_MAX (1 + 2 * BTZ_VARINT_MAX)
size_t btz_chunk_head_encode(uint8_t *out, const struct btz_chunk *c);
size_t btz_chunk_head_size(const struct btz_chunk *c);

void btz_index_init(struct btz_index *ix);
void btz_index_free(struct btz_index *ix);
/* Appends copies; the index takes nothing from the caller. */
enum btz_status btz_index_add_member(struct btz_index *ix,
				     const struct btz_member *m,
				     struct btz_error *err);
enum btz_status btz_index_add_chunk(struct btz_index *ix,
				    const struct btz_chunk *c,
				    struct btz_error *err);
enum btz_status btz_index_add_model(struct btz_index *ix,
				    const uint8_t fingerprint[16],
				    const char *name, struct btz_error *err);
/* Removes member i, which must hold no data (so no offset moves). */
enum btz_status btz_index_drop_member(struct btz_index *ix, size_t i,
				      struct btz_error *err);
enum btz_status btz_index_encode(const struct btz_index *ix,
				 struct btz_buf *out, struct btz_error *err);
/* Parses and validates an index; fills the derived offsets, with chunk
 * blocks starting at BTZ_HEADER_SIZE and required to end at index_offset. */
enum btz_status btz_index_decode(const uint8_t *in, size_t n,
				 uint64_t index_offset, struct btz_index *ix,
				 struct btz_error *err);

/* First chunk that holds data-stream byte `offset`; nchunks if none. */
size_t btz_index_chunk_at(const struct btz_index *ix, uint64_t offset);

#endif
