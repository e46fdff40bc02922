/* Modality from content: the headers of PNM and BMP images and of WAV
 * audio, parsed strictly enough to find where their pixels or samples
 * lie, and a UTF-8 test for text. A header is only trusted as far as the
 * bytes seen: every size is checked before it is used, and anything
 * unexpected makes the member text or other, never an error. */
#include "archiver/modality.h"

#include <string.h>

#include "common/bytes.h"

static int pnm_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

/* Reads a decimal field of 1 to max after whitespace and comments (at
 * least one byte of them); returns -1 if there is none. */
static int pnm_field(const uint8_t *p, size_t n, size_t *i, uint32_t max,
		     uint32_t *v)
{
	size_t j = *i;
	uint64_t x = 0;

	while (j < n && (pnm_space(p[j]) || p[j] == '#')) {
		if (p[j] == '#')
			while (j < n && p[j] != '\n' && p[j] != '\r')
				j++;
		else
			j++;
	}
	if (j == *i || j >= n || p[j] < '0' || p[j] > '9')
		return -1;
	for (; j < n && p[j] >= '0' && p[j] <= '9'; j++) {
		x = x * 10 + (uint64_t)(p[j] - '0');
		if (x > max)
			return -1;
	}
	if (x == 0)
		return -1;
	*i = j;
	*v = (uint32_t)x;
	return 0;
}

/* P5 (gray) and P6 (RGB) with one byte per sample: the raster follows
 * the single whitespace byte after maxval. */
static int pnm_payload(const uint8_t *p, size_t n, uint64_t *off,
		       uint64_t *len, uint32_t *width)
{
	uint32_t w, h, maxval;
	size_t i = 2;

	if (n < 3 || p[0] != 'P' || (p[1] != '5' && p[1] != '6'))
		return -1;
	if (pnm_field(p, n, &i, INT32_MAX, &w) != 0 ||
	    pnm_field(p, n, &i, INT32_MAX, &h) != 0 ||
	    pnm_field(p, n, &i, 255, &maxval) != 0 || i >= n ||
	    !pnm_space(p[i]))
		return -1;
	*off = i + 1;
	/* Below 2^31 each: the product fits in 64 bits. */
	*len = (uint64_t)w * h * (p[1] == '6' ? 3 : 1);
	*width = p[1] == '6' && w <= BTZ_ROWS_WIDTH_MAX ? w : 0;
	return 0;
}

/* 24-bit uncompressed (BI_RGB) BMP with a BITMAPINFOHEADER or a later
 * header; rows bottom-up or top-down, each padded to 4 bytes. */
static int bmp_payload(const uint8_t *p, size_t n, uint64_t *off,
		       uint64_t *len, uint32_t *width)
{
	uint32_t dib, uw, uh;
	uint64_t rows, row;

	if (n < 54 || p[0] != 'B' || p[1] != 'M')
		return -1;
	dib = btz_get_le32(p + 14);
	if (dib != 40 && dib != 52 && dib != 56 && dib != 108 && dib != 124)
		return -1;
	uw = btz_get_le32(p + 18);
	uh = btz_get_le32(p + 22);
	if (btz_get_le16(p + 26) != 1 || btz_get_le16(p + 28) != 24 ||
	    btz_get_le32(p + 30) != 0)
		return -1;
	/* Width positive; height negative for top-down, never INT32_MIN. */
	if (uw == 0 || uw > INT32_MAX || uh == 0 || uh == 0x80000000u)
		return -1;
	rows = uh > INT32_MAX ? (uint64_t)(0x100000000u - uh) : uh;
	row = ((uint64_t)uw * 3 + 3) & ~(uint64_t)3;
	*off = btz_get_le32(p + 10);
	if (*off < 14 + (uint64_t)dib)
		return -1;
	*len = row * rows; /* below 2^33 times below 2^31 */
	/* Rows of whole pixels only: padding would shift every pixel of
	 * the rows after it off the 3-byte grid. */
	*width = row == (uint64_t)uw * 3 && uw <= BTZ_ROWS_WIDTH_MAX ? uw : 0;
	return 0;
}

/* A "fmt " chunk body of f bytes (at least 16 present): PCM, or
 * WAVE_FORMAT_EXTENSIBLE with the PCM subformat, 16 bits a sample. */
static int wav_fmt_ok(const uint8_t *f, uint32_t size, size_t avail)
{
	static const uint8_t pcm_guid[16] = {
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
		0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
	};
	uint16_t tag = btz_get_le16(f), channels = btz_get_le16(f + 2);

	if (channels == 0 || btz_get_le16(f + 14) != 16 ||
	    btz_get_le16(f + 12) != 2u * channels)
		return 0;
	if (tag == 1)
		return 1;
	return tag == 0xfffe && size >= 40 && avail >= 40 &&
	       btz_get_le16(f + 16) >= 22 && btz_get_le16(f + 18) <= 16 &&
	       memcmp(f + 24, pcm_guid, 16) == 0;
}

/* RIFF/WAVE: the chunks are walked (each padded to an even size) to a
 * "data" chunk after a PCM "fmt " chunk, both headers within head. */
static int wav_payload(const uint8_t *p, size_t n, uint64_t *off,
		       uint64_t *len, unsigned *channels)
{
	size_t i = 12;
	int have_fmt = 0;

	if (n < 12 || memcmp(p, "RIFF", 4) != 0 || memcmp(p + 8, "WAVE", 4))
		return -1;
	while (n - i >= 8) {
		uint32_t size = btz_get_le32(p + i + 4);
		uint64_t next = (uint64_t)i + 8 + size + (size & 1);

		if (memcmp(p + i, "data", 4) == 0) {
			if (!have_fmt)
				return -1;
			*off = i + 8;
			*len = size;
			return 0;
		}
		if (memcmp(p + i, "fmt ", 4) == 0) {
			if (have_fmt || size < 16 || n - i - 8 < 16 ||
			    !wav_fmt_ok(p + i + 8, size, n - i - 8))
				return -1;
			have_fmt = 1;
			*channels = btz_get_le16(p + i + 10);
		}
		if (next > n)
			return -1;
		i = (size_t)next;
	}
	return -1;
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

void btz_payload_whole(struct btz_payload *p, enum btz_modality m)
{
	p->modality = m;
	p->off = 0;
	p->len = UINT64_MAX;
	p->channels = 1;
	p->width = 0;
}

void btz_payload_find(struct btz_payload *p, const uint8_t *head, size_t n,
		      uint64_t size)
{
	uint64_t off, len;
	unsigned channels = 1;
	uint32_t width = 0;

	if (pnm_payload(head, n, &off, &len, &width) == 0 ||
	    bmp_payload(head, n, &off, &len, &width) == 0)
		p->modality = BTZ_MOD_IMAGE;
	else if (wav_payload(head, n, &off, &len, &channels) == 0)
		p->modality = BTZ_MOD_AUDIO;
	else
		p->modality = BTZ_MOD_OTHER;
	if (p->modality != BTZ_MOD_OTHER) {
		if (len > size - off)
			len = size - off; /* also keeps off + len in range */
		if (off < size && len > 0) {
			p->off = off;
			p->len = len;
			p->channels = channels;
			p->width = width;
			return;
		}
	}
	btz_payload_whole(p, is_text(head, n, n == size) ? BTZ_MOD_TEXT
						       : BTZ_MOD_OTHER);
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
