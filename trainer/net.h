/* The float network of doc/checkpoint.md with its gradient, for training
 * on whole windows. Floating point throughout: nothing here decides a
 * coded bit (the exported integer model does), so sums may run in any
 * order and threads may split them as they like. */
#ifndef BTZ_TRAINER_NET_H
#define BTZ_TRAINER_NET_H

#include <stddef.h>
#include <stdint.h>

#include "model/float.h"

/* Activations of one batch of B windows of T = W positions, kept for the
 * backward pass. */
struct btz_net;

/* The sizes of a batch's tensors: B windows of T positions, N = B·T
 * rows, width d, MLP F, heads of dh, hq = H·dh query and kv = Hkv·dh
 * key/value columns (the CPU and GPU steps share them). */
struct btz_net_dims {
	size_t B, T, N, d, F, dh, hq, kv;
};

void btz_net_dims(struct btz_net_dims *z, const struct btz_hparams *hp,
		  size_t B);

/* What one layer keeps for the backward pass, rows r = b·T + t: the same
 * on the CPU (net.c) and the GPU (gnet.c). q, o [N][H·dh]; k, v
 * [N][Hkv·dh]; lse [B][H][T]; x̂, x [N][d]; 1/σ [N]; a, u, h [N][F]. */
struct btz_net_layer {
	float *q, *k, *v, *o, *lse;
	float *xhat1, *rstd1, *x1;
	float *a, *u, *h;
	float *xhat2, *rstd2, *x;
};

/* Floats one layer's activations take for batches of B windows. */
size_t btz_net_layer_floats(const struct btz_hparams *hp, size_t B);
/* Points ly's tensors into base[0, btz_net_layer_floats). */
void btz_net_layer_bind(struct btz_net_layer *ly, float *base,
			const struct btz_hparams *hp, size_t B);

/* A net for batches of `batch` windows of the model's context length. */
struct btz_net *btz_net_new(const struct btz_hparams *hp, size_t batch);
void btz_net_free(struct btz_net *net);

/* With on, the forward pass rounds each activation that the integer
 * engine holds in int8 (q, k, v, the attention output, x1, a, u, h and
 * each layer's output) to 255 levels over its batch maximum, as the
 * export does over its calibration maximum; gradients pass straight
 * through. Off by default. */
void btz_net_set_actq(struct btz_net *net, int on);

/* Forward over tok[B·T] (inputs: 256 at each window's position 0) and
 * tgt[B·T] (the bytes to predict); returns the mean cross-entropy in
 * nats. With grad not NULL, also runs the backward pass and adds the
 * gradient of that mean to grad (same layout as fm). */
double btz_net_step(struct btz_net *net, const struct btz_fmodel *fm,
		    const uint16_t *tok, const uint8_t *tgt,
		    struct btz_fmodel *grad);

/* Lays out nwin consecutive windows of T bytes from bytes[0, nwin·T) as
 * pack-time windows: tok = the start symbol at each window's position 0,
 * then the byte before each target; tgt = the bytes. */
void btz_net_windows(const uint8_t *bytes, size_t nwin, size_t T,
		     uint16_t *tok, uint8_t *tgt);

/* Matrix product C = alpha·op(A)·op(B) + beta·C, row-major, op = transpose
 * when the flag is set; OpenBLAS when configure found it. */
void btz_mm(int ta, int tb, int m, int n, int k, float alpha, const float *a,
	    int lda, const float *b, int ldb, float beta, float *c, int ldc);

#endif
