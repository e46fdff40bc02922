/* The CUDA backend of the GPU engine: device memory, copies and kernel
 * launches on one stream per engine, and int8 products by cuBLAS
 * (CUDA_R_8I in, CUDA_R_32I out, CUBLAS_COMPUTE_32I: exact integer sums,
 * so any kernel cuBLAS picks gives the CPU's integers). The kernels are
 * the element functions of model/gpu_kernels.h, one thread an element.
 *
 * The CUDA runtime is linked statically and cuBLAS is opened only when a
 * GPU engine starts: mapping cuBLAS costs 0.2 s and 200 MB at every start
 * of a tool, GPU or not. */
extern "C" {
#include "model/gpu.h"
}

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlfcn.h>
#include <pthread.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#ifndef BTZ_CUDA_LIBDIR
#define BTZ_CUDA_LIBDIR "/usr/local/cuda/lib64"
#endif

/* The cuBLAS functions btz calls, from dlopen. */
static struct {
	cublasStatus_t (*create)(cublasHandle_t *);
	cublasStatus_t (*destroy)(cublasHandle_t);
	cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
	cublasStatus_t (*gemm)(cublasHandle_t, cublasOperation_t,
			       cublasOperation_t, int, int, int, const void *,
			       const void *, cudaDataType, int, const void *,
			       cudaDataType, int, const void *, void *,
			       cudaDataType, int, cublasComputeType_t,
			       cublasGemmAlgo_t);
	cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t,
				cublasOperation_t, int, int, int,
				const float *, const float *, int,
				const float *, int, const float *, float *,
				int);
	char why[200];
} blas;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_load(void)
{
	static const char *const names[] = {
		"libcublas.so", "libcublas.so.13", "libcublas.so.12",
		BTZ_CUDA_LIBDIR "/libcublas.so",
	};
	void *lib = NULL;

	for (size_t i = 0; lib == NULL && i < sizeof(names) / sizeof(*names);
	     i++)
		lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		snprintf(blas.why, sizeof(blas.why), "cuBLAS not found (%s)",
			 dlerror());
		return;
	}
	*(void **)&blas.create = dlsym(lib, "cublasCreate_v2");
	*(void **)&blas.destroy = dlsym(lib, "cublasDestroy_v2");
	*(void **)&blas.set_stream = dlsym(lib, "cublasSetStream_v2");
	*(void **)&blas.gemm = dlsym(lib, "cublasGemmEx");
	*(void **)&blas.sgemm = dlsym(lib, "cublasSgemm_v2");
	if (!blas.create || !blas.destroy || !blas.set_stream || !blas.gemm ||
	    !blas.sgemm) {
		snprintf(blas.why, sizeof(blas.why),
			 "cuBLAS lacks cublasGemmEx or its companions");
		blas.create = NULL;
	}
}

static int blas_ok(void)
{
	pthread_once(&blas_once, blas_load);
	return blas.create != NULL;
}

struct cuda_ctx {
	cudaStream_t stream;
	cublasHandle_t blas;
};

static enum btz_status cuda_fail(struct btz_error *err, const char *what,
				 cudaError_t e)
{
	return btz_fail(err, BTZ_E_IO, "CUDA: %s: %s", what,
			cudaGetErrorString(e));
}

extern "C" int btz_cuda_probe(char *why, size_t cap)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);

	if (e == cudaErrorInsufficientDriver) {
		/* Also what a machine with no NVIDIA driver at all says. */
		snprintf(why, cap, "no NVIDIA driver for CUDA %d.%d",
			 CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
		return 0;
	}
	if (e != cudaSuccess) {
		snprintf(why, cap, "no CUDA device (%s)", cudaGetErrorString(e));
		return 0;
	}
	if (n == 0) {
		snprintf(why, cap, "no CUDA device");
		return 0;
	}
	if (!blas_ok()) {
		snprintf(why, cap, "%s", blas.why);
		return 0;
	}
	/* A device that cannot even allocate is no device. */
	void *p = NULL;
	e = cudaMalloc(&p, 16);
	if (e != cudaSuccess) {
		snprintf(why, cap, "CUDA device unusable (%s)",
			 cudaGetErrorString(e));
		return 0;
	}
	cudaFree(p);
	return 1;
}

static enum btz_status c_init(void **out, struct btz_error *err)
{
	struct cuda_ctx *c = (struct cuda_ctx *)calloc(1, sizeof(*c));
	cudaError_t e;

