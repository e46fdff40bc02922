/* Integer inference (doc/model.md). One code path serves both schedules:
 * packing runs all positions of a window as rows of one call; unpacking
 * runs one row per window per step, many windows in lockstep. Keys and
 * values live in int8 caches, one per window, so both give the same
 * integers. */
#ifndef BTZ_MODEL_ENGINE_H
#define BTZ_MODEL_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "coder/predict.h"
#include "model/btm.h"

struct btz_engine;

/* State for nwin windows and calls of at most max_rows rows. */
enum btz_status btz_engine_create(struct btz_engine **out,
				  const struct btz_model *m, size_t nwin,
				  size_t max_rows, struct btz_error *err);
void btz_engine_free(struct btz_engine *e);

/* Runs nrows rows: row r is token tok[r] (0-255, or 256 = start) at
 * position pos[r] of window win[r]. Each window's rows must arrive in
 * position order, across and within calls, starting at 0. Fills freq[r]
 * (256 entries totalling 2^24, each >= 1) and, when logits is not NULL,
 * logits[r] (the int32 output row). */
enum btz_status btz_engine_rows(struct btz_engine *e, size_t nrows,
				const uint16_t *tok, const uint32_t *win,
				const uint32_t *pos, uint32_t (*freq)[256],
				int32_t (*logits)[256], struct btz_error *err);

/* As btz_engine_rows, but keeps of each row only the coder's interval
 * for the byte that follows, tgt[r]: sym[r] = { frequencies below it, its
 * frequency } (what an encoder needs: 8 bytes a row, not 1 KiB); and,
 * when query is not NULL, qfreq[r] = the frequency of byte query[r]. */
enum btz_status btz_engine_rows_sym(struct btz_engine *e, size_t nrows,
				    const uint16_t *tok, const uint32_t *win,
				    const uint32_t *pos, const uint8_t *tgt,
				    uint32_t (*sym)[2], const uint8_t *query,
				    uint32_t *qfreq, struct btz_error *err);

/* Bits the coder would spend on data[0, len) split into consecutive
 * windows of the model's context (the last may be shorter): the sum of
 * −log2(freq / 2^24) of the true bytes. A measurement for trainers and
 * tests; floating point only adds up the code length. */
enum btz_status btz_engine_code_bits(const struct btz_model *m,
				     const uint8_t *data, size_t len,
				     double *bits, struct btz_error *err);

/* Where an engine's time goes, for benchmarks: set with
 * btz_engine_profile; NULL (the default) measures nothing. */
struct btz_engine_prof {
	uint64_t gemm_ns, attn_ns, total_ns, rows;
};

void btz_engine_profile(struct btz_engine *e, struct btz_engine_prof *p);
/* The name of the kernel table the engine uses. */
const char *btz_engine_kernel(const struct btz_engine *e);

/* Frees the GPU engines kept for m's predictor runs (btz_model_free
 * calls it). */
void btz_engine_pool_drop(const struct btz_model *m);

/* The model as a chunk predictor for coder/ (window = its context),
 * through the match layer when its file asks for it. */
struct btz_predictor btz_model_predictor(const struct btz_model *m);

/* Bytes of key/value cache one window needs. */
size_t btz_model_kv_bytes(const struct btz_model *m);

#endif
