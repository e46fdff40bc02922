/* Whole writes and atomic file replacement. */
#include "common/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum btz_status btz_write_all(int fd, const void *p, size_t n,
			      struct btz_error *err)
{
	const unsigned char *b = p;

	while (n > 0) {
		ssize_t k = write(fd, b, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return btz_fail(err, BTZ_E_IO, "write failed: %s",
					strerror(k < 0 ? errno : EIO));
		b += k;
		n -= (size_t)k;
	}
	return BTZ_OK;
}

enum btz_status btz_file_write_atomic(const char *path, const void *p,
				      size_t n, struct btz_error *err)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	char *tmp = malloc(strlen(path) + 16);
	enum btz_status st = BTZ_OK;
	mode_t um;
	int fd;

	if (tmp == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	/* A hidden name beside the target keeps the rename on one file
	 * system. */
	sprintf(tmp, "%.*s.%s.XXXXXX", (int)dirlen, path, path + dirlen);
	fd = mkstemp(tmp);
	if (fd < 0) {
		st = btz_fail(err, BTZ_E_IO, "%s: cannot create: %s", path,
			      strerror(errno));
		goto out;
	}
	um = umask(0);
	umask(um);
	if (fchmod(fd, 0666 & ~um) != 0)
		st = btz_fail(err, BTZ_E_IO, "%s: %s", path, strerror(errno));
	if (st == BTZ_OK && btz_write_all(fd, p, n, err) != BTZ_OK)
		st = btz_fail_prefix(err, "%s", path);
	if (st == BTZ_OK && fsync(fd) != 0)
		st = btz_fail(err, BTZ_E_IO, "%s: cannot write: %s", path,
			      strerror(errno));
	if (close(fd) != 0 && st == BTZ_OK)
		st = btz_fail(err, BTZ_E_IO, "%s: cannot write: %s", path,
			      strerror(errno));
	if (st == BTZ_OK && rename(tmp, path) != 0)
		st = btz_fail(err, BTZ_E_IO, "%s: cannot rename into place: %s",
			      path, strerror(errno));
	if (st != BTZ_OK)
		unlink(tmp);
out:
	free(tmp);
	return st;
}
