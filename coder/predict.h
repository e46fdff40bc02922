/* The interface through which a model drives the range coder, and the
 * generic predictor chunk method built on it.
 *
 * A chunk of n bytes is cut into windows of `window` bytes (the last may be
 * shorter). Each window is coded from a fresh start: the predictor sees only
 * that window's bytes. All windows advance in lockstep, position by position,
 * and share one coder stream:
 *
 *	for pos = 0 .. window - 1:
 *		predict byte pos of every window that has one (one call)
 *		code byte pos of window 0, 1, 2, ...
 *
 * so a decoder can ask the model for many windows per call. Only the last
 * window can be shorter (and a decoder of many chunks orders their
 * windows longest first), so the windows still active at pos are always a
 * prefix 0 .. nwin - 1 of them, and window i is the same window in every
 * call of one encode or decode.
 *
 * With the predictor's match flag, the match layer (coder/match.h)
 * adjusts each table between the predictor and the coder, per chunk.
 *
 * coder/ knows nothing about transformers; a model is one predictor. */
#ifndef BTZ_CODER_PREDICT_H
#define BTZ_CODER_PREDICT_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

struct btz_predictor {
	void *ctx;     /* the model: shared, read-only while coding */
	size_t window; /* context length in bytes, >= 1 */
	/* Optional (NULL: run is NULL). Makes the state of one encode or
	 * decode of nwin windows (key/value caches, counts), so that one
	 * predictor can code many chunks on many threads at once. */
	enum btz_status (*begin)(void *ctx, size_t nwin, void **run,
				 struct btz_error *err);
	/* Fills freq[i][0..255] for byte pos of window i, 0 <= i < nwin, given
	 * windows[i][0, pos) (only those bytes are meaningful). Each table
	 * must total exactly 2^24 with every entry >= 1. Within one run the
	 * calls come with pos = 0, 1, 2, ... in order and nwin never grows,
	 * so run may keep per-window state indexed by i. The result must
	 * depend only on the bytes shown, or decoding breaks. Returns BTZ_OK
	 * or fills err. */
	enum btz_status (*predict)(void *ctx, void *run,
				   const uint8_t *const *windows, size_t nwin,
				   size_t pos, uint32_t (*freq)[256],
				   struct btz_error *err);
	/* Optional: frees run (called whenever begin succeeded). */
	void (*end)(void *ctx, void *run);
	/* Optional, for encoders, whose windows are known in full: fills
	 * sym[t] = { cumulative frequency below in[t], frequency of in[t] }
	 * for every t < n of in[0, n) cut into windows of `window` bytes
	 * (the last may be shorter), each from a fresh start, exactly as
	 * predict() would; and, when query is not NULL, qfreq[t] = the
	 * frequency of byte query[t] in the same table. The run comes from
	 * begin(ctx, nwin, ...) for those windows; a predictor may run them
	 * all at once (a GPU does). */
	enum btz_status (*predict_chunk)(void *ctx, void *run,
					 const uint8_t *in, size_t n,
					 const uint8_t *query, uint32_t *qfreq,
					 uint32_t (*sym)[2],
					 struct btz_error *err);
	/* Nonzero: the match layer (coder/match.h) adjusts every table of
	 * a chunk before it is coded. */
	int match;
};

/* Codes in[0, n) into out[0, cap) and stores the coded size. BTZ_E_BUF
 * when the coded form does not fit (the caller keeps a cheaper method);
 * BTZ_E_MODEL when the predictor returns an invalid table; BTZ_E_NOMEM;
 * or the predictor's own failure. n = 0 codes to 0 bytes. */
enum btz_status btz_predict_encode(const struct btz_predictor *pred,
				   const uint8_t *in, size_t n, uint8_t *out,
				   size_t cap, size_t *out_size,
				   struct btz_error *err);

/* Decodes exactly n bytes from in[0, in_size) into out. BTZ_E_CORRUPT when
 * the stream is provably damaged (truncated, extended, impossible values);
 * other damage yields wrong bytes, which the container's checksum catches.
 * Never reads or writes out of bounds on hostile input. */
enum btz_status btz_predict_decode(const struct btz_predictor *pred,
				   const uint8_t *in, size_t in_size,
				   uint8_t *out, size_t n,
				   struct btz_error *err);

/* One chunk of a lockstep decode: in, in_size, out and n as for
 * btz_predict_decode; st and err receive its result. */
struct btz_predict_part {
	const uint8_t *in;
	size_t in_size;
	uint8_t *out;
	size_t n;
	enum btz_status st;
	struct btz_error err;
};

/* Decodes k chunks at once: the windows of all of them advance in
 * lockstep through one predictor run, each chunk's bytes from its own
 * coder stream, so a model sees many chunks' windows per call (what
 * keeps a GPU busy). Each part gets the bytes and status that
 * btz_predict_decode would give it alone. Returns BTZ_OK when the
 * predictor ran; otherwise (its failure, no memory) every part gets that
 * status and err. */
enum btz_status btz_predict_decode_many(const struct btz_predictor *pred,
					struct btz_predict_part *parts,
					size_t k, struct btz_error *err);

/* A trivial deterministic predictor for tests: adaptive order-0 counts per
 * window (start at 1, add 32 per byte seen), scaled to exactly 2^24 with
 * every entry >= 1. It needs no cleanup (its state lives in each run) and
 * recomputes its counts from the bytes if calls skip or repeat positions,
 * so it is correct in any call order. Positions must stay below 2^24. */
struct btz_predictor btz_predictor_order0(size_t window);

#endif
