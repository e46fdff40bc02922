/* bf16 weight products for the trainer through oneDNN's matmul: inputs
 * rounded to bfloat16 (8-bit mantissa), sums in float32. On CPUs with
 * AVX-512 BF16 (vdpbf16ps) oneDNN runs them about twice as fast as its
 * float32 ones at the trainer's shapes. Training only: nothing here
 * decides a coded bit. */
#include "trainer/bf16.h"

#ifdef HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

/* A primitive per product shape (a step repeats the same few dozen),
 * with its operands' memory objects, pointed at the data of each call.
 * Calls do not overlap: the trainer makes them one at a time and oneDNN
 * splits each over the threads. */
struct prim {
	int ta, tb, m, n, k, ldc, acc;
	dnnl_primitive_t p;
	dnnl_memory_t a, b, c;
};

#define PRIMS_MAX 256
static struct prim prims[PRIMS_MAX];
static int nprims;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static int state; /* 0 off (the default), 1 on, -1 failed to start */

/* The bf16 copies of the operands. */
static uint16_t *buf_a, *buf_b;
static size_t cap_a, cap_b;

static uint16_t to_bf16(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	/* Round to nearest even; the trainer has no NaNs to keep. */
	return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

#ifdef HAVE_X86
__attribute__((target("avx512f,avx512bf16"))) static void
rows_bf16_512(uint16_t *dst, const float *src, size_t rows, size_t cols,
	      size_t ld)
{
	for (size_t r = 0; r < rows; r++) {
		const float *s = src + r * ld;
		uint16_t *d = dst + r * cols;
		size_t c = 0;

		for (; c + 16 <= cols; c += 16) {
			__m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(s + c));

			_mm256_storeu_si256((__m256i *)(d + c), (__m256i)v);
		}
		for (; c < cols; c++)
			d[c] = to_bf16(s[c]);
	}
}
#endif

/* rows × cols of src (leading dimension ld) into dense bf16. */
static void rows_bf16(uint16_t *dst, const float *src, size_t rows,
		      size_t cols, size_t ld)
{
#ifdef HAVE_X86
	static int has512 = -1;

	if (has512 < 0)
		has512 = __builtin_cpu_supports("avx512f") &&
			 __builtin_cpu_supports("avx512bf16");
#endif
	/* Split over the threads in blocks of rows, as the products are. */
#pragma omp parallel for schedule(static) if (rows * cols >= 65536)
	for (size_t r0 = 0; r0 < rows; r0 += 64) {
		size_t n = rows - r0 < 64 ? rows - r0 : 64;

#ifdef HAVE_X86
		if (has512) {
			rows_bf16_512(dst + r0 * cols, src + r0 * ld, n, cols,
				      ld);
			continue;
		}
#endif
		for (size_t r = r0; r < r0 + n; r++)
			for (size_t c = 0; c < cols; c++)
				dst[r * cols + c] = to_bf16(src[r * ld + c]);
	}
}

static int grow(uint16_t **b, size_t *cap, size_t n)
{
	if (*cap >= n)
		return 1;
	free(*b);
	*b = malloc(n * sizeof(**b));
	*cap = *b ? n : 0;
	return *b != NULL;
}

int btz_bf16_available(void)
{
#ifdef HAVE_X86
	/* Elsewhere oneDNN emulates bf16, slower than float32. */
	return __builtin_cpu_supports("avx512bf16");
#else
	return 0;
#endif
}

int btz_bf16_enable(int on)
{
	state = 0;
	if (on && btz_bf16_available())
		state = stream != NULL ||
				(dnnl_engine_create(&engine, dnnl_cpu, 0) ==
					 dnnl_success &&
				 dnnl_stream_create(&stream, engine,
						    dnnl_stream_default_flags) ==
					 dnnl_success)
			? 1 : -1;
	return state > 0;
}

/* The dense bf16 operands: A as stored (m × k, or k × m when ta), B
 * likewise; C float32 with its leading dimension. */
