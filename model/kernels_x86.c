/* x86 kernels (AVX2, AVX-512 VNNI), chosen at run time by CPUID.
 * Each must equal the scalar kernel bit for bit; tests/test_kernels.c
 * checks that.  Integer sums do not depend on their order, so the only
 * way to differ is overflow or saturation: each kernel says below why it
 * has neither, given that X and W hold values in [-127, 127] only.
 *
 * Every kernel computes dot products of a row of X with a row of W (both
 * run along k), tile by tile: R rows of X times C rows of W, R*C
 * accumulators kept in registers, so each vector loaded from W serves R
 * rows and each loaded from X serves C outputs.  At the end of k the R*C
 * accumulators are summed across their lanes together into one vector
 * (lane r*C + c = out[r][c]).  Loop order: a block of rows of X (a few
 * hundred KB at most, so it stays in L2), then C rows of W at a time
 * (they stay in L1 across the block), then the row tiles of the block.
 * The AVX-512 kernel has a second, packed path for 16 rows or more (the
 * lockstep decode and the pack pass): it repacks 32 rows of W at a time
 * so that the products land in output lanes directly, with no sums
 * across lanes, which otherwise dominate at k = 128.
 *
 * Each kernel is compiled with __attribute__((target(...))), so the file
 * needs no -march flag; btz_kernels_x86_ok[] asks the CPU (and, through
 * __builtin_cpu_supports, the OS's XSAVE state) whether it may run. */
#include "model/intops.h"
#include "model/kernels.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>

/* Rows of X per block: about 128 KB of X, a multiple of every tile
 * height (4), at least one tile. */
static size_t row_block(size_t k)
{
	size_t rb = (131072 / k) & ~(size_t)3;

	return rb < 4 ? 4 : rb;
}

/* ------------------------------------------------------------------ */
/* AVX2: vpmaddubsw with the sign trick.
 *
 * vpmaddubsw multiplies unsigned bytes by signed bytes and adds adjacent
 * pairs into int16, saturating.  We feed it |x| (vpabsb, 0..127) and
 * w·sgn(x) (vpsignb: w negated where x < 0, zeroed where x = 0, and
 * -127..127 stays in range), so each product is x·w exactly and each pair
 * sum is at most 2·127·127 = 32258 < 32767: no saturation.  vpmaddwd with
 * ones then adds pairs of int16 into int32 exactly, and the int32
 * accumulation is the scalar's (|sums| < 2^31 by contract).  Tails of k
 * are copied into a zeroed 32-byte buffer: zeros add nothing. */

#define AVX2_FN static inline __attribute__((always_inline, target("avx2")))

AVX2_FN __m256i avx2_load_tail(const int8_t *p, size_t len)
{
	int8_t buf[32] = { 0 };

	memcpy(buf, p, len);
	return _mm256_loadu_si256((const __m256i *)buf);
}

/* One 32-byte step of k for an R x C tile; len < 32 for the tail. */
AVX2_FN void avx2_step(__m256i acc[8], const int8_t *const xp[4],
		       const int8_t *const wp[8], size_t c0, size_t len,
		       const int R, const int C)
{
	const __m256i ones = _mm256_set1_epi16(1);
	__m256i xv[4], ax[4];

#pragma GCC unroll 4
	for (int r = 0; r < R; r++) {
		xv[r] = len >= 32 ?
			_mm256_loadu_si256((const __m256i *)(xp[r] + c0)) :
			avx2_load_tail(xp[r] + c0, len);
		ax[r] = _mm256_abs_epi8(xv[r]);
	}
#pragma GCC unroll 8
	for (int c = 0; c < C; c++) {
		__m256i w = len >= 32 ?
			_mm256_loadu_si256((const __m256i *)(wp[c] + c0)) :
			avx2_load_tail(wp[c] + c0, len);

#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			__m256i p = _mm256_maddubs_epi16(
				ax[r], _mm256_sign_epi8(w, xv[r]));

			acc[r * C + c] = _mm256_add_epi32(
				acc[r * C + c], _mm256_madd_epi16(p, ones));
		}
	}
}

/* Lane i of the result = the sum of the 8 lanes of a[i]. */
AVX2_FN __m256i avx2_reduce8(const __m256i a[8])
{
	__m256i b[4], c[2];

	/* Per 128-bit half: [a0+a2, b0+b2, a1+a3, b1+b3] for a, b. */
#pragma GCC unroll 4
	for (int j = 0; j < 4; j++)
		b[j] = _mm256_add_epi32(
			_mm256_unpacklo_epi32(a[2 * j], a[2 * j + 1]),
			_mm256_unpackhi_epi32(a[2 * j], a[2 * j + 1]));
	/* Per half: partial sums of a[4j], a[4j+1], a[4j+2], a[4j+3]. */
#pragma GCC unroll 2
	for (int j = 0; j < 2; j++)
		c[j] = _mm256_add_epi32(
			_mm256_unpacklo_epi64(b[2 * j], b[2 * j + 1]),
			_mm256_unpackhi_epi64(b[2 * j], b[2 * j + 1]));
	/* Add the two halves. */
	return _mm256_add_epi32(_mm256_permute2x128_si256(c[0], c[1], 0x20),
				_mm256_permute2x128_si256(c[0], c[1], 0x31));
}

/* Rows [r_begin, r_end) of out, tiles of R rows x C columns; R divides
 * the row count, R*C <= 8. */
AVX2_FN void avx2_rows(const int8_t *X, size_t r_begin, size_t r_end,
		       size_t k, const int8_t *W, size_t n, int32_t *out,
		       const int R, const int C)
{
	size_t rb = row_block(k);

	for (size_t b0 = r_begin; b0 < r_end; b0 += rb) {
		size_t b1 = r_end - b0 < rb ? r_end : b0 + rb;

		for (size_t o0 = 0; o0 < n; o0 += (size_t)C) {
			size_t nc = n - o0 < (size_t)C ? n - o0 : (size_t)C;
			const int8_t *wp[8];

			/* Columns past n repeat the last one; not stored. */
			for (int c = 0; c < C; c++)
				wp[c] = W + (o0 + ((size_t)c < nc ? (size_t)c
								  : nc - 1)) * k;
			for (size_t r0 = b0; r0 < b1; r0 += (size_t)R) {
				const int8_t *xp[4];
				__m256i acc[8];
				int32_t t[8];
				size_t c0 = 0;

				for (int r = 0; r < R; r++)
					xp[r] = X + (r0 + (size_t)r) * k;
				for (int i = 0; i < 8; i++)
					acc[i] = _mm256_setzero_si256();
				for (; c0 + 32 <= k; c0 += 32)
					avx2_step(acc, xp, wp, c0, 32, R, C);
				if (c0 < k)
					avx2_step(acc, xp, wp, c0, k - c0, R, C);
				_mm256_storeu_si256((__m256i *)t,
						    avx2_reduce8(acc));
				for (int r = 0; r < R; r++) {
					int32_t *dst = out + (r0 + (size_t)r) * n + o0;

					if (nc == (size_t)C)
						memcpy(dst, t + r * C,
						       (size_t)C * sizeof *t);
					else
						memcpy(dst, t + r * C,
						       nc * sizeof *t);
				}
			}
		}
	}
}

/* k = 16 (the attention's scores, this table having no scores16): 8 keys
 * at a time widened to int16 once, then for each row 8 pair-products
 * (vpmaddwd: each int32 lane two products, exact) and a horizontal-add
 * tree that leaves key i's sum in lane i. The generic tiles above are no
 * faster than scalar code at this width. */
__attribute__((target("avx2")))
static void avx2_k16(const int8_t *X, size_t rows, const int8_t *W,
		     size_t n, int32_t *out)
{
	int8_t tail[8 * 16] = { 0 };

	for (size_t c0 = 0; c0 < n; c0 += 8) {
		size_t nc = n - c0 < 8 ? n - c0 : 8;
		const int8_t *wp = W + c0 * 16;
		__m256i w[8];

		if (nc < 8) { /* keys past n read as zeros */
			memcpy(tail, wp, nc * 16);
			wp = tail;
		}
#pragma GCC unroll 8
		for (int i = 0; i < 8; i++)
			w[i] = _mm256_cvtepi8_epi16(
				_mm_loadu_si128((const __m128i *)(wp + i * 16)));
		for (size_t r = 0; r < rows; r++) {
			__m256i x = _mm256_cvtepi8_epi16(
				_mm_loadu_si128((const __m128i *)(X + r * 16)));
			__m256i h01, h23, h45, h67, h03, h47, s;

			h01 = _mm256_hadd_epi32(_mm256_madd_epi16(w[0], x),
						_mm256_madd_epi16(w[1], x));
			h23 = _mm256_hadd_epi32(_mm256_madd_epi16(w[2], x),
						_mm256_madd_epi16(w[3], x));
			h45 = _mm256_hadd_epi32(_mm256_madd_epi16(w[4], x),
						_mm256_madd_epi16(w[5], x));
			h67 = _mm256_hadd_epi32(_mm256_madd_epi16(w[6], x),
						_mm256_madd_epi16(w[7], x));
			h03 = _mm256_hadd_epi32(h01, h23);
			h47 = _mm256_hadd_epi32(h45, h67);
			/* Lane i of h03: key i's low half (i < 4) or high
			 * half (i >= 4) of keys 0-3; likewise h47. */
			s = _mm256_add_epi32(
				_mm256_permute2x128_si256(h03, h47, 0x20),
				_mm256_permute2x128_si256(h03, h47, 0x31));
			if (nc == 8) {
				_mm256_storeu_si256(
					(__m256i *)(out + r * n + c0), s);
			} else {
				int32_t t[8];

				_mm256_storeu_si256((__m256i *)t, s);
				memcpy(out + r * n + c0, t, nc * sizeof(*t));
			}
		}
	}
}

