/* Unit tests of model/btm.c: the .btm layout against doc/model.md (offsets
 * are recomputed here from the spec's table, independently of btm.c), the
 * save/load round trip, the generator's determinism and golden bytes, and
 * damaged or hostile files: truncated, bit-flipped, and resealed with a
 * valid checksum around an out-of-range field. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/bytes.h"
#include "model/btm.h"
#include "model/transform.h"
#include "tests/check.h"

/* The status is st and the message contains sub. */
#define CHECK_ERR(s, e, st, sub)                                             \
	do {                                                                 \
		enum btz_status s_ = (s);                                    \
		if (s_ != (st) || strstr((e).msg, (sub)) == NULL) {          \
			fprintf(stderr, "%s:%d: status %d \"%s\", expected " \
				"%d \"...%s...\"\n", __FILE__, __LINE__, s_, \
				s_ == BTZ_OK ? "" : (e).msg, (st), (sub));   \
			failures++;                                          \
		}                                                            \
	} while (0)

static const struct btz_hparams hp_tiny = { 16, 1, 2, 1, 32, 16, 0, 0, 0 };
static const struct btz_hparams hp_small = { 64, 2, 8, 2, 256, 64, 1, 0, 0 };

/* ---- doc/model.md's tensor table, written out again ---- */

struct spec_tensor {
	const char *name;
	int esize; /* bytes per element */
	char rows, cols; /* '1', 'd', 'W', 'q' (H·dh), 'k' (Hkv·dh), 'F',
			  * 'T' (257), 'B' (256), 'K' (1024) */
};

static const struct spec_tensor spec_global[] = {
	{ "tok_emb", 1, 'T', 'd' }, { "pos_emb", 1, 'W', 'd' },
	{ "exp_att", 2, '1', 'B' }, { "silu", 2, '1', 'B' },
	{ "exp_out", 4, '1', 'K' }, { "wout", 1, 'B', 'd' },
	{ "f_mul", 4, '1', '1' }, { "f_shift", 4, '1', '1' },
};

static const struct spec_tensor spec_layer[] = {
	{ "wq", 1, 'q', 'd' }, { "mq", 4, '1', 'q' }, { "sq", 4, '1', '1' },
	{ "wk", 1, 'k', 'd' }, { "mk", 4, '1', 'k' }, { "sk", 4, '1', '1' },
	{ "wv", 1, 'k', 'd' }, { "mv", 4, '1', 'k' }, { "sv", 4, '1', '1' },
	{ "a_mul", 4, '1', '1' }, { "a_shift", 4, '1', '1' },
	{ "ao_shift", 4, '1', '1' },
	{ "wo", 1, 'd', 'q' }, { "mo", 4, '1', 'd' }, { "so", 4, '1', '1' },
	{ "rx", 4, '1', '1' },
	{ "g1", 4, '1', 'd' }, { "b1", 4, '1', 'd' },
	{ "ln1_shift", 4, '1', '1' },
	{ "w1", 1, 'F', 'd' }, { "m1", 4, '1', 'F' }, { "s1", 4, '1', '1' },
	{ "w3", 1, 'F', 'd' }, { "m3", 4, '1', 'F' }, { "s3", 4, '1', '1' },
	{ "mh", 4, '1', '1' }, { "sh", 4, '1', '1' },
	{ "w2", 1, 'd', 'F' }, { "m2", 4, '1', 'd' }, { "s2", 4, '1', '1' },
	{ "rx2", 4, '1', '1' },
	{ "g2", 4, '1', 'd' }, { "b2", 4, '1', 'd' },
	{ "ln2_shift", 4, '1', '1' },
};

#define NSPEC_G (sizeof(spec_global) / sizeof(spec_global[0]))
#define NSPEC_L (sizeof(spec_layer) / sizeof(spec_layer[0]))

static uint64_t spec_dim(const struct btz_hparams *hp, char c)
{
	uint64_t dh = hp->d / hp->heads;

	switch (c) {
	case 'd': return hp->d;
	case 'W': return hp->context;
	case 'q': return hp->heads * dh;
	case 'k': return hp->kv_heads * dh;
	case 'F': return hp->ff;
	case 'T': return 257;
	case 'B': return 256;
	case 'K': return 1024;
	}
	return 1;
}

static uint64_t spec_bytes(const struct btz_hparams *hp,
			   const struct spec_tensor *t)
{
	return t->esize * spec_dim(hp, t->rows) * spec_dim(hp, t->cols);
}

static uint64_t spec_tensor_bytes(const struct btz_hparams *hp)
{
	uint64_t n = 0;

	for (size_t i = 0; i < NSPEC_G; i++)
		n += spec_bytes(hp, &spec_global[i]);
	for (size_t i = 0; i < NSPEC_L; i++)
		n += hp->layers * spec_bytes(hp, &spec_layer[i]);
	return n;
}

/* Offset in the file of tensor name (of layer l, or a global one when
 * l < 0); the header comes first. */
static size_t spec_off(const struct btz_model *m, int l, const char *name)
{
	size_t off = 44 + 2 + strlen(m->name) + 2 + strlen(m->train_data) + 16;

	for (size_t i = 0; i < NSPEC_G; i++) {
		if (l < 0 && strcmp(spec_global[i].name, name) == 0)
			return off;
		off += spec_bytes(&m->hp, &spec_global[i]);
	}
	for (uint32_t k = 0; k < m->hp.layers; k++)
		for (size_t i = 0; i < NSPEC_L; i++) {
			if ((int)k == l && strcmp(spec_layer[i].name, name) == 0)
				return off;
			off += spec_bytes(&m->hp, &spec_layer[i]);
		}
	fprintf(stderr, "spec_off: no tensor %s in layer %d\n", name, l);
	exit(99);
}

/* ---- helpers ---- */

static struct btz_model *gen(const struct btz_hparams *hp, uint64_t seed)
{
	struct btz_model *m;
	struct btz_error err;

	if (btz_model_generate(&m, hp, seed, &err) != BTZ_OK) {
		fprintf(stderr, "generate: %s\n", err.msg);
		exit(99);
	}
	return m;
}

static uint8_t *save(const struct btz_model *m, size_t *n)
{
	struct btz_error err;
	uint8_t *b;

	if (btz_model_save_mem(m, &b, n, &err) != BTZ_OK) {
		fprintf(stderr, "save_mem: %s\n", err.msg);
		exit(99);
	}
	return b;
}

/* Rewrites the trailing checksum so only the intended damage remains. */
static void reseal(uint8_t *b, size_t n)
{
	btz_put_le64(b + n - 8, XXH3_64bits(b, n - 8));
}

