/* Layout transforms (model/transform.h). */
#include "model/transform.h"

#include <stdlib.h>
#include <string.h>

#include "format/btz.h"

static const char *const names[] = { "none", "swap16", "green", "lms", "lmsz",
				     "med", "medt", "lpcz", "mixt" };

const char *btz_transform_name(unsigned t)
{
	return t <= BTZ_TRANSFORM_MAX ? names[t] : NULL;
}

int btz_transform_parse(const char *name)
{
	for (unsigned t = 0; t <= BTZ_TRANSFORM_MAX; t++)
		if (strcmp(name, names[t]) == 0)
			return (int)t;
	return -1;
}

static size_t transform_unit(unsigned t)
{
	switch (t) {
	case BTZ_TRANSFORM_SWAP16:
	case BTZ_TRANSFORM_LMS:
	case BTZ_TRANSFORM_LMSZ:
	case BTZ_TRANSFORM_LPCZ: return 2;
	case BTZ_TRANSFORM_GREEN:
	case BTZ_TRANSFORM_MED:
	case BTZ_TRANSFORM_MEDT:
	case BTZ_TRANSFORM_MIXT: return 3;
	default: return 1;
	}
}

size_t btz_modality_unit(unsigned modality)
{
	switch (modality) {
	case BTZ_MOD_IMAGE: return 3;
	case BTZ_MOD_AUDIO: return 2;
	default: return 1;
	}
}

size_t btz_window_unit(unsigned modality, unsigned transform)
{
	size_t m = btz_modality_unit(modality), t = transform_unit(transform);

	return m > t ? m : t;
}

static void swap16(uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2) {
		uint8_t t = p[i];

		p[i] = p[i + 1];
		p[i + 1] = t;
	}
}

/* RGB as G, R - G, B - G (mod 256), and back. */
static void green_run(uint8_t *p, size_t n, int inverse)
{
	for (size_t i = 0; i + 2 < n; i += 3) {
		uint8_t x = p[i], y = p[i + 1], z = p[i + 2];

		if (inverse) {
			p[i] = (uint8_t)(y + x);
			p[i + 1] = x;
			p[i + 2] = (uint8_t)(z + x);
		} else {
			p[i] = y;
			p[i + 1] = (uint8_t)(x - y);
			p[i + 2] = (uint8_t)(z - y);
		}
	}
}

/* One sign-sign LMS stage: weights in units of 2^-LMS_SHIFT, moved by mu
 * toward the sign of (error x input). Clamping weights and inputs keeps
 * every product and sum far inside int64 whatever the data. */
#define LMS_SHIFT 12
#define LMS_WMAX (1 << 16)
#define LMS_HMAX (1 << 18)
#define LMS_TAPS_MAX 32

struct lms {
	int taps, mu;
	int32_t w[LMS_TAPS_MAX], h[LMS_TAPS_MAX];
};

static int sign(int64_t v)
{
	return (v > 0) - (v < 0);
}

/* A 16-bit pattern as a signed sample, without relying on the
 * implementation-defined conversion. */
static int64_t s16(uint16_t v)
{
	return v >= 0x8000 ? (int64_t)v - 0x10000 : v;
}

/* Floor of v / 2^s, spelled out: >> of a negative is
 * implementation-defined in C. */
static int64_t floor_shift(int64_t v, int s)
{
	return v >= 0 ? v >> s : -((-v + ((int64_t)1 << s) - 1) >> s);
}

static int64_t clamp64(int64_t v, int64_t m)
{
	return v > m ? m : v < -m ? -m : v;
}

static int64_t lms_predict(const struct lms *s)
{
	int64_t acc = 0;

	for (int j = 0; j < s->taps; j++)
		acc += (int64_t)s->w[j] * s->h[j];
	return floor_shift(acc, LMS_SHIFT);
}

