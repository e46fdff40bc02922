/* Layout transforms: exactly invertible byte rewrites a model is trained
 * on and applied to each model-coded chunk (DESIGN.md, "Layout is part of
 * the model"). The model file names its transform; the archive needs no
 * record of its own because the fingerprint pins the model. */
#ifndef BTZ_MODEL_TRANSFORM_H
#define BTZ_MODEL_TRANSFORM_H

#include <stddef.h>
#include <stdint.h>

#include "format/btz.h"

enum btz_transform {
	BTZ_TRANSFORM_NONE = 0,
	/* 16-bit little-endian samples, high byte first: the model sees a
	 * sample's coarse value before its noisy low byte. */
	BTZ_TRANSFORM_SWAP16 = 1,
	/* RGB pixels as G, R - G, B - G (mod 256): the colour channels,
	 * which move together, coded as differences from green. */
	BTZ_TRANSFORM_GREEN = 2,
	/* 16-bit little-endian samples replaced by what two cascaded
	 * sign-sign LMS predictors (on the first difference) failed to
	 * predict, mod 2^16, high byte first: the model codes a small,
	 * nearly white residual instead of learning prediction itself.
	 * Backward-adaptive, integer-only, restarted at every call. */
	BTZ_TRANSFORM_LMS = 3,
	/* lms with the residual r folded to 16 bits and stored in zigzag
	 * order (0, -1, 1, -2, ...): small values of either sign share
	 * their high byte, 0, instead of splitting into 00 and FF. */
	BTZ_TRANSFORM_LMSZ = 4,
	/* RGB pixels as what the median edge detector of JPEG-LS (LOCO-I)
	 * fails to predict of G, R - G and B - G, each from the pixels to
	 * the left, above and above-left, mod 256: the model codes a small
	 * residual, as for audio. Needs the chunk's rows (struct btz_rows);
	 * without them every pixel is predicted from its left. */
	BTZ_TRANSFORM_MED = 5,
	/* med, then the chunk's pixels reordered into tiles of 256 pixels
	 * (16 rows of 16 where the chunk holds 16 whole rows), each tile's
	 * pixels in row order, the pixels no whole tile holds after all the
	 * tiles: a window of 256 pixels is one tile, so the model sees the
	 * rows above a pixel as well as its left (doc/model.md). */
	BTZ_TRANSFORM_MEDT = 6,
	/* lmsz with a backward-adaptive linear predictor of order 32 first
	 * (re-solved every 64 samples from the last 1,024, nothing stored):
	 * the LMS cascade then codes what it leaves. */
	BTZ_TRANSFORM_LPCZ = 7,
	/* medt with a better prediction: each of G, R - G and B - G as a
	 * blend of seven predictions from the causal neighbours, each
	 * weighted by how little it erred at the four nearest. */
	BTZ_TRANSFORM_MIXT = 8,
};
#define BTZ_TRANSFORM_MAX 8

/* A medt tile: BTZ_TILE_PIXELS pixels, at most BTZ_TILE_ROWS rows. */
#define BTZ_TILE_PIXELS 256
#define BTZ_TILE_ROWS 16

/* The name used by btztrain and shown by tools; NULL when unknown. */
const char *btz_transform_name(unsigned t);
/* The transform of a name, or -1. */
int btz_transform_parse(const char *name);

/* The alignment of a modality's payload and of a model's windows within
 * it: pixels of 3 bytes, samples of 2, else 1. Windows of a model of that
 * modality must be a multiple of it, so that every window starts on a
 * unit, as training windows do. */
size_t btz_modality_unit(unsigned modality);

/* The unit a model's windows start on: the larger of its modality's and
 * its transform's (the bytes the transform rewrites as a whole: 1, 2 or
 * 3; a trailing partial unit is left as it is). */
size_t btz_window_unit(unsigned modality, unsigned transform);

/* Whether transform t predicts from the row above, and so codes a chunk
 * differently for each struct btz_rows (the model method then stores the
 * rows with the chunk). */
int btz_transform_uses_rows(unsigned t);
/* Whether t reorders a chunk's pixels into tiles (medt, mixt). */
int btz_transform_tiles(unsigned t);

/* In place over p[0, n). p must start on a unit. rows may be NULL (no
 * rows known); transforms that do not use rows ignore it; a width above
 * BTZ_ROWS_WIDTH_MAX or an x0 not below the width counts as unknown.
 * Returns 0, or -1 when out of memory (medt reorders through a copy),
 * p then unchanged. */
int btz_transform_forward(unsigned t, uint8_t *p, size_t n,
			  const struct btz_rows *rows);
int btz_transform_inverse(unsigned t, uint8_t *p, size_t n,
			  const struct btz_rows *rows);

/* The rows of medt's tiles in a chunk that holds `full` whole rows of
 * an image width pixels wide: the largest power of two up to
 * BTZ_TILE_ROWS and full, or 0 when no tile fits (no whole row, or
 * rows narrower than a tile). */
size_t btz_tile_rows(uint32_t width, size_t full);

/* Windows a model chunk holds at most: BTZ_CHUNK_WINDOWS, so that a
 * decoder can hold every window's key/value caches at once;
 * BTZ_LONG_CHUNK_WINDOWS for the tiled layouts, so that a band of 16 rows
 * of an image up to 4,096 pixels wide fits one chunk; and for lpcz, whose
 * predictors restart at every chunk and take a while to adapt,
 * BTZ_LPC_CHUNK_WINDOWS (with 1 KiB windows, 256 would code 0.03% smaller
 * but decode 20% slower on 2 threads: a lockstep step then walks 16 MiB
 * of caches a thread). */
#define BTZ_CHUNK_WINDOWS 64
#define BTZ_LPC_CHUNK_WINDOWS 128
#define BTZ_LONG_CHUNK_WINDOWS 256
size_t btz_transform_chunk_windows(unsigned t);

/* The bytes of the chunks transform t codes best, windows of `window`
 * bytes, for an image width pixels wide (0: unknown) from a row's first
 * pixel: for medt and mixt, whole bands of tiles (each chunk starts a
 * row and a band), as many as BTZ_CHUNK_WINDOWS windows hold, or one
 * band, the tallest of up to 16 rows that BTZ_LONG_CHUNK_WINDOWS hold;
 * for lpcz, BTZ_LPC_CHUNK_WINDOWS windows; else, and where no tile fits,
 * BTZ_CHUNK_WINDOWS windows. */
size_t btz_transform_chunk(unsigned t, uint32_t width, size_t window);

#endif
