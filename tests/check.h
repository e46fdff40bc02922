/* Assertions for the C unit tests: each failure prints where, what, and
 * both values, and is counted; main() returns 1 if any failed. */
#ifndef BTZ_TESTS_CHECK_H
#define BTZ_TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>

static int failures;

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n",         \
				__FILE__, __LINE__, #cond);                  \
			failures++;                                          \
		}                                                            \
	} while (0)

#define CHECK_EQ(a, b)                                                       \
	do {                                                                 \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);             \
		if (a_ != b_) {                                              \
			fprintf(stderr, "%s:%d: %s = %" PRIu64               \
				" (0x%016" PRIx64 "), expected %s = %"       \
				PRIu64 " (0x%016" PRIx64 ")\n", __FILE__,    \
				__LINE__, #a, a_, a_, #b, b_, b_);           \
			failures++;                                          \
		}                                                            \
	} while (0)

#endif
