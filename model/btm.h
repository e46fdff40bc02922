/* The .btm model file (doc/model.md): hyperparameters, provenance and the
 * integer tensors of one network, loaded into one aligned allocation. */
#ifndef BTZ_MODEL_BTM_H
#define BTZ_MODEL_BTM_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define BTZ_BTM_VERSION 1
/* The first 8 bytes of every .btm file. */
extern const uint8_t btz_btm_magic[8];
#define BTZ_BTM_START 256 /* the start symbol, token row 256 */
#define BTZ_BTM_DH_MAX 256u /* widest head, d / H */

/* Flags of the file's head. */
#define BTZ_BTM_MATCH 1u /* code through the match layer (coder/match.h) */
/* Bits 16-31: the attention span in units of 16 positions, 0 for the
 * whole window (doc/model.md, "Attention span"). */
#define BTZ_BTM_SPAN_SHIFT 16
#define BTZ_BTM_SPAN_UNIT 16u
#define BTZ_BTM_SPAN_MASK 0xffff0000u
#define BTZ_BTM_SPAN_MAX (0xffffu * BTZ_BTM_SPAN_UNIT)
#define BTZ_BTM_FLAGS (BTZ_BTM_MATCH | BTZ_BTM_SPAN_MASK)

struct btz_hparams {
	uint32_t d, layers, heads, kv_heads, ff, context;
	uint8_t modality;  /* enum btz_modality values */
	uint8_t transform; /* layout transform, 0 = none */
	uint32_t flags;	   /* BTZ_BTM_ flags */
};

struct btz_layer {
	const int8_t *wq, *wk, *wv, *wo, *w1, *w3, *w2;
	const int32_t *mq, *mk, *mv, *mo, *m1, *m3, *m2;
	const int32_t *g1, *b1, *g2, *b2;
	int32_t sq, sk, sv, a_mul, a_shift, ao_shift, so, rx, ln1_shift;
	int32_t s1, s3, mh, sh, s2, rx2, ln2_shift;
};

struct btz_model {
	struct btz_hparams hp;
	uint32_t dh; /* d / heads */
	char *name, *train_data;
	uint64_t steps;
	uint32_t valid_ubpb_float, valid_ubpb_int; /* bits/byte x 1e6 */
	const int8_t *tok_emb, *pos_emb, *wout;
	const uint16_t *exp_att;
	const int16_t *silu;
	const uint32_t *exp_out;
	int32_t f_mul, f_shift;
	struct btz_layer *layers;
	uint8_t fingerprint[16]; /* XXH3-128 of the file, canonical form */
	void *arena;             /* every tensor, aligned; owned */
	size_t arena_size;
};

/* The attention span of a model's rows in positions, 0 for the whole
 * window. */
static inline uint32_t btz_hp_span(const struct btz_hparams *hp)
{
	return (hp->flags >> BTZ_BTM_SPAN_SHIFT) * BTZ_BTM_SPAN_UNIT;
}

/* Sets it: span a multiple of BTZ_BTM_SPAN_UNIT, at most
 * BTZ_BTM_SPAN_MAX. */
static inline void btz_hp_set_span(struct btz_hparams *hp, uint32_t span)
{
	hp->flags = (hp->flags & ~BTZ_BTM_SPAN_MASK) |
		    span / BTZ_BTM_SPAN_UNIT << BTZ_BTM_SPAN_SHIFT;
}

/* Validates hyperparameters against the limits of doc/model.md. */
enum btz_status btz_hparams_check(const struct btz_hparams *hp,
				  struct btz_error *err);
/* Bytes of the tensor section of a file with these hyperparameters. */
enum btz_status btz_hparams_tensor_bytes(const struct btz_hparams *hp,
					 size_t *bytes, struct btz_error *err);

enum btz_status btz_model_load(struct btz_model **out, const char *path,
			       struct btz_error *err);
enum btz_status btz_model_load_mem(struct btz_model **out, const void *p,
				   size_t n, struct btz_error *err);
/* Serializes to a .btm byte image (malloc'd), checksum included. */
enum btz_status btz_model_save_mem(const struct btz_model *m, uint8_t **out,
				   size_t *n, struct btz_error *err);
enum btz_status btz_model_save(const struct btz_model *m, const char *path,
			       struct btz_error *err);
void btz_model_free(struct btz_model *m);

/* A random but well-conditioned model from an integer seed, with integer
 * arithmetic only, so the same seed gives the same file everywhere. Used
 * by tests and benchmarks before trained models exist. */
enum btz_status btz_model_generate(struct btz_model **out,
				   const struct btz_hparams *hp,
				   uint64_t seed, struct btz_error *err);

/* The head that .btm and .btf files share: magic, version, reserved
 * bytes and the hyperparameter block (doc/model.md, doc/checkpoint.md). */
#define BTZ_MODEL_HEAD_SIZE 44
void btz_model_head_encode(uint8_t out[BTZ_MODEL_HEAD_SIZE],
			   const uint8_t magic[8], uint16_t version,
			   const struct btz_hparams *hp);
/* Checks version (kind names the file type in messages), reserved bytes
 * and flags, and the hyperparameters' limits; the magic is the caller's. */
enum btz_status btz_model_head_decode(const uint8_t *in, uint16_t version,
				      const char *kind,
				      struct btz_hparams *hp,
				      struct btz_error *err);
/* A str field at *pos of p[0, len): u16 length of lo..hi bytes, no NUL. */
enum btz_status btz_model_read_str(const uint8_t *p, size_t *pos, size_t len,
				   const char *what, size_t lo, size_t hi,
				   const uint8_t **s, size_t *n,
				   struct btz_error *err);

/* Hex of a fingerprint: 32 characters and a NUL. */
void btz_fingerprint_hex(char out[33], const uint8_t fp[16]);

#endif
