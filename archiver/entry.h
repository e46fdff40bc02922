/* Converting between libarchive's entries and btz members, and making
 * stored names relative as tar does. */
#ifndef BTZ_ARCHIVER_ENTRY_H
#define BTZ_ARCHIVER_ENTRY_H

#include <archive_entry.h>

#include "format/btz.h"

/* Fills m from e (pointers into e or into the returned strings); returns
 * 0, or -1 with *why set for entries btz cannot store (sockets, FIFOs,
 * devices). The path is made relative: see btz_entry_clean_path. */
int btz_entry_to_member(struct archive_entry *e, struct btz_member *m,
			const char **why);
/* Strips leading "/", "./" and "../" components; returns the start of the
 * stored name inside path (or NULL if nothing is left) and sets *stripped
 * when something other than "./" was removed. Trailing "/" are dropped. */
char *btz_entry_clean_path(char *path, int *stripped);
/* Fills e from m for extraction or tar export. */
void btz_member_to_entry(const struct btz_member *m, struct archive_entry *e);

#endif