static void lms_update(struct lms *s, int64_t in, int64_t err)
{
	int e = sign(err);

	for (int j = 0; j < s->taps; j++) {
		s->w[j] = (int32_t)clamp64(s->w[j] + s->mu * e * sign(s->h[j]),
					   LMS_WMAX);
	}
	memmove(s->h + 1, s->h, (size_t)(s->taps - 1) * sizeof(s->h[0]));
	s->h[0] = (int32_t)clamp64(in, LMS_HMAX);
}

/* Zigzag order of a 16-bit residual: a bijection of 16-bit values. */
static uint16_t zigzag(uint16_t r)
{
	return (uint16_t)(r & 0x8000 ? ~(uint16_t)(r << 1) : r << 1);
}

static uint16_t unzigzag(uint16_t z)
{
	return (uint16_t)(z & 1 ? ~(z >> 1) : z >> 1);
}

/* Backward-adaptive linear prediction: every LPC_BLOCK samples, the
 * coefficients of order LPC_ORDER are solved (Levinson-Durbin, in fixed
 * point) from the autocorrelation of the last LPC_WINDOW samples seen,
 * which is kept exactly by adding each new sample's products and taking
 * out those of the sample that leaves. Nothing is stored: the decoder
 * solves the same integers from the samples it has rebuilt. Chosen on
 * audio-valid and three slices of audio-train against the lms cascade
 * alone (models/btz-audio-170k.md). */
#define LPC_ORDER 32
#define LPC_WINDOW 1024
#define LPC_BLOCK 64
#define LPC_RING 2048 /* a power of two above LPC_WINDOW + LPC_ORDER */
#define LPC_Q 20      /* coefficients and reflections in units of 2^-20 */
#define LPC_AMAX ((int64_t)1 << 27)

struct lpc {
	int64_t r[LPC_ORDER + 1], a[LPC_ORDER];
	int32_t d[LPC_RING];
	size_t n;
};

static int64_t lpc_predict(const struct lpc *s)
{
	int64_t acc = 0;

	for (size_t j = 0; j < LPC_ORDER && j < s->n; j++)
		acc += s->a[j] * s->d[(s->n - 1 - j) & (LPC_RING - 1)];
	return floor_shift(acc + ((int64_t)1 << (LPC_Q - 1)), LPC_Q);
}

/* Levinson-Durbin on r scaled below 2^29: with |a| <= 2^27 every product
 * stays below 2^56 and a sum of LPC_ORDER of them below 2^61. A slightly
 * raised r[0] keeps the system well conditioned; reflections are held
 * inside (-1, 1) so that the error energy stays positive. */
static void lpc_solve(struct lpc *s)
{
	int64_t r0 = s->r[0] + (s->r[0] >> 13) + 1, rr[LPC_ORDER + 1];
	int64_t a[LPC_ORDER + 1] = { 0 }, t[LPC_ORDER + 1], e;
	int sh = 0;

	while ((r0 >> sh) >= ((int64_t)1 << 29))
		sh++;
	rr[0] = r0 >> sh;
	for (int k = 1; k <= LPC_ORDER; k++)
		rr[k] = floor_shift(s->r[k], sh);
	e = rr[0];
	for (int i = 1; i <= LPC_ORDER; i++) {
		int64_t acc = rr[i] * ((int64_t)1 << LPC_Q), k;

		for (int j = 1; j < i; j++)
			acc -= a[j] * rr[i - j];
		k = clamp64(acc / e, ((int64_t)1 << LPC_Q) - 1);
		for (int j = 1; j < i; j++)
			t[j] = clamp64(a[j] - floor_shift(k * a[i - j], LPC_Q),
				       LPC_AMAX);
		for (int j = 1; j < i; j++)
			a[j] = t[j];
		a[i] = k;
		e -= floor_shift(floor_shift(e * k, LPC_Q) * k, LPC_Q);
		if (e < 1)
			e = 1;
	}
	for (int j = 0; j < LPC_ORDER; j++)
		s->a[j] = a[j + 1];
}