/* Loads an exact-size heap copy, so that ASan sees any over-read. */
static enum btz_status load_copy(const uint8_t *b, size_t n,
				 struct btz_model **m, struct btz_error *err)
{
	uint8_t *c = malloc(n ? n : 1);
	enum btz_status st;

	if (c == NULL)
		exit(99);
	if (n)
		memcpy(c, b, n);
	st = btz_model_load_mem(m, c, n, err);
	free(c);
	return st;
}

/* Loads b (n bytes) with the u32 at off set to v and the checksum
 * resealed; checks that it fails with status st naming sub. */
static void expect_patch32(const uint8_t *b, size_t n, size_t off, uint32_t v,
			   enum btz_status st, const char *sub, int line)
{
	uint8_t *c = malloc(n);
	struct btz_model *m;
	struct btz_error err = { 0 };
	enum btz_status s;

	memcpy(c, b, n);
	btz_put_le32(c + off, v);
	reseal(c, n);
	s = btz_model_load_mem(&m, c, n, &err);
	if (s != st || strstr(err.msg, sub) == NULL) {
		fprintf(stderr, "%s:%d: status %d \"%s\", expected %d "
			"\"...%s...\"\n", __FILE__, line, s,
			s == BTZ_OK ? "" : err.msg, st, sub);
		failures++;
	}
	CHECK(s != BTZ_OK || m != NULL);
	btz_model_free(s == BTZ_OK ? m : NULL);
	free(c);
}

#define PATCH32(b, n, off, v, st, sub)                                       \
	expect_patch32(b, n, off, v, st, sub, __LINE__)

/* ---- tests ---- */

static void test_hparams(void)
{
	struct btz_hparams hp = hp_small, big = { 4096, 64, 16, 1, 16384,
						  65536, 3, 0, 0 };
	struct btz_error err;
	size_t n;

	CHECK_EQ(btz_hparams_check(&hp, &err), BTZ_OK);
	CHECK_EQ(btz_hparams_check(&big, &err), BTZ_OK);
	CHECK_EQ(btz_hparams_tensor_bytes(&hp, &n, &err), BTZ_OK);
	CHECK_EQ(n, spec_tensor_bytes(&hp));
	hp = hp_tiny;
	CHECK_EQ(btz_hparams_tensor_bytes(&hp, &n, &err), BTZ_OK);
	CHECK_EQ(n, spec_tensor_bytes(&hp));
	if (sizeof(size_t) >= 8) {
		CHECK_EQ(btz_hparams_tensor_bytes(&big, &n, &err), BTZ_OK);
		CHECK_EQ(n, spec_tensor_bytes(&big));
	}

#define BAD(field, val, st, sub)                                             \
	do {                                                                 \
		hp = hp_small;                                               \
		hp.field = val;                                              \
		CHECK_ERR(btz_hparams_check(&hp, &err), err, st, sub);       \
		CHECK_ERR(btz_hparams_tensor_bytes(&hp, &n, &err), err, st,  \
			  sub);                                              \
	} while (0)
	BAD(d, 0, BTZ_E_LIMIT, "d = 0");
	BAD(d, 4097, BTZ_E_LIMIT, "d = 4097");
	BAD(d, 60, BTZ_E_CORRUPT, "heads = 8 does not divide d = 60");
	BAD(layers, 0, BTZ_E_LIMIT, "layers = 0");
	BAD(layers, 65, BTZ_E_LIMIT, "layers = 65");
	BAD(heads, 0, BTZ_E_LIMIT, "heads = 0");
	BAD(heads, 128, BTZ_E_LIMIT, "heads = 128");
	BAD(heads, 3, BTZ_E_CORRUPT, "heads = 3 does not divide d = 64");
	BAD(kv_heads, 0, BTZ_E_CORRUPT, "kv_heads = 0");
	BAD(kv_heads, 3, BTZ_E_CORRUPT, "kv_heads = 3 does not divide heads");
	BAD(kv_heads, 16, BTZ_E_CORRUPT, "kv_heads = 16");
	BAD(ff, 0, BTZ_E_LIMIT, "ff = 0");
	BAD(ff, 16385, BTZ_E_LIMIT, "ff = 16385");
	BAD(context, 15, BTZ_E_LIMIT, "context = 15");
	BAD(context, 65537, BTZ_E_LIMIT, "context = 65537");
	BAD(modality, 4, BTZ_E_CORRUPT, "modality = 4");
	BAD(transform, 9, BTZ_E_UNSUPPORTED, "transform = 9");
	/* Windows of whole pixels (3 bytes) and samples (2 bytes). */
	hp = hp_small;
	hp.modality = 2;
	hp.context = 64;
	CHECK_ERR(btz_hparams_check(&hp, &err), err, BTZ_E_CORRUPT,
		  "context = 64 is not a multiple of 3");
	hp.context = 66;
	CHECK_EQ(btz_hparams_check(&hp, &err), BTZ_OK);
	hp.modality = 1;
	hp.transform = BTZ_TRANSFORM_SWAP16;
	hp.context = 65;
	CHECK_ERR(btz_hparams_check(&hp, &err), err, BTZ_E_CORRUPT,
		  "context = 65 is not a multiple of 2");
#undef BAD
	/* dh = 4096 / 8 = 512 is over the 256 limit. */
	hp = big;
	hp.heads = 8;
	hp.kv_heads = 8;
	CHECK_ERR(btz_hparams_check(&hp, &err), err, BTZ_E_LIMIT,
		  "d/heads = 512");
	hp.heads = 16;
	hp.context = 16;
	CHECK_EQ(btz_hparams_check(&hp, &err), BTZ_OK);
}

