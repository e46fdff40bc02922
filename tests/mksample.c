/* Draws bytes from a model's own predictions (mksample MODEL.btm N SEED
 * [WIDTH [CHANNELS]]):
 * data that the model, and no general-purpose compressor, predicts well,
 * so the tests can see the model method win chunks and decode them. The
 * draw is in the model's layout; what is written is in the file's, after
 * the inverse of the model's transform, chunk by chunk as btzpack cuts a
 * payload that starts a member (a transform restarts at every chunk), and
 * for a layout that uses rows, with the rows btzpack gives the chunks of
 * an image WIDTH pixels wide (default: none, as for raw RGB). With
 * CHANNELS > 1, that many such draws (seeds SEED, SEED + 1, ...) of N /
 * CHANNELS bytes each, their 16-bit samples interleaved: the frames of a
 * multichannel WAV file whose every channel the model predicts well, as
 * the planes method codes them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archiver/models.h"
#include "common/bytes.h"
#include "model/engine.h"
#include "model/transform.h"

/* n bytes drawn with seed into out, in the file's layout. */
static int draw(const struct btz_model *m, struct btz_engine *e,
		uint8_t *out, size_t n, uint64_t seed, uint32_t width)
{
	struct btz_error err;
	uint32_t freq[1][256], win = 0, pos;
	uint16_t tok = BTZ_BTM_START;
	size_t chunk = btz_transform_chunk(m->hp.transform, width,
					   m->hp.context);

	for (size_t i = 0; i < n; i++) {
		uint32_t x, acc = 0;
		int b;

		pos = (uint32_t)(i % m->hp.context);
		if (pos == 0)
			tok = BTZ_BTM_START;
		if (btz_engine_rows(e, 1, &tok, &win, &pos, freq, NULL,
				    &err) != BTZ_OK) {
			fprintf(stderr, "mksample: %s\n", err.msg);
			return -1;
		}
		x = (uint32_t)(btz_splitmix64(&seed) >> 40); /* uniform below 2^24 */
		for (b = 0; b < 255 && acc + freq[0][b] <= x; b++)
			acc += freq[0][b];
		out[i] = (uint8_t)b;
		tok = (uint16_t)b;
	}
	for (size_t at = 0; at < n; at += chunk) {
		struct btz_rows r = btz_rows_at(width, at);

		if (btz_transform_inverse(m->hp.transform, out + at,
					  n - at < chunk ? n - at : chunk,
					  &r) != 0) {
			fprintf(stderr, "mksample: out of memory\n");
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct btz_model *m;
	struct btz_engine *e;
	struct btz_error err;
	uint8_t *out, *plane;
	long n, c;

	if (argc < 4 || argc > 6 || (n = atol(argv[2])) < 0 ||
	    (c = argc == 6 ? atol(argv[5]) : 1) < 1 ||
	    (c > 1 && n % (2 * c) != 0)) {
		fprintf(stderr, "usage: mksample MODEL.btm N SEED [WIDTH "
			"[CHANNELS]] (N whole frames of CHANNELS)\n");
		return 1;
	}
	if (btz_model_load(&m, argv[1], &err) != BTZ_OK ||
	    btz_engine_create(&e, m, 1, 1, &err) != BTZ_OK) {
		fprintf(stderr, "mksample: %s\n", err.msg);
		return 1;
	}
	uint64_t seed = strtoull(argv[3], NULL, 10);
	uint32_t width = argc >= 5 ? (uint32_t)atol(argv[4]) : 0;
	size_t per = (size_t)(n / c);

	out = malloc(n > 0 ? (size_t)n : 1);
	plane = malloc(per > 0 ? per : 1);
	if (out == NULL || plane == NULL) {
		fprintf(stderr, "mksample: out of memory\n");
		return 1;
	}
	for (long ch = 0; ch < c; ch++) {
		if (draw(m, e, c > 1 ? plane : out, c > 1 ? per : (size_t)n,
			 seed + (uint64_t)ch, width) != 0)
			return 1;
		for (size_t j = 0; c > 1 && j < per; j += 2)
			memcpy(out + (j / 2 * (size_t)c + (size_t)ch) * 2,
			       plane + j, 2);
	}
	fwrite(out, 1, (size_t)n, stdout);
	free(out);
	free(plane);
	btz_engine_free(e);
	btz_model_free(m);
	return fflush(stdout) == 0 ? 0 : 1;
}
