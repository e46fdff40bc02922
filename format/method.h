/* Chunk methods: something that turns a chunk into bytes and back.
 * The container knows methods only by id and through this interface; the
 * built-in ones (stored, lzma2, repeat) live in method.c, and a model
 * method plugs in by filling a struct btz_method (ids 0x80 + model index). */
#ifndef BTZ_FORMAT_METHOD_H
#define BTZ_FORMAT_METHOD_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "format/btz.h"

enum btz_method_id {
	BTZ_METHOD_STORED = 0x00,
	BTZ_METHOD_LZMA2 = 0x01,
	BTZ_METHOD_REPEAT = 0x02,
	/* model k over the planes of interleaved 16-bit channels: 0x40 + k,
	 * k < BTZ_PLANES_MODELS */
	BTZ_METHOD_PLANES0 = 0x40,
	BTZ_METHOD_MODEL0 = 0x80, /* model k of the index's table: 0x80 + k */
};
#define BTZ_PLANES_MODELS 63
#define BTZ_PLANES_MAX 16 /* channels a planes chunk may have */

/* The model-table entry a method id codes with (model or planes), or -1. */
static inline int btz_method_model(uint8_t id)
{
	if (id >= BTZ_METHOD_MODEL0 && id < 0xff)
		return id - BTZ_METHOD_MODEL0;
	if (id >= BTZ_METHOD_PLANES0 &&
	    id < BTZ_METHOD_PLANES0 + BTZ_PLANES_MODELS)
		return id - BTZ_METHOD_PLANES0;
	return -1;
}

/* One chunk of a decode of many: in[0, n) to out[0, raw), its result in
 * st and err. */
struct btz_method_part {
	const uint8_t *in;
	size_t n;
	uint8_t *out;
	size_t raw;
	enum btz_status st;
	struct btz_error err;
};

struct btz_method {
	uint8_t id;
	const char *name;
	void *ctx;
	/* Codes in[0, n) into out[0, cap); BTZ_E_BUF when it does not fit,
	 * which makes the caller keep a cheaper method. rows (may be NULL)
	 * is where the bytes lie in an image, for a method that can use it;
	 * its decoder must then find it in the payload. Must be
	 * thread-safe. */
	enum btz_status (*encode)(void *ctx, const uint8_t *in, size_t n,
				  const struct btz_rows *rows, uint8_t *out,
				  size_t cap, size_t *out_size,
				  struct btz_error *err);
	/* Decodes exactly raw bytes, consuming exactly n; anything else is
	 * BTZ_E_CORRUPT. Must not crash on hostile input. */
	enum btz_status (*decode)(void *ctx, const uint8_t *in, size_t n,
				  uint8_t *out, size_t raw,
				  struct btz_error *err);
	/* Optional, for a method that decodes many chunks faster together
	 * (a model on a GPU): how many it wants at once now (NULL or <= 1:
	 * one), and the decoder of many, which gives each part what decode
	 * gives it alone. */
	size_t (*lockstep)(void *ctx);
	void (*decode_many)(void *ctx, struct btz_method_part *parts,
			    size_t k);
};

/* The LZMA2 fallback at the given preset (0-9, | BTZ_LZMA_EXTREME). */
#define BTZ_LZMA_EXTREME 0x80000000u
void btz_method_lzma2(struct btz_method *m, uint32_t *preset);

/* A table from method id to implementation; NULL = unavailable. Stored and
 * repeat are always present. */
struct btz_methods {
	const struct btz_method *by_id[256];
};

void btz_methods_init(struct btz_methods *ms);

/* Codes one chunk with the smallest of: repeat (constant chunks), each
 * candidate (given rows, which may be NULL), and stored. out and scratch
 * must hold n bytes each; the result is left in out. Fills c->method,
 * c->coded_size, c->raw_size, and c->checksum (seeded with offset). */
enum btz_status btz_chunk_encode(const struct btz_method *const *cand,
				 size_t ncand, const uint8_t *in, size_t n,
				 const struct btz_rows *rows, uint64_t offset,
				 uint8_t *out, uint8_t *scratch,
				 struct btz_chunk *c, struct btz_error *err);

/* Decodes a chunk's payload and verifies its checksum. */
enum btz_status btz_chunk_decode(const struct btz_methods *ms,
				 const struct btz_chunk *c, const uint8_t *in,
				 uint8_t *out, struct btz_error *err);

/* How many chunks of method id to decode at once (1 unless the method
 * has a decode_many that asks for more). */
size_t btz_method_lockstep(const struct btz_methods *ms, uint8_t id);

/* btz_chunk_decode for k chunks of one method, through its decode_many
 * where it has one: parts[i] gets chunk c[i]'s result (the caller sets
 * in and out; n and raw come from the chunk). */
void btz_chunk_decode_many(const struct btz_methods *ms,
			   const struct btz_chunk *const *c,
			   struct btz_method_part *parts, size_t k);

uint64_t btz_chunk_checksum(const uint8_t *p, size_t n, uint64_t offset);
const char *btz_method_name(const struct btz_methods *ms, uint8_t id);

#endif