__attribute__((target("avx2")))
static void gemm_s8_avx2(const int8_t *X, size_t rows, size_t k,
			 const int8_t *W, size_t n, int32_t *out)
{
	size_t r = rows & ~(size_t)3;

	if (k == 0 || n == 0)
		return; /* k >= 1 by contract; keep the division safe */
	if (k == 16) {
		avx2_k16(X, rows, W, n, out);
		return;
	}
	if (r > 0)
		avx2_rows(X, 0, r, k, W, n, out, 4, 2);
	if (rows - r >= 2) {
		avx2_rows(X, r, r + 2, k, W, n, out, 2, 4);
		r += 2;
	}
	if (rows - r == 1)
		avx2_rows(X, r, r + 1, k, W, n, out, 1, 8);
}

/* Weighted sum of value rows: e (u16) and v (s8) widened to int32 and
 * multiplied with vpmulld, 8 lanes at a time; exact like the scalar
 * loop (every product and partial sum fits int32, see kernels.h). */
__attribute__((target("avx2")))
static void wsum_avx2_row(const uint16_t *e, const int8_t *V, size_t stride,
			  size_t n, size_t dh, int32_t *part)
{
	size_t c = 0;

	for (; c + 16 <= dh; c += 16) {
		__m256i a0 = _mm256_loadu_si256((const __m256i *)(part + c));
		__m256i a1 = _mm256_loadu_si256((const __m256i *)(part + c + 8));

		for (size_t j = 0; j < n; j++) {
			const int8_t *v = V + j * stride + c;
			__m256i ej = _mm256_set1_epi32((int32_t)e[j]);
			__m256i v0 = _mm256_cvtepi8_epi32(
				_mm_loadl_epi64((const __m128i *)v));
			__m256i v1 = _mm256_cvtepi8_epi32(
				_mm_loadl_epi64((const __m128i *)(v + 8)));

			a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(ej, v0));
			a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(ej, v1));
		}
		_mm256_storeu_si256((__m256i *)(part + c), a0);
		_mm256_storeu_si256((__m256i *)(part + c + 8), a1);
	}
	for (; c + 8 <= dh; c += 8) {
		__m256i a0 = _mm256_loadu_si256((const __m256i *)(part + c));

		for (size_t j = 0; j < n; j++) {
			__m256i ej = _mm256_set1_epi32((int32_t)e[j]);
			__m256i v0 = _mm256_cvtepi8_epi32(_mm_loadl_epi64(
				(const __m128i *)(V + j * stride + c)));

			a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(ej, v0));
		}
		_mm256_storeu_si256((__m256i *)(part + c), a0);
	}
	if (c < dh)
		btz_wsum_scalar(e, 0, 1, V + c, stride, n, dh - c, part + c);
}

__attribute__((target("avx2")))
/* dh = 16 (every shipped model), 4 rows at a time: vpmaddwd on pairs of
 * positions, the two value rows interleaved and widened once for the 4
 * rows. A weight e in [0, 65535] is no int16, but e - 32768 is (e XOR
 * 0x8000: two weights read as one dword), so Σ e·v = Σ (e - 32768)·v +
 * 32768·Σ v, the last per channel, shared. Each pair product is within
 * 2^23; sums wrap mod 2^32 and the total is exact (kernels.h). An odd
 * last position pairs with a zero row. */
__attribute__((target("avx2")))
static void wsum16_rows_avx2(const uint16_t *e, size_t estride,
			     size_t nrows, const int8_t *V, size_t stride,
			     size_t n, int32_t *part)
{
	const __m256i bias = _mm256_set1_epi32((int32_t)0x80008000u);
	const __m256i ones = _mm256_set1_epi16(1);

	for (size_t i0 = 0; i0 < nrows; i0 += 4) {
		size_t nr = nrows - i0 < 4 ? nrows - i0 : 4;
		const uint16_t *er[4];
		__m256i acc[4][2], cs[2];

		for (size_t r = 0; r < 4; r++)
			er[r] = e + (i0 + (r < nr ? r : 0)) * estride;
		cs[0] = cs[1] = _mm256_setzero_si256();
#pragma GCC unroll 4
		for (int r = 0; r < 4; r++)
			acc[r][0] = acc[r][1] = _mm256_setzero_si256();
		for (size_t j = 0; j < n; j += 2) {
			__m128i a = _mm_loadu_si128((const __m128i *)(V + j * stride));
			__m128i b = j + 1 < n ? _mm_loadu_si128((const __m128i *)(
							V + (j + 1) * stride))
					      : _mm_setzero_si128();
			__m256i p0 = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b));
			__m256i p1 = _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(a, b));

			cs[0] = _mm256_add_epi32(cs[0], _mm256_madd_epi16(p0, ones));
			cs[1] = _mm256_add_epi32(cs[1], _mm256_madd_epi16(p1, ones));
#pragma GCC unroll 4
			for (int r = 0; r < 4; r++) {
				uint32_t w2 = er[r][j];
				__m256i wv;

				if (j + 1 < n)
					w2 |= (uint32_t)er[r][j + 1] << 16;
				wv = _mm256_xor_si256(_mm256_set1_epi32((int32_t)w2),
						      bias);
				acc[r][0] = _mm256_add_epi32(
					acc[r][0], _mm256_madd_epi16(p0, wv));
				acc[r][1] = _mm256_add_epi32(
					acc[r][1], _mm256_madd_epi16(p1, wv));
			}
		}
		for (size_t r = 0; r < nr; r++)
			for (int h = 0; h < 2; h++) {
				int32_t *p = part + (i0 + r) * 16 + 8 * h;
				__m256i t = _mm256_add_epi32(
					acc[r][h], _mm256_slli_epi32(cs[h], 15));

				_mm256_storeu_si256(
					(__m256i *)p,
					_mm256_add_epi32(_mm256_loadu_si256(
								 (const __m256i *)p),
							 t));
			}
	}
}

static void wsum_avx2(const uint16_t *e, size_t estride, size_t nrows,
		      const int8_t *V, size_t stride, size_t n, size_t dh,
		      int32_t *part)
{
	if (dh == 16) {
		wsum16_rows_avx2(e, estride, nrows, V, stride, n, part);
		return;
	}
	for (size_t i = 0; i < nrows; i++)
		wsum_avx2_row(e + i * estride, V, stride, n, dh, part + i * dh);
}

/* Attention weights, 8 positions at a time: (mx - s) * mul as unsigned
 * 32x32->64 products (both factors are non-negative and below 2^31), the
 * rounding shift on 64-bit lanes, the clamp at 255, then a gather from
 * the padded table; the same integers as the scalar loop. */
__attribute__((target("avx2")))
static uint64_t att_weights_avx2(const int32_t *s, size_t n, int32_t mx,
				 int32_t mul, int32_t shift,
				 const uint16_t *table, uint16_t *e)
{
	const __m256i vmx = _mm256_set1_epi32(mx);
	const __m256i vmul = _mm256_set1_epi64x(mul);
	const __m256i round = _mm256_set1_epi64x(
		shift ? (int64_t)1 << (shift - 1) : 0);
	const __m128i cnt = _mm_cvtsi32_si128(shift);
	const __m256i top = _mm256_set1_epi64x(255);
	const __m256i lo16 = _mm256_set1_epi32(0xffff);
	__m256i zsum = _mm256_setzero_si256();
	uint64_t z = 0;
	size_t j = 0;

	for (; j + 8 <= n; j += 8) {
		__m256i d = _mm256_sub_epi32(
			vmx, _mm256_loadu_si256((const __m256i *)(s + j)));
		__m256i ev = _mm256_mul_epu32(d, vmul);
		__m256i od = _mm256_mul_epu32(_mm256_srli_epi64(d, 32), vmul);
		__m256i idx, w;

		ev = _mm256_srl_epi64(_mm256_add_epi64(ev, round), cnt);
		od = _mm256_srl_epi64(_mm256_add_epi64(od, round), cnt);
		ev = _mm256_blendv_epi8(ev, top, _mm256_cmpgt_epi64(ev, top));
		od = _mm256_blendv_epi8(od, top, _mm256_cmpgt_epi64(od, top));
		idx = _mm256_or_si256(ev, _mm256_slli_epi64(od, 32));
		w = _mm256_and_si256(
			_mm256_i32gather_epi32((const int *)table, idx, 2),
			lo16);
		zsum = _mm256_add_epi64(
			zsum, _mm256_add_epi64(
				      _mm256_and_si256(w, _mm256_set1_epi64x(
							       0xffffffff)),
				      _mm256_srli_epi64(w, 32)));
		w = _mm256_permute4x64_epi64(_mm256_packus_epi32(w, w), 0x08);
		_mm_storeu_si128((__m128i *)(e + j),
				 _mm256_castsi256_si128(w));
	}
	{
		uint64_t t[4];

		_mm256_storeu_si256((__m256i *)t, zsum);
		z = t[0] + t[1] + t[2] + t[3];
	}
	if (j < n)
		z += btz_att_weights_scalar(s + j, n - j, mx, mul, shift,
					    table, e + j);
	return z;
}

