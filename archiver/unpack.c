/* btzunpack: extract, list, test, write members to stdout, or export a
 * .btz archive as a pax tar. Reads the footer and index first, so a
 * truncated or damaged index is found before anything is written. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archiver/cli.h"
#include "archiver/entry.h"
#include "archiver/extract.h"
#include "archiver/models.h"
#include "format/io.h"
#include "format/method.h"

enum mode { EXTRACT, LIST, TEST, STDOUT, TO_TAR };

struct unpacker {
	const char *name; /* the archive, for messages */
	struct btz_reader r;
	struct btz_methods ms;
	struct btz_pool *pool;
	size_t nring;
	unsigned char *sel; /* selected members */
	struct btz_progress prog;
	uint64_t done;
	struct btz_model_method models[BTZ_MODELS_MAX];
};

/* Copies a non-seekable standard input to an unlinked temporary file. */
static int spool_stdin(void)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	uint8_t buf[1 << 16];
	struct btz_error err;
	int fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	path = malloc(strlen(dir) + 32);
	if (path == NULL)
		btz_die("out of memory");
	sprintf(path, "%s/btzunpack.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		btz_die("%s: cannot spool standard input: %s", path,
			strerror(errno));
	unlink(path);
	free(path);
	for (;;) {
		ssize_t k = read(STDIN_FILENO, buf, sizeof(buf));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			btz_die("(stdin): %s", strerror(errno));
		if (k == 0)
			break;
		if (btz_write_all(fd, buf, (size_t)k, &err) != BTZ_OK)
			btz_die("spooling standard input: %s", err.msg);
	}
	return fd;
}

