/* A member's modality and payload, from its first bytes: which bytes its
 * modality's model codes, and which are container headers. */
#ifndef BTZ_ARCHIVER_MODALITY_H
#define BTZ_ARCHIVER_MODALITY_H

#include <stddef.h>
#include <stdint.h>

#include "format/btz.h"

/* How many leading bytes the guess looks at: a header must end within
 * them (the payload itself may start later, as a BMP's may). */
#define BTZ_SNIFF_SIZE 65536
/* A member size not known before its data is read (a pipe). */
#define BTZ_SIZE_UNKNOWN UINT64_MAX

/* Bytes [off, off + len) of a member are its payload: pixels, samples, or
 * for text and other the whole member (off 0, len UINT64_MAX: to its end,
 * whatever its size); the modality's model codes them. Bytes before and
 * after (container headers, WAV trailers) are coded by the fallback
 * methods only. off + len never overflows. */
struct btz_payload {
	enum btz_modality modality;
	uint64_t off, len;
	/* Interleaved channels of audio samples (a WAV's "fmt "); 1 for
	 * everything else, raw PCM included. */
	unsigned channels;
	/* Pixels a row of an RGB payload whose rows are whole pixels (P6,
	 * 24-bit BMP without padding); 0 when unknown or not so. */
	uint32_t width;
};

/* head holds the first n bytes of a member of size bytes (n == size: all
 * of it). Images are PNM (P5, P6, maxval at most 255) and BMP (24-bit
 * BI_RGB); audio is RIFF/WAVE with 16-bit PCM. A header that is anything
 * else, malformed, or not wholly within head gives text or other with the
 * whole member as payload, and so does a payload that lies past size. An
 * image or audio payload is clamped to size; a reader clamps it again to
 * what it reads. */
void btz_payload_find(struct btz_payload *p, const uint8_t *head, size_t n,
		      uint64_t size);
/* The whole member as payload of modality m (and --modality's choice). */
void btz_payload_whole(struct btz_payload *p, enum btz_modality m);
int btz_modality_parse(const char *s, enum btz_modality *m);

#endif
