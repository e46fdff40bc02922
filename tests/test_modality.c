/* Unit tests of archiver/modality.c: where the payload of PNM, BMP and
 * WAV files lies, and hostile headers (sizes that overflow, chunks past
 * the end, headers cut off) that must give other or text, or a payload
 * clamped to the member, and never more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archiver/modality.h"
#include "common/bytes.h"
#include "tests/check.h"

static uint8_t buf[BTZ_SNIFF_SIZE];

/* Checks the payload found in the first n bytes of buf, of a member of
 * size bytes. */
#define CHECK_PAYLOAD(N, SIZE, MOD, OFF, LEN)                                \
	do {                                                                 \
		struct btz_payload p_;                                       \
		btz_payload_find(&p_, buf, (N), (SIZE));                     \
		CHECK_EQ(p_.modality, (MOD));                                \
		CHECK_EQ(p_.off, (OFF));                                     \
		CHECK_EQ(p_.len, (LEN));                                     \
	} while (0)
#define WHOLE UINT64_MAX

/* The channels and the row width found for the first n bytes of buf. */
static unsigned channels_of(size_t n)
{
	struct btz_payload p;

	btz_payload_find(&p, buf, n, n);
	return p.channels;
}

static uint32_t width_of(size_t n)
{
	struct btz_payload p;

	btz_payload_find(&p, buf, n, n);
	return p.width;
}

static size_t put(size_t at, const char *s)
{
	memcpy(buf + at, s, strlen(s));
	return at + strlen(s);
}

static void test_pnm(void)
{
	size_t h;

	memset(buf, 0x80, sizeof(buf));
	h = put(0, "P6\n# made by hand\n3 2\n255\n");
	CHECK_PAYLOAD(h + 18, h + 18, BTZ_MOD_IMAGE, h, 18);
	CHECK_EQ(width_of(h + 18), 3);
	/* Trailing bytes (a second image, say) are not payload. */
	CHECK_PAYLOAD(h + 40, h + 40, BTZ_MOD_IMAGE, h, 18);
	/* Shorter than its header says: clamped; unknown size: as said. */
	CHECK_PAYLOAD(h + 5, h + 5, BTZ_MOD_IMAGE, h, 5);
	CHECK_PAYLOAD(h + 5, BTZ_SIZE_UNKNOWN, BTZ_MOD_IMAGE, h, 18);
	/* Nothing after the header: just text. */
	CHECK_PAYLOAD(h, h, BTZ_MOD_TEXT, 0, WHOLE);
	h = put(0, "P5 4#c\n\t5 7\r");
	CHECK_PAYLOAD(h + 20, h + 20, BTZ_MOD_IMAGE, h, 20);
	/* Grey pixels are not RGB rows. */
	CHECK_EQ(width_of(h + 20), 0);
	/* Largest dimensions: no overflow, clamped to the member. */
	h = put(0, "P6 2147483647 2147483647 255\n");
	CHECK_PAYLOAD(h + 10, BTZ_SIZE_UNKNOWN, BTZ_MOD_IMAGE, h,
		      (uint64_t)INT32_MAX * INT32_MAX * 3);
	CHECK_PAYLOAD(h + 10, h + 10, BTZ_MOD_IMAGE, h, 10);

	/* Other kinds and malformed headers. */
	static const char *const other[] = {
		"P6 2147483648 1 255\n", "P6 99999999999999999999 1 255\n",
		"P6 0 1 255\n", "P6 1 0 255\n", "P6 1 1 0\n",
		"P6 1 1 256\n", "P5 1 1 65535\n", "P4 8 1\n", "P6 3 2 255#x\n",
		"P63 2 255\n", "P6 3 -2 255\n", "P6 3 2 255", "P6 3",
		"P7 3 2 255\n",
	};
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		memset(buf, 0x80, sizeof(buf));
		h = put(0, other[i]);
		CHECK_PAYLOAD(h + 64, h + 64, BTZ_MOD_OTHER, 0, WHOLE);
		/* A header cut at the end of what was read (it is ASCII). */
		CHECK_PAYLOAD(h, BTZ_SIZE_UNKNOWN, BTZ_MOD_TEXT, 0, WHOLE);
	}
	/* Plain (ASCII) PNM is text. */
	h = put(0, "P3\n1 1\n255\n0 0 0\n");
	CHECK_PAYLOAD(h, h, BTZ_MOD_TEXT, 0, WHOLE);
}