__attribute__((target("avx2")))
static int32_t max_s32_avx2(const int32_t *s, size_t n)
{
	__m256i m = _mm256_set1_epi32(INT32_MIN);
	int32_t t[8], mx;
	size_t j = 0;

	for (; j + 8 <= n; j += 8)
		m = _mm256_max_epi32(
			m, _mm256_loadu_si256((const __m256i *)(s + j)));
	_mm256_storeu_si256((__m256i *)t, m);
	mx = j < n ? btz_max_s32_scalar(s + j, n - j) : INT32_MIN;
	for (int i = 0; i < 8; i++)
		mx = t[i] > mx ? t[i] : mx;
	return mx;
}

/* rshift(a·m, shift) for 8 int32 lanes as two vectors of 64-bit lanes,
 * even (ev) and odd (od) lanes apart. AVX2 has no arithmetic 64-bit
 * shift: x >> s is (x XOR sign) >>> s XOR sign, sign = 0 or all ones. */
__attribute__((target("avx2"))) static inline void
avx2_mul_rshift(__m256i a, __m256i m, __m256i round, __m128i cnt,
		__m256i *ev, __m256i *od)
{
	__m256i p[2];

	p[0] = _mm256_add_epi64(_mm256_mul_epi32(a, m), round);
	p[1] = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32),
						 _mm256_srli_epi64(m, 32)),
				round);
	for (int h = 0; h < 2; h++) {
		__m256i sg = _mm256_cmpgt_epi64(_mm256_setzero_si256(), p[h]);

		p[h] = _mm256_xor_si256(
			_mm256_srl_epi64(_mm256_xor_si256(p[h], sg), cnt), sg);
	}
	*ev = p[0];
	*od = p[1];
}

/* The 64-bit lanes of v clamped to [lo, hi]. */
__attribute__((target("avx2"))) static inline __m256i
avx2_clamp64(__m256i v, __m256i lo, __m256i hi)
{
	v = _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
	return _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
}

/* Even and odd 64-bit lanes, each within int32, as 8 int32 lanes. */
__attribute__((target("avx2"))) static inline __m256i
avx2_merge8(__m256i ev, __m256i od)
{
	return _mm256_blend_epi32(ev, _mm256_slli_epi64(od, 32), 0xaa);
}

/* btz_rq8 8 lanes at a time (see avx2_mul_rshift), narrowed to bytes
 * with saturating packs (exact: the values are within +-127). */
__attribute__((target("avx2")))
static void rq8_avx2(const int32_t *acc, size_t n, const int32_t *mul,
		     int32_t shift, int8_t *out)
{
	const __m256i round = _mm256_set1_epi64x(
		shift ? (int64_t)1 << (shift - 1) : 0);
	const __m128i cnt = _mm_cvtsi32_si128(shift);
	const __m256i hi = _mm256_set1_epi64x(127), lo = _mm256_set1_epi64x(-127);
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		__m256i ev, od, v;
		__m128i w;

		avx2_mul_rshift(_mm256_loadu_si256((const __m256i *)(acc + i)),
				_mm256_loadu_si256((const __m256i *)(mul + i)),
				round, cnt, &ev, &od);
		v = avx2_merge8(avx2_clamp64(ev, lo, hi),
				avx2_clamp64(od, lo, hi));
		w = _mm_packs_epi32(_mm256_castsi256_si128(v),
				    _mm256_extracti128_si256(v, 1));
		_mm_storel_epi64((__m128i *)(out + i), _mm_packs_epi16(w, w));
	}
	btz_rq8_scalar(acc + i, n - i, mul + i, shift, out + i);
}

/* btz_residual the same way, plus x·rx, clamped at +-2^24. */
__attribute__((target("avx2")))
static void residual_avx2(const int8_t *x, const int32_t *acc, size_t n,
			  int32_t rx, const int32_t *mul, int32_t shift,
			  int32_t *r)
{
	const __m256i round = _mm256_set1_epi64x(
		shift ? (int64_t)1 << (shift - 1) : 0);
	const __m128i cnt = _mm_cvtsi32_si128(shift);
	const __m256i hi = _mm256_set1_epi64x(1 << 24),
		      lo = _mm256_set1_epi64x(-(1 << 24));
	const __m256i vrx = _mm256_set1_epi32(rx);
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		__m256i ev, od, x32;

		avx2_mul_rshift(_mm256_loadu_si256((const __m256i *)(acc + i)),
				_mm256_loadu_si256((const __m256i *)(mul + i)),
				round, cnt, &ev, &od);
		/* x·rx as 64-bit products of the even and odd lanes. */
		x32 = _mm256_cvtepi8_epi32(
			_mm_loadl_epi64((const __m128i *)(x + i)));
		ev = _mm256_add_epi64(ev, _mm256_mul_epi32(x32, vrx));
		od = _mm256_add_epi64(
			od, _mm256_mul_epi32(_mm256_srli_epi64(x32, 32), vrx));
		_mm256_storeu_si256((__m256i *)(r + i),
				    avx2_merge8(avx2_clamp64(ev, lo, hi),
						avx2_clamp64(od, lo, hi)));
	}
	btz_residual_scalar(x + i, acc + i, n - i, rx, mul + i, shift, r + i);
}

static int avx2_ok(void)
{
	return __builtin_cpu_supports("avx2");
}

static const struct btz_kernels kernels_avx2 = {
	.name = "avx2",
	.gemm_s8 = gemm_s8_avx2,
	.wsum = wsum_avx2,
	.att_weights = att_weights_avx2,
	.max_s32 = max_s32_avx2,
	.silu_mul = btz_silu_mul_scalar,
	.layer_norm = btz_layer_norm_scalar,
	.att_out = btz_att_out_scalar,
	.residual = residual_avx2,
	.rq8 = rq8_avx2,
	.freq_row = btz_freq_row_recip,
};

/* ------------------------------------------------------------------ */
/* AVX-512 VNNI: vpdpbusd, unsigned bytes times signed bytes, four
 * products added into each int32 lane with no intermediate rounding or
 * saturation (the non-saturating form).  Two exact ways to make X
 * unsigned; both are used:
 *
 * - offset (tiles of 4 rows): u = x XOR 0x80 = x + 128 in [1, 255];
 *   Σ u·w = Σ x·w + 128·Σ w, so we subtract 128·Σ_c W[o][c], computed
 *   once per block of rows and C rows of W with vpdpbusd(128, w).  Every
 *   int32 partial is within |Σ x·w| + 128·|Σ w| <= 255·127·k, and the
 *   wrapped int32 arithmetic of vpdpbusd/vpaddd/vpsubd is modular anyway,
 *   so the final difference is the exact sum, which fits by contract.
 *
 * - sign (rows left over, fewer than 4, e.g. the lone decode row): |x|
 *   (vpabsb, 0..127) times w·sgn(x) (w negated under the mask of x < 0;
 *   -127..127 stays in range), each product x·w exactly; no correction.
 *   Costs a byte subtraction per product vector instead of the
 *   correction, which is cheaper when the correction is not shared.
 *
 * Tails of k use masked loads, which read nothing past the mask and fill
 * zeros: w = 0 there, so those lanes add 0 in both schemes. */

#define VNNI_TARGET "avx512f,avx512bw,avx512vnni"
#define VNNI_FN static inline __attribute__((always_inline, target(VNNI_TARGET)))

/* rshift(a·m, shift) for 16 int32 lanes, as 64-bit products of the even
 * lanes (ev) and of the odd ones (od). */
VNNI_FN void mul_rshift16(__m512i a, __m512i m, __m512i round, __m128i cnt,
			  __m512i *ev, __m512i *od)
{
	*ev = _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(a, m), round),
			       cnt);
	*od = _mm512_sra_epi64(
		_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32),
						  _mm512_srli_epi64(m, 32)),
				 round),
		cnt);
}

/* The even and odd 64-bit lanes, each within int32, as 16 int32 lanes. */
VNNI_FN __m512i merge16(__m512i ev, __m512i od)
{
	return _mm512_or_si512(_mm512_and_si512(ev, _mm512_set1_epi64(0xffffffff)),
			       _mm512_slli_epi64(od, 32));
}

/* Lane i of the result = the sum of the 16 lanes of a[i]. */
VNNI_FN __m512i vnni_reduce16(const __m512i a[16])
{
	__m512i b[8], e[4], g[2];

	/* Per 128-bit block: [a0+a2, b0+b2, a1+a3, b1+b3] for a, b. */
#pragma GCC unroll 8
	for (int j = 0; j < 8; j++)
		b[j] = _mm512_add_epi32(
			_mm512_unpacklo_epi32(a[2 * j], a[2 * j + 1]),
			_mm512_unpackhi_epi32(a[2 * j], a[2 * j + 1]));
	/* Per block: partial sums of a[4j] .. a[4j+3]. */
#pragma GCC unroll 4
	for (int j = 0; j < 4; j++)
		e[j] = _mm512_add_epi32(
			_mm512_unpacklo_epi64(b[2 * j], b[2 * j + 1]),
			_mm512_unpackhi_epi64(b[2 * j], b[2 * j + 1]));
	/* Add blocks pairwise, then again: block j = all of e[j]. */
#pragma GCC unroll 2
	for (int j = 0; j < 2; j++)
		g[j] = _mm512_add_epi32(
			_mm512_shuffle_i32x4(e[2 * j], e[2 * j + 1], 0x88),
			_mm512_shuffle_i32x4(e[2 * j], e[2 * j + 1], 0xdd));
	return _mm512_add_epi32(_mm512_shuffle_i32x4(g[0], g[1], 0x88),
				_mm512_shuffle_i32x4(g[0], g[1], 0xdd));
}

