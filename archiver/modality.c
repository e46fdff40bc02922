/* Modality from content: container headers for images and audio, and a
 * UTF-8 test for text. Only a tag for now; the model issues route each
 * modality's payload to its model. */
#include "archiver/modality.h"

#include <string.h>

static int is_pnm(const uint8_t *p, size_t n)
{
	return n >= 3 && p[0] == 'P' && p[1] >= '1' && p[1] <= '6' &&
	       (p[2] == ' ' || p[2] == '\n' || p[2] == '\r' || p[2] == '\t');
}

static int is_bmp(const uint8_t *p, size_t n)
{
	/* "BM", then the DIB header size at 14 is one of the known ones. */
	if (n < 18 || p[0] != 'B' || p[1] != 'M')
		return 0;
	uint32_t dib = p[14] | p[15] << 8 | (uint32_t)p[16] << 16 |
		       (uint32_t)p[17] << 24;
	return dib == 12 || dib == 40 || dib == 52 || dib == 56 ||
	       dib == 108 || dib == 124;
}

static int is_wav(const uint8_t *p, size_t n)
{
	return n >= 12 && memcmp(p, "RIFF", 4) == 0 &&
	       memcmp(p + 8, "WAVE", 4) == 0;
}

/* Length of the valid UTF-8 sequence at p, 0 if invalid, -1 if cut off. */
static int utf8_len(const uint8_t *p, size_t n)
{
	int len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -1;
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	}
	return len;
}

static int is_text(const uint8_t *p, size_t n, int complete)
{
	size_t i = 0, odd = 0;

	if (n == 0)
		return 0;
	while (i < n) {
		int len = utf8_len(p + i, n - i);

		if (len < 0)
			return !complete;
		if (len == 0)
			return 0;
		if (len == 1) {
			uint8_t c = p[i];

			if (c == 0)
				return 0;
			if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' &&
			    c != '\f' && c != 0x1b)
				odd++;
		}
		i += (size_t)len;
	}
	/* A few stray control bytes (form feeds, old markup) are still text. */
	return odd * 100 <= n;
}

enum btz_modality btz_modality_guess(const uint8_t *head, size_t n,
				     int complete)
{
	if (is_pnm(head, n) || is_bmp(head, n))
		return BTZ_MOD_IMAGE;
	if (is_wav(head, n))
		return BTZ_MOD_AUDIO;
	if (is_text(head, n, complete))
		return BTZ_MOD_TEXT;
	return BTZ_MOD_OTHER;
}

int btz_modality_parse(const char *s, enum btz_modality *m)
{
	static const char *names[] = { "other", "text", "image", "audio" };

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*m = (enum btz_modality)i;
			return 0;
		}
	return -1;
}