/* A BMP header with a 40-byte BITMAPINFOHEADER, pixels at 54. */
static void bmp_header(int32_t w, int32_t h, unsigned bpp, uint32_t comp)
{
	memset(buf, 0x40, sizeof(buf));
	put(0, "BM");
	btz_put_le32(buf + 2, 0);
	btz_put_le32(buf + 6, 0);
	btz_put_le32(buf + 10, 54);
	btz_put_le32(buf + 14, 40);
	btz_put_le32(buf + 18, (uint32_t)w);
	btz_put_le32(buf + 22, (uint32_t)h);
	btz_put_le16(buf + 26, 1);
	btz_put_le16(buf + 28, (uint16_t)bpp);
	btz_put_le32(buf + 30, comp);
}

static void test_bmp(void)
{
	/* Rows of 21 pixels: 63 bytes, padded to 64. */
	bmp_header(21, 3, 24, 0);
	CHECK_PAYLOAD(54 + 192, 54 + 192, BTZ_MOD_IMAGE, 54, 192);
	/* Padded rows put pixels off the 3-byte grid: no row width. Rows
	 * of 4 pixels, 12 bytes, need no padding. */
	CHECK_EQ(width_of(54 + 192), 0);
	bmp_header(4, -3, 24, 0);
	CHECK_EQ(width_of(54 + 36), 4);
	bmp_header(4, 3, 24, 0);
	CHECK_EQ(width_of(54 + 36), 4);
	bmp_header(21, -3, 24, 0); /* top-down */
	CHECK_PAYLOAD(54 + 192, 54 + 192, BTZ_MOD_IMAGE, 54, 192);
	CHECK_PAYLOAD(54 + 200, 54 + 200, BTZ_MOD_IMAGE, 54, 192);
	CHECK_PAYLOAD(60, 60, BTZ_MOD_IMAGE, 54, 6);
	/* Pixels after a gap, even past the bytes seen. */
	btz_put_le32(buf + 10, 100000);
	CHECK_PAYLOAD(54, BTZ_SIZE_UNKNOWN, BTZ_MOD_IMAGE, 100000, 192);
	CHECK_PAYLOAD(54, 100100, BTZ_MOD_IMAGE, 100000, 100);
	CHECK_PAYLOAD(54, 100000, BTZ_MOD_OTHER, 0, WHOLE);
	/* Largest sizes: no overflow. */
	bmp_header(INT32_MAX, -INT32_MAX, 24, 0);
	CHECK_PAYLOAD(54, BTZ_SIZE_UNKNOWN, BTZ_MOD_IMAGE, 54,
		      ((uint64_t)INT32_MAX * 3 + 3) * INT32_MAX);

	bmp_header(4, INT32_MIN, 24, 0);
	CHECK_PAYLOAD(100, 100, BTZ_MOD_OTHER, 0, WHOLE);
	bmp_header(0, 3, 24, 0);
	CHECK_PAYLOAD(100, 100, BTZ_MOD_OTHER, 0, WHOLE);
	bmp_header(-4, 3, 24, 0);
	CHECK_PAYLOAD(100, 100, BTZ_MOD_OTHER, 0, WHOLE);
	bmp_header(4, 0, 24, 0);
	CHECK_PAYLOAD(100, 100, BTZ_MOD_OTHER, 0, WHOLE);
	bmp_header(4, 3, 32, 0);
	CHECK_PAYLOAD(100, 100, BTZ_MOD_OTHER, 0, WHOLE);
	bmp_header(4, 3, 24, 1); /* RLE8 */
	CHECK_PAYLOAD(100, 100, BTZ_MOD_OTHER, 0, WHOLE);
	bmp_header(4, 3, 24, 0);
	btz_put_le32(buf + 10, 53); /* pixels inside the headers */
	CHECK_PAYLOAD(100, 100, BTZ_MOD_OTHER, 0, WHOLE);
	bmp_header(4, 3, 24, 0);
	btz_put_le32(buf + 14, 12); /* OS/2 core header */
	CHECK_PAYLOAD(100, 100, BTZ_MOD_OTHER, 0, WHOLE);
	bmp_header(4, 3, 24, 0);
	CHECK_PAYLOAD(53, BTZ_SIZE_UNKNOWN, BTZ_MOD_OTHER, 0, WHOLE);
}