/* One 64-byte step of k for an R x C tile; m masks the tail (full: all
 * ones, plain loads). */
VNNI_FN void vnni_step(__m512i acc[16], const int8_t *const xp[4],
		       const int8_t *const wp[16], size_t c0, __mmask64 m,
		       const int full, const int R, const int C,
		       const int offset)
{
	__m512i xv[4];
	__mmask64 neg[4];

#pragma GCC unroll 4
	for (int r = 0; r < R; r++) {
		__m512i x = full ? _mm512_loadu_si512(xp[r] + c0) :
				   _mm512_maskz_loadu_epi8(m, xp[r] + c0);

		if (offset) {
			xv[r] = _mm512_xor_si512(x, _mm512_set1_epi8(-128));
		} else {
			xv[r] = _mm512_abs_epi8(x);
			neg[r] = _mm512_movepi8_mask(x);
		}
	}
#pragma GCC unroll 16
	for (int c = 0; c < C; c++) {
		__m512i w = full ? _mm512_loadu_si512(wp[c] + c0) :
				   _mm512_maskz_loadu_epi8(m, wp[c] + c0);

#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			__m512i ws = offset ? w :
				_mm512_mask_sub_epi8(w, neg[r],
						     _mm512_setzero_si512(), w);

			acc[r * C + c] = _mm512_dpbusd_epi32(acc[r * C + c],
							     xv[r], ws);
		}
	}
}

/* 128·Σ_c p[c] for the C rows (of W, or of X) at wp, in lanes 0..C-1. */
VNNI_FN __m512i vnni_wsums(const int8_t *const wp[16], size_t k,
			   const int C)
{
	const __m512i u128 = _mm512_set1_epi8(-128); /* 0x80 = 128 unsigned */
	__m512i s[16];
	size_t c0 = 0;

	for (int c = 0; c < 16; c++)
		s[c] = _mm512_setzero_si512();
	for (; c0 < k; c0 += 64) {
		__mmask64 m = k - c0 >= 64 ? ~(__mmask64)0 :
			      ((__mmask64)1 << (k - c0)) - 1;

#pragma GCC unroll 16
		for (int c = 0; c < C; c++)
			s[c] = _mm512_dpbusd_epi32(
				s[c], u128, _mm512_maskz_loadu_epi8(m, wp[c] + c0));
	}
	return vnni_reduce16(s);
}

/* Rows [r_begin, r_end) of out, tiles of R rows x C columns; R divides
 * the row count, R*C <= 16. */
VNNI_FN void vnni_rows(const int8_t *X, size_t r_begin, size_t r_end,
		       size_t k, const int8_t *W, size_t n, int32_t *out,
		       const int R, const int C, const int offset)
{
	size_t rb = row_block(k);
	/* Lane i of the correction is column i % C. */
	const __m512i colidx = _mm512_set_epi32(
		15 % C, 14 % C, 13 % C, 12 % C, 11 % C, 10 % C, 9 % C, 8 % C,
		7 % C, 6 % C, 5 % C, 4 % C, 3 % C, 2 % C, 1 % C, 0);
	__mmask64 tail = ((__mmask64)1 << (k % 64)) - 1;

	for (size_t b0 = r_begin; b0 < r_end; b0 += rb) {
		size_t b1 = r_end - b0 < rb ? r_end : b0 + rb;

		for (size_t o0 = 0; o0 < n; o0 += (size_t)C) {
			size_t nc = n - o0 < (size_t)C ? n - o0 : (size_t)C;
			const int8_t *wp[16];
			__m512i corr = _mm512_setzero_si512();

			/* Columns past n repeat the last one; not stored. */
			for (int c = 0; c < C; c++)
				wp[c] = W + (o0 + ((size_t)c < nc ? (size_t)c
								  : nc - 1)) * k;
			if (offset)
				corr = _mm512_permutexvar_epi32(
					colidx, vnni_wsums(wp, k, C));
			for (size_t r0 = b0; r0 < b1; r0 += (size_t)R) {
				const int8_t *xp[4];
				__m512i acc[16];
				int32_t t[16];
				size_t c0 = 0;

				for (int r = 0; r < R; r++)
					xp[r] = X + (r0 + (size_t)r) * k;
				for (int i = 0; i < 16; i++)
					acc[i] = _mm512_setzero_si512();
				for (; c0 + 64 <= k; c0 += 64)
					vnni_step(acc, xp, wp, c0, 0, 1, R, C,
						  offset);
				if (c0 < k)
					vnni_step(acc, xp, wp, c0, tail, 0, R,
						  C, offset);
				_mm512_storeu_si512(
					t, _mm512_sub_epi32(vnni_reduce16(acc),
							    corr));
				for (int r = 0; r < R; r++) {
					int32_t *dst = out + (r0 + (size_t)r) * n + o0;

					if (nc == (size_t)C)
						memcpy(dst, t + r * C,
						       (size_t)C * sizeof *t);
					else
						memcpy(dst, t + r * C,
						       nc * sizeof *t);
				}
			}
		}
	}
}

/* The packed path, for PK_MIN_ROWS rows or more: no sums across lanes.
 * 32 rows of W at a time are repacked so that one vector holds, for 16
 * output columns, 4 consecutive bytes of k each (the layout vpdpbusd
 * wants), as u = w XOR 0x80 = w + 128 in [1, 255]; 4 bytes of a row of
 * X are broadcast as the signed operand.  Then Σ u·x = Σ w·x + 128·Σ x:
 * we subtract 128·Σ_c X[r][c], once per row.  As above the int32 lanes
 * wrap modularly and the final difference is the exact sum.  The k % 4
 * tail broadcasts the last bytes of x zero-padded (never reading past
 * X), so the padding of W meets zeros.  Columns past n are computed from
 * padding and not stored.  The rows % 8 left over go to vnni_rows. */

#define PK_COLS 32 /* rows of W packed at a time: two vectors */
#define PK_ROWS 8  /* rows of X per tile: 16 accumulators */
#ifndef PK_MIN_ROWS
#define PK_MIN_ROWS 16 /* fewer rows: the unpacked kernel (measured) */
#endif

VNNI_FN int32_t load4(const int8_t *p, size_t len)
{
	int32_t v = 0;

	memcpy(&v, p, len < 4 ? len : 4);
	return v;
}

/* Pack rows o0 .. o0+31 (those < n) of W into P (k4 groups of 128 bytes). */
VNNI_FN void vnni_pack(const int8_t *W, size_t k, size_t n, size_t o0,
		       uint8_t *P)
{
	const __m512i flip = _mm512_set1_epi8(-128);
	const __m512i idx = _mm512_mullo_epi32(
		_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3,
				 2, 1, 0),
		_mm512_set1_epi32((int32_t)k));
	size_t kf = k / 4, k4 = (k + 3) / 4;

	for (size_t j = 0; j < PK_COLS / 16; j++) {
		size_t c0 = o0 + 16 * j, nc;

		if (c0 >= n) {
			for (size_t g = 0; g < k4; g++)
				memset(P + g * 128 + j * 64, 0, 64);
			continue;
		}
		nc = n - c0 < 16 ? n - c0 : 16;
		for (size_t g = 0; g < kf; g++) {
			__m512i v = _mm512_mask_i32gather_epi32(
				_mm512_setzero_si512(),
				(__mmask16)((1u << nc) - 1), idx,
				W + c0 * k + 4 * g, 1);

			_mm512_storeu_si512(P + g * 128 + j * 64,
					    _mm512_xor_si512(v, flip));
		}
		if (kf < k4) {
			int32_t t[16] = { 0 };

			for (size_t l = 0; l < nc; l++)
				t[l] = load4(W + (c0 + l) * k + 4 * kf, k % 4);
			_mm512_storeu_si512(
				P + kf * 128 + j * 64,
				_mm512_xor_si512(_mm512_loadu_si512(t), flip));
		}
	}
}

/* 4 bytes of k (len < 4 at the tail) for a tile of PK_ROWS rows of X
 * at x (row stride k) and 32 packed columns at p. */
VNNI_FN void vnni_pstep(__m512i acc[PK_ROWS][2], const uint8_t *p,
			const int8_t *x, size_t k, const size_t len)
{
	__m512i w0 = _mm512_loadu_si512(p), w1 = _mm512_loadu_si512(p + 64);

#pragma GCC unroll 8
	for (int r = 0; r < PK_ROWS; r++) {
		__m512i b = _mm512_set1_epi32(load4(x + r * k, len));

		acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], w0, b);
		acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], w1, b);
	}
}

/* Rows [0, rows) of out, rows a multiple of PK_ROWS. pre, when not
 * NULL, holds every panel of W packed already (vnni_pack_all), panel j
 * at pre + j·k4·128; else each panel is packed here. Returns 0 if out of
 * memory (nothing done). */