static void test_roundtrip(void)
{
	struct btz_model *m = gen(&hp_small, 1), *l;
	struct btz_error err;
	uint8_t *a, *b;
	size_t na, nb;
	XXH128_canonical_t fp;
	char hex[33], want[33];

	a = save(m, &na);
	CHECK_EQ(na, 44 + 2 + strlen("random-1") + 2 + strlen("generated") +
			     16 + spec_tensor_bytes(&hp_small) + 8);
	CHECK_EQ(btz_model_load_mem(&l, a, na, &err), BTZ_OK);
	if (l == NULL) {
		fprintf(stderr, "load_mem: %s\n", err.msg);
		exit(1);
	}
	b = save(l, &nb);
	CHECK_EQ(nb, na);
	CHECK(nb == na && memcmp(a, b, na) == 0);
	CHECK(memcmp(m->fingerprint, l->fingerprint, 16) == 0);
	XXH128_canonicalFromHash(&fp, XXH3_128bits(a, na));
	CHECK(memcmp(fp.digest, l->fingerprint, 16) == 0);
	btz_fingerprint_hex(hex, l->fingerprint);
	for (int i = 0; i < 16; i++)
		sprintf(want + 2 * i, "%02x", fp.digest[i]);
	CHECK(strcmp(hex, want) == 0);
	CHECK_EQ(strlen(hex), 32);

	/* Header fields and a sample of every kind of tensor. */
	CHECK(strcmp(l->name, "random-1") == 0);
	CHECK(strcmp(l->train_data, "generated") == 0);
	CHECK_EQ(l->steps, 0);
	CHECK_EQ(l->valid_ubpb_float, 0);
	CHECK_EQ(l->valid_ubpb_int, 0);
	CHECK_EQ(l->hp.d, 64);
	CHECK_EQ(l->hp.layers, 2);
	CHECK_EQ(l->hp.heads, 8);
	CHECK_EQ(l->hp.kv_heads, 2);
	CHECK_EQ(l->hp.ff, 256);
	CHECK_EQ(l->hp.context, 64);
	CHECK_EQ(l->hp.modality, 1);
	CHECK_EQ(l->dh, 8);
	CHECK_EQ(l->exp_att[0], 65535);
	CHECK_EQ(l->exp_out[0], 1u << 22);
	CHECK_EQ(l->silu[128], 0);
	CHECK_EQ((uint64_t)(int64_t)l->silu[0], (uint64_t)(int64_t)-18);
	CHECK_EQ(l->silu[255], 997);
	CHECK_EQ(l->layers[1].rx2, 1024);
	CHECK_EQ(l->layers[1].ln2_shift, 18);
	CHECK_EQ(l->layers[1].wv[5], m->layers[1].wv[5]);
	CHECK_EQ(l->layers[1].m2[63], m->layers[1].m2[63]);
	CHECK_EQ(l->layers[0].b1[3], m->layers[0].b1[3]);
	CHECK_EQ(l->wout[256 * 64 - 1], m->wout[256 * 64 - 1]);
	/* Tensors sit where the spec puts them, little-endian. */
	CHECK_EQ(btz_get_le32(a + spec_off(l, 1, "mq") + 4 * 3),
		 (uint32_t)l->layers[1].mq[3]);
	CHECK_EQ(btz_get_le32(a + spec_off(l, 0, "ao_shift")),
		 (uint32_t)l->layers[0].ao_shift);
	CHECK_EQ(btz_get_le32(a + spec_off(l, -1, "f_shift")),
		 (uint32_t)l->f_shift);
	CHECK_EQ(btz_get_le16(a + spec_off(l, -1, "exp_att") + 2),
		 l->exp_att[1]);
	CHECK_EQ((int8_t)a[spec_off(l, 1, "w2") + 100], l->layers[1].w2[100]);
	CHECK_EQ(btz_get_le32(a + spec_off(l, 1, "ln2_shift") + 4 + 0),
		 btz_get_le64(a + na - 8) & 0xffffffffu);
	/* Every tensor is 64-byte aligned. */
	CHECK_EQ((uintptr_t)l->tok_emb % 64, 0);
	CHECK_EQ((uintptr_t)l->exp_out % 64, 0);
	CHECK_EQ((uintptr_t)l->layers[1].g2 % 64, 0);
	CHECK_EQ((uintptr_t)l->layers[0].mk % 64, 0);
	CHECK((const uint8_t *)l->layers[1].b2 >= (const uint8_t *)l->arena &&
	      (const uint8_t *)l->layers[1].b2 + 64 * 4 <=
		      (const uint8_t *)l->arena + l->arena_size);

	free(a);
	free(b);
	btz_model_free(m);
	btz_model_free(l);
	btz_model_free(NULL);
}

/* Changing the generator changes this value: update it only when the
 * change is intended (any model files made by mkmodel change with it). */
#define GOLDEN_SMALL_SEED1 UINT64_C(0x378961bfac8580c3)

static void test_generator(void)
{
	struct btz_model *m1 = gen(&hp_small, 1), *m2 = gen(&hp_small, 1);
	struct btz_model *m3 = gen(&hp_small, 2);
	uint8_t *a, *b, *c;
	size_t na, nb, nc;

	a = save(m1, &na);
	b = save(m2, &nb);
	c = save(m3, &nc);
	CHECK(na == nb && memcmp(a, b, na) == 0);
	CHECK(memcmp(m1->fingerprint, m2->fingerprint, 16) == 0);
	CHECK(memcmp(m1->fingerprint, m3->fingerprint, 16) != 0);
	CHECK_EQ(nc, na); /* "random-2" is as long as "random-1" */
	CHECK(na == nc && memcmp(a, c, na) != 0);
	/* The weights differ, not only the name. */
	CHECK(memcmp(m1->layers[0].wq, m3->layers[0].wq, 64 * 64) != 0);
	CHECK_EQ(XXH3_64bits(a, na), GOLDEN_SMALL_SEED1);

	/* No -128 anywhere, multipliers in range (the loader checks the
	 * rest when the round trip above reloads these bytes). */
	for (int i = 0; i < 257 * 64; i++)
		CHECK(m1->tok_emb[i] >= -64 && m1->tok_emb[i] <= 64);
	for (int i = 0; i < 256; i++)
		CHECK(m1->layers[1].w1[i] != -128);
	CHECK(m1->f_mul > 0 && m1->layers[0].a_mul > 0 &&
	      m1->layers[0].mh > 0);
	/* The exp tables fall as documented: by e every 8 and 32 steps. */
	CHECK(m1->exp_att[8] >= 24100 && m1->exp_att[8] <= 24120);
	CHECK(m1->exp_out[32] >= 1543000 && m1->exp_out[32] <= 1543100);
	for (int i = 1; i < 1024; i++)
		CHECK(m1->exp_out[i] <= m1->exp_out[i - 1]);
	free(a);
	free(b);
	free(c);
	btz_model_free(m1);
	btz_model_free(m2);
	btz_model_free(m3);
}

static void test_truncation_and_flips(void)
{
	struct btz_model *m = gen(&hp_tiny, 3), *l;
	struct btz_error err;
	uint8_t *a, *c;
	size_t n;
	enum btz_status st;

	a = save(m, &n);
	CHECK_EQ(load_copy(a, n, &l, &err), BTZ_OK);
	btz_model_free(l);
	for (size_t k = 0; k < n; k++) {
		st = load_copy(a, k, &l, &err);
		if (st == BTZ_OK) {
			fprintf(stderr, "truncated to %zu of %zu: accepted\n",
				k, n);
			failures++;
			btz_model_free(l);
		} else {
			CHECK(l == NULL);
		}
	}
	c = malloc(n);
	memcpy(c, a, n);
	for (size_t k = 0; k < n; k++) {
		c[k] ^= (uint8_t)(1u << (k % 8));
		st = btz_model_load_mem(&l, c, n, &err);
		if (st != (k < 8 ? BTZ_E_CORRUPT : BTZ_E_CHECKSUM)) {
			fprintf(stderr, "flip at %zu of %zu: status %d\n", k,
				n, st);
			failures++;
			btz_model_free(l);
		}
		c[k] = a[k];
	}
	CHECK_ERR(btz_model_load_mem(&l, a, n - 1, &err), err, BTZ_E_CHECKSUM,
		  "checksum mismatch");
	free(c);
	free(a);
	btz_model_free(m);
}

