/* Little-endian fields, LEB128 varints and overflow-checked sizes.
 * Every multi-byte field of every btz file goes through these helpers. */
#ifndef BTZ_COMMON_BYTES_H
#define BTZ_COMMON_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void btz_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void btz_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void btz_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t btz_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t btz_get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t btz_get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Fuzzing builds accept wrong checksums so that the fuzzer reaches the
 * parsers and decoders behind them; no other build defines this. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define BTZ_SUM_OK(a, b) ((void)(a), (void)(b), 1)
#else
#define BTZ_SUM_OK(a, b) ((a) == (b))
#endif

/* Marks the few helpers that CUDA device code shares with the CPU. */
#ifdef __CUDACC__
#define BTZ_HD __host__ __device__
#else
#define BTZ_HD
#endif

/* floor(sqrt(v)), exactly, in integers. */
static inline BTZ_HD uint64_t btz_isqrt64(uint64_t v)
{
	uint64_t r = 0, bit = (uint64_t)1 << 62;

	while (bit > v)
		bit >>= 2;
	while (bit != 0) {
		/* All ones where this bit of the root is 1: a mask, not a
		 * branch, which data decides at random (the engine's layer
		 * norms took a misprediction every other bit). */
		uint64_t take = (uint64_t)0 - (uint64_t)(v >= r + bit);

		v -= (r + bit) & take;
		r = (r >> 1) + (bit & take);
		bit >>= 2;
	}
	return r;
}

/* splitmix64: a seedable generator that gives the same numbers on every
 * machine (generated models, tests, samples). */
static inline uint64_t btz_splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* A NUL-terminated copy of n bytes (malloc'd; NULL when out of memory). */
char *btz_dup_bytes(const void *p, size_t n);

/* Checked arithmetic: return nonzero on overflow, as the builtins do. */
static inline int btz_add_overflow(size_t a, size_t b, size_t *r)
{
	return __builtin_add_overflow(a, b, r);
}

static inline int btz_mul_overflow(size_t a, size_t b, size_t *r)
{
	return __builtin_mul_overflow(a, b, r);
}

/* A growable byte buffer used to serialize records. Fails sticky: after
 * the first allocation failure every put is ignored and ok stays 0. */
struct btz_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int ok;
};

void btz_buf_init(struct btz_buf *b);
void btz_buf_free(struct btz_buf *b);
int btz_buf_reserve(struct btz_buf *b, size_t extra);
void btz_buf_put(struct btz_buf *b, const void *p, size_t n);
void btz_buf_put_u8(struct btz_buf *b, uint8_t v);
void btz_buf_put_le64(struct btz_buf *b, uint64_t v);
void btz_buf_put_varint(struct btz_buf *b, uint64_t v);
/* A string is a varint length followed by the bytes (no terminator). */
void btz_buf_put_str(struct btz_buf *b, const char *s, size_t n);

/* A bounds-checked reader over a byte range. Fails sticky: once a read
 * runs past the end, or a varint is malformed, ok is 0 and reads yield 0. */
struct btz_rd {
	const uint8_t *p;
	size_t len;
	size_t pos;
	int ok;
};

static inline void btz_rd_init(struct btz_rd *r, const void *p, size_t len)
{
	r->p = (const uint8_t *)p;
	r->len = len;
	r->pos = 0;
	r->ok = 1;
}

uint8_t btz_rd_u8(struct btz_rd *r);
uint64_t btz_rd_le64(struct btz_rd *r);
uint64_t btz_rd_varint(struct btz_rd *r);
/* Points *s at the string's bytes inside the buffer; fails if its length
 * exceeds max or the remaining bytes. */
size_t btz_rd_str(struct btz_rd *r, const uint8_t **s, size_t max);
const uint8_t *btz_rd_bytes(struct btz_rd *r, size_t n);

/* Longest varint: 10 bytes for 64 bits. */
#define BTZ_VARINT_MAX 10
size_t btz_varint_encode(uint8_t *p, uint64_t v);
/* Decodes from p[0..len); returns bytes used, 0 if truncated or malformed
 * (over 10 bytes, bits beyond 64, or a non-minimal encoding). */
size_t btz_varint_decode(const uint8_t *p, size_t len, uint64_t *v);

#endif
