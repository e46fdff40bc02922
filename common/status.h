/* Status codes and the error record that library code fills in.
 * Library functions never print or exit: they return a status and leave a
 * message in a struct btz_error; only the tools in archiver/ talk to users. */
#ifndef BTZ_COMMON_STATUS_H
#define BTZ_COMMON_STATUS_H

#include <stdarg.h>

enum btz_status {
	BTZ_OK = 0,
	BTZ_E_NOMEM,       /* allocation failed */
	BTZ_E_IO,          /* read, write or seek failed (errno in message) */
	BTZ_E_CORRUPT,     /* data violates the format: truncated, bit-flipped, hostile */
	BTZ_E_CHECKSUM,    /* a checksum did not match */
	BTZ_E_UNSUPPORTED, /* valid but needs a feature this build lacks */
	BTZ_E_LIMIT,       /* a size exceeds a documented limit */
	BTZ_E_ARG,         /* caller passed an invalid argument */
	BTZ_E_BUF,         /* output buffer too small (callers use it to fall back) */
	BTZ_E_MODEL,       /* required model missing or wrong */
};

#define BTZ_ERROR_MAX 768

struct btz_error {
	enum btz_status status;
	char msg[BTZ_ERROR_MAX];
};

/* Records status and a printf-style message in err (which may be NULL);
 * returns status so callers can write `return btz_fail(err, ...)`. */
enum btz_status btz_fail(struct btz_error *err, enum btz_status status,
			 const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with more context ("member x: chunk 3: ..."). */
enum btz_status btz_fail_prefix(struct btz_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

const char *btz_status_str(enum btz_status status);

#define BTZ_TRY(expr)                                                         \
	do {                                                                  \
		enum btz_status btz_try_s_ = (expr);                          \
		if (btz_try_s_ != BTZ_OK)                                     \
			return btz_try_s_;                                    \
	} while (0)

#endif