VNNI_FN int vnni_packed(const int8_t *X, size_t rows, size_t k,
			const int8_t *W, size_t n, int32_t *out,
			const uint8_t *pre)
{
	size_t kf = k / 4, k4 = (k + 3) / 4;
	uint8_t *P = pre ? NULL : malloc(k4 * 128);
	int32_t *xs = malloc(rows * sizeof *xs);

	if ((pre == NULL && P == NULL) || xs == NULL) {
		free(P);
		free(xs);
		return 0;
	}
	/* 128·Σ x per row, 16 rows at a time. */
	for (size_t r0 = 0; r0 < rows; r0 += 16) {
		const int8_t *xp[16];
		int32_t t[16];
		size_t nr = rows - r0 < 16 ? rows - r0 : 16;

		for (size_t i = 0; i < 16; i++)
			xp[i] = X + (r0 + (i < nr ? i : nr - 1)) * k;
		_mm512_storeu_si512(t, vnni_wsums(xp, k, 16));
		memcpy(xs + r0, t, nr * sizeof *t);
	}
	for (size_t o0 = 0; o0 < n; o0 += PK_COLS) {
		size_t nc = n - o0 < PK_COLS ? n - o0 : PK_COLS;
		__mmask16 m0 = nc >= 16 ? 0xffff : (__mmask16)((1u << nc) - 1);
		__mmask16 m1 = nc >= 32 ? 0xffff :
			       nc <= 16 ? 0 : (__mmask16)((1u << (nc - 16)) - 1);

		const uint8_t *pp = pre ? pre + o0 / PK_COLS * k4 * 128 : P;

		if (pre == NULL)
			vnni_pack(W, k, n, o0, P);
		for (size_t r0 = 0; r0 < rows; r0 += PK_ROWS) {
			const int8_t *x = X + r0 * k;
			__m512i acc[PK_ROWS][2];

#pragma GCC unroll 8
			for (int r = 0; r < PK_ROWS; r++)
				acc[r][0] = acc[r][1] = _mm512_setzero_si512();
			for (size_t g = 0; g < kf; g++)
				vnni_pstep(acc, pp + g * 128, x + 4 * g, k, 4);
			if (kf < k4)
				vnni_pstep(acc, pp + kf * 128, x + 4 * kf, k,
					   k % 4);
#pragma GCC unroll 8
			for (int r = 0; r < PK_ROWS; r++) {
				__m512i s = _mm512_set1_epi32(xs[r0 + r]);
				int32_t *dst = out + (r0 + r) * n + o0;

				_mm512_mask_storeu_epi32(
					dst, m0, _mm512_sub_epi32(acc[r][0], s));
				if (m1)
					_mm512_mask_storeu_epi32(
						dst + 16, m1,
						_mm512_sub_epi32(acc[r][1], s));
			}
		}
	}
	free(P);
	free(xs);
	return 1;
}

/* k bounded so the gather's int32 offsets 15·k cannot overflow. */
#define PK_K_MAX ((size_t)1 << 20)

VNNI_FN void gemm_vnni(const int8_t *X, size_t rows, size_t k,
		       const int8_t *W, const uint8_t *pre, size_t n,
		       int32_t *out)
{
	size_t r = rows & ~(size_t)3;

	if (k == 0 || n == 0)
		return;
	if (rows >= PK_MIN_ROWS && k <= PK_K_MAX) {
		size_t p = rows - rows % PK_ROWS;

		if (vnni_packed(X, p, k, W, n, out, pre)) {
			X += p * k;
			out += p * n;
			rows -= p;
			r = rows & ~(size_t)3;
		}
	}
	if (r > 0)
		vnni_rows(X, 0, r, k, W, n, out, 4, 4, 1);
	if (rows - r >= 2) {
		vnni_rows(X, r, r + 2, k, W, n, out, 2, 8, 0);
		r += 2;
	}
	if (rows - r == 1)
		vnni_rows(X, r, r + 1, k, W, n, out, 1, 16, 0);
}

__attribute__((target(VNNI_TARGET)))
static void gemm_s8_avx512vnni(const int8_t *X, size_t rows, size_t k,
			       const int8_t *W, size_t n, int32_t *out)
{
	gemm_vnni(X, rows, k, W, NULL, n, out);
}

/* Every panel of W packed once, for weights that many calls multiply
 * (decoding packed them again at every step: half its product time). */
__attribute__((target(VNNI_TARGET)))
static void *pack_w_avx512vnni(const int8_t *W, size_t k, size_t n)
{
	size_t k4 = (k + 3) / 4, panels = (n + PK_COLS - 1) / PK_COLS;
	uint8_t *P;

	if (k == 0 || n == 0 || k > PK_K_MAX)
		return NULL;
	P = malloc(panels * k4 * 128);
	for (size_t j = 0; P != NULL && j < panels; j++)
		vnni_pack(W, k, n, j * PK_COLS, P + j * k4 * 128);
	return P;
}

__attribute__((target(VNNI_TARGET)))
static void gemm_packed_avx512vnni(const int8_t *X, size_t rows, size_t k,
				   const int8_t *W, const void *P, size_t n,
				   int32_t *out)
{
	gemm_vnni(X, rows, k, W, P, n, out);
}

/* scores16 on the blocked keys (kernels.h): element i of a block's vector
 * g already holds key i's bytes 4g..4g+3, unsigned, so a query row takes
 * four products with its own 4-byte groups broadcast and the sums come
 * out in key order, with no transposes or permutes at all. The unsigned
 * side is k + 128, so each row's sums start at -128·Σ q. Four rows at a
 * time keep their broadcast groups in registers while the keys stream
 * past: a block of 16 keys costs 4 loads and 16 products for 64 scores. */
__attribute__((target(VNNI_TARGET)))
static void scores16_avx512vnni(const int8_t *q, size_t rows,
				const int8_t *K, size_t n, int32_t *out)
{
	for (size_t r0 = 0; r0 < rows; r0 += 4) {
		size_t nr = rows - r0 < 4 ? rows - r0 : 4;
		__m512i xq[4][4], xs[4];

#pragma GCC unroll 4
		for (size_t r = 0; r < 4; r++) {
			/* Rows past the last repeat it; their sums are not
			 * stored. */
			const int8_t *x = q + (r0 + (r < nr ? r : 0)) * 16;
			int32_t sq = 0;

			for (int c = 0; c < 16; c++)
				sq += x[c];
			xs[r] = _mm512_set1_epi32(-128 * sq);
#pragma GCC unroll 4
			for (int g = 0; g < 4; g++)
				xq[r][g] = _mm512_set1_epi32(load4(x + 4 * g, 4));
		}
		for (size_t j0 = 0; j0 < n; j0 += 16) {
			const int8_t *b = K + j0 * 16;
			__mmask16 mk = n - j0 < 16 ? (__mmask16)((1u << (n - j0)) - 1)
						   : (__mmask16)0xffff;
			__m512i u[4];

#pragma GCC unroll 4
			for (int g = 0; g < 4; g++)
				u[g] = _mm512_loadu_si512(b + 64 * g);
#pragma GCC unroll 4
			for (size_t r = 0; r < 4; r++) {
				__m512i acc = xs[r];

#pragma GCC unroll 4
				for (int g = 0; g < 4; g++)
					acc = _mm512_dpbusd_epi32(acc, u[g],
								  xq[r][g]);
				if (r < nr)
					_mm512_mask_storeu_epi32(
						out + (r0 + r) * n + j0, mk, acc);
			}
		}
	}
}

/* wsum16 on the blocked values: lane c of a block's vector holds the 4
 * positions' values of channel c, so 8 rows keep their 16 sums each in
 * the lanes of two accumulators (e = 256·eh + el, both bytes unsigned,
 * each row's bytes split out once), with no transposes or lane
 * reductions: two passes (high bytes, then low), where a block costs
 * one load and, per row, a product with the row's 4 weight bytes
 * broadcast; 8 accumulators a pass, not 16, stay in registers. A
 * padding position has weight 0, so blocks are read whole. */
__attribute__((target(VNNI_TARGET)))
static void wsum16_avx512vnni(const uint16_t *e, size_t estride,
			      size_t nrows, const int8_t *V, size_t n,
			      int32_t *part)
{
	uint8_t eb[2][8][256 + 32] __attribute__((aligned(64)));
	size_t nb = (n + 3) / 4;

	for (size_t i0 = 0; i0 < nrows; i0 += 8) {
		size_t nr = nrows - i0 < 8 ? nrows - i0 : 8;
		__m512i A[8], B[8];

		for (size_t r = 0; r < 8; r++) {
			const uint16_t *er;

			/* Rows past nrows weigh 0: every row's bytes sit at a
			 * fixed offset from eb, so the product loop needs one
			 * address register, not 16 (which spilled). */
			if (r >= nr) {
				memset(eb[0][r], 0, 4 * nb);
				memset(eb[1][r], 0, 4 * nb);
				continue;
			}
			er = e + (i0 + r) * estride;
			for (size_t j0 = 0; j0 < 4 * nb; j0 += 32) {
				__m512i x = _mm512_maskz_loadu_epi16(
					n - j0 >= 32 ? ~(__mmask32)0
						     : (__mmask32)((1u << (n - j0)) - 1),
					er + j0);

				_mm256_store_si256((__m256i *)(eb[0][r] + j0),
						   _mm512_cvtepi16_epi8(x));
				_mm256_store_si256(
					(__m256i *)(eb[1][r] + j0),
					_mm512_cvtepi16_epi8(
						_mm512_srli_epi16(x, 8)));
			}
		}
#pragma GCC unroll 8
		for (int r = 0; r < 8; r++)
			A[r] = B[r] = _mm512_setzero_si512();
		for (size_t b = 0; b < nb; b++) {
			__m512i v = _mm512_loadu_si512(V + 64 * b);

#pragma GCC unroll 8
			for (int r = 0; r < 8; r++)
				A[r] = _mm512_dpbusd_epi32(
					A[r],
					_mm512_set1_epi32(load4(
						(const int8_t *)eb[1][r] + 4 * b, 4)),
					v);
		}
		for (size_t b = 0; b < nb; b++) {
			__m512i v = _mm512_loadu_si512(V + 64 * b);

#pragma GCC unroll 8
			for (int r = 0; r < 8; r++)
				B[r] = _mm512_dpbusd_epi32(
					B[r],
					_mm512_set1_epi32(load4(
						(const int8_t *)eb[0][r] + 4 * b, 4)),
					v);
		}
		for (size_t r = 0; r < nr; r++) {
			int32_t *p = part + (i0 + r) * 16;
			__m512i t = _mm512_add_epi32(_mm512_slli_epi32(A[r], 8),
						     B[r]);

			_mm512_storeu_si512(
				p, _mm512_add_epi32(_mm512_loadu_si512(p), t));
		}
	}
}

