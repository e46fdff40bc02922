/* The range coder: 256-symbol integer frequency tables with a fixed total of
 * 2^24 in, bytes out, and back. Integer only and deterministic, so encoder
 * and decoder agree on every machine.
 *
 * The state is 64 bits: range stays in [2^48, 2^56) and low is a 56-bit
 * window plus one carry bit, renormalised a byte at a time with LZMA-style
 * carry propagation (a cached byte and a count of pending 0xFF bytes). With
 * r = range >> 24 >= 2^24, truncating range to a multiple of r costs at most
 * 2^-24 of the range per symbol (< 1e-7 bit), which keeps the output within
 * a few bytes of the ideal even for tables as sharp as 2^24-255 : 1.
 *
 * Streams carry no header and no length: the caller knows how many symbols
 * to decode. The flush is 0 or 1 byte after the last carry is resolved, and
 * the decoder reads zeros past the end of its input. */
#ifndef BTZ_CODER_RC_H
#define BTZ_CODER_RC_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define BTZ_RC_TOTAL_BITS 24
#define BTZ_RC_TOTAL ((uint32_t)1 << BTZ_RC_TOTAL_BITS)

struct btz_rc_enc {
	uint64_t low;     /* bits 0..55: window; bit 56: carry not yet applied */
	uint64_t range;   /* in [2^48, 2^56) between symbols */
	uint8_t *out;
	size_t cap;
	size_t pos;       /* bytes written to out */
	uint64_t pending; /* 0xFF bytes waiting behind cache for a carry */
	uint8_t cache;    /* last byte shifted out, not yet written */
	uint8_t has_cache;
	enum btz_status status; /* sticky: BTZ_E_BUF once out is full */
};

/* Starts a stream into out[0, cap). Nothing is ever written past cap. */
void btz_rc_enc_init(struct btz_rc_enc *e, uint8_t *out, size_t cap);

/* Codes the symbol occupying [cum_lo, cum_lo + freq) of the total.
 * BTZ_E_ARG if freq == 0 or the interval leaves [0, 2^24) (nothing coded);
 * BTZ_E_BUF once out is full (sticky: every later call returns it too). */
enum btz_status btz_rc_enc_put_cum(struct btz_rc_enc *e, uint32_t cum_lo,
				   uint32_t freq);

/* Codes sym (0..255) with a frequency table; the table's own validity
 * (btz_rc_freq_check) is the caller's to ensure, but a table whose prefix
 * sum leaves the total is rejected with BTZ_E_ARG rather than coded. */
enum btz_status btz_rc_enc_put(struct btz_rc_enc *e, const uint32_t freq[256],
			       unsigned sym);

/* Flushes the stream and stores its total size; BTZ_E_BUF if it did not
 * fit in cap (the caller then stores the data another way). */
enum btz_status btz_rc_enc_finish(struct btz_rc_enc *e, size_t *out_size);

struct btz_rc_dec {
	uint64_t code;  /* value - low, in [0, range) on a valid stream */
	uint64_t range;
	const uint8_t *in;
	size_t size;
	size_t pos;     /* bytes consumed; may exceed size (zeros read) */
	int bad;        /* set when the stream is provably corrupt */
};

/* Starts decoding in[0, size). Reads past size yield zeros and are counted;
 * the decoder never touches memory outside in[0, size). */
void btz_rc_dec_init(struct btz_rc_dec *d, const uint8_t *in, size_t size);

/* Decodes one symbol with a cumulative table: cum[0] = 0, cum[256] = 2^24,
 * cum[s + 1] - cum[s] = freq[s] >= 1 (see btz_rc_cum_from_freq). A table
 * that breaks these rules gives wrong symbols, never a crash or a hang. */
int btz_rc_dec_get_cum(struct btz_rc_dec *d, const uint32_t cum[257]);

/* Decodes one symbol with a frequency table (linear scan: cheap for tables
 * whose likely symbols come first, otherwise prefer the cumulative form). */
int btz_rc_dec_get(struct btz_rc_dec *d, const uint32_t freq[256]);

/* Checks that the decoder consumed exactly the stream the encoder wrote:
 * BTZ_E_CORRUPT if it saw an impossible code value or if the input was
 * truncated or extended (up to one byte of slack is undetectable). */
enum btz_status btz_rc_dec_finish(const struct btz_rc_dec *d);

/* cum[0] = 0, cum[s + 1] = cum[s] + freq[s]. */
void btz_rc_cum_from_freq(uint32_t cum[257], const uint32_t freq[256]);

/* BTZ_OK if every freq[s] >= 1 and they sum to exactly 2^24, else BTZ_E_ARG.
 * Overflow-safe for any input. */
enum btz_status btz_rc_freq_check(const uint32_t freq[256]);

#endif
