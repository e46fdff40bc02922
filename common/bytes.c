/* Byte buffers, bounded readers and varints. */
#include "common/bytes.h"

#include <stdlib.h>

char *btz_dup_bytes(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s != NULL) {
		if (n)
			memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

void btz_buf_init(struct btz_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->ok = 1;
}

void btz_buf_free(struct btz_buf *b)
{
	free(b->data);
	btz_buf_init(b);
}

int btz_buf_reserve(struct btz_buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (!b->ok)
		return 0;
	if (btz_add_overflow(b->len, extra, &need)) {
		b->ok = 0;
		return 0;
	}
	if (need <= b->cap)
		return 1;
	cap = b->cap ? b->cap : 256;
	while (cap < need) {
		if (btz_mul_overflow(cap, 2, &cap)) {
			b->ok = 0;
			return 0;
		}
	}
	p = realloc(b->data, cap);
	if (p == NULL) {
		b->ok = 0;
		return 0;
	}
	b->data = p;
	b->cap = cap;
	return 1;
}

void btz_buf_put(struct btz_buf *b, const void *p, size_t n)
{
	if (n == 0 || !btz_buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void btz_buf_put_u8(struct btz_buf *b, uint8_t v)
{
	btz_buf_put(b, &v, 1);
}

void btz_buf_put_le64(struct btz_buf *b, uint64_t v)
{
	uint8_t t[8];

	btz_put_le64(t, v);
	btz_buf_put(b, t, 8);
}

void btz_buf_put_varint(struct btz_buf *b, uint64_t v)
{
	uint8_t t[BTZ_VARINT_MAX];

	btz_buf_put(b, t, btz_varint_encode(t, v));
}

void btz_buf_put_str(struct btz_buf *b, const char *s, size_t n)
{
	btz_buf_put_varint(b, n);
	btz_buf_put(b, s, n);
}

size_t btz_varint_encode(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

size_t btz_varint_decode(const uint8_t *p, size_t len, uint64_t *v)
{
	uint64_t x = 0;

	for (size_t i = 0; i < len && i < BTZ_VARINT_MAX; i++) {
		uint64_t byte = p[i] & 0x7f;

		if (i == 9 && byte > 1)
			return 0; /* bits beyond 64 */
		x |= byte << (7 * i);
		if (!(p[i] & 0x80)) {
			if (i > 0 && p[i] == 0)
				return 0; /* non-minimal: one encoding per value */
			*v = x;
			return i + 1;
		}
	}
	return 0;
}

uint8_t btz_rd_u8(struct btz_rd *r)
{
	if (!r->ok || r->pos >= r->len) {
		r->ok = 0;
		return 0;
	}
	return r->p[r->pos++];
}

uint64_t btz_rd_le64(struct btz_rd *r)
{
	const uint8_t *p = btz_rd_bytes(r, 8);

	return p ? btz_get_le64(p) : 0;
}

uint64_t btz_rd_varint(struct btz_rd *r)
{
	uint64_t v = 0;
	size_t n;

	if (!r->ok)
		return 0;
	n = btz_varint_decode(r->p + r->pos, r->len - r->pos, &v);
	if (n == 0) {
		r->ok = 0;
		return 0;
	}
	r->pos += n;
	return v;
}

const uint8_t *btz_rd_bytes(struct btz_rd *r, size_t n)
{
	const uint8_t *p;

	if (!r->ok || n > r->len - r->pos) {
		r->ok = 0;
		return NULL;
	}
	p = r->p + r->pos;
	r->pos += n;
	return p;
}

size_t btz_rd_str(struct btz_rd *r, const uint8_t **s, size_t max)
{
	uint64_t n = btz_rd_varint(r);

	if (!r->ok || n > max || n > r->len - r->pos) {
		r->ok = 0;
		*s = NULL;
		return 0;
	}
	*s = r->p + r->pos;
	r->pos += (size_t)n;
	return (size_t)n;
}
