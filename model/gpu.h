/* The GPU engine: the same rows as the CPU engine (model/engine.h), bit
 * for bit, computed by a device backend: CUDA (cuBLAS int8 products and
 * the kernels of model/gpu_kernels.h) or a simulated device that runs the
 * same kernels on the CPU, for tests on machines without a GPU. */
#ifndef BTZ_MODEL_GPU_H
#define BTZ_MODEL_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "model/btm.h"
#include "model/gpu_kernels.h"
#include "model/gpu_train_kernels.h"

/* Where engines run; set once, before any engine is made. */
enum btz_device {
	BTZ_DEVICE_CPU = 0,
	BTZ_DEVICE_CUDA = 1,
	BTZ_DEVICE_SIM = 2, /* the GPU engine on a simulated device */
};

void btz_engine_set_device(enum btz_device d);
enum btz_device btz_engine_device(void);

/* 1 if this build has CUDA and a device answers; else 0 and why (a
 * sentence, for -v notes and errors). */
int btz_cuda_usable(char *why, size_t cap);

/* Where a tool asking for a GPU runs (--device=cuda when strict, auto
 * otherwise): BTZ_DEVICE_CUDA when one answers; for cuda with
 * BTZ_GPU_SIM=1 the simulated device (tests); else BTZ_DEVICE_CPU for
 * auto and -1 for cuda, with why filled. */
int btz_device_gpu(int strict, char *why, size_t cap);

/* A backend: device memory, copies, int8 products and kernel launches on
 * one stream. All pointers but the copies' host sides are device ones. */
struct btz_gpu_ops {
	const char *name;
	enum btz_status (*init)(void **ctx, struct btz_error *err);
	void (*fini)(void *ctx);
	/* Zeroed device memory. */
	enum btz_status (*alloc)(void *ctx, void **p, size_t bytes,
				 struct btz_error *err);
	void (*release)(void *ctx, void *p);
	enum btz_status (*put)(void *ctx, void *dev, const void *host,
			       size_t n, struct btz_error *err);
	/* Waits for the work before it. */
	enum btz_status (*get)(void *ctx, void *host, const void *dev,
			       size_t n, struct btz_error *err);
	/* out[r][o] = sum_c X[r][c]·W[o][c], exact int32. X and out have
	 * room for rows rounded up to a multiple of 4. */
	enum btz_status (*gemm)(void *ctx, const int8_t *X, size_t rows,
				size_t k, const int8_t *W, size_t n,
				int32_t *out, struct btz_error *err);
	enum btz_status (*launch)(void *ctx, enum gk_id id, size_t n,
				  const struct gk_args *a,
				  struct btz_error *err);
	/* For training (trainer/gnet.c). A float product with BLAS's
	 * column-major meaning: C = alpha·op(A)·op(B) + beta·C, op(A) m × k,
	 * op(B) k × n, transposed where ta, tb; beta = 0 reads no C. */
	enum btz_status (*sgemm)(void *ctx, int ta, int tb, size_t m,
				 size_t n, size_t k, float alpha,
				 const float *A, size_t lda, const float *B,
				 size_t ldb, float beta, float *C, size_t ldc,
				 struct btz_error *err);
	enum btz_status (*tlaunch)(void *ctx, enum tk_id id, size_t n,
				   const struct tk_args *a,
				   struct btz_error *err);
};

extern const struct btz_gpu_ops btz_gpu_sim_ops;
#ifdef HAVE_CUDA
extern const struct btz_gpu_ops btz_gpu_cuda_ops;
int btz_cuda_probe(char *why, size_t cap);
#endif

/* The backend of a GPU device: NULL for the CPU, and for CUDA in a build
 * without it. */
const struct btz_gpu_ops *btz_gpu_backend(enum btz_device d);

struct btz_gpu;

enum btz_status btz_gpu_create(struct btz_gpu **out,
			       const struct btz_gpu_ops *ops,
			       const struct btz_model *m, size_t nwin,
			       size_t max_rows, struct btz_error *err);
void btz_gpu_free(struct btz_gpu *g);
/* As btz_engine_rows. */
enum btz_status btz_gpu_rows(struct btz_gpu *g, size_t nrows,
			     const uint16_t *tok, const uint32_t *win,
			     const uint32_t *pos, uint32_t (*freq)[256],
			     int32_t (*logits)[256], struct btz_error *err);
/* As btz_engine_rows_sym: only each row's interval (and the queried
 * frequency) comes back. */
enum btz_status btz_gpu_rows_sym(struct btz_gpu *g, size_t nrows,
				 const uint16_t *tok, const uint32_t *win,
				 const uint32_t *pos, const uint8_t *tgt,
				 uint32_t (*sym)[2], const uint8_t *query,
				 uint32_t *qfreq, struct btz_error *err);

#endif