/* The weights of `steps` steps from their biased int32 pair sums. */
VNNI_FN uint64_t weights_sum(__m512i zsum, size_t steps)
{
	__m512i z64 = _mm512_add_epi64(
		_mm512_cvtepi32_epi64(_mm512_castsi512_si256(zsum)),
		_mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(zsum, 1)));

	return (uint64_t)(_mm512_reduce_add_epi64(z64) +
			  (int64_t)steps * 32 * 32768);
}

/* t[x] for 32 word indices x < 256 of a 256-entry word table held in
 * t[0..7]: four two-register word permutes (64 entries each), chosen by
 * each index's top two bits; no gathers. */
VNNI_FN __m512i lookup_quarters(const __m512i t[8], __m512i x, int quarters)
{
	__m512i q = _mm512_srli_epi16(x, 6);
	__m512i w = _mm512_permutex2var_epi16(t[0], x, t[1]);

	for (int i = 1; i < quarters; i++)
		w = _mm512_mask_mov_epi16(
			w, _mm512_cmpeq_epi16_mask(q, _mm512_set1_epi16((short)i)),
			_mm512_permutex2var_epi16(t[2 * i], x, t[2 * i + 1]));
	return w;
}

VNNI_FN __m512i lookup256(const __m512i t[8], __m512i x)
{
	return lookup_quarters(t, x, 4);
}

/* SwiGLU's product, 32 values a step: silu(a) by lookup256, times u as
 * int32 (16 lanes at a time). */
__attribute__((target(VNNI_TARGET)))
static void silu_mul_avx512(const int8_t *a, const int8_t *u, size_t n,
			    const int16_t *silu, int32_t *acc)
{
	__m512i t[8];

	for (int i = 0; i < 8; i++)
		t[i] = _mm512_loadu_si512(silu + 32 * i);
	for (size_t j = 0; j < n; j += 32) {
		__mmask32 m = n - j >= 32 ? ~(__mmask32)0
					  : (__mmask32)((1u << (n - j)) - 1);
		__m512i x = _mm512_add_epi16(
			_mm512_cvtepi8_epi16(_mm512_castsi512_si256(
				_mm512_maskz_loadu_epi8(m, a + j))),
			_mm512_set1_epi16(128));
		__m512i w = lookup256(t, x);
		__m512i v = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(
			_mm512_maskz_loadu_epi8(m, u + j)));

		for (int h = 0; h < 2; h++) {
			__m512i p = _mm512_mullo_epi32(
				_mm512_cvtepi16_epi32(h ? _mm512_extracti64x4_epi64(w, 1)
							: _mm512_castsi512_si256(w)),
				_mm512_cvtepi16_epi32(h ? _mm512_extracti64x4_epi64(v, 1)
							: _mm512_castsi512_si256(v)));

			_mm512_mask_storeu_epi32(acc + j + 16 * h,
						 (__mmask16)(m >> (16 * h)), p);
		}
	}
}

/* d = mx - s of 32 positions as two vectors of 16; m masks the last,
 * partial step (lanes past n read nothing). */
VNNI_FN void att_d(const int32_t *s, __mmask32 m, __m512i vmx, __m512i d[2])
{
	for (int h = 0; h < 2; h++) {
		__mmask16 mh = (__mmask16)(m >> (16 * h));

		d[h] = _mm512_sub_epi32(
			vmx, mh == 0xffff ? _mm512_loadu_si512(s + 16 * h)
					  : _mm512_maskz_loadu_epi32(mh, s + 16 * h));
	}
}

/* The table indices of 32 positions as the scalar form computes them:
 * 64-bit products on even and odd lanes, rounding shift, clamped (at
 * 255, or lower where the table is 0 from the clamp on); as 32 words.
 * Both factors are non-negative: the signed products and shifts are the
 * unsigned ones. */
VNNI_FN __m512i att_index64(const int32_t *s, __mmask32 m, __m512i vmx,
			    __m512i vmul, __m512i round, __m128i cnt,
			    int64_t clamp)
{
	const __m512i top = _mm512_set1_epi64(clamp);
	__m512i idx[2], d[2];

	att_d(s, m, vmx, d);
	for (int h = 0; h < 2; h++) {
		__m512i ev, od;

		mul_rshift16(d[h], vmul, round, cnt, &ev, &od);
		idx[h] = merge16(_mm512_min_epi64(ev, top),
				 _mm512_min_epi64(od, top));
	}
	return _mm512_inserti64x4(
		_mm512_castsi256_si512(_mm512_cvtepi32_epi16(idx[0])),
		_mm512_cvtepi32_epi16(idx[1]), 1);
}

/* The same indices on 32 word lanes, where att_weights_avx512 finds the
 * shift at least 33 and the index of 65535 at least 255 (every shipped
 * model's layers; with mul < 2^31 the shift is then at most 39). Then
 * the index of d = mx - s is that of min(d, 65535) (indices grow with
 * d), one word: the signed-to-unsigned saturating pack gives it, and a
 * quadword permute restores the order the pack interleaves. With
 * mul = m1·2^16 + m0 (m1 < 2^15), d·mul = 2^32·qh +
 * 2^16·(ql + ph) + pl, where qh, ql are the high and low words of d·m1
 * and ph, pl those of d·m0. The rounding term 2^(shift-1) is 2^32 ·
 * 2^(shift-33), and the words below 2^32 only carry into it, so the
 * index is (qh + carry(ql + ph) + 2^(shift-33)) >> (shift - 32): below
 * 2^15 + 1 + 2^6 before the shift, within a word. */
VNNI_FN __m512i att_index16(const int32_t *s, __mmask32 m, __m512i vmx,
			    __m512i m0, __m512i m1, __m512i bias, __m128i cnt,
			    int64_t clamp)
{
	const __m512i order = _mm512_set_epi64(7, 5, 3, 1, 6, 4, 2, 0);
	__m512i x[2];

	att_d(s, m, vmx, x);
	__m512i d = _mm512_permutexvar_epi64(order,
					     _mm512_packus_epi32(x[0], x[1]));
	__m512i ql = _mm512_mullo_epi16(d, m1);
	__m512i qh = _mm512_add_epi16(_mm512_mulhi_epu16(d, m1), bias);
	__m512i lo = _mm512_add_epi16(ql, _mm512_mulhi_epu16(d, m0));

	qh = _mm512_mask_add_epi16(qh, _mm512_cmplt_epu16_mask(lo, ql), qh,
				   _mm512_set1_epi16(1));
	return _mm512_min_epu16(_mm512_srl_epi16(qh, cnt),
				_mm512_set1_epi16((short)clamp));
}

/* One step of 32 positions from their indices: their weights stored,
 * their biased pair sums returned. Lanes masked off by m (past n) weigh
 * 0, which the bias correction counts as it should; full steps pass all
 * ones, which folds away. */
VNNI_FN __m512i att_step(__m512i idx, uint16_t *e, __mmask32 m,
			 const __m512i t[8], int quarters)
{
	__m512i w = lookup_quarters(t, idx, quarters);

	if (m == ~(__mmask32)0) {
		_mm512_storeu_si512(e, w);
	} else {
		w = _mm512_maskz_mov_epi16(m, w);
		_mm512_mask_storeu_epi16(e, m, w);
	}
	/* Pairs of (w - 32768) as int32; the bias is added back. */
	return _mm512_madd_epi16(_mm512_xor_si512(w, _mm512_set1_epi16(-32768)),
				 _mm512_set1_epi16(1));
}

/* The loop of att_weights_avx512, for either form of the index and a
 * table read in 4 or 3 quarters (clamp 255 or 191). The sum runs on int32
 * lanes, each step adding a pair biased by -2 · 32768, within [-2^16,
 * 2^16), emptied into 64 bits every 2^15 steps: as many as a lane holds
 * without overflow. */
VNNI_FN uint64_t att_weights_loop(int words, int quarters, const int32_t *s,
				  size_t n, int32_t mx, int32_t mul,
				  int32_t shift, const uint16_t *table,
				  uint16_t *e)
{
	const int64_t clamp = quarters == 4 ? 255 : 64 * quarters - 1;
	const __m512i vmx = _mm512_set1_epi32(mx);
	const __m512i vmul = _mm512_set1_epi32(mul);
	const __m512i round = _mm512_set1_epi64(
		shift ? (int64_t)1 << (shift - 1) : 0);
	const __m512i m0 = _mm512_set1_epi16((short)(mul & 0xffff));
	const __m512i m1 = _mm512_set1_epi16((short)(mul >> 16));
	const __m512i bias = _mm512_set1_epi16(
		words ? (short)(1 << (shift - 33)) : 0);
	const __m128i cnt = _mm_cvtsi32_si128(words ? shift - 32 : shift);
	__m512i t[8], zsum = _mm512_setzero_si512();
	uint64_t z = 0;
	size_t j = 0, steps = 0;

	for (int i = 0; i < 8; i++)
		t[i] = _mm512_loadu_si512(table + 32 * i);
	for (; j < n; j += 32) {
		__mmask32 m = n - j >= 32 ? ~(__mmask32)0
					  : (__mmask32)((1u << (n - j)) - 1);
		__m512i idx = words ? att_index16(s + j, m, vmx, m0, m1, bias,
						  cnt, clamp)
				    : att_index64(s + j, m, vmx, vmul, round,
						  cnt, clamp);

		zsum = _mm512_add_epi32(zsum,
					att_step(idx, e + j, m, t, quarters));
		if (++steps == (1u << 15)) {
			z += weights_sum(zsum, steps);
			zsum = _mm512_setzero_si512();
			steps = 0;
		}
	}
	return z + weights_sum(zsum, steps);
}