/* Appends a RIFF chunk header; returns the offset after it. */
static size_t riff_chunk(size_t at, const char *id, uint32_t size)
{
	memcpy(buf + at, id, 4);
	btz_put_le32(buf + at + 4, size);
	return at + 8;
}

/* "fmt " of 16 bytes: PCM with the given tag, channels and bits. */
static size_t wav_fmt(size_t at, unsigned tag, unsigned ch, unsigned bits)
{
	at = riff_chunk(at, "fmt ", 16);
	btz_put_le16(buf + at, (uint16_t)tag);
	btz_put_le16(buf + at + 2, (uint16_t)ch);
	btz_put_le32(buf + at + 4, 8000);
	btz_put_le32(buf + at + 8, 8000 * ch * bits / 8);
	btz_put_le16(buf + at + 12, (uint16_t)(ch * bits / 8));
	btz_put_le16(buf + at + 14, (uint16_t)bits);
	return at + 16;
}

static size_t wav_start(void)
{
	memset(buf, 0x11, sizeof(buf));
	put(0, "RIFF");
	btz_put_le32(buf + 4, 0);
	put(8, "WAVE");
	return 12;
}

static void test_wav(void)
{
	static const uint8_t pcm_guid[16] = {
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
		0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
	};
	size_t i;

	i = wav_fmt(wav_start(), 1, 2, 16);
	i = riff_chunk(i, "data", 1001);
	CHECK_PAYLOAD(i + 1001, i + 1001, BTZ_MOD_AUDIO, 44, 1001);
	CHECK_EQ(channels_of(i + 1001), 2);
	/* A LIST chunk after the (padded) data is trailer. */
	CHECK_PAYLOAD(i + 1100, i + 1100, BTZ_MOD_AUDIO, 44, 1001);
	/* Data longer than the file (or 0xffffffff, streamed): clamped. */
	btz_put_le32(buf + 40, UINT32_MAX);
	CHECK_PAYLOAD(i + 500, i + 500, BTZ_MOD_AUDIO, 44, 500);
	CHECK_PAYLOAD(i + 500, BTZ_SIZE_UNKNOWN, BTZ_MOD_AUDIO, 44, UINT32_MAX);
	btz_put_le32(buf + 40, 0);
	CHECK_PAYLOAD(i + 500, i + 500, BTZ_MOD_OTHER, 0, WHOLE);

	/* Odd chunks before the data are padded to an even size. */
	i = riff_chunk(wav_start(), "junk", 3);
	i = wav_fmt(i + 4, 1, 1, 16);
	i = riff_chunk(i, "data", 10);
	CHECK_PAYLOAD(i + 10, i + 10, BTZ_MOD_AUDIO, i, 10);
	CHECK_EQ(channels_of(i + 10), 1);
	/* Unpadded (a broken writer): the walk misses "data". */
	i = riff_chunk(wav_start(), "junk", 3);
	i = wav_fmt(i + 3, 1, 1, 16);
	i = riff_chunk(i, "data", 10);
	CHECK_PAYLOAD(i + 10, i + 10, BTZ_MOD_OTHER, 0, WHOLE);

	/* WAVE_FORMAT_EXTENSIBLE: PCM subformat only. */
	i = wav_fmt(wav_start(), 0xfffe, 2, 16);
	btz_put_le32(buf + 16, 40);
	btz_put_le16(buf + 36, 22);
	btz_put_le16(buf + 38, 16);
	memcpy(buf + 44, pcm_guid, 16);
	i = riff_chunk(60, "data", 100);
	CHECK_PAYLOAD(i + 100, i + 100, BTZ_MOD_AUDIO, 68, 100);
	buf[44] = 3; /* IEEE float */
	CHECK_PAYLOAD(i + 100, i + 100, BTZ_MOD_OTHER, 0, WHOLE);

	/* Other formats: 8 and 24 bits, IEEE float, no channels. */
	static const unsigned fmts[][3] = {
		{ 1, 2, 8 }, { 1, 2, 24 }, { 3, 2, 16 }, { 1, 0, 16 },
	};
	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
		i = wav_fmt(wav_start(), fmts[f][0], fmts[f][1], fmts[f][2]);
		riff_chunk(i, "data", 100);
		CHECK_PAYLOAD(200, 200, BTZ_MOD_OTHER, 0, WHOLE);
	}
	/* Hostile chunks. */
	i = riff_chunk(wav_start(), "data", 100); /* data before fmt */
	wav_fmt(i + 100, 1, 2, 16);
	CHECK_PAYLOAD(200, 200, BTZ_MOD_OTHER, 0, WHOLE);
	i = wav_fmt(wav_start(), 1, 2, 16);
	i = wav_fmt(i, 1, 2, 16); /* two fmt chunks */
	riff_chunk(i, "data", 100);
	CHECK_PAYLOAD(200, 200, BTZ_MOD_OTHER, 0, WHOLE);
	i = wav_fmt(wav_start(), 1, 2, 16);
	btz_put_le32(buf + 16, 15); /* fmt too short */
	CHECK_PAYLOAD(200, 200, BTZ_MOD_OTHER, 0, WHOLE);
	i = wav_fmt(wav_start(), 1, 2, 16);
	i = riff_chunk(i, "LIST", UINT32_MAX); /* skips past everything */
	riff_chunk(i, "data", 100);
	CHECK_PAYLOAD(200, 200, BTZ_MOD_OTHER, 0, WHOLE);
	/* The headers must end within the bytes seen. */
	i = wav_fmt(wav_start(), 1, 2, 16);
	i = riff_chunk(i, "data", 100);
	CHECK_PAYLOAD(i - 1, BTZ_SIZE_UNKNOWN, BTZ_MOD_OTHER, 0, WHOLE);
	CHECK_PAYLOAD(30, BTZ_SIZE_UNKNOWN, BTZ_MOD_OTHER, 0, WHOLE);
	CHECK_PAYLOAD(12, BTZ_SIZE_UNKNOWN, BTZ_MOD_OTHER, 0, WHOLE);
	CHECK_PAYLOAD(0, 0, BTZ_MOD_OTHER, 0, WHOLE);
}

