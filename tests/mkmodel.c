/* Writes a random but well-conditioned .btm model (btz_model_generate),
 * for the shell tests and the benchmarks before trained models exist. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/btm.h"

static void usage(void)
{
	fprintf(stderr, "usage: mkmodel OUT.btm SEED d layers heads kv_heads "
			"ff context [modality [transform]]\n");
	exit(1);
}

static uint64_t number(const char *s, const char *what, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
		fprintf(stderr, "mkmodel: bad %s '%s'\n", what, s);
		exit(1);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct btz_hparams hp = { 0 };
	struct btz_model *m;
	struct btz_error err;
	char hex[33];
	uint64_t seed;

	if (argc < 9 || argc > 11)
		usage();
	seed = number(argv[2], "seed", UINT64_MAX);
	hp.d = (uint32_t)number(argv[3], "d", UINT32_MAX);
	hp.layers = (uint32_t)number(argv[4], "layers", UINT32_MAX);
	hp.heads = (uint32_t)number(argv[5], "heads", UINT32_MAX);
	hp.kv_heads = (uint32_t)number(argv[6], "kv_heads", UINT32_MAX);
	hp.ff = (uint32_t)number(argv[7], "ff", UINT32_MAX);
	hp.context = (uint32_t)number(argv[8], "context", UINT32_MAX);
	if (argc >= 10)
		hp.modality = (uint8_t)number(argv[9], "modality", 255);
	if (argc == 11)
		hp.transform = (uint8_t)number(argv[10], "transform", 255);
	if (btz_model_generate(&m, &hp, seed, &err) != BTZ_OK) {
		fprintf(stderr, "mkmodel: %s\n", err.msg);
		return 1;
	}
	if (btz_model_save(m, argv[1], &err) != BTZ_OK) {
		fprintf(stderr, "mkmodel: %s\n", err.msg);
		btz_model_free(m);
		return 1;
	}
	btz_fingerprint_hex(hex, m->fingerprint);
	printf("%s\n", hex);
	btz_model_free(m);
	return 0;
}