/* Random damage behind a valid checksum: never a crash, and whatever is
 * accepted saves back to the same bytes. */
static void test_resealed_fuzz(void)
{
	struct btz_model *m = gen(&hp_tiny, 4), *l;
	struct btz_error err;
	uint8_t *a, *c, *d;
	size_t n, nd;
	uint64_t s = 12345;
	int accepted = 0;

	a = save(m, &n);
	c = malloc(n);
	for (int it = 0; it < 3000; it++) {
		int flips = 1 + (int)((s = s * 6364136223846793005u + 1) >> 62);

		memcpy(c, a, n);
		for (int f = 0; f < flips; f++) {
			s = s * 6364136223846793005u + 1442695040888963407u;
			/* Mostly the header, where the parser branches. */
			size_t at = (s >> 40) % ((s >> 20) & 1 ? 120 : n - 8);

			c[at] ^= (uint8_t)(1u + ((s >> 8) % 255));
		}
		reseal(c, n);
		if (load_copy(c, n, &l, &err) == BTZ_OK) {
			accepted++;
			d = save(l, &nd);
			CHECK(nd == n && memcmp(c, d, n) == 0);
			free(d);
			btz_model_free(l);
		}
	}
	CHECK(accepted > 0 && accepted < 3000);
	free(c);
	free(a);
	btz_model_free(m);
}

static void test_hostile_fields(void)
{
	struct btz_model *m = gen(&hp_tiny, 5), *s = gen(&hp_small, 6), *l;
	struct btz_error err;
	uint8_t *a, *b, *c;
	size_t n, nb;

	a = save(m, &n);
	b = save(s, &nb);
	/* The header. */
	PATCH32(a, n, 8, 2, BTZ_E_UNSUPPORTED, "version 2");
	PATCH32(a, n, 8, 1u | (1u << 16), BTZ_E_CORRUPT, "reserved");
	PATCH32(a, n, 12, 5000, BTZ_E_LIMIT, "d = 5000");
	PATCH32(b, nb, 20, 3, BTZ_E_CORRUPT, "heads = 3 does not divide d = 64");
	PATCH32(b, nb, 24, 3, BTZ_E_CORRUPT, "kv_heads = 3 does not divide");
	PATCH32(a, n, 32, 15, BTZ_E_LIMIT, "context = 15");
	PATCH32(a, n, 36, 2, BTZ_E_UNSUPPORTED, "flags 0x00000002");
	PATCH32(a, n, 36, 1u << 15, BTZ_E_UNSUPPORTED, "flags 0x00008000");
	/* Bits 16-31: an attention span, below the context. */
	PATCH32(a, n, 36, 1u << 31, BTZ_E_CORRUPT,
		"attention span 524288 is not below context");
	PATCH32(a, n, 36, btz_get_le32(a + 32) / 16 << 16, BTZ_E_CORRUPT,
		"is not below context");
	PATCH32(a, n, 40, 4, BTZ_E_CORRUPT, "modality = 4");
	PATCH32(a, n, 40, 9u << 8, BTZ_E_UNSUPPORTED, "transform = 9");
	PATCH32(a, n, 40, 1u << 24, BTZ_E_CORRUPT, "reserved");
	/* Sizes that no longer match the file. */
	PATCH32(a, n, 28, 64, BTZ_E_CORRUPT, "truncated");
	PATCH32(a, n, 28, 16, BTZ_E_CORRUPT, "trailing data");
	PATCH32(a, n, 16, 2, BTZ_E_CORRUPT, "expected");
	/* Strings: name length 0, over 255, NUL inside; training data too
	 * long for the file. */
	PATCH32(a, n, 44, (btz_get_le32(a + 44) & 0xffff0000u),
		BTZ_E_CORRUPT, "name length 0");
	PATCH32(a, n, 44, (btz_get_le32(a + 44) & 0xffff0000u) | 256,
		BTZ_E_CORRUPT, "name length 256");
	PATCH32(a, n, 46, 0x00646e61u, BTZ_E_CORRUPT, "name contains a NUL");
	PATCH32(a, n, 46 + 8, 4096 | (btz_get_le32(a + 54) & 0xffff0000u),
		BTZ_E_CORRUPT, "training data length 4096");
	/* 4000 bytes of tensors read as text hold a NUL. */
	PATCH32(a, n, 46 + 8, 4000 | (btz_get_le32(a + 54) & 0xffff0000u),
		BTZ_E_CORRUPT, "training data contains a NUL");

	/* Tensor values. */
	PATCH32(a, n, spec_off(m, 0, "wk") + 4, 0x01028003u, BTZ_E_CORRUPT,
		"layer 0: wk holds -128");
	PATCH32(a, n, spec_off(m, -1, "tok_emb") + 257 * 16 - 4, 0x80000000u,
		BTZ_E_CORRUPT, "tok_emb holds -128");
	PATCH32(a, n, spec_off(m, -1, "pos_emb"), 0x80u, BTZ_E_CORRUPT,
		"pos_emb holds -128");
	PATCH32(a, n, spec_off(m, -1, "wout") + 8, 0x8000u, BTZ_E_CORRUPT,
		"wout holds -128");
	PATCH32(b, nb, spec_off(s, 1, "w2") + 400, 0x800000u, BTZ_E_CORRUPT,
		"layer 1: w2 holds -128");
	PATCH32(a, n, spec_off(m, 0, "sq"), 63, BTZ_E_CORRUPT,
		"layer 0: sq = 63 outside [0, 62]");
	PATCH32(a, n, spec_off(m, 0, "ln2_shift"), UINT32_MAX, BTZ_E_CORRUPT,
		"ln2_shift = -1");
	PATCH32(a, n, spec_off(m, -1, "f_shift"), 99, BTZ_E_CORRUPT,
		"f_shift = 99");
	PATCH32(a, n, spec_off(m, 0, "ao_shift"), 8, BTZ_E_CORRUPT,
		"ao_shift = 8");
	PATCH32(a, n, spec_off(m, 0, "rx2"), 65537, BTZ_E_CORRUPT,
		"rx2 = 65537");
	PATCH32(a, n, spec_off(m, 0, "rx"), 0x80000000u, BTZ_E_CORRUPT,
		"rx = -2147483648");
	PATCH32(a, n, spec_off(m, 0, "mq") + 4, UINT32_MAX, BTZ_E_CORRUPT,
		"mq[1] = -1 outside [0, 2^31)");
	PATCH32(b, nb, spec_off(s, 1, "m2") + 4 * 63, 0x80000000u,
		BTZ_E_CORRUPT, "layer 1: m2[63]");
	PATCH32(a, n, spec_off(m, 0, "mh"), 0xfffffff0u, BTZ_E_CORRUPT, "mh");
	PATCH32(a, n, spec_off(m, -1, "exp_out"), 0, BTZ_E_CORRUPT,
		"exp_out[0] is 0");
	PATCH32(a, n, spec_off(m, -1, "exp_out") + 4 * 5, (1u << 22) + 1,
		BTZ_E_CORRUPT, "exp_out[5] = 4194305");
	PATCH32(a, n, spec_off(m, -1, "exp_att"),
		btz_get_le32(a + spec_off(m, -1, "exp_att")) & 0xffff0000u,
		BTZ_E_CORRUPT, "exp_att[0] is 0");
	/* Free fields stay free. */
	PATCH32(a, n, spec_off(m, 0, "b2"), 0x80000000u, BTZ_OK, "");
	PATCH32(a, n, spec_off(m, 0, "sq"), 62, BTZ_OK, "");
	PATCH32(a, n, spec_off(m, 0, "rx"), 65536, BTZ_OK, "");
	PATCH32(a, n, spec_off(m, 0, "m1"), INT32_MAX, BTZ_OK, "");

	/* Trailing garbage behind a valid checksum. */
	c = malloc(n + 5);
	memcpy(c, a, n - 8);
	memcpy(c + n - 8, "junk!", 5);
	reseal(c, n + 5);
	CHECK_ERR(load_copy(c, n + 5, &l, &err), err, BTZ_E_CORRUPT,
		  "trailing data");
	/* One tensor byte short, resealed. */
	memcpy(c, a, n - 9);
	reseal(c, n - 1);
	CHECK_ERR(load_copy(c, n - 1, &l, &err), err, BTZ_E_CORRUPT,
		  "truncated");
	/* A name running past the end of a short file. */
	memcpy(c, a, 72);
	btz_put_le16(c + 44, 200);
	reseal(c, 80);
	CHECK_ERR(load_copy(c, 80, &l, &err), err, BTZ_E_CORRUPT,
		  "truncated name");
	/* Not a model at all. */
	memcpy(c, a, n);
	c[1] = 'X';
	CHECK_ERR(load_copy(c, n, &l, &err), err, BTZ_E_CORRUPT, "magic");
	CHECK_ERR(load_copy(c, 0, &l, &err), err, BTZ_E_CORRUPT, "magic");
	free(c);
	free(a);
	free(b);
	btz_model_free(m);
	btz_model_free(s);
}

