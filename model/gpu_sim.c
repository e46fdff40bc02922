/* The simulated device: host memory, the CPU's int8 products, and each
 * kernel launch as a loop over its elements. It runs the GPU engine's
 * schedule and kernels where no GPU is, so tests check them everywhere;
 * only the CUDA glue (model/cuda.cu) is left to the device check. */
#include <stdlib.h>
#include <string.h>

#include "model/gpu.h"
#include "model/kernels.h"

static enum btz_status sim_init(void **ctx, struct btz_error *err)
{
	(void)err;
	*ctx = (void *)btz_kernels_select(NULL);
	return BTZ_OK;
}

static void sim_fini(void *ctx)
{
	(void)ctx;
}

static enum btz_status sim_alloc(void *ctx, void **p, size_t bytes,
				 struct btz_error *err)
{
	(void)ctx;
	*p = calloc(1, bytes);
	if (*p == NULL)
		return btz_fail(err, BTZ_E_NOMEM,
				"simulated device: out of memory");
	return BTZ_OK;
}

static void sim_release(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static enum btz_status sim_copy(void *ctx, void *dst, const void *src,
				size_t n, struct btz_error *err)
{
	(void)ctx;
	(void)err;
	memcpy(dst, src, n);
	return BTZ_OK;
}

static enum btz_status sim_gemm(void *ctx, const int8_t *X, size_t rows,
				size_t k, const int8_t *W, size_t n,
				int32_t *out, struct btz_error *err)
{
	const struct btz_kernels *kt = (const struct btz_kernels *)ctx;

	(void)err;
	kt->gemm_s8(X, rows, k, W, n, out);
	return BTZ_OK;
}

static enum btz_status sim_launch(void *ctx, enum gk_id id, size_t n,
				  const struct gk_args *a,
				  struct btz_error *err)
{
	(void)ctx;
	(void)err;
	for (size_t i = 0; i < n; i++)
		gk_run(id, i, a);
	return BTZ_OK;
}

/* The column-major product as BLAS defines it, the obvious loops: the
 * reference the trainer's row-major calls are mapped onto (so the tests
 * check the mapping cuBLAS gets too). */
static enum btz_status sim_sgemm(void *ctx, int ta, int tb, size_t m,
				 size_t n, size_t k, float alpha,
				 const float *A, size_t lda, const float *B,
				 size_t ldb, float beta, float *C, size_t ldc,
				 struct btz_error *err)
{
	(void)ctx;
	(void)err;
	for (size_t j = 0; j < n; j++)
		for (size_t i = 0; i < m; i++) {
			float s = 0;

			for (size_t p = 0; p < k; p++)
				s += (ta ? A[p + i * lda] : A[i + p * lda]) *
				     (tb ? B[j + p * ldb] : B[p + j * ldb]);
			C[i + j * ldc] = alpha * s +
					 (beta == 0 ? 0 : beta * C[i + j * ldc]);
		}
	return BTZ_OK;
}

static enum btz_status sim_tlaunch(void *ctx, enum tk_id id, size_t n,
				   const struct tk_args *a,
				   struct btz_error *err)
{
	(void)ctx;
	(void)err;
	for (size_t i = 0; i < n; i++)
		tk_run(id, i, a);
	return BTZ_OK;
}

const struct btz_gpu_ops btz_gpu_sim_ops = {
	"sim",	   sim_init, sim_fini,	sim_alloc, sim_release,
	sim_copy, sim_copy, sim_gemm, sim_launch, sim_sgemm, sim_tlaunch,
};
