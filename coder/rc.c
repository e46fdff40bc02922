/* The range coder's encoder, decoder and table helpers (see rc.h for the
 * state invariants). No floating point here: the decoder must reproduce the
 * encoder's integers exactly. */
#include "coder/rc.h"

#define RC_TOP ((uint64_t)1 << 56)
#define RC_BOT ((uint64_t)1 << 48)
#define RC_MASK (RC_TOP - 1)
/* The decoder's code window is 7 bytes, so a stream is read 6 or 7 bytes
 * past what the encoder wrote (the flush drops that many zero bytes). */
#define RC_WINDOW_BYTES 7

static void rc_enc_byte(struct btz_rc_enc *e, unsigned b)
{
	if (e->pos < e->cap)
		e->out[e->pos++] = (uint8_t)b;
	else
		e->status = BTZ_E_BUF;
}

/* Moves the top byte of low's window out. A byte of 0xFF might still take
 * a carry, so it is counted in pending rather than written; once a byte
 * below 0xFF arrives (or the carry does) the cache and the pending run are
 * final. Carries never overflow the cache: low + range < 2^57 after every
 * shift, and the nested intervals only shrink. */
static void rc_shift_low(struct btz_rc_enc *e)
{
	if (e->low < ((uint64_t)0xFF << 48) || e->low >= RC_TOP) {
		unsigned carry = (unsigned)(e->low >> 56);

		if (e->has_cache)
			rc_enc_byte(e, (e->cache + carry) & 0xFF);
		for (; e->pending > 0; e->pending--)
			rc_enc_byte(e, (0xFF + carry) & 0xFF);
		e->cache = (uint8_t)(e->low >> 48);
		e->has_cache = 1;
	} else {
		e->pending++;
	}
	e->low = (e->low << 8) & RC_MASK;
}

void btz_rc_enc_init(struct btz_rc_enc *e, uint8_t *out, size_t cap)
{
	e->low = 0;
	e->range = RC_TOP - 1;
	e->out = out;
	e->cap = cap;
	e->pos = 0;
	e->pending = 0;
	e->cache = 0;
	/* No cache yet: the first byte out is the first byte of the stream,
	 * with no leading zero as LZMA writes. */
	e->has_cache = 0;
	e->status = BTZ_OK;
}

enum btz_status btz_rc_enc_put_cum(struct btz_rc_enc *e, uint32_t cum_lo,
				   uint32_t freq)
{
	uint64_t r;

	if (freq == 0 || (uint64_t)cum_lo + freq > BTZ_RC_TOTAL)
		return BTZ_E_ARG;
	r = e->range >> BTZ_RC_TOTAL_BITS;
	e->low += r * cum_lo;
	e->range = r * freq;
	while (e->range < RC_BOT) {
		rc_shift_low(e);
		e->range <<= 8;
	}
	return e->status;
}

enum btz_status btz_rc_enc_put(struct btz_rc_enc *e, const uint32_t freq[256],
			       unsigned sym)
{
	uint64_t cum = 0;

	if (sym > 255)
		return BTZ_E_ARG;
	for (unsigned s = 0; s < sym; s++)
		cum += freq[s];
	if (cum >= BTZ_RC_TOTAL)
		return BTZ_E_ARG;
	return btz_rc_enc_put_cum(e, (uint32_t)cum, freq[sym]);
}

enum btz_status btz_rc_enc_finish(struct btz_rc_enc *e, size_t *out_size)
{
	uint64_t lim = e->low + e->range;
	uint64_t v;
	int top_byte;
	unsigned carry;

	*out_size = 0;
	if (e->status != BTZ_OK)
		return e->status;
	/* Any value in [low, lim) decodes the same symbols, and the decoder
	 * pads with zeros: pick the one with the most trailing zero bytes.
	 * Since range >= 2^48 (or the stream is empty and low = 0), rounding
	 * up to 2^48 always fits, so at most one byte beyond the pending ones
	 * is written. */
	v = (e->low + RC_TOP - 1) & ~RC_MASK;
	top_byte = 0;
	if (v >= lim) {
		v = (e->low + RC_BOT - 1) & ~(RC_BOT - 1);
		top_byte = 1;
	}
	carry = (unsigned)(v >> 56);
	if (e->has_cache)
		rc_enc_byte(e, (e->cache + carry) & 0xFF);
	for (; e->pending > 0; e->pending--)
		rc_enc_byte(e, (0xFF + carry) & 0xFF);
	if (top_byte)
		rc_enc_byte(e, (unsigned)(v >> 48) & 0xFF);
	e->has_cache = 0;
	if (e->status != BTZ_OK)
		return e->status;
	*out_size = e->pos;
	return BTZ_OK;
}

static inline unsigned rc_dec_byte(struct btz_rc_dec *d)
{
	unsigned b = d->pos < d->size ? d->in[d->pos] : 0;

	d->pos++;
	return b;
}