	*out = NULL;
	if (c == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	if (!blas_ok()) {
		free(c);
		return btz_fail(err, BTZ_E_UNSUPPORTED, "%s", blas.why);
	}
	e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
	if (e != cudaSuccess) {
		free(c);
		return cuda_fail(err, "stream", e);
	}
	if (blas.create(&c->blas) != CUBLAS_STATUS_SUCCESS ||
	    blas.set_stream(c->blas, c->stream) != CUBLAS_STATUS_SUCCESS) {
		cudaStreamDestroy(c->stream);
		free(c);
		return btz_fail(err, BTZ_E_IO, "cuBLAS: cannot start");
	}
	*out = c;
	return BTZ_OK;
}

static void c_fini(void *ctx)
{
	struct cuda_ctx *c = (struct cuda_ctx *)ctx;

	blas.destroy(c->blas);
	cudaStreamDestroy(c->stream);
	free(c);
}

static enum btz_status c_alloc(void *ctx, void **p, size_t bytes,
			       struct btz_error *err)
{
	struct cuda_ctx *c = (struct cuda_ctx *)ctx;
	cudaError_t e = cudaMalloc(p, bytes);

	if (e != cudaSuccess) {
		*p = NULL;
		return cuda_fail(err, "out of device memory", e);
	}
	e = cudaMemsetAsync(*p, 0, bytes, c->stream);
	return e == cudaSuccess ? BTZ_OK : cuda_fail(err, "memset", e);
}

static void c_release(void *ctx, void *p)
{
	struct cuda_ctx *c = (struct cuda_ctx *)ctx;

	cudaStreamSynchronize(c->stream);
	cudaFree(p);
}

static enum btz_status c_put(void *ctx, void *dev, const void *host,
			     size_t n, struct btz_error *err)
{
	struct cuda_ctx *c = (struct cuda_ctx *)ctx;
	/* Synchronous: the host buffer may change after the call. */
	cudaError_t e = cudaMemcpyAsync(dev, host, n, cudaMemcpyHostToDevice,
					c->stream);

	if (e == cudaSuccess)
		e = cudaStreamSynchronize(c->stream);
	return e == cudaSuccess ? BTZ_OK : cuda_fail(err, "copy to device", e);
}

static enum btz_status c_get(void *ctx, void *host, const void *dev,
			     size_t n, struct btz_error *err)
{
	struct cuda_ctx *c = (struct cuda_ctx *)ctx;
	cudaError_t e = cudaMemcpyAsync(host, dev, n, cudaMemcpyDeviceToHost,
					c->stream);

	if (e == cudaSuccess)
		e = cudaStreamSynchronize(c->stream);
	return e == cudaSuccess ? BTZ_OK : cuda_fail(err, "copy from device", e);
}

/* Whether the launch before went in. */
static enum btz_status launched(struct btz_error *err)
{
	cudaError_t e = cudaGetLastError();

	return e == cudaSuccess ? BTZ_OK : cuda_fail(err, "kernel launch", e);
}

/* One kernel per element function: the switch folds away, and only
 * attention pays for its per-thread sums. */
template <int ID> __global__ void gk_kernel(size_t n, struct gk_args a)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		gk_run((enum gk_id)ID, i, &a);
}

static enum btz_status c_launch(void *ctx, enum gk_id id, size_t n,
				const struct gk_args *a, struct btz_error *err)
{
	struct cuda_ctx *c = (struct cuda_ctx *)ctx;
	/* Attention and row kernels keep arrays per thread: smaller blocks. */
	unsigned threads = id == GK_ATTEND || id == GK_NORM || id == GK_FREQ ||
					   id == GK_SYM
				   ? 64 : 256;
	size_t blocks = (n + threads - 1) / threads;

	if (n == 0)
		return BTZ_OK;
	switch (id) {
#define GK(ID)                                                               \
	case ID:                                                             \
		gk_kernel<ID><<<(unsigned)blocks, threads, 0, c->stream>>>(n, *a); \
		break;
		GK(GK_EMBED) GK(GK_RQ8) GK(GK_KVPUT) GK(GK_ATTEND) GK(GK_RESID)
		GK(GK_NORM) GK(GK_SWIGLU) GK(GK_FREQ) GK(GK_GEMM) GK(GK_SYM)
#undef GK
	}
	return launched(err);
}