static void test_save_rejects(void)
{
	struct btz_model *m = gen(&hp_tiny, 7);
	struct btz_error err;
	uint8_t *b;
	size_t n;
	char *name = m->name;

	m->layers[0].sq = 63;
	CHECK_ERR(btz_model_save_mem(m, &b, &n, &err), err, BTZ_E_ARG,
		  "invalid model: layer 0: sq = 63");
	CHECK(b == NULL);
	m->layers[0].sq = 30;
	((int8_t *)m->arena)[5] = -128; /* inside tok_emb */
	CHECK_ERR(btz_model_save_mem(m, &b, &n, &err), err, BTZ_E_ARG,
		  "tok_emb holds -128");
	((int8_t *)m->arena)[5] = 0;
	m->name = (char *)"";
	CHECK_ERR(btz_model_save_mem(m, &b, &n, &err), err, BTZ_E_ARG, "name");
	m->name = name;
	m->hp.kv_heads = 3;
	CHECK_ERR(btz_model_save_mem(m, &b, &n, &err), err, BTZ_E_CORRUPT,
		  "kv_heads = 3");
	m->hp.kv_heads = 1;
	CHECK_EQ(btz_model_save_mem(m, &b, &n, &err), BTZ_OK);
	free(b);
	btz_model_free(m);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int k = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			k++;
	closedir(d);
	return k;
}

static void test_files(void)
{
	char dir[] = "/tmp/test_btm.XXXXXX", path[64], bad[96];
	struct btz_model *m = gen(&hp_tiny, 8), *l;
	struct btz_error err;
	FILE *f;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(99);
	}
	snprintf(path, sizeof(path), "%s/m.btm", dir);
	CHECK_EQ(btz_model_save(m, path, &err), BTZ_OK);
	CHECK_EQ(count_entries(dir), 1); /* no temporary left behind */
	CHECK_EQ(btz_model_load(&l, path, &err), BTZ_OK);
	CHECK(l != NULL && memcmp(l->fingerprint, m->fingerprint, 16) == 0);
	btz_model_free(l);
	/* Saving again replaces the file. */
	CHECK_EQ(btz_model_save(m, path, &err), BTZ_OK);
	CHECK_EQ(count_entries(dir), 1);

	/* A damaged file's message names it. */
	f = fopen(path, "r+b");
	CHECK(f != NULL);
	if (f != NULL) {
		fseek(f, 100, SEEK_SET);
		fputc(0x55 ^ 0xaa, f);
		fclose(f);
	}
	CHECK_ERR(btz_model_load(&l, path, &err), err, BTZ_E_CHECKSUM, path);
	CHECK(strstr(err.msg, "checksum mismatch") != NULL);
	f = fopen(path, "wb");
	if (f != NULL)
		fclose(f);
	CHECK_ERR(btz_model_load(&l, path, &err), err, BTZ_E_CORRUPT, path);
	unlink(path);

	snprintf(bad, sizeof(bad), "%s/missing.btm", dir);
	CHECK_ERR(btz_model_load(&l, bad, &err), err, BTZ_E_IO, bad);
	CHECK(l == NULL);
	CHECK_ERR(btz_model_load(&l, dir, &err), err, BTZ_E_IO, dir);
	snprintf(bad, sizeof(bad), "%s/no/such/dir.btm", dir);
	CHECK_ERR(btz_model_save(m, bad, &err), err, BTZ_E_IO, bad);
	CHECK_EQ(count_entries(dir), 0);
	rmdir(dir);
	btz_model_free(m);
}

/* Fills buf with n samples of a tone of period ~20 samples (a turn of
 * ~0.32 radian) of amplitude 12000, plus, when two, one of ~86 samples
 * and 8000, from fixed-point recurrences, so that the tests need no
 * floating point. */