void btz_rc_dec_init(struct btz_rc_dec *d, const uint8_t *in, size_t size)
{
	d->in = in;
	d->size = size;
	d->pos = 0;
	d->bad = 0;
	d->code = 0;
	for (int i = 0; i < RC_WINDOW_BYTES; i++)
		d->code = (d->code << 8) | rc_dec_byte(d);
	d->range = RC_TOP - 1;
}

/* Returns the scaled position of the code in the current range, clamped:
 * q >= 2^24 happens only on corrupt input. */
static inline uint32_t rc_dec_target(struct btz_rc_dec *d, uint64_t *r)
{
	uint64_t q;

	*r = d->range >> BTZ_RC_TOTAL_BITS;
	q = d->code / *r;
	if (q >= BTZ_RC_TOTAL) {
		d->bad = 1;
		q = BTZ_RC_TOTAL - 1;
	}
	return (uint32_t)q;
}

static inline void rc_dec_update(struct btz_rc_dec *d, uint64_t r,
				 uint32_t lo, uint32_t freq)
{
	/* On a valid stream code >= r * lo; on garbage the subtraction may
	 * wrap, which the mask below keeps harmless. */
	d->code -= r * lo;
	d->range = r * freq;
	while (d->range < RC_BOT) {
		if (d->range == 0) {
			/* Only a table with a zero frequency gets here;
			 * restart the range rather than loop forever. */
			d->bad = 1;
			d->range = RC_TOP - 1;
			break;
		}
		d->code = ((d->code << 8) | rc_dec_byte(d)) & RC_MASK;
		d->range <<= 8;
	}
}

/* How many of c[step], c[2 step], .., c[15 step] are <= q: fifteen
 * independent compares summed as a shallow tree. */
static inline unsigned rc_count15(const uint32_t *c, unsigned step,
				  uint32_t q)
{
	unsigned a = (c[1 * step] <= q) + (c[2 * step] <= q) +
		     (c[3 * step] <= q) + (c[4 * step] <= q);
	unsigned b = (c[5 * step] <= q) + (c[6 * step] <= q) +
		     (c[7 * step] <= q) + (c[8 * step] <= q);
	unsigned e = (c[9 * step] <= q) + (c[10 * step] <= q) +
		     (c[11 * step] <= q) + (c[12 * step] <= q);
	unsigned f = (c[13 * step] <= q) + (c[14 * step] <= q) +
		     (c[15 * step] <= q);

	return (a + b) + (e + f);
}

int btz_rc_dec_get_cum(struct btz_rc_dec *d, const uint32_t cum[257])
{
	uint64_t r;
	uint32_t q = rc_dec_target(d, &r);
	unsigned s;

	/* The largest s with cum[s] <= q. A binary search puts 8 dependent
	 * loads on the decoder's critical path; counting in two rounds of
	 * 16 (which block, then where in it) measured 1.3-1.6x faster. On a
	 * valid table cum[256] > q keeps each count below 16; the masks only
	 * keep a garbage table's index inside the array. */
	s = (rc_count15(cum, 16, q) & 15) * 16;
	s += rc_count15(cum + s, 1, q) & 15;
	rc_dec_update(d, r, cum[s], cum[s + 1] - cum[s]);
	return (int)s;
}

int btz_rc_dec_get(struct btz_rc_dec *d, const uint32_t freq[256])
{
	uint64_t r;
	uint32_t q = rc_dec_target(d, &r);
	uint32_t lo = 0;
	unsigned s;

	for (s = 0; s < 255; s++) {
		if (q - lo < freq[s])
			break;
		lo += freq[s];
	}
	rc_dec_update(d, r, lo, freq[s]);
	return (int)s;
}

enum btz_status btz_rc_dec_finish(const struct btz_rc_dec *d)
{
	if (d->bad)
		return BTZ_E_CORRUPT;
	/* The encoder wrote every byte the decoder shifted in, less the 6 or
	 * 7 trailing zeros its flush dropped. */
	if (d->pos < d->size || d->pos - d->size < RC_WINDOW_BYTES - 1 ||
	    d->pos - d->size > RC_WINDOW_BYTES)
		return BTZ_E_CORRUPT;
	return BTZ_OK;
}

void btz_rc_cum_from_freq(uint32_t cum[257], const uint32_t freq[256])
{
	cum[0] = 0;
	for (int s = 0; s < 256; s++)
		cum[s + 1] = cum[s] + freq[s];
}

enum btz_status btz_rc_freq_check(const uint32_t freq[256])
{
	uint64_t sum = 0;
	int zero = 0;

	for (int s = 0; s < 256; s++) {
		sum += freq[s];
		zero |= freq[s] == 0;
	}
	return zero || sum != BTZ_RC_TOTAL ? BTZ_E_ARG : BTZ_OK;
}