static void lpc_update(struct lpc *s, int64_t d)
{
	size_t n = s->n, m = LPC_RING - 1;

	s->d[n & m] = (int32_t)d;
	for (size_t k = 0; k <= LPC_ORDER && k <= n; k++)
		s->r[k] += d * s->d[(n - k) & m];
	if (n >= LPC_WINDOW) {
		/* Sample n - LPC_WINDOW leaves with its pairs. */
		int64_t old = s->d[(n - LPC_WINDOW) & m];

		for (size_t k = 0; k <= LPC_ORDER; k++)
			s->r[k] -= old * s->d[(n - LPC_WINDOW + k) & m];
	}
	s->n = ++n;
	if (n % LPC_BLOCK == 0)
		lpc_solve(s);
}

/* The cascade: a long slow stage for the spectrum's shape, a short fast
 * one for what it leaves (chosen on the first 16 MiB of audio-valid:
 * adaptive Rice coding of the residual 0.311 of the raw size, against
 * FLAC -8's 0.3125 and the plain difference's 0.344). With lpc (lpcz),
 * the linear predictor goes first and the cascade takes its residual. */
static int lms_run(uint8_t *p, size_t n, int inverse, int zz, int lpc)
{
	struct lms a = { .taps = 32, .mu = 4 }, b = { .taps = 16, .mu = 16 };
	struct lpc *l = NULL;
	int64_t prev = 0;

	if (lpc && (l = calloc(1, sizeof(*l))) == NULL)
		return -1;
	for (size_t i = 0; i + 1 < n; i += 2) {
		int64_t p0 = l != NULL ? lpc_predict(l) : 0;
		int64_t p1 = lms_predict(&a), p2 = lms_predict(&b), x;

		if (inverse) {
			uint16_t r = (uint16_t)(p[i] << 8 | p[i + 1]);

			if (zz)
				r = unzigzag(r);
			x = s16((uint16_t)(prev + p0 + p1 + p2 + r));
		} else {
			x = s16((uint16_t)(p[i] | p[i + 1] << 8));
		}
		int64_t d = x - prev, r0 = d - p0, r1 = r0 - p1, r2 = r1 - p2;

		if (inverse) {
			p[i] = (uint8_t)x;
			p[i + 1] = (uint8_t)((uint16_t)x >> 8);
		} else {
			uint16_t out = zz ? zigzag((uint16_t)r2) : (uint16_t)r2;

			p[i] = (uint8_t)(out >> 8);
			p[i + 1] = (uint8_t)out;
		}
		if (l != NULL)
			lpc_update(l, d);
		lms_update(&a, r0, r1);
		lms_update(&b, r1, r2);
		prev = x;
	}
	free(l);
	return 0;
}

/* LOCO-I's median edge detector: the middle of a, b and a + b - c, which
 * picks the left pixel a under a horizontal edge, the one above b under a
 * vertical edge, and the plane through them elsewhere. */
static int med(int a, int b, int c)
{
	int hi = a > b ? a : b, lo = a > b ? b : a;

	return c >= hi ? lo : c <= lo ? hi : a + b - c;
}

/* Pixel q as the planes G, R - G, B - G (signed: the differences are
 * smooth where their mod-256 forms wrap). */
static void planes(const uint8_t *q, int v[3])
{
	v[0] = q[1];
	v[1] = q[0] - q[1];
	v[2] = q[2] - q[1];
}

/* Pixel q against its predictions pr of the planes: forward, replaced by
 * the residuals mod 256; inverse, restored from them. v gets its planes. */
static void code_pixel(uint8_t *q, const int pr[3], int inverse, int v[3])
{
	if (inverse) {
		uint8_t g = (uint8_t)(q[0] + pr[0]);

		q[0] = (uint8_t)(g + pr[1] + q[1]);
		q[2] = (uint8_t)(g + pr[2] + q[2]);
		q[1] = g;
		planes(q, v);
	} else {
		planes(q, v);
		for (int j = 0; j < 3; j++)
			q[j] = (uint8_t)(v[j] - pr[j]);
	}
}