static int open_archive(const char *path)
{
	struct stat st;
	int fd;

	if (strcmp(path, "-") == 0) {
		if (isatty(STDIN_FILENO))
			btz_die("refusing to read an archive from a terminal");
		if (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
		    lseek(STDIN_FILENO, 0, SEEK_SET) == 0)
			return STDIN_FILENO;
		return spool_stdin();
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		btz_die("%s: %s", path, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
		btz_die("%s: is a directory", path);
	return fd;
}

/* The chunks that hold bytes of member m: [*first, returned end). */
static size_t member_chunks(const struct btz_index *ix,
			    const struct btz_member *m, size_t *first)
{
	size_t c;

	if (m->type != BTZ_TYPE_FILE || m->size == 0) {
		*first = 0;
		return 0;
	}
	*first = c = btz_index_chunk_at(ix, m->offset);
	while (c < ix->nchunks && ix->chunks[c].offset < m->offset + m->size)
		c++;
	return c;
}

/* Loads every model that the chunks to be decoded use, by fingerprint,
 * and returns how many; a missing one is an error before anything is
 * written. */
static size_t load_models(struct unpacker *u, char *const *paths,
			  size_t npaths)
{
	const struct btz_index *ix = &u->r.ix;
	unsigned char used[BTZ_MODELS_MAX] = { 0 };
	struct btz_error err;
	size_t loaded = 0;

	for (size_t i = 0; i < ix->nmembers; i++) {
		size_t c, end;

		if (!u->sel[i])
			continue;
		end = member_chunks(ix, &ix->members[i], &c);
		for (; c < end; c++) {
			int k = btz_method_model(ix->chunks[c].method);

			if (k >= 0 && (size_t)k < ix->nmodels)
				used[k] = 1;
		}
	}
	for (size_t k = 0; k < ix->nmodels; k++) {
		struct btz_model *m;

		if (!used[k])
			continue;
		if (btz_model_find(&m, ix->models[k].fingerprint,
				   ix->models[k].name, paths, npaths,
				   &err) != BTZ_OK)
			btz_die("%s: %s", u->name, err.msg);
		btz_model_method_init(&u->models[k], m, (unsigned)k);
		u->ms.by_id[BTZ_METHOD_MODEL0 + k] = &u->models[k].method;
		if (u->models[k].planes.id != 0)
			u->ms.by_id[u->models[k].planes.id] =
				&u->models[k].planes;
		loaded++;
	}
	return loaded;
}

/* Marks the members named by args (a directory selects its contents). */
static void select_members(struct unpacker *u, char **args, int n)
{
	const struct btz_index *ix = &u->r.ix;

	u->sel = calloc(ix->nmembers ? ix->nmembers : 1, 1);
	if (u->sel == NULL)
		btz_die("out of memory");
	if (n == 0) {
		memset(u->sel, 1, ix->nmembers);
		return;
	}
	for (int a = 0; a < n; a++) {
		char *want = args[a];
		size_t len = strlen(want);
		int found = 0;

		while (len > 1 && want[len - 1] == '/')
			want[--len] = '\0';
		for (size_t i = 0; i < ix->nmembers; i++) {
			const char *p = ix->members[i].path;

			if (strncmp(p, want, len) == 0 &&
			    (p[len] == '\0' || p[len] == '/')) {
				u->sel[i] = 1;
				found = 1;
			}
		}
		if (!found)
			btz_error("%s: %s: not found in archive", u->name, want);
	}
}

/* The model a chunk's method codes with, or NULL. */
static const char *model_name(const struct btz_index *ix, uint8_t id)
{
	int k = btz_method_model(id);

	return k >= 0 && (size_t)k < ix->nmodels ? ix->models[k].name : NULL;
}

/* A model chunk is shown by the name of its model. */
static const char *method_name(const struct btz_index *ix,
			       const struct btz_methods *ms, uint8_t id)
{
	const char *m = model_name(ix, id);

	return m != NULL ? m : btz_method_name(ms, id);
}

static void mode_string(char *s, const struct btz_member *m)
{
	static const char type[] = "-dlh";
	static const char rwx[] = "rwxrwxrwx";

	s[0] = type[m->type];
	for (int i = 0; i < 9; i++)
		s[1 + i] = (m->mode & (0400 >> i)) ? rwx[i] : '-';
	if (m->mode & 04000)
		s[3] = (m->mode & 0100) ? 's' : 'S';
	if (m->mode & 02000)
		s[6] = (m->mode & 010) ? 's' : 'S';
	if (m->mode & 01000)
		s[9] = (m->mode & 01) ? 't' : 'T';
	s[10] = '\0';
}

/* Appends "+s" (or s when empty) to a listing field, cut at its size. */
static void join(char *buf, size_t cap, size_t *len, const char *s)
{
	*len += (size_t)snprintf(buf + *len, cap - *len, "%s%s",
				 *len ? "+" : "", s);
	if (*len >= cap)
		*len = cap - 1;
}

/* The bytes of member m that chunk k holds: [*lo, *hi) of the member. */
static void chunk_share(const struct btz_chunk *k, const struct btz_member *m,
			uint64_t *lo, uint64_t *hi)
{
	*lo = k->offset > m->offset ? k->offset - m->offset : 0;
	*hi = k->offset + k->raw_size - m->offset;
	if (*hi > m->size)
		*hi = m->size;
}

/* With -l -v -v: each chunk that holds bytes of m, with the member's
 * bytes [lo,hi) in it, its raw and coded sizes, and its method. */
static void list_chunks(const struct unpacker *u, const struct btz_member *m)
{
	const struct btz_index *ix = &u->r.ix;
	size_t c, end = member_chunks(ix, m, &c);

	for (; c < end; c++) {
		const struct btz_chunk *k = &ix->chunks[c];
		uint64_t lo, hi;

		chunk_share(k, m, &lo, &hi);
		printf("  chunk %zu [%" PRIu64 ",%" PRIu64 ") %" PRIu64
		       " -> %" PRIu64 " %s\n", c, lo, hi, k->raw_size,
		       k->coded_size, method_name(ix, &u->ms, k->method));
	}
}

static void list(struct unpacker *u)
{
	const struct btz_index *ix = &u->r.ix;
	uint64_t tsize = 0;
	double tpacked = 0;

	if (btz_verbose)
		for (size_t i = 0; i < ix->nmodels; i++) {
			char fp[33];

			btz_fingerprint_hex(fp, ix->models[i].fingerprint);
			printf("model %s %s\n", fp, ix->models[i].name);
		}
	printf("%s%12s %12s %6s  %-8s %-14s %s%s\n",
	       btz_verbose ? "mode       owner/group              mtime"
			     "                " : "",
	       "size", "packed", "ratio", "modality", "method",
	       btz_verbose ? "model          " : "", "name");
	for (size_t i = 0; i < ix->nmembers; i++) {
		const struct btz_member *m = &ix->members[i];
		char methods[64] = "-", models[64] = "-", ratio[16] = "-",
		     size[24] = "-", packed[24] = "-";
		double share = 0;
		size_t mlen = 0, nlen = 0, c, end;
		unsigned seen[256 / (8 * sizeof(unsigned))] = { 0 };
		const char *name;

		if (!u->sel[i])
			continue;
		for (end = member_chunks(ix, m, &c); c < end; c++) {
			const struct btz_chunk *k = &ix->chunks[c];
			uint64_t lo, hi;
			unsigned b = k->method;

			chunk_share(k, m, &lo, &hi);
			share += (double)k->coded_size * (hi - lo) /
				 k->raw_size;
			if (seen[b / 32] & (1u << b % 32))
				continue;
			seen[b / 32] |= 1u << b % 32;
			join(methods, sizeof(methods), &mlen,
			     method_name(ix, &u->ms, k->method));
			if ((name = model_name(ix, (uint8_t)b)) != NULL)
				join(models, sizeof(models), &nlen, name);
		}
		if (m->type == BTZ_TYPE_FILE && m->size > 0)
			snprintf(ratio, sizeof(ratio), "%.3f",
				 share / (double)m->size);
		if (m->type == BTZ_TYPE_FILE) {
			snprintf(size, sizeof(size), "%" PRIu64, m->size);
			snprintf(packed, sizeof(packed), "%.0f", share);
			tsize += m->size;
			tpacked += share;
		}
		if (btz_verbose) {
			char ms[12], og[64], tm[32];
			time_t t = (time_t)m->mtime;
			struct tm tmv;

			mode_string(ms, m);
			if (m->uname[0] || m->gname[0])
				snprintf(og, sizeof(og), "%s/%s", m->uname,
					 m->gname);
			else
				snprintf(og, sizeof(og), "%" PRIu64 "/%" PRIu64,
					 m->uid, m->gid);
			if (localtime_r(&t, &tmv) == NULL ||
			    strftime(tm, sizeof(tm), "%Y-%m-%d %H:%M:%S", &tmv)
				    == 0)
				strcpy(tm, "?");
			printf("%s %-24s %s ", ms, og, tm);
		}
		printf("%12s %12s %6s  %-8s %-14s ", size, packed, ratio,
		       btz_modality_name(m->modality), methods);
		if (btz_verbose)
			printf("%-14s ", models);
		printf("%s", m->path);
		if (m->type == BTZ_TYPE_SYMLINK)
			printf(" -> %s", m->target);
		else if (m->type == BTZ_TYPE_HARDLINK)
			printf(" link to %s", m->target);
		putchar('\n');
		if (btz_verbose > 1)
			list_chunks(u, m);
	}
	printf("%s%12" PRIu64 " %12.0f %6.3f  %zu members, archive %" PRIu64
	       " bytes\n",
	       btz_verbose ? "                                           "
			     "                " : "",
	       tsize, tpacked, tsize ? tpacked / (double)tsize : 0.0,
	       ix->nmembers, u->r.size);
}

static int stdout_sink(void *ctx, const uint8_t *p, size_t n, uint64_t off,
		       struct btz_error *err)
{
	struct unpacker *u = ctx;

	(void)off;
	if (btz_write_all(STDOUT_FILENO, p, n, err) != BTZ_OK)
		return -1;
	u->done += n;
	btz_progress_update(&u->prog, u->done);
	return 0;
}

static int count_sink(void *ctx, const uint8_t *p, size_t n, uint64_t off,
		      struct btz_error *err)
{
	struct unpacker *u = ctx;

	(void)p;
	(void)off;
	(void)err;
	u->done += n;
	btz_progress_update(&u->prog, u->done);
	return 0;
}

struct disk_ctx {
	struct unpacker *u;
	struct archive *a;
};

static int is_zero(const uint8_t *p, size_t n)
{
	return n > 0 && p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/* Blocks of zeros become holes: libarchive seeks over them and sets the
 * final size, so sparse files come back sparse. */
static int disk_sink(void *ctx, const uint8_t *p, size_t n, uint64_t off,
		     struct btz_error *err)
{
	struct disk_ctx *d = ctx;
	const size_t blk = 1 << 16;

	for (size_t i = 0; i < n; i += blk) {
		size_t k = n - i < blk ? n - i : blk;

		if (k == blk && is_zero(p + i, k))
			continue;
		if (archive_write_data_block(d->a, p + i, k,
					     (la_int64_t)(off + i)) < 0) {
			btz_fail(err, BTZ_E_IO, "%s",
				 archive_error_string(d->a));
			return -1;
		}
	}
	d->u->done += n;
	btz_progress_update(&d->u->prog, d->u->done);
	return 0;
}

static int tar_sink(void *ctx, const uint8_t *p, size_t n, uint64_t off,
		    struct btz_error *err)
{
	struct disk_ctx *d = ctx;
	size_t total = n;

	(void)off;
	while (n > 0) {
		la_ssize_t k = archive_write_data(d->a, p, n);

		if (k <= 0) {
			btz_fail(err, BTZ_E_IO, "%s",
				 archive_error_string(d->a));
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	d->u->done += total;
	btz_progress_update(&d->u->prog, d->u->done);
	return 0;
}

static uint64_t selected_bytes(const struct unpacker *u)
{
	uint64_t t = 0;

	for (size_t i = 0; i < u->r.ix.nmembers; i++)
		if (u->sel[i] && u->r.ix.members[i].type == BTZ_TYPE_FILE)
			t += u->r.ix.members[i].size;
	return t;
}

static void member_error(struct unpacker *u, const struct btz_member *m,
			 const struct btz_error *err)
{
	btz_error("%s: member %s: %s", u->name, m->path, err->msg);
}

static void run_test(struct unpacker *u)
{
	struct btz_dstream ds;
	struct btz_error err;

	if (btz_dstream_init(&ds, &u->r, &u->ms, u->pool, u->nring, u->sel,
			     &err) != BTZ_OK)
		btz_die("%s: %s", u->name, err.msg);
	for (size_t i = 0; i < u->r.ix.nmembers; i++) {
		if (!u->sel[i])
			continue;
		if (btz_member_read(&ds, &u->r.ix.members[i], count_sink, u,
				    &err) != BTZ_OK)
			member_error(u, &u->r.ix.members[i], &err);
	}
	btz_dstream_free(&ds);
}

static void run_stdout(struct unpacker *u, int nargs)
{
	struct btz_dstream ds;
	struct btz_error err;
	size_t nfiles = 0;

	for (size_t i = 0; i < u->r.ix.nmembers; i++)
		if (u->r.ix.members[i].type == BTZ_TYPE_FILE)
			nfiles++;
	if (nargs == 0 && nfiles != 1)
		btz_die("%s: holds %zu files; name the members to write with "
			"-c", u->name, nfiles);
	if (btz_dstream_init(&ds, &u->r, &u->ms, u->pool, u->nring, u->sel,
			     &err) != BTZ_OK)
		btz_die("%s: %s", u->name, err.msg);
	for (size_t i = 0; i < u->r.ix.nmembers; i++) {
		if (!u->sel[i])
			continue;
		if (btz_member_read(&ds, &u->r.ix.members[i], stdout_sink, u,
				    &err) != BTZ_OK) {
			member_error(u, &u->r.ix.members[i], &err);
			break; /* bytes after a hole would mislead */
		}
	}
	btz_dstream_free(&ds);
}

/* A fresh name beside path, reserved on disk, for replacing an existing
 * file atomically: extract there, then rename over the original. */
static char *sibling_tmp(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	char *t = malloc(strlen(path) + 16);
	int fd;

	if (t == NULL)
		return NULL;
	sprintf(t, "%.*s.%s.XXXXXX", (int)dirlen, path, path + dirlen);
	fd = mkstemp(t);
	if (fd < 0) {
		free(t);
		return NULL;
	}
	close(fd);
	return t;
}

static void skip_data(struct unpacker *u, struct btz_dstream *ds,
		      const struct btz_member *m)
{
	struct btz_error err;

	/* Decoded anyway: the stream must stay in step for later members. */
	if (m->type == BTZ_TYPE_FILE &&
	    btz_member_read(ds, m, NULL, NULL, &err) != BTZ_OK)
		member_error(u, m, &err);
}

/* One member through libarchive's disk writer. A file that already
 * exists is left alone without -f, and with -f replaced only once its new
 * contents are complete and verified; a file that fails is removed. */
static void extract_member(struct unpacker *u, struct btz_dstream *ds,
			   struct archive *a, struct archive_entry *e,
			   const struct btz_member *m, int force)
{
	struct disk_ctx d = { u, a };
	struct btz_error err;
	struct stat st;
	char *tmp = NULL, *written;
	int r;

	if (m->type == BTZ_TYPE_FILE && lstat(m->path, &st) == 0) {
		if (!force) {
			btz_error("%s: member %s: already exists (use -f to "
				  "overwrite)", u->name, m->path);
			skip_data(u, ds, m);
			return;
		}
		if (S_ISDIR(st.st_mode)) {
			btz_error("%s: member %s: is a directory", u->name,
				  m->path);
			skip_data(u, ds, m);
			return;
		}
		tmp = sibling_tmp(m->path);
		if (tmp == NULL) {
			btz_error("%s: member %s: cannot create a temporary "
				  "file beside it: %s", u->name, m->path,
				  strerror(errno));
			skip_data(u, ds, m);
			return;
		}
	}
	btz_member_to_entry(m, e);
	if (tmp != NULL)
		archive_entry_set_pathname(e, tmp);
	r = archive_write_header(a, e);
	if (r < ARCHIVE_WARN) {
		btz_error("%s: member %s: %s", u->name, m->path,
			  archive_error_string(a));
		skip_data(u, ds, m);
		if (tmp != NULL)
			unlink(tmp);
		free(tmp);
		return;
	}
	if (r == ARCHIVE_WARN)
		btz_warn("%s: member %s: %s", u->name, m->path,
			 archive_error_string(a));
	written = tmp != NULL ? tmp : m->path;
	if (m->type == BTZ_TYPE_FILE)
		btz_tmp_register(written);
	if (btz_member_read(ds, m, disk_sink, &d, &err) != BTZ_OK) {
		member_error(u, m, &err);
		archive_write_finish_entry(a);
		/* Never leave a partial file behind; only what we created. */
		unlink(written);
		btz_tmp_unregister(written);
		free(tmp);
		return;
	}
	r = archive_write_finish_entry(a);
	if (m->type == BTZ_TYPE_FILE)
		btz_tmp_unregister(written);
	if (r < ARCHIVE_WARN)
		btz_error("%s: member %s: %s", u->name, m->path,
			  archive_error_string(a));
	else if (r == ARCHIVE_WARN)
		btz_warn("%s: member %s: %s", u->name, m->path,
			 archive_error_string(a));
	if (tmp != NULL && rename(tmp, m->path) != 0) {
		btz_error("%s: member %s: cannot replace: %s", u->name,
			  m->path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
}

static void run_extract(struct unpacker *u, int force, int absolute)
{
	struct archive *a = archive_write_disk_new();
	struct archive_entry *e = archive_entry_new();
	struct btz_dstream ds;
	struct btz_error err;
	int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM;

	if (a == NULL || e == NULL)
		btz_die("out of memory");
	if (geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER;
	if (!absolute)
		flags |= ARCHIVE_EXTRACT_SECURE_NODOTDOT |
			 ARCHIVE_EXTRACT_SECURE_SYMLINKS |
			 ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
	/* Files are replaced by extract_member itself; -f lets libarchive
	 * replace other kinds (a symlink where a link is to go, say). */
	flags |= force ? ARCHIVE_EXTRACT_UNLINK : ARCHIVE_EXTRACT_NO_OVERWRITE;
	archive_write_disk_set_options(a, flags);
	archive_write_disk_set_standard_lookup(a);
	if (btz_dstream_init(&ds, &u->r, &u->ms, u->pool, u->nring, u->sel,
			     &err) != BTZ_OK)
		btz_die("%s: %s", u->name, err.msg);
	for (size_t i = 0; i < u->r.ix.nmembers; i++)
		if (u->sel[i])
			extract_member(u, &ds, a, e, &u->r.ix.members[i],
				       force);
	btz_dstream_free(&ds);
	/* Directory modes and times are applied here, after their contents. */
	if (archive_write_close(a) != ARCHIVE_OK)
		btz_error("%s: %s", u->name, archive_error_string(a));
	archive_write_free(a);
	archive_entry_free(e);
}

static void run_to_tar(struct unpacker *u, const char *dest, int force)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	struct btz_dstream ds;
	struct btz_error err;
	struct btz_out out;
	struct disk_ctx d = { u, a };
	int failed = 0;

	if (a == NULL || e == NULL)
		btz_die("out of memory");
	if (btz_out_open(&out, dest, force, 1) != 0)
		exit(BTZ_EXIT_ERROR);
	archive_write_set_format_pax(a);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open_fd(a, out.fd) != ARCHIVE_OK)
		btz_die("%s: %s", dest, archive_error_string(a));
	if (btz_dstream_init(&ds, &u->r, &u->ms, u->pool, u->nring, u->sel,
			     &err) != BTZ_OK)
		btz_die("%s: %s", u->name, err.msg);
	for (size_t i = 0; i < u->r.ix.nmembers && !failed; i++) {
		const struct btz_member *m = &u->r.ix.members[i];

		if (!u->sel[i])
			continue;
		btz_member_to_entry(m, e);
		if (archive_write_header(a, e) < ARCHIVE_WARN) {
			btz_error("%s: member %s: %s", u->name, m->path,
				  archive_error_string(a));
			failed = 1;
		} else if (btz_member_read(&ds, m, tar_sink, &d, &err) !=
			   BTZ_OK) {
			member_error(u, m, &err);
			failed = 1;
		}
	}
	btz_dstream_free(&ds);
	/* A tar with a hole in it is worse than none: drop it on error. */
	if (!failed && archive_write_close(a) != ARCHIVE_OK) {
		btz_error("%s: %s", dest, archive_error_string(a));
		failed = 1;
	}
	archive_write_free(a);
	archive_entry_free(e);
	if (failed)
		btz_out_abort(&out);
	else
		btz_out_commit(&out);
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: %s [OPTION]... [ARCHIVE] [MEMBER]...\n"
"Extract, list or test a .btz archive ('-' or none: standard input).\n"
"\n"
"  -C, --directory=DIR   extract into DIR (default: current directory)\n"
"  -c, --stdout          write member data to standard output\n"
"  -l, --list            list members (reads only the index)\n"
"  -t, --test            verify every checksum, write nothing\n"
"      --to-tar=FILE     export as a pax tar to FILE ('-' = stdout)\n"
"  -P, --absolute-names  allow absolute names, '..' and writing through\n"
"                        symbolic links\n"
"  -f, --force           overwrite existing files\n"
"  -k, --keep            keep the archive (always)\n"
"      --model=PATH      where to find models the archive names\n"
"      --device=WHERE    run models on cpu, cuda or auto (default: a GPU\n"
"                        if one answers)\n"
"  -T, --threads=N       worker threads, 0 = one per CPU (default)\n"
"  -v, --verbose         progress on a terminal; -l: long listing, and\n"
"                        given twice, each chunk\n"
"  -q, --quiet           no warnings\n"
"  -h, --help            this help\n"
"  -V, --version         version\n"
"\n"
"Exit status: 0 ok, 1 error, 2 warning.\n",
		btz_progname);
}

int main(int argc, char **argv)
{
	enum { OPT_TO_TAR = 256, OPT_MODEL, OPT_DEVICE };
	static const struct option longopts[] = {
		{ "directory", required_argument, NULL, 'C' },
		{ "stdout", no_argument, NULL, 'c' },
		{ "to-stdout", no_argument, NULL, 'c' },
		{ "list", no_argument, NULL, 'l' },
		{ "test", no_argument, NULL, 't' },
		{ "to-tar", required_argument, NULL, OPT_TO_TAR },
		{ "absolute-names", no_argument, NULL, 'P' },
		{ "force", no_argument, NULL, 'f' },
		{ "keep", no_argument, NULL, 'k' },
		{ "model", required_argument, NULL, OPT_MODEL },
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "threads", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct unpacker u;
	struct btz_error err;
	enum mode mode = EXTRACT;
	const char *dir = NULL, *tar_dest = NULL;
	char *model_paths[16];
	size_t nmodel_paths = 0;
	enum btz_device_choice device = BTZ_RUN_AUTO;
	const char *archive = "-";
	int threads = btz_online_cpus(), force = 0, absolute = 0, c, fd;
	int nmodes = 0;

	btz_cli_init(argv[0]);
	memset(&u, 0, sizeof(u));
	while ((c = getopt_long(argc, argv, "C:cltPfkT:vqhV", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'C': dir = optarg; break;
		case 'c': mode = STDOUT; nmodes++; break;
		case 'l': mode = LIST; nmodes++; break;
		case 't': mode = TEST; nmodes++; break;
		case OPT_TO_TAR: mode = TO_TAR; tar_dest = optarg; nmodes++;
			break;
		case 'P': absolute = 1; break;
		case 'f': force = 1; break;
		case 'k': break;
		case OPT_DEVICE: device = btz_device_arg(optarg); break;
		case OPT_MODEL:
			if (nmodel_paths == 16)
				btz_die("--model: at most 16 times");
			model_paths[nmodel_paths++] = optarg;
			break;
		case 'T':
			threads = btz_parse_threads(optarg);
			if (threads < 0)
				btz_die("-T: '%s' is not a thread count",
					optarg);
			break;
		case 'v': btz_verbose++; break;
		case 'q': btz_quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("btzunpack (btz) %s\n", PACKAGE_VERSION);
			return 0;
		default: usage(stderr); return BTZ_EXIT_ERROR;
		}
	}
	if (nmodes > 1)
		btz_die("-c, -l, -t and --to-tar exclude each other");
	argc -= optind;
	argv += optind;
	if (argc > 0) {
		archive = argv[0];
		argc--;
		argv++;
	}
	u.name = strcmp(archive, "-") == 0 ? "(stdin)" : archive;
	btz_signals_install();
	fd = open_archive(archive);
	if (btz_reader_open(&u.r, fd, &err) != BTZ_OK)
		btz_die("%s: %s", u.name, err.msg);
	btz_methods_init(&u.ms);
	select_members(&u, argv, argc);
	if (btz_exit_status() != BTZ_EXIT_OK)
		goto out;
	if (mode == LIST) {
		list(&u);
		goto out;
	}
	if (load_models(&u, model_paths, nmodel_paths) > 0)
		btz_device_choose(device);
	u.pool = btz_pool_create(threads);
	u.nring = 2 * (size_t)threads + 1;
	if (u.pool == NULL)
		btz_die("out of memory");
	btz_progress_start(&u.prog, "btzunpack", selected_bytes(&u));
	switch (mode) {
	case TEST: run_test(&u); break;
	case STDOUT: run_stdout(&u, argc); break;
	case TO_TAR: run_to_tar(&u, tar_dest, force); break;
	case EXTRACT:
		if (dir != NULL && chdir(dir) != 0)
			btz_die("%s: %s", dir, strerror(errno));
		run_extract(&u, force, absolute);
		break;
	case LIST: break;
	}
	btz_progress_end(&u.prog);
	if (mode == TEST && btz_exit_status() == BTZ_EXIT_OK)
		btz_note("%s: ok, %zu members, %zu chunks verified", u.name,
			 u.r.ix.nmembers, u.r.ix.nchunks);
out:
	for (size_t k = 0; k < BTZ_MODELS_MAX; k++)
		btz_model_method_free(&u.models[k]);
	btz_pool_free(u.pool);
	btz_reader_free(&u.r);
	free(u.sel);
	if (fd != STDIN_FILENO)
		close(fd);
	return btz_exit_status();
}
