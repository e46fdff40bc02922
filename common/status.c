/* Status strings and the error record helpers. */
#include "common/status.h"

#include <stdio.h>
#include <string.h>

enum btz_status btz_fail(struct btz_error *err, enum btz_status status,
			 const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return status;
	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return status;
}

enum btz_status btz_fail_prefix(struct btz_error *err, const char *fmt, ...)
{
	char out[BTZ_ERROR_MAX];
	size_t n, m;
	va_list ap;

	if (err == NULL)
		return BTZ_E_ARG;
	va_start(ap, fmt);
	vsnprintf(out, sizeof(out), fmt, ap);
	va_end(ap);
	/* Truncation is fine for a message; overflow is not. */
	n = strlen(out);
	if (n + 2 < sizeof(out)) {
		memcpy(out + n, ": ", 2);
		n += 2;
	}
	m = strnlen(err->msg, sizeof(err->msg) - 1);
	if (m > sizeof(out) - 1 - n)
		m = sizeof(out) - 1 - n;
	memcpy(out + n, err->msg, m);
	out[n + m] = '\0';
	memcpy(err->msg, out, sizeof(out));
	return err->status;
}

const char *btz_status_str(enum btz_status status)
{
	/* No default: the compiler warns when a new status lacks words. */
	switch (status) {
	case BTZ_OK: return "success";
	case BTZ_E_NOMEM: return "out of memory";
	case BTZ_E_IO: return "input/output error";
	case BTZ_E_CORRUPT: return "corrupt data";
	case BTZ_E_CHECKSUM: return "checksum mismatch";
	case BTZ_E_UNSUPPORTED: return "unsupported feature";
	case BTZ_E_LIMIT: return "size limit exceeded";
	case BTZ_E_ARG: return "invalid argument";
	case BTZ_E_BUF: return "output buffer too small";
	case BTZ_E_MODEL: return "model missing or mismatched";
	}
	return "unknown status";
}
