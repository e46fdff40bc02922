/* libFuzzer target for the unpacker: any bytes, treated as an archive,
 * are opened, listed and fully verified exactly as btzunpack -t does.
 * It must never crash, hang or leak, whatever the input. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "archiver/extract.h"
#include "model/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Model files: load, and if accepted, run the engine over a few
 * positions, so that any file the loader accepts is safe to run. */
static void fuzz_model(const uint8_t *data, size_t size)
{
	struct btz_model *m;
	struct btz_engine *e;
	struct btz_error err;
	uint32_t freq[4][256], win[4] = { 0, 0, 0, 0 }, pos[4] = { 0, 1, 2, 3 };
	uint16_t tok[4] = { BTZ_BTM_START, 'a', 'b', 'c' };

	if (btz_model_load_mem(&m, data, size, &err) != BTZ_OK)
		return;
	if (m->hp.d * (uint64_t)m->hp.context <= (1u << 20) &&
	    btz_engine_create(&e, m, 1, 4, &err) == BTZ_OK) {
		size_t n = m->hp.context < 4 ? m->hp.context : 4;

		btz_engine_rows(e, n, tok, win, pos, freq, NULL, &err);
		btz_engine_free(e);
	}
	btz_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct btz_pool *pool;
	struct btz_methods ms;
	struct btz_reader r;
	struct btz_error err;
	size_t names = 0;
	int fd;

	if (size >= 4 && memcmp(data, "\x89" "BTM", 4) == 0) {
		fuzz_model(data, size);
		return 0;
	}
	if (pool == NULL)
		pool = btz_pool_create(1);
	fd = memfd_create("fuzz", 0);
	if (fd < 0 || pool == NULL)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	btz_methods_init(&ms);
	if (btz_reader_open(&r, fd, &err) == BTZ_OK) {
		/* What -l touches. */
		for (size_t i = 0; i < r.ix.nmembers; i++)
			names += strlen(r.ix.members[i].path);
		btz_archive_verify(&r, &ms, pool, 3, &err);
	}
	btz_reader_free(&r);
	close(fd);
	return names == SIZE_MAX;
}
