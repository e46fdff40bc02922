/* libarchive entries <-> btz members. */
#include "archiver/entry.h"

#include <string.h>
#include <sys/stat.h>

char *btz_entry_clean_path(char *path, int *stripped)
{
	char *p = path;
	size_t n;

	*stripped = 0;
	for (;;) {
		if (p[0] == '/') {
			*stripped = 1;
			p++;
		} else if (p[0] == '.' && p[1] == '/') {
			p += 2;
		} else if (p[0] == '.' && p[1] == '.' &&
			   (p[2] == '/' || p[2] == '\0')) {
			*stripped = 1;
			p += p[2] ? 3 : 2;
		} else {
			break;
		}
	}
	/* Collapse "a//b" and "a/./b" so each member has one spelling. */
	{
		char *r = p, *w = p;

		while (*r) {
			if (r[0] == '/' && (r[1] == '/' ||
			    (r[1] == '.' && (r[2] == '/' || r[2] == '\0')))) {
				r += r[1] == '/' ? 1 : 2;
				continue;
			}
			*w++ = *r++;
		}
		*w = '\0';
	}
	n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		p[--n] = '\0';
	if (n == 0 || strcmp(p, ".") == 0)
		return NULL;
	return p;
}

int btz_entry_to_member(struct archive_entry *e, struct btz_member *m,
			const char **why)
{
	const char *hard = archive_entry_hardlink(e);

	memset(m, 0, sizeof(*m));
	if (hard != NULL) {
		m->type = BTZ_TYPE_HARDLINK;
		m->target = (char *)hard;
	} else {
		switch (archive_entry_filetype(e)) {
		case AE_IFREG:
			m->type = BTZ_TYPE_FILE;
			break;
		case AE_IFDIR:
			m->type = BTZ_TYPE_DIR;
			break;
		case AE_IFLNK:
			m->type = BTZ_TYPE_SYMLINK;
			m->target = (char *)archive_entry_symlink(e);
			if (m->target == NULL || m->target[0] == '\0') {
				*why = "symbolic link with an empty target";
				return -1;
			}
			break;
		case AE_IFIFO:
			*why = "FIFOs are not stored";
			return -1;
		case AE_IFSOCK:
			*why = "sockets are not stored";
			return -1;
		case AE_IFCHR:
		case AE_IFBLK:
			*why = "device nodes are not stored";
			return -1;
		default:
			*why = "unknown file type";
			return -1;
		}
	}
	m->mode = archive_entry_perm(e) & BTZ_MODE_MAX;
	m->uid = archive_entry_uid(e) < 0 ? 0 : (uint64_t)archive_entry_uid(e);
	m->gid = archive_entry_gid(e) < 0 ? 0 : (uint64_t)archive_entry_gid(e);
	m->uname = (char *)archive_entry_uname(e);
	m->gname = (char *)archive_entry_gname(e);
	if (m->uname == NULL)
		m->uname = "";
	if (m->gname == NULL)
		m->gname = "";
	if (archive_entry_mtime_is_set(e)) {
		m->mtime = archive_entry_mtime(e);
		m->mtime_nsec = (uint32_t)archive_entry_mtime_nsec(e);
		if (m->mtime_nsec > 999999999u)
			m->mtime_nsec = 0;
	}
	return 0;
}

void btz_member_to_entry(const struct btz_member *m, struct archive_entry *e)
{
	archive_entry_clear(e);
	archive_entry_set_pathname(e, m->path);
	archive_entry_set_perm(e, m->mode);
	archive_entry_set_uid(e, (la_int64_t)m->uid);
	archive_entry_set_gid(e, (la_int64_t)m->gid);
	if (m->uname[0])
		archive_entry_set_uname(e, m->uname);
	if (m->gname[0])
		archive_entry_set_gname(e, m->gname);
	archive_entry_set_mtime(e, m->mtime, m->mtime_nsec);
	switch (m->type) {
	case BTZ_TYPE_FILE:
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, (la_int64_t)m->size);
		break;
	case BTZ_TYPE_DIR:
		archive_entry_set_filetype(e, AE_IFDIR);
		break;
	case BTZ_TYPE_SYMLINK:
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, m->target);
		break;
	case BTZ_TYPE_HARDLINK:
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_hardlink(e, m->target);
		archive_entry_set_size(e, 0);
		break;
	}
}