static void tones(uint8_t *buf, size_t n, int two)
{
	int64_t c = 12000, s = 0, c2 = two ? 8000 : 0, s2 = 0;

	for (size_t i = 0; i < n; i++) {
		int16_t v = (int16_t)(c + c2);

		c -= s * 1300 / 4096;
		s += c * 1300 / 4096;
		c2 -= s2 * 300 / 4096;
		s2 += c2 * 300 / 4096;
		buf[2 * i] = (uint8_t)v;
		buf[2 * i + 1] = (uint8_t)((uint16_t)v >> 8);
	}
}

/* The summed magnitudes of the samples orig[from, to) and of their
 * residuals in buf (zigzag order unless t is lms). */
static void magnitudes(unsigned t, const uint8_t *orig, const uint8_t *buf,
		       size_t from, size_t to, uint64_t *sig, uint64_t *res)
{
	*sig = *res = 0;
	for (size_t i = from; i < to; i++) {
		int16_t x = (int16_t)(orig[2 * i] | orig[2 * i + 1] << 8);
		uint16_t u = (uint16_t)(buf[2 * i] << 8 | buf[2 * i + 1]);
		int r = t != BTZ_TRANSFORM_LMS ? (u & 1 ? -(u >> 1) - 1 : u >> 1)
					       : (int16_t)u;

		*sig += (uint64_t)(x < 0 ? -x : x);
		*res += (uint64_t)(r < 0 ? -r : r);
	}
}

/* The LMS transforms predict: a tone's residual is a tiny part of the
 * tone once the filters have adapted; the residual comes high byte
 * first; full-scale square waves (the clamps' worst case; for lpcz they
 * drive the coefficients to theirs) and noise come back exactly, at
 * every length up to a few of lpcz's solves and over lengths long enough
 * to drive the weights. */
static void test_lms(unsigned t)
{
	enum { N = 1 << 14 };
	static uint8_t buf[2 * N], orig[2 * N];
	uint64_t seed = 7, sig, res;

	tones(buf, N, 0);
	memcpy(orig, buf, sizeof(buf));
	btz_transform_forward(t, buf, sizeof(buf), NULL);
	/* The first residual is the first sample, 12000: high byte first,
	 * doubled in zigzag order. */
	CHECK_EQ(buf[0] << 8 | buf[1], t == BTZ_TRANSFORM_LMS ? 12000 : 24000);
	magnitudes(t, orig, buf, N / 2, N, &sig, &res);
	CHECK(res * 50 < sig);
	btz_transform_inverse(t, buf, sizeof(buf), NULL);
	CHECK(memcmp(buf, orig, sizeof(buf)) == 0);
	for (int kind = 0; kind < 5; kind++) {
		for (size_t i = 0; i < sizeof(buf); i += 2) {
			uint16_t v = kind == 0 ? ((i / 2) % 3 ? 0x7fff : 0x8000)
				     : kind == 1 ? ((i / 64) % 2 ? 0x7fff : 0x8000)
				     : kind == 2 ? ((i / 2) % 5 < 2 ? 0x7fff : 0x8000)
				     : kind == 3 ? ((i / 130) % 2 ? 0x7fff : 0x8001)
						 : (uint16_t)btz_splitmix64(&seed);

			orig[i] = (uint8_t)v;
			orig[i + 1] = (uint8_t)(v >> 8);
		}
		for (size_t n = 2;; n = n * 3 + 2) {
			if (n > sizeof(buf))
				n = sizeof(buf);
			memcpy(buf, orig, n);
			btz_transform_forward(t, buf, n, NULL);
			btz_transform_inverse(t, buf, n, NULL);
			CHECK(memcmp(buf, orig, n) == 0);
			if (n == sizeof(buf))
				break;
		}
	}
}

/* lpcz's linear predictor: two tones at once, which the LMS cascade
 * alone follows only loosely, leave lpcz a residual over 1,000 times
 * smaller than the signal once its coefficients are solved (lmsz: about
 * 120 times); it is cut into chunks of 128 windows (lmsz: 64). */
static void test_lpc(void)
{
	enum { N = 1 << 14 };
	static uint8_t buf[2 * N], orig[2 * N];
	uint64_t res[2], sig;

	for (int k = 0; k < 2; k++) {
		unsigned t = k ? BTZ_TRANSFORM_LPCZ : BTZ_TRANSFORM_LMSZ;

		tones(buf, N, 1);
		memcpy(orig, buf, sizeof(buf));
		btz_transform_forward(t, buf, sizeof(buf), NULL);
		magnitudes(t, orig, buf, N / 2, N, &sig, &res[k]);
	}
	CHECK(res[0] * 50 < sig);
	CHECK(res[0] * 500 > sig);
	CHECK(res[1] * 1000 < sig);
	btz_transform_inverse(BTZ_TRANSFORM_LPCZ, buf, sizeof(buf), NULL);
	CHECK(memcmp(buf, orig, sizeof(buf)) == 0);
	/* Its predictors restart at each chunk: chunks of 128 windows. */
	CHECK_EQ(btz_transform_chunk(BTZ_TRANSFORM_LPCZ, 0, 1024), 131072);
	CHECK_EQ(btz_transform_chunk(BTZ_TRANSFORM_LMSZ, 0, 1024), 65536);
	CHECK_EQ(btz_transform_chunk_windows(BTZ_TRANSFORM_LPCZ), 128);
	CHECK_EQ(btz_transform_chunk_windows(BTZ_TRANSFORM_LMSZ), 64);
}

/* The med transform: a hand-worked 2x2 image; a smooth image (a plane in
 * each of G, R - G, B - G, each sloping up in x and down in y: MED
 * predicts such a plane exactly) leaves nothing but its first row and
 * column, and the chunk's rows decide which those are; noise comes back
 * for every width and column, chunks that start mid-row included (their
 * first pixel with a row above has no above-left inside the chunk: under
 * ASan a read before the buffer fails here). */
