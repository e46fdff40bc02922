/* Writing files: every byte or an error, and whole files replaced
 * atomically (a temporary beside the target, renamed into place). */
#ifndef BTZ_COMMON_FILE_H
#define BTZ_COMMON_FILE_H

#include <stddef.h>

#include "common/status.h"

/* write(2) until done, retrying on EINTR. */
enum btz_status btz_write_all(int fd, const void *p, size_t n,
			      struct btz_error *err);

/* Writes p[0, n) as path: readers see the old file or the whole new one,
 * and an error leaves no partial file. Messages name the path. */
enum btz_status btz_file_write_atomic(const char *path, const void *p,
				      size_t n, struct btz_error *err);

#endif
