/* Guessing a member's modality from its first bytes. */
#ifndef BTZ_ARCHIVER_MODALITY_H
#define BTZ_ARCHIVER_MODALITY_H

#include <stddef.h>
#include <stdint.h>

#include "format/btz.h"

/* How many leading bytes the guess looks at. */
#define BTZ_SNIFF_SIZE 65536

/* head holds the first n bytes; complete says whether that is the whole
 * file (so a multi-byte character cut at the end is an error). */
enum btz_modality btz_modality_guess(const uint8_t *head, size_t n,
				     int complete);
int btz_modality_parse(const char *s, enum btz_modality *m);

#endif