/* Random damage to valid headers: whatever is found stays inside the
 * member (and the sanitizers see every read stay inside the head). */
static void test_damage(void)
{
	uint64_t seed = 1;

	for (int round = 0; round < 30000; round++) {
		size_t n = 64 + (size_t)(seed % 512), i;
		uint64_t size = n + (round % 3 == 0 ? 0 : seed % 100000);
		struct btz_payload p;

		seed = seed * 6364136223846793005u + 1442695040888963407u;
		switch (round % 3) {
		case 0: put(0, "P6\n21 3\n255\n"); break;
		case 1: bmp_header(21, -3, 24, 0); break;
		case 2:
			i = wav_fmt(wav_start(), 1, 2, 16);
			riff_chunk(i, "data", 1001);
			break;
		}
		for (int k = 0; k < 1 + round % 4; k++) {
			seed = seed * 6364136223846793005u + 1;
			buf[(seed >> 33) % 64] = (uint8_t)(seed >> 20);
		}
		btz_payload_find(&p, buf, n, size);
		if (p.modality == BTZ_MOD_IMAGE || p.modality == BTZ_MOD_AUDIO)
			CHECK(p.len > 0 && p.off < size &&
			      p.len <= size - p.off);
		else
			CHECK(p.off == 0 && p.len == WHOLE);
	}
}

int main(void)
{
	enum btz_modality m;

	test_pnm();
	test_bmp();
	test_wav();
	test_damage();
	CHECK(btz_modality_parse("audio", &m) == 0 && m == BTZ_MOD_AUDIO);
	CHECK(btz_modality_parse("pictures", &m) != 0);
	if (failures) {
		fprintf(stderr, "test_modality: %d checks failed\n", failures);
		return 1;
	}
	printf("test_modality: all checks passed\n");
	return 0;
}
