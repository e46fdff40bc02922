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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct btz_pool *pool;
	struct btz_methods ms;
	struct btz_reader r;
	struct btz_error err;
	size_t names = 0;
	int fd;

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