/* The prediction of pixel k of p from its causal neighbours, which must
 * hold original pixels. A neighbour outside the chunk or the row is
 * replaced by one that is there: no row above, the left pixel for both
 * above ones; first in its row, the one above for the left ones; the
 * above-left alone missing (the chunk starts mid-row), the one above;
 * nothing at all, 0. */
static void med_predict(const uint8_t *p, size_t k, const struct btz_rows *r,
			int pred[3])
{
	size_t w = r->width, x = w ? (r->x0 + k % w) % w : 1;
	int left = k > 0 && x > 0, up = w > 0 && k >= w;
	int a[3] = { 0, 0, 0 }, b[3], c[3];

	if (left)
		planes(p + 3 * (k - 1), a);
	if (up)
		planes(p + 3 * (k - w), b);
	if (left && up && k > w)
		planes(p + 3 * (k - w - 1), c);
	else if (up)
		memcpy(c, b, sizeof(c));
	for (int i = 0; i < 3; i++) {
		if (!up)
			b[i] = c[i] = a[i];
		else if (!left)
			a[i] = b[i];
		pred[i] = med(a[i], b[i], c[i]);
	}
}

/* mix: seven predictions of each plane blended by how well each did at
 * the four causal neighbours (weights 2^30 / e^2, e one more than the sum
 * of its absolute errors there), as context-mixing image coders weigh
 * predictors; Kodak's residuals code 3.9% smaller than MED's under a
 * simple adaptive coder, but a network trained at full length on them
 * ends no better than on medt's, only sooner there (models/
 * btz-image-170k.md). Neighbours outside
 * the chunk or the row are replaced as med replaces them, NE and NNE by
 * N and NE. */
#define MIX_N 7

struct mix {
	int *v;		 /* planes of pixels 0 .. k - 1 */
	uint16_t *e;	 /* their MIX_N errors a plane */
};

static void mix_predict(const struct mix *m, size_t k,
			const struct btz_rows *r, int pred[3], int sub[3][MIX_N])
{
	size_t w = r->width, x = w ? (r->x0 + k % w) % w : 1;
	int left = k > 0 && x > 0, up = w > 0 && k >= w;
	int nw = left && up && k > w, ne = up && x + 1 < w;
	int nne = ne && k >= 2 * w;

	for (int i = 0; i < 3; i++) {
		int a = left ? m->v[3 * (k - 1) + i] : 0, b, c, d, f;
		int64_t acc = 0, wsum = 0;

		b = up ? m->v[3 * (k - w) + i] : a;
		if (up && !left)
			a = b;
		c = nw ? m->v[3 * (k - w - 1) + i] : b;
		d = ne ? m->v[3 * (k - w + 1) + i] : b;
		f = nne ? m->v[3 * (k - 2 * w + 1) + i] : d;
		int *P = sub[i];
		P[0] = a;
		P[1] = b;
		P[2] = med(a, b, c);
		P[3] = a + d - b;
		P[4] = (int)floor_shift(a + d + 1, 1);
		P[5] = (int)floor_shift(a + b + 1, 1);
		P[6] = b + d - f;
		for (int j = 0; j < MIX_N; j++) {
			int64_t e = 1, wt;

			if (left)
				e += m->e[(3 * (k - 1) + i) * MIX_N + j];
			if (up)
				e += m->e[(3 * (k - w) + i) * MIX_N + j];
			if (nw)
				e += m->e[(3 * (k - w - 1) + i) * MIX_N + j];
			if (ne)
				e += m->e[(3 * (k - w + 1) + i) * MIX_N + j];
			/* Planes lie in [-255, 255] and predictions in
			 * [-765, 765], so e <= 1 + 4 * 1020 and every
			 * weight is at least 64: wsum is never 0. */
			wt = ((int64_t)1 << 30) / (e * e);
			wsum += wt;
			acc += wt * P[j];
		}
		acc += wsum / 2;
		pred[i] = (int)(acc >= 0 ? acc / wsum
				  : -((-acc + wsum - 1) / wsum));
	}
}

