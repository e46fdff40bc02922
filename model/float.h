/* The float checkpoint (.btf, doc/checkpoint.md) and the float network it
 * holds: the trainer writes it, the exporter (model/export.h) reads it
 * and quantizes it to a .btm. Floating point is allowed here because
 * nothing on this side decides a coded bit: only the integer model does. */
#ifndef BTZ_MODEL_FLOAT_H
#define BTZ_MODEL_FLOAT_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "model/btm.h"

#define BTZ_BTF_VERSION 1
#define BTZ_BTF_LAYERS_MAX 64 /* the .btm limit on layers */

/* One layer's float tensors, row-major [rows][cols], pointing into the
 * model's arena (shapes in doc/checkpoint.md). */
struct btz_flayer {
	float *wq, *wk, *wv, *wo; /* [H·dh][d], [Hkv·dh][d] ×2, [d][H·dh] */
	float *g1, *b1;           /* [d] */
	float *w1, *w3, *w2;      /* [F][d], [F][d], [d][F] */
	float *g2, *b2;           /* [d] */
};

struct btz_fmodel {
	struct btz_hparams hp;
	uint32_t dh; /* d / heads */
	char *name, *train_data;
	uint64_t steps;
	uint32_t valid_ubpb; /* validation bits/byte of this model x 1e6 */
	float *tok_emb;      /* [257][d] */
	float *pos_emb;      /* [W][d] */
	float *wout;         /* [256][d] */
	struct btz_flayer *layers;
	float *arena; /* every tensor, in file order; owned */
	size_t arena_floats;
};

/* Largest |value| of each activation seen by btz_fmodel_forward_ex, for
 * the exporter's calibration (index = layer). Accumulates across calls. */
struct btz_fstats {
	double x0, logits;
	double q[BTZ_BTF_LAYERS_MAX], k[BTZ_BTF_LAYERS_MAX];
	double v[BTZ_BTF_LAYERS_MAX], o[BTZ_BTF_LAYERS_MAX];
	double r[BTZ_BTF_LAYERS_MAX], x1[BTZ_BTF_LAYERS_MAX];
	double a[BTZ_BTF_LAYERS_MAX], u[BTZ_BTF_LAYERS_MAX];
	double h[BTZ_BTF_LAYERS_MAX], r2[BTZ_BTF_LAYERS_MAX];
	double x[BTZ_BTF_LAYERS_MAX];
};

/* A model with its arena allocated (zeroed) and every pointer bound;
 * name and train_data are copied (train_data may be NULL). */
/* Floats in the arena of a model of shape hp (its arena_floats). */
enum btz_status btz_fmodel_floats(const struct btz_hparams *hp, size_t *out,
				  struct btz_error *err);

enum btz_status btz_fmodel_alloc(struct btz_fmodel **out,
				 const struct btz_hparams *hp, const char *name,
				 const char *train_data, struct btz_error *err);
void btz_fmodel_free(struct btz_fmodel *fm);

enum btz_status btz_fmodel_load_mem(struct btz_fmodel **out, const void *p,
				    size_t n, struct btz_error *err);
enum btz_status btz_fmodel_load(struct btz_fmodel **out, const char *path,
				struct btz_error *err);
/* Serializes to a .btf byte image (malloc'd), checksum included. */
enum btz_status btz_fmodel_save_mem(const struct btz_fmodel *fm,
				    uint8_t **out, size_t *n,
				    struct btz_error *err);
enum btz_status btz_fmodel_save(const struct btz_fmodel *fm,
				const char *path, struct btz_error *err);

/* A random but sensible float model for tests: weights uniform with
 * variance 1 / fan_in from an integer PRNG, tok_emb of std 0.58, sinusoidal
 * pos_emb of amplitude 0.1, layer norms g = 1, b = 0. The same seed gives
 * the same model on one machine; the positions use libm sin, cos and pow,
 * so another libm may differ in the last bit. */
enum btz_status btz_fmodel_generate(struct btz_fmodel **out,
				    const struct btz_hparams *hp,
				    uint64_t seed, struct btz_error *err);

/* One window of n (1..W) bytes from a fresh start: logits[t] (256 floats)
 * predicts b[t] from the start symbol and b[0..t). */
enum btz_status btz_fmodel_forward(const struct btz_fmodel *fm,
				   const uint8_t *b, size_t n, float *logits,
				   struct btz_error *err);
/* The same, with optional outputs: logits and hidden ([n][d], the last
 * layer norm's output) may be NULL; stats, when not NULL, is updated with
 * the largest |value| of every activation. */
enum btz_status btz_fmodel_forward_ex(const struct btz_fmodel *fm,
				      const uint8_t *b, size_t n,
				      float *logits, float *hidden,
				      struct btz_fstats *stats,
				      struct btz_error *err);
/* Average bits per byte (float64 sum of −log2 p) over consecutive
 * non-overlapping windows of W bytes (the last may be shorter). */
enum btz_status btz_fmodel_xent(const struct btz_fmodel *fm,
				const uint8_t *data, size_t len, double *bpb,
				struct btz_error *err);

#endif
