/* Export: quantizes a float network (model/float.h) to the integer
 * network of doc/model.md, with every static scale chosen from the
 * activations the float network produces on calibration bytes. */
#ifndef BTZ_MODEL_EXPORT_H
#define BTZ_MODEL_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "model/btm.h"
#include "model/float.h"

/* Runs fm over calib (consecutive windows of W bytes, calib_len ≥ 1),
 * records the largest |value| of every activation, derives the integer
 * tensors and returns the model as the loader would return its file
 * (validated, fingerprinted). Name, training data, steps and the float
 * bits/byte come from fm; the integer bits/byte is left 0 (unknown). */
enum btz_status btz_export(struct btz_model **out,
			   const struct btz_fmodel *fm, const uint8_t *calib,
			   size_t calib_len, struct btz_error *err);

/* The inverse: a float network that the export of would give m's
 * weights again (the same int8 tensors; the multipliers up to the
 * rounding of activation maxima). Only ratios of scales survive in m, so
 * the free ones are chosen as btztrain's networks have them: positions of
 * amplitude 1, layer norm gains of mean magnitude 1, and the two factors
 * of each q·k, v·o and u·w2 product with equal largest weights. For
 * training a shipped model further (btztrain --init). */
enum btz_status btz_import(struct btz_fmodel **out, const struct btz_model *m,
			   struct btz_error *err);

#endif