static struct prim *get_prim(int ta, int tb, int m, int n, int k, int ldc,
			     int acc)
{
	struct prim *p = NULL;

	for (int i = 0; i < nprims; i++)
		if (prims[i].ta == ta && prims[i].tb == tb && prims[i].m == m &&
		    prims[i].n == n && prims[i].k == k &&
		    prims[i].ldc == ldc && prims[i].acc == acc) {
			p = &prims[i];
			break;
		}
	if (p == NULL && nprims < PRIMS_MAX) {
		struct prim *q = &prims[nprims];
		dnnl_dims_t da = { m, k }, db = { k, n }, dc = { m, n };
		dnnl_dims_t sa = { ta ? 1 : k, ta ? m : 1 };
		dnnl_dims_t sb = { tb ? 1 : n, tb ? k : 1 };
		dnnl_dims_t sc = { ldc, 1 };
		dnnl_memory_desc_t a, b, c;
		dnnl_matmul_desc_t md;
		dnnl_primitive_desc_t pd = NULL;
		dnnl_primitive_attr_t attr = NULL;
		dnnl_post_ops_t po = NULL;
		int ok = dnnl_memory_desc_init_by_strides(&a, 2, da, dnnl_bf16,
							  sa) == dnnl_success &&
			 dnnl_memory_desc_init_by_strides(&b, 2, db, dnnl_bf16,
							  sb) == dnnl_success &&
			 dnnl_memory_desc_init_by_strides(&c, 2, dc, dnnl_f32,
							  sc) == dnnl_success &&
			 dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) ==
				 dnnl_success &&
			 dnnl_primitive_attr_create(&attr) == dnnl_success;

		/* beta = 1: C += A·B, as a sum post-op. */
		if (ok && acc)
			ok = dnnl_post_ops_create(&po) == dnnl_success &&
			     dnnl_post_ops_append_sum(po, 1.0f) == dnnl_success &&
			     dnnl_primitive_attr_set_post_ops(attr, po) ==
				     dnnl_success;
		if (ok)
			ok = dnnl_primitive_desc_create(&pd, &md, attr, engine,
							NULL) == dnnl_success &&
			     dnnl_primitive_create(&q->p, pd) == dnnl_success &&
			     dnnl_memory_create(&q->a, &a, engine,
						DNNL_MEMORY_NONE) == dnnl_success &&
			     dnnl_memory_create(&q->b, &b, engine,
						DNNL_MEMORY_NONE) == dnnl_success &&
			     dnnl_memory_create(&q->c, &c, engine,
						DNNL_MEMORY_NONE) == dnnl_success;
		if (pd)
			dnnl_primitive_desc_destroy(pd);
		if (po)
			dnnl_post_ops_destroy(po);
		if (attr)
			dnnl_primitive_attr_destroy(attr);
		if (ok) {
			q->ta = ta;
			q->tb = tb;
			q->m = m;
			q->n = n;
			q->k = k;
			q->ldc = ldc;
			q->acc = acc;
			p = q;
			nprims++;
		}
	}
	return p;
}

int btz_bf16_mm(int ta, int tb, int m, int n, int k, const float *a, int lda,
		const float *b, int ldb, float beta, float *c, int ldc)
{
	size_t ra = ta ? (size_t)k : (size_t)m, ca = ta ? (size_t)m : (size_t)k;
	size_t rb = tb ? (size_t)n : (size_t)k, cb = tb ? (size_t)k : (size_t)n;
	struct prim *p;

	if (state <= 0 || (beta != 0 && beta != 1) || m <= 0 || n <= 0 ||
	    k <= 0)
		return 0;
	p = get_prim(ta, tb, m, n, k, ldc, beta != 0);
	if (p == NULL || !grow(&buf_a, &cap_a, ra * ca) ||
	    !grow(&buf_b, &cap_b, rb * cb))
		return 0;
	rows_bf16(buf_a, a, ra, ca, (size_t)lda);
	rows_bf16(buf_b, b, rb, cb, (size_t)ldb);

	dnnl_exec_arg_t args[3] = { { DNNL_ARG_SRC, p->a },
				    { DNNL_ARG_WEIGHTS, p->b },
				    { DNNL_ARG_DST, p->c } };

	/* C may be half written once it runs: no falling back after. */
	if (dnnl_memory_set_data_handle(p->a, buf_a) != dnnl_success ||
	    dnnl_memory_set_data_handle(p->b, buf_b) != dnnl_success ||
	    dnnl_memory_set_data_handle(p->c, c) != dnnl_success)
		return 0;
	if (dnnl_primitive_execute(p->p, stream, 3, args) != dnnl_success ||
	    dnnl_stream_wait(stream) != dnnl_success) {
		fprintf(stderr, "btztrain: oneDNN bf16 product %dx%dx%d failed\n",
			m, n, k);
		exit(1);
	}
	return 1;
}

#else

int btz_bf16_available(void)
{
	return 0;
}

int btz_bf16_enable(int on)
{
	(void)on;
	return 0;
}

int btz_bf16_mm(int ta, int tb, int m, int n, int k, const float *a, int lda,
		const float *b, int ldb, float beta, float *c, int ldc)
{
	(void)ta, (void)tb, (void)m, (void)n, (void)k, (void)a, (void)lda;
	(void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
	return 0;
}

#endif