/* Attention weights, 32 positions a step, the table lookup without
 * gathers: its 256 entries sit in eight registers, and four two-register
 * word permutes (64 entries each) plus a choice by the index's top two
 * bits read 32 entries at once; three where the table is 0 from entry 191
 * on (every shipped model's is from 189), the indices then clamped at
 * 191. The index on word lanes where att_index16 applies (twice as many
 * lanes a step, no 64-bit products), else as rq8 computes it. */
__attribute__((target(VNNI_TARGET)))
static uint64_t att_weights_avx512(const int32_t *s, size_t n, int32_t mx,
				   int32_t mul, int32_t shift,
				   const uint16_t *table, uint16_t *e)
{
	__m512i tail = _mm512_or_si512(_mm512_loadu_si512(table + 192),
				       _mm512_loadu_si512(table + 224));
	int three = table[191] == 0 && _mm512_test_epi16_mask(tail, tail) == 0;
	int words = shift >= 33 && mul >= 0 &&
		    (uint64_t)65535 * (uint64_t)mul +
				    ((uint64_t)1 << (shift - 1)) >=
			    (uint64_t)255 << shift;

	if (words)
		return three ? att_weights_loop(1, 3, s, n, mx, mul, shift,
						table, e)
			     : att_weights_loop(1, 4, s, n, mx, mul, shift,
						table, e);
	return three ? att_weights_loop(0, 3, s, n, mx, mul, shift, table, e)
		     : att_weights_loop(0, 4, s, n, mx, mul, shift, table, e);
}

/* btz_freq_row: the maximum, the indices (as in rq8: 64-bit products of
 * even and odd lanes), the table read by gathers, the sum on int32
 * lanes (256 entries of at most 2^22) and the first largest, 16 at a
 * time; then the quotients by btz_freq_quotients. */
__attribute__((target(VNNI_TARGET)))
static void freq_row_avx512(const int32_t *l, int32_t f_mul, int32_t f_shift,
			    const uint32_t *exp_out, uint32_t total,
			    uint32_t *freq)
{
	const __m512i vmul = _mm512_set1_epi32(f_mul);
	const __m512i round = _mm512_set1_epi64(
		f_shift ? (int64_t)1 << (f_shift - 1) : 0);
	const __m128i cnt = _mm_cvtsi32_si128(f_shift);
	const __m512i top = _mm512_set1_epi64(1023);
	uint32_t e[256] __attribute__((aligned(64)));
	__m512i vmx, vsum = _mm512_setzero_si512(),
		     vemax = _mm512_setzero_si512();
	int32_t mx = l[0];
	uint32_t emax;
	int best = 0;

	vmx = _mm512_loadu_si512(l);
	for (int b = 16; b < 256; b += 16)
		vmx = _mm512_max_epi32(vmx, _mm512_loadu_si512(l + b));
	mx = _mm512_reduce_max_epi32(vmx);
	vmx = _mm512_set1_epi32(mx);
	for (int b = 0; b < 256; b += 16) {
		__m512i ev, od, idx, x;

		mul_rshift16(_mm512_sub_epi32(vmx, _mm512_loadu_si512(l + b)),
			     vmul, round, cnt, &ev, &od);
		idx = merge16(_mm512_min_epi64(ev, top), _mm512_min_epi64(od, top));
		x = _mm512_i32gather_epi32(idx, (const void *)exp_out, 4);
		_mm512_store_si512(e + b, x);
		vsum = _mm512_add_epi32(vsum, x);
		vemax = _mm512_max_epu32(vemax, x);
	}
	emax = (uint32_t)_mm512_reduce_max_epu32(vemax);
	for (int b = 0; b < 256; b += 16) {
		__mmask16 hit = _mm512_cmpeq_epi32_mask(
			_mm512_load_si512(e + b), _mm512_set1_epi32((int)emax));

		if (hit) {
			best = b + __builtin_ctz(hit);
			break;
		}
	}
	btz_freq_quotients(e, (uint32_t)_mm512_reduce_add_epi32(vsum), best,
			   total, freq);
}

/* The tail by a masked load that reads nothing past n and fills the
 * lanes it skips with the identity of max. */
__attribute__((target(VNNI_TARGET)))
static int32_t max_s32_avx512(const int32_t *s, size_t n)
{
	__m512i m0 = _mm512_set1_epi32(INT32_MIN), m1 = m0;
	size_t j = 0;

	for (; j + 32 <= n; j += 32) {
		m0 = _mm512_max_epi32(m0, _mm512_loadu_si512(s + j));
		m1 = _mm512_max_epi32(m1, _mm512_loadu_si512(s + j + 16));
	}
	for (; j < n; j += 16) {
		size_t k = n - j < 16 ? n - j : 16;

		m0 = _mm512_max_epi32(
			m0, _mm512_mask_loadu_epi32(
				    _mm512_set1_epi32(INT32_MIN),
				    (__mmask16)((1u << k) - 1), s + j));
	}
	return _mm512_reduce_max_epi32(_mm512_max_epi32(m0, m1));
}

/* Requantization, 16 values a step: the products on 64-bit lanes (even
 * and odd lanes apart), the rounding shift and the clamp there, then the
 * two halves merged back in order and narrowed (exact: within +-127). */
__attribute__((target(VNNI_TARGET)))
static void rq8_avx512(const int32_t *acc, size_t n, const int32_t *mul,
		       int32_t shift, int8_t *out)
{
	const __m512i round = _mm512_set1_epi64(
		shift ? (int64_t)1 << (shift - 1) : 0);
	const __m128i cnt = _mm_cvtsi32_si128(shift);
	const __m512i hi = _mm512_set1_epi64(127), lo = _mm512_set1_epi64(-127);
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m512i ev, od;

		mul_rshift16(_mm512_loadu_si512(acc + i),
			     _mm512_loadu_si512(mul + i), round, cnt, &ev, &od);
		ev = _mm512_max_epi64(_mm512_min_epi64(ev, hi), lo);
		od = _mm512_max_epi64(_mm512_min_epi64(od, hi), lo);
		_mm_storeu_si128((__m128i *)(out + i),
				 _mm512_cvtepi32_epi8(merge16(ev, od)));
	}
	btz_rq8_scalar(acc + i, n - i, mul + i, shift, out + i);
}

/* The residual the same way, plus x·rx (|x·rx| <= 127·2^16), clamped at
 * +-2^24 on the 64-bit lanes. */
__attribute__((target(VNNI_TARGET)))
static void residual_avx512(const int8_t *x, const int32_t *acc, size_t n,
			    int32_t rx, const int32_t *mul, int32_t shift,
			    int32_t *r)
{
	const __m512i round = _mm512_set1_epi64(
		shift ? (int64_t)1 << (shift - 1) : 0);
	const __m128i cnt = _mm_cvtsi32_si128(shift);
	const __m512i vrx = _mm512_set1_epi64(rx);
	const __m512i hi = _mm512_set1_epi64(1 << 24);
	const __m512i lo = _mm512_set1_epi64(-(1 << 24));
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m512i xv = _mm512_cvtepi8_epi32(
			_mm_loadu_si128((const __m128i *)(x + i)));
		__m512i ev, od;

		mul_rshift16(_mm512_loadu_si512(acc + i),
			     _mm512_loadu_si512(mul + i), round, cnt, &ev, &od);
		ev = _mm512_add_epi64(ev, _mm512_mul_epi32(xv, vrx));
		od = _mm512_add_epi64(
			od, _mm512_mul_epi32(_mm512_srli_epi64(xv, 32), vrx));
		ev = _mm512_max_epi64(_mm512_min_epi64(ev, hi), lo);
		od = _mm512_max_epi64(_mm512_min_epi64(od, hi), lo);
		_mm512_storeu_si512(r + i, merge16(ev, od));
	}
	btz_residual_scalar(x + i, acc + i, n - i, rx, mul + i, shift, r + i);
}

#define IFMA_TARGET VNNI_TARGET ",avx512dq,avx512ifma"
#define IFMA_FN                                                              \
	static inline __attribute__((always_inline, target(IFMA_TARGET)))

/* floor(N / B) of 8 lanes, on the 52-bit integer multiplies of AVX-512
 * IFMA, for B >= 1, R = floor(2^52 / B) and M < 2^52 below: the high
 * half of M·R is floor(M / B) or one less, and the low half of q·B
 * gives the remainder that decides. A negative N is divided as
 * -ceil(|N| / B), M = |N| + B - 1. */
