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

#endif
