/* Models as chunk methods: loading them for btzpack, finding the exact
 * ones an archive names for btzunpack, and wrapping each as method
 * 0x80 + k of the archive's model table. */
#ifndef BTZ_ARCHIVER_MODELS_H
#define BTZ_ARCHIVER_MODELS_H

#include "coder/predict.h"
#include "format/method.h"
#include "model/btm.h"

struct btz_model_method {
	struct btz_model *model;
	struct btz_predictor pred;
	struct btz_method method;
	/* The same model over channel planes (method 0x40 + k, for k below
	 * BTZ_PLANES_MODELS; id 0 otherwise): each channel of a chunk of
	 * interleaved 16-bit samples coded as a mono chunk of its own. */
	struct btz_method planes;
};

/* --device: where the models run. */
enum btz_device_choice { BTZ_RUN_AUTO, BTZ_RUN_CPU, BTZ_RUN_CUDA };

/* The choice a --device argument names; anything else is fatal. */
enum btz_device_choice btz_device_arg(const char *s);
/* Sets where engines run, once the tool knows it will use a model: auto
 * takes a GPU that answers and otherwise the CPU, with a note under -v;
 * cuda without a usable GPU is fatal. The archives are the same either
 * way. */
void btz_device_choose(enum btz_device_choice want);

/* Wraps a loaded model as method id 0x80 + k, and as 0x40 + k. */
void btz_model_method_init(struct btz_model_method *mm, struct btz_model *m,
			   unsigned k);
void btz_model_method_free(struct btz_model_method *mm);

/* Finds the model with fingerprint fp: the --model paths (files or
 * directories), then each directory of BTZ_MODEL_PATH, then the installed
 * models directory. On failure the message names the fingerprint wanted,
 * every place searched and the fingerprints found there. */
enum btz_status btz_model_find(struct btz_model **out, const uint8_t fp[16],
			       const char *name, char *const *paths,
			       size_t npaths, struct btz_error *err);

/* The installed models directory, or BTZ_MODELS_DIR when set. */
const char *btz_models_dir(void);

/* The model files btzpack uses without --model: the .btm files of each
 * directory of BTZ_MODEL_PATH, then of the models directory, each
 * directory in name order. Returns the count; *out and its strings are
 * malloc'd. */
size_t btz_model_default_paths(char ***out);

#endif
