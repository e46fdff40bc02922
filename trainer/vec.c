/* The trainer's elementwise loops: the T² softmax exponentials of
 * attention dominate training once the products are BLAS, and glibc's
 * expf is scalar. */
#include "trainer/vec.h"

#include <math.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86 1
#define AVX512 __attribute__((target("avx512f")))

static int use512(void)
{
	static int v = -1;

	if (v < 0)
		v = __builtin_cpu_supports("avx512f") ? 1 : 0;
	return v;
}

/* e^x: x = n·ln2 + g with |g| ≤ ln2/2, e^g by its Taylor polynomial to
 * g⁶ (error below 4e-7), then scaled by 2^n. */
AVX512 static __m512 exp512(__m512 x)
{
	x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
	x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
	__m512 n = _mm512_roundscale_ps(
		_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
		_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 g = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
	g = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), g);
	__m512 p = _mm512_set1_ps(1.0f / 720);
	p = _mm512_fmadd_ps(p, g, _mm512_set1_ps(1.0f / 120));
	p = _mm512_fmadd_ps(p, g, _mm512_set1_ps(1.0f / 24));
	p = _mm512_fmadd_ps(p, g, _mm512_set1_ps(1.0f / 6));
	p = _mm512_fmadd_ps(p, g, _mm512_set1_ps(0.5f));
	p = _mm512_fmadd_ps(p, g, _mm512_set1_ps(1.0f));
	p = _mm512_fmadd_ps(p, g, _mm512_set1_ps(1.0f));
	return _mm512_scalef_ps(p, n);
}

AVX512 static float max512(const float *x, size_t n)
{
	__m512 m = _mm512_set1_ps(-INFINITY);
	size_t i = 0;

	for (; i + 16 <= n; i += 16)
		m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
	float r = _mm512_reduce_max_ps(m);
	for (; i < n; i++)
		r = x[i] > r ? x[i] : r;
	return r;
}

AVX512 static float exp_sum512(float *x, size_t n, float sub)
{
	__m512 s = _mm512_setzero_ps(), c = _mm512_set1_ps(sub);
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), c));
		_mm512_storeu_ps(x + i, e);
		s = _mm512_add_ps(s, e);
	}
	if (i < n) {
		__mmask16 k = (__mmask16)((1u << (n - i)) - 1);
		__m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), c));
		_mm512_mask_storeu_ps(x + i, k, e);
		s = _mm512_add_ps(s, _mm512_maskz_mov_ps(k, e));
	}
	return _mm512_reduce_add_ps(s);
}

AVX512 static void dsoftmax512(float *dp, const float *p, size_t n, float di,
			       float a)
{
	__m512 vd = _mm512_set1_ps(di), va = _mm512_set1_ps(a);
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m512 v = _mm512_sub_ps(_mm512_loadu_ps(dp + i), vd);
		v = _mm512_mul_ps(_mm512_mul_ps(v, _mm512_loadu_ps(p + i)), va);
		_mm512_storeu_ps(dp + i, v);
	}
	for (; i < n; i++)
		dp[i] = p[i] * (dp[i] - di) * a;
}

AVX512 static float max_abs512(const float *x, size_t n)
{
	__m512 m = _mm512_setzero_ps();
	size_t i = 0;

	for (; i + 16 <= n; i += 16)
		m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
	float r = _mm512_reduce_max_ps(m);
	for (; i < n; i++)
		r = fabsf(x[i]) > r ? fabsf(x[i]) : r;
	return r;
}

AVX512 static void round_grid512(float *x, size_t n, float inv, float s)
{
	__m512 vi = _mm512_set1_ps(inv), vs = _mm512_set1_ps(s);
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m512 q = _mm512_roundscale_ps(
			_mm512_mul_ps(_mm512_loadu_ps(x + i), vi),
			_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
		_mm512_storeu_ps(x + i, _mm512_mul_ps(q, vs));
	}
	for (; i < n; i++)
		x[i] = nearbyintf(x[i] * inv) * s;
}

