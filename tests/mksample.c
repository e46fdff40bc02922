/* Draws bytes from a model's own predictions (mksample MODEL.btm N SEED
 * [WIDTH]):
 * data that the model, and no general-purpose compressor, predicts well,
 * so the tests can see the model method win chunks and decode them. The
 * draw is in the model's layout; what is written is in the file's, after
 * the inverse of the model's transform, chunk by chunk as btzpack cuts a
 * payload that starts a member (a transform restarts at every chunk), and
 * for a layout that uses rows, with the rows btzpack gives the chunks of
 * an image WIDTH pixels wide (default: none, as for raw RGB). */
#include <stdio.h>
#include <stdlib.h>

#include "archiver/models.h"
#include "common/bytes.h"
#include "model/engine.h"
#include "model/transform.h"

int main(int argc, char **argv)
{
	struct btz_model *m;
	struct btz_engine *e;
	struct btz_error err;
	uint32_t freq[1][256], win = 0, pos;
	uint16_t tok;
	uint64_t seed;
	uint8_t *out;
	long n;

	if ((argc != 4 && argc != 5) || (n = atol(argv[2])) < 0) {
		fprintf(stderr, "usage: mksample MODEL.btm N SEED [WIDTH]\n");
		return 1;
	}
	seed = strtoull(argv[3], NULL, 10);
	if (btz_model_load(&m, argv[1], &err) != BTZ_OK ||
	    btz_engine_create(&e, m, 1, 1, &err) != BTZ_OK) {
		fprintf(stderr, "mksample: %s\n", err.msg);
		return 1;
	}
	out = malloc(n > 0 ? (size_t)n : 1);
	if (out == NULL) {
		fprintf(stderr, "mksample: out of memory\n");
		return 1;
	}
	for (long i = 0; i < n; i++) {
		uint32_t x, acc = 0;
		int b;

		pos = (uint32_t)(i % m->hp.context);
		if (pos == 0)
			tok = BTZ_BTM_START;
		if (btz_engine_rows(e, 1, &tok, &win, &pos, freq, NULL,
				    &err) != BTZ_OK) {
			fprintf(stderr, "mksample: %s\n", err.msg);
			return 1;
		}
		x = (uint32_t)(btz_splitmix64(&seed) >> 40); /* uniform below 2^24 */
		for (b = 0; b < 255 && acc + freq[0][b] <= x; b++)
			acc += freq[0][b];
		out[i] = (uint8_t)b;
		tok = (uint16_t)b;
	}
	size_t chunk = (size_t)BTZ_MODEL_CHUNK_WINDOWS * m->hp.context;

	uint32_t width = argc == 5 ? (uint32_t)atol(argv[4]) : 0;

	for (size_t at = 0; at < (size_t)n; at += chunk) {
		struct btz_rows r = btz_rows_at(width, at);

		btz_transform_inverse(m->hp.transform, out + at,
				      (size_t)n - at < chunk ? (size_t)n - at
							     : chunk, &r);
	}
	fwrite(out, 1, (size_t)n, stdout);
	free(out);
	btz_engine_free(e);
	btz_model_free(m);
	return fflush(stdout) == 0 ? 0 : 1;
}