static enum btz_status c_gemm(void *ctx, const int8_t *X, size_t rows,
			      size_t k, const int8_t *W, size_t n,
			      int32_t *out, struct btz_error *err)
{
	struct cuda_ctx *c = (struct cuda_ctx *)ctx;
	const int32_t one = 1, zero = 0;
	size_t r4 = (rows + 3) / 4 * 4;

	/* cuBLAS's int8 products want sizes and leading dimensions in
	 * multiples of 4; other shapes take the element kernel. */
	if (k % 4 != 0 || n % 4 != 0) {
		struct gk_args a;

		memset(&a, 0, sizeof(a));
		a.x = X;
		a.w = W;
		a.k = (uint32_t)k;
		a.ncol = (uint32_t)n;
		a.out32 = out;
		return c_launch(ctx, GK_GEMM, rows * n, &a, err);
	}
	/* Row-major out[rows][n] is column-major n × rows: W^T (n × k, W
	 * stored k-major) times X (k × rows). */
	cublasStatus_t s = blas.gemm(
		c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)n, (int)r4, (int)k,
		&one, W, CUDA_R_8I, (int)k, X, CUDA_R_8I, (int)k, &zero, out,
		CUDA_R_32I, (int)n, CUBLAS_COMPUTE_32I, CUBLAS_GEMM_DEFAULT);

	if (s != CUBLAS_STATUS_SUCCESS)
		return btz_fail(err, BTZ_E_IO, "cuBLAS: int8 product %zux%zux%zu "
				"failed (status %d)", r4, k, n, (int)s);
	return BTZ_OK;
}

static enum btz_status c_sgemm(void *ctx, int ta, int tb, size_t m,
			       size_t n, size_t k, float alpha,
			       const float *A, size_t lda, const float *B,
			       size_t ldb, float beta, float *C, size_t ldc,
			       struct btz_error *err)
{
	struct cuda_ctx *c = (struct cuda_ctx *)ctx;
	cublasStatus_t s = blas.sgemm(
		c->blas, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
		tb ? CUBLAS_OP_T : CUBLAS_OP_N, (int)m, (int)n, (int)k, &alpha,
		A, (int)lda, B, (int)ldb, &beta, C, (int)ldc);

	if (s != CUBLAS_STATUS_SUCCESS)
		return btz_fail(err, BTZ_E_IO, "cuBLAS: float product "
				"%zux%zux%zu failed (status %d)", m, n, k,
				(int)s);
	return BTZ_OK;
}

template <int ID> __global__ void tk_kernel(size_t n, struct tk_args a)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		tk_run((enum tk_id)ID, i, &a);
}

static enum btz_status c_tlaunch(void *ctx, enum tk_id id, size_t n,
				 const struct tk_args *a,
				 struct btz_error *err)
{
	struct cuda_ctx *c = (struct cuda_ctx *)ctx;
	/* Attention keeps a head's sums per thread: smaller blocks. */
	unsigned threads = id == TK_ATTN || id == TK_ATTN_DQ ||
					   id == TK_ATTN_DKV
				   ? 64 : 256;
	size_t blocks = (n + threads - 1) / threads;

	if (n == 0)
		return BTZ_OK;
	switch (id) {
#define TK(ID)                                                               \
	case ID:                                                             \
		tk_kernel<ID><<<(unsigned)blocks, threads, 0, c->stream>>>(n, *a); \
		break;
		TK(TK_FILL0) TK(TK_COPY) TK(TK_EMBED) TK(TK_LN_FWD)
		TK(TK_LN_PART) TK(TK_LN_GRAD) TK(TK_LN_BWD) TK(TK_SWIGLU)
		TK(TK_SWIGLU_BWD) TK(TK_ATTN) TK(TK_ATTN_D) TK(TK_ATTN_DQ)
		TK(TK_ATTN_DKV) TK(TK_XENT) TK(TK_EMB_BWD) TK(TK_ACT_MAX)
		TK(TK_ACT_ROUND)
#undef TK
	}
	return launched(err);
}

extern "C" const struct btz_gpu_ops btz_gpu_cuda_ops = {
	"cuda", c_init, c_fini, c_alloc, c_release,
	c_put, c_get, c_gemm, c_launch, c_sgemm, c_tlaunch,
};