AVX512 static void swiglu512(const float *a, const float *u, float *h,
			     float *da, float *du, const float *dh, size_t n)
{
	__m512 one = _mm512_set1_ps(1);
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m512 va = _mm512_loadu_ps(a + i), vu = _mm512_loadu_ps(u + i);
		__m512 s = _mm512_div_ps(
			one, _mm512_add_ps(one, exp512(_mm512_sub_ps(
							_mm512_setzero_ps(), va))));
		__m512 sa = _mm512_mul_ps(va, s);
		if (dh == NULL) {
			_mm512_storeu_ps(h + i, _mm512_mul_ps(sa, vu));
			continue;
		}
		__m512 g = _mm512_loadu_ps(dh + i);
		_mm512_storeu_ps(du + i, _mm512_mul_ps(g, sa));
		/* silu'(a) = s·(1 + a·(1 − s)) */
		__m512 ds = _mm512_mul_ps(
			s, _mm512_fmadd_ps(va, _mm512_sub_ps(one, s), one));
		_mm512_storeu_ps(da + i,
				 _mm512_mul_ps(_mm512_mul_ps(g, vu), ds));
	}
	for (; i < n; i++) {
		float s = 1 / (1 + expf(-a[i]));
		if (dh == NULL) {
			h[i] = a[i] * s * u[i];
		} else {
			du[i] = dh[i] * a[i] * s;
			da[i] = dh[i] * u[i] * s * (1 + a[i] * (1 - s));
		}
	}
}
#endif

float btz_vec_max(const float *x, size_t n)
{
#ifdef HAVE_X86
	if (use512())
		return max512(x, n);
#endif
	float r = -INFINITY;
	for (size_t i = 0; i < n; i++)
		r = x[i] > r ? x[i] : r;
	return r;
}

float btz_vec_max_abs(const float *x, size_t n)
{
#ifdef HAVE_X86
	if (use512())
		return max_abs512(x, n);
#endif
	float r = 0;
	for (size_t i = 0; i < n; i++)
		r = fabsf(x[i]) > r ? fabsf(x[i]) : r;
	return r;
}