static void test_med(void)
{
	enum { W = 40, H = 30, N = 3 * W * H };
	static uint8_t buf[N], orig[N];
	/* (R, G, B): left (30, 20, 10), above (60, 50, 10), above-left
	 * (40, 40, 40), then (90, 80, 70). */
	uint8_t s[12] = { 40, 40, 40, 30, 20, 10, 60, 50, 10, 90, 80, 70 };
	struct btz_rows r = { 2, 0, 0 }, none = { 0, 0, 0 };
	uint64_t seed = 5;
	size_t nz = 0;

	btz_transform_forward(BTZ_TRANSFORM_MED, s, 12, &r);
	/* Pixel 0: nothing known, its planes (40, 0, 0). Pixel 1: from the
	 * left, G 20 - 40, R - G 10 - 0, B - G -10 - 0. Pixel 2: from
	 * above, 50 - 40, 10 - 0, -40 - 0. Pixel 3: G's a, b, c are 20, 50,
	 * 40, between them, a + b - c = 30; R - G's 10, 10, 0, above both,
	 * min 10; B - G's -10, -40, 0, above both, min -40. */
	uint8_t want[12] = { 40, 0, 0, 236, 10, 246, 10, 10, 216, 50, 0, 30 };
	CHECK(memcmp(s, want, 12) == 0);
	btz_transform_inverse(BTZ_TRANSFORM_MED, s, 12, &r);
	CHECK(s[9] == 90 && s[10] == 80 && s[11] == 70 && s[3] == 30);

	for (size_t k = 0; k < W * H; k++) {
		size_t x = k % W, y = k / W;

		int g = 100 + (int)x - 2 * (int)y;

		buf[3 * k] = (uint8_t)(g + 30 + (int)x - (int)y);
		buf[3 * k + 1] = (uint8_t)g;
		buf[3 * k + 2] = (uint8_t)(g + 20 - (int)x + (int)y);
	}
	memcpy(orig, buf, N);
	r = (struct btz_rows){ W, 0, 0 };
	btz_transform_forward(BTZ_TRANSFORM_MED, buf, N, &r);
	for (size_t k = W + 1; k < W * H; k++)
		if (k % W != 0)
			nz += buf[3 * k] || buf[3 * k + 1] || buf[3 * k + 2];
	CHECK_EQ(nz, 0);
	btz_transform_inverse(BTZ_TRANSFORM_MED, buf, N, &r);
	CHECK(memcmp(buf, orig, N) == 0);
	/* Without rows the image is one long row: every pixel after the
	 * first is coded against its left neighbour, which the planes' y
	 * steps break at each row start. */
	btz_transform_forward(BTZ_TRANSFORM_MED, buf, N, &none);
	for (size_t k = 1; k < W * H; k++)
		nz += buf[3 * k] || buf[3 * k + 1] || buf[3 * k + 2];
	CHECK(nz >= H - 1);
	btz_transform_inverse(BTZ_TRANSFORM_MED, buf, N, NULL);
	CHECK(memcmp(buf, orig, N) == 0);

	for (uint32_t w = 1; w <= 50; w += 7)
		for (uint32_t x0 = 0; x0 < w; x0 += 3) {
			size_t n = 3 * (btz_splitmix64(&seed) % (W * H - 1)) + 2;

			for (size_t i = 0; i < n + 3; i++)
				orig[i] = buf[i] = (uint8_t)btz_splitmix64(&seed);
			/* The chunk starts a pixel into buf, and that pixel
			 * changes between the two: neither may read it. */
			r = (struct btz_rows){ w, x0, 0 };
			btz_transform_forward(BTZ_TRANSFORM_MED, buf + 3, n, &r);
			buf[0] ^= 0x55;
			btz_transform_inverse(BTZ_TRANSFORM_MED, buf + 3, n, &r);
			CHECK(memcmp(buf + 3, orig + 3, n) == 0);
		}
	CHECK(btz_transform_uses_rows(BTZ_TRANSFORM_MED));
	CHECK(!btz_transform_uses_rows(BTZ_TRANSFORM_GREEN));
}

/* medt is med, then the pixels in tiles: pixel i of its output is pixel
 * at(i) of med's, checked at the corners of the order (a 40-pixel-wide
 * chunk of 34 whole rows and 5 pixels: two bands of 16 rows, two tiles of
 * 16 columns each, the 8 columns right of them, 2 rows and the partial
 * row left over; then the same starting 10 pixels into a row, whose rest
 * is left over too); the tile and chunk shapes; forward then inverse is
 * the identity for every width and column. */
static void test_medt(void)
{
	enum { W = 40, NP = W * 34 + 5, N = 3 * NP };
	static uint8_t buf[N + 3], orig[N + 3], med[N];
	static const size_t at0[][2] = {
		{ 0, 0 },	  { 15, 15 },	  { 16, W },
		{ 255, 15 * W + 15 }, { 256, 16 },  { 512, 16 * W },
		{ 1023, 31 * W + 31 }, { 1024, 32 }, { 1031, 39 },
		{ 1032, W + 32 },	  { NP - 1, NP - 1 },
	};
	static const size_t at10[][2] = {
		{ 0, 30 }, { 16, 70 }, { 1023, 30 + 31 * W + 31 },
		{ 1024, 0 }, { 1054, 62 }, { NP - 1, NP - 1 },
	};
	uint64_t seed = 17;

	for (size_t i = 0; i < N; i++)
		orig[i] = buf[i] = (uint8_t)btz_splitmix64(&seed);
	for (int k = 0; k < 2; k++) {
		struct btz_rows r = { W, k ? 10 : 0, 0 };
		size_t n = k ? sizeof(at10) / sizeof(at10[0])
			     : sizeof(at0) / sizeof(at0[0]);

		memcpy(med, orig, N);
		btz_transform_forward(BTZ_TRANSFORM_MED, med, N, &r);
		CHECK_EQ(btz_transform_forward(BTZ_TRANSFORM_MEDT, buf, N, &r),
			 0);
		for (size_t j = 0; j < n; j++) {
			const size_t *a = k ? at10[j] : at0[j];

			CHECK(memcmp(buf + 3 * a[0], med + 3 * a[1], 3) == 0);
		}
		CHECK_EQ(btz_transform_inverse(BTZ_TRANSFORM_MEDT, buf, N, &r),
			 0);
		CHECK(memcmp(buf, orig, N) == 0);
	}
	CHECK_EQ(btz_tile_rows(W, 34), 16);
	CHECK_EQ(btz_tile_rows(W, 15), 8);
	CHECK_EQ(btz_tile_rows(W, 3), 0);
	CHECK_EQ(btz_tile_rows(128, 3), 2);
	CHECK_EQ(btz_tile_rows(W, 0), 0);
	CHECK_EQ(btz_tile_rows(16, 16), 16);
	CHECK_EQ(btz_tile_rows(15, 16), 0);
	CHECK_EQ(btz_tile_rows(64, 4), 4);
	CHECK_EQ(btz_tile_rows(63, 4), 0);
	/* 16 rows of 768 pixels fill 48 of the 64 windows of 768 bytes that
	 * other chunks hold, 32 rows of 512 all of them; a band of 16 rows
	 * of 3,072 or 4,000 pixels is a chunk of its own (192 and 250
	 * windows), one of 6,000 pixels would exceed 256: 8 rows; a row
	 * over 256 windows holds no tile, nor does a layout not in tiles. */
	CHECK_EQ(btz_transform_chunk(BTZ_TRANSFORM_MEDT, 768, 768), 36864);
	CHECK_EQ(btz_transform_chunk(BTZ_TRANSFORM_MEDT, 512, 768), 49152);
	CHECK_EQ(btz_transform_chunk(BTZ_TRANSFORM_MEDT, 3072, 768), 147456);
	CHECK_EQ(btz_transform_chunk(BTZ_TRANSFORM_MEDT, 4000, 768), 192000);
	CHECK_EQ(btz_transform_chunk(BTZ_TRANSFORM_MEDT, 6000, 768), 144000);
	CHECK_EQ(btz_transform_chunk(BTZ_TRANSFORM_MEDT, 70000, 768), 49152);
	CHECK_EQ(btz_transform_chunk(BTZ_TRANSFORM_MEDT, 0, 768), 49152);
	CHECK_EQ(btz_transform_chunk(BTZ_TRANSFORM_MED, 768, 768), 49152);
	CHECK_EQ(btz_transform_chunk_windows(BTZ_TRANSFORM_MEDT), 256);
	CHECK_EQ(btz_transform_chunk_windows(BTZ_TRANSFORM_MED), 64);
	for (unsigned t = BTZ_TRANSFORM_MEDT; t <= BTZ_TRANSFORM_MIXT;
	     t += BTZ_TRANSFORM_MIXT - BTZ_TRANSFORM_MEDT)
		for (uint32_t w = 1; w <= 70; w += 3)
			for (uint32_t x0 = 0; x0 < w; x0 += 5) {
				size_t n = 3 * (btz_splitmix64(&seed) % NP) + 2;
				struct btz_rows r = { w, x0, 0 };

				for (size_t i = 0; i < n + 3; i++)
					orig[i] = buf[i] =
						(uint8_t)btz_splitmix64(&seed);
				CHECK_EQ(btz_transform_forward(t, buf + 3, n, &r), 0);
				buf[0] ^= 0x55;
				CHECK_EQ(btz_transform_inverse(t, buf + 3, n, &r), 0);
				CHECK(memcmp(buf + 3, orig + 3, n) == 0);
			}
	CHECK(btz_transform_uses_rows(BTZ_TRANSFORM_MEDT));
}