IFMA_FN __m512i floordiv_ifma(__m512i N, __m512i vB, __m512i vR)
{
	const __m512i zero = _mm512_setzero_si512();
	__mmask8 neg = _mm512_cmplt_epi64_mask(N, zero);
	__m512i M = _mm512_abs_epi64(N);

	M = _mm512_mask_add_epi64(
		M, neg, M, _mm512_sub_epi64(vB, _mm512_set1_epi64(1)));
	__m512i q = _mm512_madd52hi_epu64(zero, M, vR);
	__m512i rem = _mm512_sub_epi64(M, _mm512_madd52lo_epu64(zero, q, vB));

	q = _mm512_mask_add_epi64(q, _mm512_cmpge_epu64_mask(rem, vB), q,
				  _mm512_set1_epi64(1));
	return _mm512_mask_sub_epi64(q, neg, zero, q);
}

/* Layer norm, 8 values a step on 64-bit lanes, for rows of a multiple
 * of 16 (every model's width; others go to the scalar form). The sums
 * and the square root are the scalar form's; each value's rounded
 * division by sd, floor(N / B) with N = 8192 (r - mu) + sd and B = 2 sd,
 * by floordiv_ifma: with residuals within +-2^24, |r - mu| <= 2^25 and
 * M < 2^39, far inside 52 bits, and so is q·B <= M + B. */

__attribute__((target(IFMA_TARGET)))
static void layer_norm_avx512ifma(const int32_t *r, size_t d,
				  const int32_t *g, const int32_t *b,
				  int32_t shift, int8_t *out)
{
	if (d == 0 || d % 16 != 0) {
		btz_layer_norm(r, d, g, b, shift, out);
		return;
	}
	__m512i s64 = _mm512_setzero_si512(), q64 = _mm512_setzero_si512();

	for (size_t c = 0; c < d; c += 16) {
		__m512i v = _mm512_loadu_si512(r + c);

		s64 = _mm512_add_epi64(
			s64, _mm512_add_epi64(
				     _mm512_cvtepi32_epi64(
					     _mm512_castsi512_si256(v)),
				     _mm512_cvtepi32_epi64(
					     _mm512_extracti64x4_epi64(v, 1))));
	}
	int64_t mu = btz_divr(_mm512_reduce_add_epi64(s64), (int64_t)d);
	const __m512i vmu = _mm512_set1_epi64(mu);

	for (size_t c = 0; c < d; c += 8) {
		__m512i t = _mm512_sub_epi64(
			_mm512_cvtepi32_epi64(
				_mm256_loadu_si256((const __m256i *)(r + c))),
			vmu);

		/* |t| < 2^26: the low 32 bits hold it, squares are exact. */
		q64 = _mm512_add_epi64(q64, _mm512_mul_epi32(t, t));
	}
	uint64_t sq = (uint64_t)_mm512_reduce_add_epi64(q64);
	int64_t sd = (int64_t)btz_isqrt64(sq / d);

	if (sd < 1)
		sd = 1;
	const uint64_t B = 2 * (uint64_t)sd;
	const __m512i vB = _mm512_set1_epi64((int64_t)B);
	const __m512i vR = _mm512_set1_epi64((int64_t)(((uint64_t)1 << 52) / B));
	const __m512i vsd = _mm512_set1_epi64(sd);
	const __m512i nlo = _mm512_set1_epi64(-(1 << 20));
	const __m512i nhi = _mm512_set1_epi64(1 << 20);
	const __m512i round = _mm512_set1_epi64(
		shift ? (int64_t)1 << (shift - 1) : 0);
	const __m128i cnt = _mm_cvtsi32_si128(shift);
	const __m512i lo = _mm512_set1_epi64(-127), hi = _mm512_set1_epi64(127);

	for (size_t c = 0; c < d; c += 8) {
		__m512i t = _mm512_sub_epi64(
			_mm512_cvtepi32_epi64(
				_mm256_loadu_si256((const __m256i *)(r + c))),
			vmu);
		__m512i q = floordiv_ifma(
			_mm512_add_epi64(_mm512_slli_epi64(t, 13), vsd), vB, vR);

		q = _mm512_max_epi64(_mm512_min_epi64(q, nhi), nlo);
		__m512i y = _mm512_add_epi64(
			_mm512_mul_epi32(q, _mm512_cvtepi32_epi64(_mm256_loadu_si256(
						    (const __m256i *)(g + c)))),
			_mm512_cvtepi32_epi64(
				_mm256_loadu_si256((const __m256i *)(b + c))));

		y = _mm512_sra_epi64(_mm512_add_epi64(y, round), cnt);
		y = _mm512_max_epi64(_mm512_min_epi64(y, hi), lo);
		_mm_storel_epi64((__m128i *)(out + c), _mm512_cvtepi64_epi8(y));
	}
}

/* Attention outputs, a row's 8 at a time where dh is a multiple of 8:
 * btz_att_out is floor(N / B) with N = 2 num·2^ao_shift + z and B = 2 z,
 * by floordiv_ifma where each |num| < 2^(47 - ao_shift) and z < 2^50
 * (then M < 2^48 + 3·2^50 < 2^52; a weighted sum of at most 2^12
 * positions is below 2^35, their weights' sum below 2^28), else by the
 * scalar form. */
__attribute__((target(IFMA_TARGET)))
static void att_out_avx512ifma(const int64_t *num, const int64_t *z,
			       size_t nrows, size_t dh, int32_t ao_shift,
			       int8_t *o, size_t ostride)
{
	const __m512i lim = _mm512_set1_epi64((int64_t)1 << (47 - ao_shift));
	const __m512i lo = _mm512_set1_epi64(-127), hi = _mm512_set1_epi64(127);

	if (dh % 8 != 0) {
		btz_att_out_scalar(num, z, nrows, dh, ao_shift, o, ostride);
		return;
	}
	for (size_t i = 0; i < nrows; i++) {
		const int64_t *n = num + i * dh;
		int8_t *out = o + i * ostride;
		__mmask8 big = 0;

		for (size_t c = 0; c < dh; c += 8)
			big |= _mm512_cmpge_epi64_mask(
				_mm512_abs_epi64(_mm512_loadu_si512(n + c)), lim);
		if (big != 0 || z[i] >= ((int64_t)1 << 50)) {
			btz_att_out_scalar(n, z + i, 1, dh, ao_shift, out, 0);
			continue;
		}
		const uint64_t B = 2 * (uint64_t)z[i];
		const __m512i vB = _mm512_set1_epi64((int64_t)B);
		const __m512i vR =
			_mm512_set1_epi64((int64_t)(((uint64_t)1 << 52) / B));
		const __m512i vz = _mm512_set1_epi64(z[i]);

		for (size_t c = 0; c < dh; c += 8) {
			__m512i N = _mm512_add_epi64(
				_mm512_slli_epi64(_mm512_loadu_si512(n + c),
						  (unsigned)ao_shift + 1),
				vz);
			__m512i q = floordiv_ifma(N, vB, vR);

			q = _mm512_max_epi64(_mm512_min_epi64(q, hi), lo);
			_mm_storel_epi64((__m128i *)(out + c),
					 _mm512_cvtepi64_epi8(q));
		}
	}
}

/* Whether the VNNI table's IFMA forms run here (Ice Lake, Zen 4 and
 * later; Cascade Lake has VNNI without it). It reads what the compiler's
 * startup code found: a load or two, cheap enough per call, and
 * nothing that threads could race on. */
static int ifma_ok(void)
{
	return __builtin_cpu_supports("avx512ifma") &&
	       __builtin_cpu_supports("avx512dq");
}

static void att_out_avx512(const int64_t *num, const int64_t *z,
			   size_t nrows, size_t dh, int32_t ao_shift,
			   int8_t *o, size_t ostride)
{
	if (ifma_ok())
		att_out_avx512ifma(num, z, nrows, dh, ao_shift, o, ostride);
	else
		btz_att_out_scalar(num, z, nrows, dh, ao_shift, o, ostride);
}

/* The VNNI table's layer norm: IFMA where the CPU has it, else the
 * scalar form. */
static void layer_norm_avx512(const int32_t *r, size_t d, const int32_t *g,
			      const int32_t *b, int32_t shift, int8_t *out)
{
	if (ifma_ok())
		layer_norm_avx512ifma(r, d, g, b, shift, out);
	else
		btz_layer_norm(r, d, g, b, shift, out);
}

static int avx512vnni_ok(void)
{
	return __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512vnni");
}

static const struct btz_kernels kernels_avx512vnni = {
	.name = "avx512vnni",
	.gemm_s8 = gemm_s8_avx512vnni,
	.pack_w = pack_w_avx512vnni,
	.gemm_packed = gemm_packed_avx512vnni,
	.wsum = wsum_avx2,
	.scores16 = scores16_avx512vnni,
	.wsum16 = wsum16_avx512vnni,
	.silu_mul = silu_mul_avx512,
	.att_weights = att_weights_avx512,
	.max_s32 = max_s32_avx512,
	.layer_norm = layer_norm_avx512,
	.att_out = att_out_avx512,
	.residual = residual_avx512,
	.rq8 = rq8_avx512,
	.freq_row = freq_row_avx512,
};

const struct btz_kernels *const btz_kernels_x86[] = {
	&kernels_avx512vnni,
	&kernels_avx2,
	NULL,
};
int (*const btz_kernels_x86_ok[])(void) = {
	avx512vnni_ok,
	avx2_ok,
	NULL,
};

#else /* not x86, or a compiler without target attributes */

const struct btz_kernels *const btz_kernels_x86[] = { NULL };
int (*const btz_kernels_x86_ok[])(void) = { NULL };

#endif