void btz_vec_round_grid(float *x, size_t n, float max)
{
	if (!(max > 0))
		return;
	float s = max / 127, inv = 127 / max;
#ifdef HAVE_X86
	if (use512()) {
		round_grid512(x, n, inv, s);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		x[i] = nearbyintf(x[i] * inv) * s;
}

float btz_vec_exp_sum(float *x, size_t n, float sub)
{
#ifdef HAVE_X86
	if (use512())
		return exp_sum512(x, n, sub);
#endif
	float s = 0;
	for (size_t i = 0; i < n; i++) {
		x[i] = expf(x[i] - sub);
		s += x[i];
	}
	return s;
}

void btz_vec_scale(float *x, size_t n, float a)
{
	for (size_t i = 0; i < n; i++)
		x[i] *= a;
}

void btz_vec_dsoftmax(float *dp, const float *p, size_t n, float di, float a)
{
#ifdef HAVE_X86
	if (use512()) {
		dsoftmax512(dp, p, n, di, a);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		dp[i] = p[i] * (dp[i] - di) * a;
}

void btz_vec_swiglu(const float *a, const float *u, float *h, size_t n)
{
#ifdef HAVE_X86
	if (use512()) {
		swiglu512(a, u, h, NULL, NULL, NULL, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		h[i] = a[i] / (1 + expf(-a[i])) * u[i];
}

void btz_vec_swiglu_bwd(const float *a, const float *u, const float *dh,
			float *da, float *du, size_t n)
{
#ifdef HAVE_X86
	if (use512()) {
		swiglu512(a, u, NULL, da, du, dh, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++) {
		float s = 1 / (1 + expf(-a[i]));
		du[i] = dh[i] * a[i] * s;
		da[i] = dh[i] * u[i] * s * (1 + a[i] * (1 - s));
	}
}

/* ---- Attention products (vec.h). Four rows at a time share each load
 * of the other operand; every loop keeps its sums in registers. ---- */

#ifdef HAVE_X86
/* Heads of 16: a key's or a query's row is one register. R rows (or
 * keys) at a time, R a constant so that the sums stay in registers. */
#define R 8

static __mmask16 tail16(size_t left)
{
	return left >= 16 ? (__mmask16)0xffff
			  : (__mmask16)((1u << left) - 1);
}

/* C[i][j..j+32) for R rows i: each broadcast of A serves two registers
 * of BT's row (one broadcast per FMA would bound the loop at half the
 * FMA rate). */
AVX512 static void qk512(size_t n, size_t ke, float a, const float *A,
			 size_t lda, const float *BT, size_t ldbt, float *C,
			 size_t ldc)
{
	const __m512 va = _mm512_set1_ps(a);
	size_t i0 = 0;

	for (; i0 + R <= n; i0 += R)
		for (size_t j = 0; j < ke; j += 32) {
			__mmask16 m0 = tail16(ke - j),
				  m1 = ke - j > 16 ? tail16(ke - j - 16) : 0;
			__m512 acc[R][2];

#pragma GCC unroll 8
			for (int r = 0; r < R; r++)
				acc[r][0] = acc[r][1] = _mm512_setzero_ps();
#pragma GCC unroll 16
			for (int c = 0; c < 16; c++) {
				const float *b = BT + c * ldbt + j;
				__m512 b0 = _mm512_maskz_loadu_ps(m0, b),
				       b1 = _mm512_maskz_loadu_ps(m1, b + 16);

#pragma GCC unroll 8
				for (int r = 0; r < R; r++) {
					__m512 x = _mm512_set1_ps(
						A[(i0 + r) * lda + c]);

					acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
					acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
				}
			}
#pragma GCC unroll 8
			for (int r = 0; r < R; r++) {
				float *o = C + (i0 + r) * ldc + j;

				_mm512_mask_storeu_ps(o, m0,
						      _mm512_mul_ps(acc[r][0], va));
				_mm512_mask_storeu_ps(o + 16, m1,
						      _mm512_mul_ps(acc[r][1], va));
			}
		}
	for (; i0 < n; i0++)
		for (size_t j = 0; j < ke; j += 16) {
			__mmask16 m = tail16(ke - j);
			__m512 acc = _mm512_setzero_ps();

			for (int c = 0; c < 16; c++)
				acc = _mm512_fmadd_ps(
					_mm512_set1_ps(A[i0 * lda + c]),
					_mm512_maskz_loadu_ps(m, BT + c * ldbt + j),
					acc);
			_mm512_mask_storeu_ps(C + i0 * ldc + j, m,
					      _mm512_mul_ps(acc, va));
		}
}

/* Both other products are weighted sums of 16-float rows: C's row r
 * (+)= Σ_k w(r, k) · X's row k, w(r, k) = W[r·wr + k·wk] (P V: rows of
 * P weigh V's rows; Pᵀ D: columns of P weigh D's). R rows of C at a
 * time, each row of X loaded once for them. */
AVX512 static inline __attribute__((always_inline)) void
wsum512(size_t nc, size_t nk, const float *W, size_t wr, size_t wk,
	const float *X, size_t ldx, float *C, size_t ldc, int add)
{
	size_t r0 = 0;

	for (; r0 + R <= nc; r0 += R) {
		__m512 acc[R];

#pragma GCC unroll 8
		for (int r = 0; r < R; r++)
			acc[r] = _mm512_setzero_ps();
		for (size_t k = 0; k < nk; k++) {
			__m512 x = _mm512_loadu_ps(X + k * ldx);
			const float *w = W + r0 * wr + k * wk;

#pragma GCC unroll 8
			for (int r = 0; r < R; r++)
				acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(w[r * wr]),
							 x, acc[r]);
		}
#pragma GCC unroll 8
		for (int r = 0; r < R; r++) {
			float *c = C + (r0 + r) * ldc;

			_mm512_storeu_ps(c, add ? _mm512_add_ps(_mm512_loadu_ps(c),
								acc[r])
						: acc[r]);
		}
	}
	for (; r0 < nc; r0++) {
		__m512 acc = _mm512_setzero_ps();
		float *c = C + r0 * ldc;

		for (size_t k = 0; k < nk; k++)
			acc = _mm512_fmadd_ps(_mm512_set1_ps(W[r0 * wr + k * wk]),
					      _mm512_loadu_ps(X + k * ldx), acc);
		_mm512_storeu_ps(c, add ? _mm512_add_ps(_mm512_loadu_ps(c), acc)
					: acc);
	}
}

/* wsum512 with its strides and mode fixed, so that each loop is
 * compiled for its own access pattern. */
AVX512 static void pv512(size_t n, size_t ke, const float *P, size_t ldp,
			 const float *V, size_t ldv, float *C, size_t ldc)
{
	wsum512(n, ke, P, ldp, 1, V, ldv, C, ldc, 0);
}

AVX512 static void pv512_add(size_t n, size_t ke, const float *P,
			     size_t ldp, const float *V, size_t ldv, float *C,
			     size_t ldc)
{
	wsum512(n, ke, P, ldp, 1, V, ldv, C, ldc, 1);
}

AVX512 static void ptd512(size_t n, size_t ke, const float *P, size_t ldp,
			  const float *D, size_t ldd, float *C, size_t ldc)
{
	wsum512(ke, n, P, 1, ldp, D, ldd, C, ldc, 1);
}
#undef R
#endif

int btz_vec_att_ok(size_t dh)
{
#ifdef HAVE_X86
	return use512() && dh == 16;
#else
	(void)dh;
	return 0;
#endif
}

void btz_vec_att_qk(size_t n, size_t ke, size_t dh, float a, const float *A,
		    size_t lda, const float *BT, size_t ldbt, float *C,
		    size_t ldc)
{
#ifdef HAVE_X86
	if (btz_vec_att_ok(dh)) {
		qk512(n, ke, a, A, lda, BT, ldbt, C, ldc);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < ke; j++) {
			float s = 0;

			for (size_t c = 0; c < dh; c++)
				s += A[i * lda + c] * BT[c * ldbt + j];
			C[i * ldc + j] = a * s;
		}
}

/* The weighted sums of wsum512 for any dh, plainly. */
static void wsum(size_t nc, size_t nk, size_t dh, const float *W, size_t wr,
		 size_t wk, const float *X, size_t ldx, float *C, size_t ldc,
		 int add)
{
	for (size_t r = 0; r < nc; r++)
		for (size_t c = 0; c < dh; c++) {
			float s = 0;

			for (size_t k = 0; k < nk; k++)
				s += W[r * wr + k * wk] * X[k * ldx + c];
			C[r * ldc + c] = add ? C[r * ldc + c] + s : s;
		}
}

void btz_vec_att_pv(size_t n, size_t ke, size_t dh, const float *P,
		    size_t ldp, const float *V, size_t ldv, float *C,
		    size_t ldc, int add)
{
#ifdef HAVE_X86
	if (btz_vec_att_ok(dh)) {
		if (add)
			pv512_add(n, ke, P, ldp, V, ldv, C, ldc);
		else
			pv512(n, ke, P, ldp, V, ldv, C, ldc);
		return;
	}
#endif
	wsum(n, ke, dh, P, ldp, 1, V, ldv, C, ldc, add);
}

void btz_vec_att_ptd(size_t n, size_t ke, size_t dh, const float *P,
		     size_t ldp, const float *D, size_t ldd, float *C,
		     size_t ldc)
{
#ifdef HAVE_X86
	if (btz_vec_att_ok(dh)) {
		ptd512(n, ke, P, ldp, D, ldd, C, ldc);
		return;
	}
#endif
	wsum(ke, n, dh, P, 1, ldp, D, ldd, C, ldc, 1);
}