/* mixt: the blend weighs its predictions by their recent errors. On an
 * image whose planes all slope up in x and in y, MED errs everywhere (it
 * takes the smaller neighbour), while W + NE - N and N + NE - NNE are
 * exact: mixt, weighing them far above the rest, leaves nothing inside
 * the image past its first rows and short of its last two columns (the
 * last has no NE, which its right neighbour then remembers as those two
 * predictions' error). 10 pixels a row hold no tile, so the
 * bytes stay in pixel order. Its chunks are cut in bands as medt's. */
static void test_mixt(void)
{
	enum { W = 10, H = 12, N = 3 * W * H };
	static uint8_t buf[N], med[N];
	struct btz_rows r = { W, 0, 0 };
	int med_left = 0, mix_left = 0;

	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++) {
			uint8_t *q = buf + 3 * (y * W + x);

			q[1] = (uint8_t)(20 + 3 * x + 5 * y);	/* G */
			q[0] = (uint8_t)(q[1] + 10 + 2 * x + y); /* R - G */
			q[2] = (uint8_t)(q[1] + 1 + x + 4 * y);	/* B - G */
		}
	memcpy(med, buf, N);
	CHECK_EQ(btz_transform_forward(BTZ_TRANSFORM_MED, med, N, &r), 0);
	CHECK_EQ(btz_transform_forward(BTZ_TRANSFORM_MIXT, buf, N, &r), 0);
	for (int y = 3; y < H; y++)
		for (int x = 1; x < W - 2; x++)
			for (int i = 0; i < 3; i++) {
				med_left += med[3 * (y * W + x) + i] != 0;
				mix_left += buf[3 * (y * W + x) + i] != 0;
			}
	CHECK_EQ(med_left, 3 * (H - 3) * (W - 3));
	CHECK_EQ(mix_left, 0);
	CHECK_EQ(btz_transform_inverse(BTZ_TRANSFORM_MIXT, buf, N, &r), 0);
	CHECK_EQ(buf[1], 20);
	CHECK_EQ(buf[3 * (H * W - 1) + 1], (uint8_t)(20 + 3 * (W - 1) + 5 * (H - 1)));
	CHECK_EQ(btz_transform_chunk(BTZ_TRANSFORM_MIXT, 768, 768), 36864);
	CHECK_EQ(btz_transform_chunk(BTZ_TRANSFORM_MIXT, 3072, 768), 147456);
	CHECK_EQ(btz_transform_chunk_windows(BTZ_TRANSFORM_MIXT), 256);
	CHECK(btz_transform_uses_rows(BTZ_TRANSFORM_MIXT));
}

/* Layout transforms: known values, and forward then inverse is the
 * identity at every length (a trailing partial pixel or sample is kept). */
static void test_transforms(void)
{
	uint8_t a[3] = { 1, 2, 3 }, g[4] = { 10, 20, 30, 40 };
	uint8_t buf[64], orig[64];
	uint64_t seed = 99;

	btz_transform_forward(BTZ_TRANSFORM_SWAP16, a, 3, NULL);
	CHECK(a[0] == 2 && a[1] == 1 && a[2] == 3);
	btz_transform_forward(BTZ_TRANSFORM_GREEN, g, 4, NULL);
	CHECK(g[0] == 20 && g[1] == 246 && g[2] == 10 && g[3] == 40);
	for (unsigned t = 0; t <= BTZ_TRANSFORM_MAX; t++) {
		CHECK(btz_transform_name(t) != NULL);
		CHECK_EQ(btz_transform_parse(btz_transform_name(t)), t);
		for (size_t n = 0; n <= sizeof(buf); n++) {
			for (size_t i = 0; i < n; i++)
				orig[i] = buf[i] =
					(uint8_t)btz_splitmix64(&seed);
			btz_transform_forward(t, buf, n, NULL);
			btz_transform_inverse(t, buf, n, NULL);
			CHECK(memcmp(buf, orig, n) == 0);
		}
	}
	test_lms(BTZ_TRANSFORM_LMS);
	test_lms(BTZ_TRANSFORM_LMSZ);
	test_lms(BTZ_TRANSFORM_LPCZ);
	test_lpc();
	test_med();
	test_medt();
	test_mixt();
	CHECK(btz_transform_parse("tiles") == -1);
	CHECK(btz_transform_name(BTZ_TRANSFORM_MAX + 1) == NULL);
}

int main(void)
{
	test_transforms();
	test_hparams();
	test_roundtrip();
	test_generator();
	test_truncation_and_flips();
	test_resealed_fuzz();
	test_hostile_fields();
	test_save_rejects();
	test_files();
	if (failures) {
		fprintf(stderr, "test_btm: %d failures\n", failures);
		return 1;
	}
	return 0;
}
