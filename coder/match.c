/* The match layer: doc/model.md, "The match layer", is the
 * specification; every constant here is part of it. */
#include "coder/match.h"

#include <stdlib.h>
#include <string.h>

#include "coder/rc.h"

#define HASH_BITS 18
#define EMPTY UINT32_MAX
#define VERIFY_MAX 64 /* context bytes compared at most */
#define CLASSES 14    /* by verified length, length_class[] */
#define ODDS 24	      /* by the predictor's log2 odds of the guess, halved */
#define COUNT_MAX 128 /* a cell's rate settles at 2 / (2·128 + 1) */

/* Verified lengths 4 ... 64 in classes that each see enough guesses
 * within a chunk: 4, 5, 6, 7, 8, 9-10, 11-12, 13-15, 16-19, 20-27,
 * 28-35, 36-47, 48-63, 64. */
static const uint8_t length_class[VERIFY_MAX + 1] = {
	0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 7, 8, 8, 8, 8, 9, 9,
	9, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11,
	11, 11, 11, 11, 11, 11, 11, 11, 12, 12, 12, 12, 12, 12, 12, 12, 12,
	12, 12, 12, 12, 12, 12, 12, 13,
};

struct cell {
	uint16_t h; /* probability the guess is right, × 2^16 */
	uint8_t n;  /* guesses scored, up to COUNT_MAX */
};

struct btz_match {
	const uint8_t *chunk;
	size_t window, nwin, last;
	uint32_t *t4, *t8; /* context hash -> i·window + p of its next byte */
	struct cell cells[CLASSES * ODDS];
	/* Per window, the guess judged at the current position: */
	int16_t *cell; /* the cell that judged it, or -1 */
	uint8_t *byte; /* its byte */
};

enum btz_status btz_match_new(struct btz_match **out, const uint8_t *chunk,
			      size_t n, size_t window, struct btz_error *err)
{
	struct btz_match *m;
	size_t slots = (size_t)1 << HASH_BITS;

	*out = NULL;
	if (n == 0 || window == 0 || n >= EMPTY)
		return btz_fail(err, BTZ_E_LIMIT, "match layer: chunk of %zu "
				"bytes not supported", n);
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "match layer: out of memory");
	m->chunk = chunk;
	m->window = window;
	m->nwin = (n - 1) / window + 1;
	m->last = n - (m->nwin - 1) * window;
	m->t4 = malloc(slots * sizeof(*m->t4));
	m->t8 = malloc(slots * sizeof(*m->t8));
	m->cell = malloc(m->nwin * sizeof(*m->cell));
	m->byte = malloc(m->nwin);
	if (m->t4 == NULL || m->t8 == NULL || m->cell == NULL ||
	    m->byte == NULL) {
		btz_match_free(m);
		return btz_fail(err, BTZ_E_NOMEM, "match layer: out of memory");
	}
	memset(m->t4, 0xff, slots * sizeof(*m->t4));
	memset(m->t8, 0xff, slots * sizeof(*m->t8));
	for (size_t i = 0; i < m->nwin; i++)
		m->cell[i] = -1;
	*out = m;
	return BTZ_OK;
}

void btz_match_free(struct btz_match *m)
{
	if (m == NULL)
		return;
	free(m->t4);
	free(m->t8);
	free(m->cell);
	free(m->byte);
	free(m);
}

/* Windows with a byte at pos: all, or all but a short last one. */
static size_t active(const struct btz_match *m, size_t pos)
{
	if (pos >= m->window)
		return 0;
	return pos < m->last ? m->nwin : m->nwin - 1;
}

/* The k bytes at p, oldest first. */
static uint32_t hash(const uint8_t *p, int k)
{
	uint32_t h = 0;

	for (int j = 0; j < k; j++)
		h = (h + p[j] + 1) * 0x9E3779B1u;
	return h >> (32 - HASH_BITS);
}

void btz_match_find(struct btz_match *m, size_t pos, int16_t *guess)
{
	size_t W = m->window, na;

	if (pos >= 1) {
		size_t q = pos - 1;

		na = active(m, q);
		for (size_t i = 0; i < na; i++) {
			const uint8_t *w = m->chunk + i * W;
			uint32_t at = (uint32_t)(i * W + q);

			if (q >= 4)
				m->t4[hash(w + q - 4, 4)] = at;
			if (q >= 8)
				m->t8[hash(w + q - 8, 8)] = at;
		}
	}
	na = active(m, pos);
	for (size_t i = 0; i < na; i++) {
		const uint8_t *w = m->chunk + i * W;

		guess[i] = -1;
		/* The longer context first: its last occurrence is more
		 * often the one that continues alike. */
		for (int k = 8; k >= 4; k -= 4) {
			uint32_t at;
			const uint8_t *o;
			size_t p, len = 0;

			if (pos < (size_t)k)
				continue;
			at = (k == 8 ? m->t8 : m->t4)[hash(w + pos - k, k)];
			if (at == EMPTY)
				continue;
			o = m->chunk + at / W * W; /* every byte before p known */
			p = at % W;
			while (len < VERIFY_MAX && len < p &&
			       o[p - 1 - len] == w[pos - 1 - len])
				len++;
			if (len >= (size_t)k) {
				guess[i] = (int16_t)(length_class[len] << 8 |
						     o[p]);
				break;
			}
		}
	}
}