/* In pixel order both ways: the forward keeps each pixel's original
 * planes as it replaces the pixel by its residuals, the inverse the
 * planes it has restored. */
static int mix_run(uint8_t *p, size_t n, const struct btz_rows *rows,
		   int inverse)
{
	struct btz_rows r = { 0, 0, 0 };
	size_t np = n / 3;
	struct mix m;

	if (rows != NULL && btz_rows_known(rows))
		r = *rows;
	m.v = malloc((3 * np + 1) * sizeof(*m.v));
	m.e = malloc((3 * np * MIX_N + 1) * sizeof(*m.e));
	if (m.v == NULL || m.e == NULL) {
		free(m.v);
		free(m.e);
		return -1;
	}
	for (size_t k = 0; k < np; k++) {
		uint8_t *q = p + 3 * k;
		int pr[3], sub[3][MIX_N], *v = m.v + 3 * k;

		mix_predict(&m, k, &r, pr, sub);
		code_pixel(q, pr, inverse, v);
		for (int i = 0; i < 3; i++)
			for (int j = 0; j < MIX_N; j++) {
				int e = v[i] - sub[i][j];

				m.e[(3 * k + i) * MIX_N + j] =
					(uint16_t)(e < 0 ? -e : e);
			}
	}
	free(m.v);
	free(m.e);
	return 0;
}

/* Forward from the last pixel down, so that every prediction reads
 * original neighbours in place; the inverse from the first up, reading
 * restored ones. */
static int med_run(uint8_t *p, size_t n, const struct btz_rows *rows,
		   int inverse)
{
	struct btz_rows r = { 0, 0, 0 };
	size_t np = n / 3;

	if (rows != NULL && btz_rows_known(rows))
		r = *rows;
	for (size_t i = 0; i < np; i++) {
		size_t k = inverse ? i : np - 1 - i;
		uint8_t *q = p + 3 * k;
		int pr[3], v[3];

		med_predict(p, k, &r, pr);
		code_pixel(q, pr, inverse, v);
	}
	return 0;
}

size_t btz_tile_rows(uint32_t width, size_t full)
{
	size_t th = BTZ_TILE_ROWS;

	while (th > full)
		th /= 2;
	return th > 0 && width >= BTZ_TILE_PIXELS / th ? th : 0;
}

size_t btz_transform_chunk_windows(unsigned t)
{
	return btz_transform_tiles(t)	 ? BTZ_LONG_CHUNK_WINDOWS
	       : t == BTZ_TRANSFORM_LPCZ ? BTZ_LPC_CHUNK_WINDOWS
					 : BTZ_CHUNK_WINDOWS;
}

size_t btz_transform_chunk(unsigned t, uint32_t width, size_t window)
{
	size_t std = BTZ_CHUNK_WINDOWS * window, row = (size_t)width * 3, th,
	       band;

	if (!btz_transform_tiles(t))
		return btz_transform_chunk_windows(t) * window;
	if (width == 0 || width > BTZ_ROWS_WIDTH_MAX)
		return std;
	th = btz_tile_rows(width, BTZ_LONG_CHUNK_WINDOWS * window / row);
	band = th * row;
	return th == 0 ? std : band > std ? band : std - std % band;
}

/* medt's order: pixel i of the output is pixel at(i) of the chunk in row
 * order. The first partial row (x0 > 0) holds no tile; then bands of th
 * whole rows, cut into tiles tw = 256 / th wide; the pixels left over
 * (that row, the columns right of the last tile, the rows below the last
 * band, a last partial row) follow the tiles in row order. */
