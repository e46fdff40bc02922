/* The float network's training step on a GPU backend (model/gpu.h): the
 * same step as trainer/net.c, with the weight products on cuBLAS and
 * everything else in the kernels of model/gpu_train_kernels.h. The host
 * keeps the weights and the optimizer; each step uploads the weights and
 * brings back the gradient, a few MB against a batch's seconds of work. */
#ifndef BTZ_TRAINER_GNET_H
#define BTZ_TRAINER_GNET_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "model/float.h"
#include "model/gpu.h"

struct btz_gnet;

/* A net for batches of `batch` windows on the backend ops (the CUDA one,
 * or btz_gpu_sim_ops for tests). */
enum btz_status btz_gnet_new(struct btz_gnet **out,
			     const struct btz_gpu_ops *ops,
			     const struct btz_hparams *hp, size_t batch,
			     struct btz_error *err);
void btz_gnet_free(struct btz_gnet *g);

/* As btz_net_set_actq: activations rounded to int8 grids (--qat-act). */
void btz_gnet_set_actq(struct btz_gnet *g, int on);

/* As btz_net_step: the mean cross-entropy in nats in *loss and, with
 * grad not NULL, the gradient added to grad. */
enum btz_status btz_gnet_step(struct btz_gnet *g, const struct btz_fmodel *fm,
			      const uint16_t *tok, const uint8_t *tgt,
			      struct btz_fmodel *grad, double *loss,
			      struct btz_error *err);

#endif