static int ilog2(uint32_t v)
{
	return 31 - __builtin_clz(v);
}

/* The probability, as a frequency, that the cell judging window i's
 * guess g gives it (the cell recorded for btz_match_learn); 0 when the
 * layer leaves the table as it is. */
static uint32_t judge(struct btz_match *m, size_t i, int g, uint32_t fg)
{
	int odds;
	const struct cell *c;
	uint32_t h;

	if (g < 0)
		return 0;
	odds = (ilog2(fg) - ilog2(BTZ_RC_TOTAL - fg) + 25) / 2;
	odds = odds < 0 ? 0 : odds > ODDS - 1 ? ODDS - 1 : odds;
	m->cell[i] = (int16_t)((g >> 8) * ODDS + odds);
	m->byte[i] = (uint8_t)g;
	c = &m->cells[m->cell[i]];
	h = (uint32_t)c->h << 8;
	return c->n > 0 && h > fg ? h : 0;
}

/* The other bytes keep 1 each and share the rest of the total but h, in
 * proportion to their frequencies above 1: s is that proportion as a
 * 32-bit fraction (below 1, as h > fg). */
static uint64_t share(uint32_t fg, uint32_t h, uint64_t *rest)
{
	uint64_t t1 = BTZ_RC_TOTAL - 255 - (uint64_t)fg,
		 r1 = BTZ_RC_TOTAL - 255 - (uint64_t)h;
	uint64_t s = (r1 << 32) / t1;

	*rest = 255 + ((t1 * s) >> 32);
	return s;
}

int btz_match_table(struct btz_match *m, size_t i, int g,
		    uint32_t freq[256], uint32_t cum[257])
{
	int b0 = g & 255;
	uint32_t h = g >= 0 ? judge(m, i, g, freq[b0]) : 0;
	uint64_t s, rest, G = 0, acc = 0;

	if (h == 0)
		return 0;
	s = share(freq[b0], h, &rest);
	for (int b = 0; b < 256; b++) {
		uint64_t lo = (G * s) >> 32;

		cum[b] = (uint32_t)acc;
		if (b == b0) {
			/* rest, and so g's share, is known before the pass */
			freq[b] = (uint32_t)(BTZ_RC_TOTAL - rest);
		} else {
			G += freq[b] - 1;
			freq[b] = (uint32_t)(1 + ((G * s) >> 32) - lo);
		}
		acc += freq[b];
	}
	cum[256] = (uint32_t)acc;
	return 1;
}

void btz_match_interval(struct btz_match *m, size_t i, int g, uint32_t fg,
			unsigned x, uint32_t sym[2])
{
	uint32_t h = judge(m, i, g, fg);
	unsigned b0 = (unsigned)g & 255, below = b0 < x;
	uint64_t s, rest, G, fgn;

	if (h == 0)
		return;
	s = share(fg, h, &rest);
	fgn = BTZ_RC_TOTAL - rest;
	/* The other bytes' frequencies above 1, summed below x. */
	G = sym[0] - x - (below ? fg - 1 : 0);
	if (x == b0) {
		sym[0] = (uint32_t)(x + ((G * s) >> 32));
		sym[1] = (uint32_t)fgn;
		return;
	}
	sym[0] = (uint32_t)(x - below + ((G * s) >> 32) + (below ? fgn : 0));
	sym[1] = (uint32_t)(1 + (((G + sym[1] - 1) * s) >> 32) -
			    ((G * s) >> 32));
}

void btz_match_learn(struct btz_match *m, size_t pos)
{
	size_t na = active(m, pos);

	for (size_t i = 0; i < na; i++) {
		struct cell *c;
		int32_t target, h;

		if (m->cell[i] < 0)
			continue;
		c = &m->cells[m->cell[i]];
		m->cell[i] = -1;
		if (c->n == 0)
			c->h = 32768; /* even odds: measured best of 0.5-0.8 */
		if (c->n < COUNT_MAX)
			c->n++;
		target = m->chunk[i * m->window + pos] == m->byte[i] ? 65535
								     : 0;
		h = c->h;
		c->h = (uint16_t)(h + (target - h) * 2 / (2 * c->n + 1));
	}
}