static void tile_order(size_t np, const struct btz_rows *r, uint32_t *at)
{
	size_t w = r->width, f = r->x0 ? w - r->x0 : 0, full, th, tw, bands,
	       cols, k = 0;

	if (f > np)
		f = np;
	full = (np - f) / w;
	th = btz_tile_rows(r->width, full);
	tw = th ? BTZ_TILE_PIXELS / th : 0;
	bands = th ? full / th : 0;
	cols = tw ? w / tw : 0;
	for (size_t b = 0; b < bands; b++)
		for (size_t c = 0; c < cols; c++)
			for (size_t y = 0; y < th; y++)
				for (size_t x = 0; x < tw; x++)
					at[k++] = (uint32_t)(f + (b * th + y) * w +
							     c * tw + x);
	for (size_t i = 0; i < np; i++) {
		size_t y = (i - f) / w, x = (i - f) % w;

		if (i < f || y >= bands * th || x >= cols * tw)
			at[k++] = (uint32_t)i;
	}
}

/* Reorders the pixels of p into medt's order (inverse 0) or back. The
 * order needs the rows; pixel indices fit 32 bits (a chunk is at most
 * 64 MiB). */
static int tile_run(uint8_t *p, size_t n, const struct btz_rows *rows,
		    int inverse)
{
	size_t np = n / 3;
	uint32_t *at;
	uint8_t *copy;

	if (rows == NULL || !btz_rows_known(rows) || np == 0)
		return 0;
	at = malloc(np * sizeof(*at));
	copy = malloc(3 * np);
	if (at == NULL || copy == NULL) {
		free(at);
		free(copy);
		return -1;
	}
	tile_order(np, rows, at);
	memcpy(copy, p, 3 * np);
	for (size_t i = 0; i < np; i++)
		memcpy(inverse ? p + 3 * (size_t)at[i] : p + 3 * i,
		       inverse ? copy + 3 * i : copy + 3 * (size_t)at[i], 3);
	free(at);
	free(copy);
	return 0;
}

int btz_transform_tiles(unsigned t)
{
	return t == BTZ_TRANSFORM_MEDT || t == BTZ_TRANSFORM_MIXT;
}

int btz_transform_uses_rows(unsigned t)
{
	return t == BTZ_TRANSFORM_MED || t == BTZ_TRANSFORM_MEDT ||
	       t == BTZ_TRANSFORM_MIXT;
}

static int run(unsigned t, uint8_t *p, size_t n, const struct btz_rows *rows,
	       int inverse)
{
	switch (t) {
	case BTZ_TRANSFORM_SWAP16: swap16(p, n); break; /* its own inverse */
	case BTZ_TRANSFORM_GREEN: green_run(p, n, inverse); break;
	case BTZ_TRANSFORM_LMS:
	case BTZ_TRANSFORM_LMSZ:
		lms_run(p, n, inverse, t == BTZ_TRANSFORM_LMSZ, 0);
		break;
	case BTZ_TRANSFORM_LPCZ: return lms_run(p, n, inverse, 1, 1);
	case BTZ_TRANSFORM_MED: med_run(p, n, rows, inverse); break;
	case BTZ_TRANSFORM_MEDT:
	case BTZ_TRANSFORM_MIXT: {
		int (*pixels)(uint8_t *, size_t, const struct btz_rows *, int) =
			t == BTZ_TRANSFORM_MEDT ? med_run : mix_run;

		/* The reordering first undone, so that the predictor reads
		 * each pixel's neighbours where they are in the image. */
		if (inverse)
			return tile_run(p, n, rows, 1) != 0 ? -1
							    : pixels(p, n, rows, 1);
		if (pixels(p, n, rows, 0) != 0)
			return -1;
		if (tile_run(p, n, rows, 0) != 0) {
			pixels(p, n, rows, 1);
			return -1;
		}
		break;
	}
	default: break;
	}
	return 0;
}

int btz_transform_forward(unsigned t, uint8_t *p, size_t n,
			  const struct btz_rows *rows)
{
	return run(t, p, n, rows, 0);
}

int btz_transform_inverse(unsigned t, uint8_t *p, size_t n,
			  const struct btz_rows *rows)
{
	return run(t, p, n, rows, 1);
}
