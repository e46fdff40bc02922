/* The match layer (doc/model.md, "The match layer"): a chunk-local
 * guess of the next byte from the last place its context occurred,
 * trusted as far as the chunk's own record of such guesses says. It sits
 * between a predictor and the range coder and sharpens the predictor's
 * table: the guessed byte gets the probability that guesses of its kind
 * turned out right, the other bytes share the rest in proportion.
 *
 * A model sees one window; the layer sees what the chunk's lockstep has
 * shown so far (every window's bytes before pos), so a name or phrase
 * that recurs beyond the model's context is still found. It starts empty
 * at every chunk, so chunks stay independent.
 *
 * Per position pos of the lockstep, for a chunk of nwin windows:
 *	btz_match_find(m, pos, guess)	  guesses of the windows at pos
 *	adjust each window's table	  (table or interval form)
 *	code the bytes at pos
 *	btz_match_learn(m, pos)		  what the guesses were worth */
#ifndef BTZ_CODER_MATCH_H
#define BTZ_CODER_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

struct btz_match;

/* State for the chunk at chunk[0, n), windows of `window` bytes. The
 * chunk's bytes are read as they become known (a decoder writes them
 * there), never before. BTZ_E_LIMIT for a chunk over 2^32 − 1 bytes. */
enum btz_status btz_match_new(struct btz_match **out, const uint8_t *chunk,
			      size_t n, size_t window,
			      struct btz_error *err);
void btz_match_free(struct btz_match *m);

/* Needs every window's bytes before pos (and none after): records the
 * contexts that ended at pos − 1, then fills guess[i] for every window
 * with a byte at pos: −1, or the guessed byte in bits 0-7 and its class
 * above. An encoder may find every position's guesses first and judge
 * them later, as long as judging and learning keep the lockstep order. */
void btz_match_find(struct btz_match *m, size_t pos, int16_t *guess);

/* Window i's table at this position, given its guess g (−1: left as it
 * is). The table must total 2^24 with every entry >= 1; it still does.
 * Returns whether it changed, and when it did, has written the new
 * table's cumulative form to cum (cum[b]: the frequencies below b). */
int btz_match_table(struct btz_match *m, size_t i, int g,
		    uint32_t freq[256], uint32_t cum[257]);

/* The same for the interval of byte x alone: sym = { frequencies below x,
 * frequency of x } of the predictor's table, and fg its frequency of g's
 * byte; sym becomes the interval that btz_match_table's table gives x. */
void btz_match_interval(struct btz_match *m, size_t i, int g, uint32_t fg,
			unsigned x, uint32_t sym[2]);

/* After the bytes at pos are known: scores every guess judged at pos. */
void btz_match_learn(struct btz_match *m, size_t pos);

#endif
