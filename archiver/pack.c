/* btzpack: files, directories, standard input or any archive libarchive
 * reads -> one .btz archive. The main thread reads members and fills
 * chunk buffers in data-stream order; workers code whole chunks; chunks
 * are written in order, so the archive does not depend on -T. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "archiver/cli.h"
#include "archiver/entry.h"
#include "archiver/modality.h"
#include "archiver/models.h"
#include "archiver/pool.h"
#include "model/transform.h"
#include "format/io.h"
#include "format/method.h"

#define DEFAULT_CHUNK ((size_t)8 << 20)
#define MIN_CHUNK ((size_t)64 << 10)
#define READ_SIZE ((size_t)1 << 16)
/* The chunk class of container headers and trailers: after the four
 * modalities, coded by the fallback methods only. */
#define CLASS_FALLBACK 4
/* Samples of more than one channel: the audio model codes each channel's
 * plane as it codes mono (the planes method), in chunks of as many
 * windows per channel as a mono chunk has; LZMA2 competes as ever. The
 * model on the interleaved samples would predict each from the other
 * channel's. */
#define CLASS_MULTICHANNEL 5
#define NCLASSES 6

struct cjob {
	struct btz_job job;
	const struct btz_method *const *cand;
	size_t ncand;
	uint8_t *in, *out, *scratch;
	size_t n;
	uint64_t offset;
	struct btz_rows rows;
	struct btz_chunk c;
	enum btz_status st;
	struct btz_error err;
};

struct packer {
	const char *outname; /* for messages */
	struct btz_writer w;
	struct btz_pool *pool;
	struct cjob *ring;
	size_t nring, head, count;
	struct cjob *cur;
	size_t chunk_size;
	uint64_t stream_off;
	unsigned cur_class; /* a modality or CLASS_FALLBACK, _MULTICHANNEL */
	size_t cur_limit; /* chunk bytes for the current class */
	uint32_t cur_width; /* the current image payload's, or 0 */
	unsigned cur_channels; /* the current audio payload's */
	uint64_t range_off; /* data-stream offset of the current range */
	int force_mod; /* --modality, or -1 */
	unsigned force_channels; /* --channels, or 0 */
	/* Candidate methods per class: its model (if loaded), lzma2. */
	const struct btz_method *cand[NCLASSES][2];
	size_t ncand[NCLASSES];
	struct btz_model_method models[4];
	size_t nmodels;
	/* models[k]'s entry in the archive's model table, -1 until a chunk
	 * uses it: the table names only the models used, so an archive no
	 * model codes is the same whichever models were loaded. */
	int table[4];
	struct btz_method lzma;
	uint32_t preset;
	struct btz_progress prog;
	dev_t out_dev;
	ino_t out_ino;
	int out_is_file;
	int warned_strip;
	char **links; /* see relink_with_data */
	size_t nlinks;
	uint8_t *rdbuf;
};

static void cjob_run(struct btz_job *job)
{
	struct cjob *j = (struct cjob *)job;

	j->st = btz_chunk_encode(j->cand, j->ncand, j->in, j->n, &j->rows,
				 j->offset,
				 j->out, j->scratch, &j->c, &j->err);
}

static void drain_one(struct packer *pk)
{
	struct cjob *j = &pk->ring[pk->head];
	struct btz_error err;

	btz_pool_wait(pk->pool, &j->job);
	if (j->st != BTZ_OK)
		btz_die("%s: chunk %zu: %s", pk->outname, pk->w.ix.nchunks,
			j->err.msg);
	/* Chunks are written in order, so the table's order (first use) is
	 * the same for any thread count. */
	if (btz_method_model(j->c.method) >= 0) {
		size_t k = (size_t)btz_method_model(j->c.method);
		const struct btz_model *m = pk->models[k].model;

		if (pk->table[k] < 0) {
			if (btz_index_add_model(&pk->w.ix, m->fingerprint,
						m->name, &err) != BTZ_OK)
				btz_die("%s: %s", pk->outname, err.msg);
			pk->table[k] = (int)pk->w.ix.nmodels - 1;
		}
		/* The same kind of method (model or planes) with table entry
		 * k; 4 models at most, within either range. */
		j->c.method = (uint8_t)(j->c.method - k + (size_t)pk->table[k]);
	}
	if (btz_writer_add_chunk(&pk->w, &j->c, j->out, &err) != BTZ_OK)
		btz_die("%s: %s", pk->outname, err.msg);
	pk->head = (pk->head + 1) % pk->nring;
	pk->count--;
}

static struct cjob *current(struct packer *pk)
{
	struct cjob *j;

	if (pk->cur != NULL)
		return pk->cur;
	if (pk->count == pk->nring)
		drain_one(pk);
	j = &pk->ring[(pk->head + pk->count) % pk->nring];
	if (j->in == NULL) {
		j->in = malloc(pk->chunk_size);
		j->out = malloc(pk->chunk_size);
		j->scratch = malloc(pk->chunk_size);
		if (!j->in || !j->out || !j->scratch)
			btz_die("out of memory for chunk buffers");
	}
	j->n = 0;
	j->offset = pk->stream_off;
	/* Payload chunks start at pixel boundaries (limit_for). */
	j->rows = btz_rows_at(pk->cur_width, pk->stream_off - pk->range_off);
	j->rows.channels = pk->cur_channels;
	j->cand = pk->cand[pk->cur_class];
	j->ncand = pk->ncand[pk->cur_class];
	j->job.run = cjob_run;
	pk->cur = j;
	return j;
}

static void submit_current(struct packer *pk)
{
	struct cjob *j = pk->cur;

	if (j == NULL || j->n == 0)
		return;
	pk->cur = NULL;
	pk->count++;
	btz_pool_submit(pk->pool, &j->job);
}

static void append(struct packer *pk, const uint8_t *p, size_t n)
{
	while (n > 0) {
		struct cjob *j = current(pk);
		size_t take = pk->cur_limit - j->n;

		if (take > n)
			take = n;
		memcpy(j->in + j->n, p, take);
		j->n += take;
		p += take;
		n -= take;
		pk->stream_off += take;
		if (j->n == pk->cur_limit)
			submit_current(pk);
	}
	btz_progress_update(&pk->prog, pk->stream_off);
}

/* A model codes chunks of the windows its layout suits (64, or a band
 * of an image's rows in tiles: btz_transform_chunk), so that a decoder
 * can hold all their caches; other chunks take the full chunk size,
 * where LZMA2 does best. */
static size_t limit_for(const struct packer *pk, unsigned cls,
			unsigned channels, uint32_t width)
{
	size_t lim = pk->chunk_size, u;
	unsigned mod = cls == CLASS_MULTICHANNEL ? BTZ_MOD_AUDIO : cls;

	for (size_t k = 0; k < pk->nmodels; k++) {
		const struct btz_model *m = pk->models[k].model;
		size_t w = btz_transform_chunk(m->hp.transform, width,
					       m->hp.context);

		if (cls == CLASS_MULTICHANNEL)
			w *= channels;
		if (m->hp.modality == mod && w < lim)
			lim = w;
	}
	/* Whole pixels or samples, so that every chunk's windows start on
	 * one, as the model's training windows did (-c may be anything);
	 * whole frames of all the channels. */
	u = cls == CLASS_MULTICHANNEL ? 2 * (size_t)channels
				      : btz_modality_unit(cls);
	if (lim > u)
		lim -= lim % u;
	return lim;
}

/* Starts a range of bytes of class cls. A chunk holds one class, so that
 * its candidates suit all of it; an image or audio payload also starts a
 * chunk of its own, so that the model's windows start at its first byte
 * (text and other members share chunks, as small files compress better
 * together). */
static void begin_range(struct packer *pk, unsigned cls, uint32_t width,
			unsigned channels)
{
	if (pk->cur != NULL && pk->cur->n > 0 &&
	    (cls != pk->cur_class || cls == BTZ_MOD_IMAGE ||
	     cls == BTZ_MOD_AUDIO || cls == CLASS_MULTICHANNEL))
		submit_current(pk);
	pk->cur_class = cls;
	pk->cur_channels = cls == CLASS_MULTICHANNEL ? channels : 0;
	pk->cur_width = cls == BTZ_MOD_IMAGE ? width : 0;
	pk->cur_limit = limit_for(pk, cls, channels, pk->cur_width);
	pk->range_off = pk->stream_off;
}

/* Appends bytes [pos, pos + n) of a member: its header before pl->off and
 * its trailer from pl->off + pl->len as CLASS_FALLBACK, its payload as the
 * payload's modality, so that chunk boundaries fall on those ranges.
 * Returns how many payload bytes there were. */
static uint64_t append_member(struct packer *pk, const struct btz_payload *pl,
			      uint64_t pos, const uint8_t *p, size_t n)
{
	uint64_t end = pl->off + pl->len, payload = 0;

	while (n > 0) {
		uint64_t start = 0, stop = pl->off;
		unsigned cls = CLASS_FALLBACK;
		size_t take = n;

		if (pos >= end) {
			start = end;
			stop = UINT64_MAX;
		} else if (pos >= pl->off) {
			start = pl->off;
			stop = end;
			cls = pl->modality == BTZ_MOD_AUDIO && pl->channels > 1
				      ? CLASS_MULTICHANNEL
				      : pl->modality;
		}
		if (pos == start)
			begin_range(pk, cls, pl->width, pl->channels);
		if (stop - pos < take)
			take = (size_t)(stop - pos);
		append(pk, p, take);
		if (cls != CLASS_FALLBACK)
			payload += take;
		p += take;
		n -= take;
		pos += take;
	}
	return payload;
}

static void add_loaded_model(struct packer *pk, const char *path,
			     struct btz_model *m);

/* Loads a model for its modality and adds it to the archive's table. */
static void add_model(struct packer *pk, const char *path)
{
	struct btz_model *m;
	struct btz_error err;

	if (btz_model_load(&m, path, &err) != BTZ_OK)
		btz_die("%s", err.msg);
	add_loaded_model(pk, path, m);
}

static int have_model_for(const struct packer *pk, unsigned mod)
{
	for (size_t k = 0; k < pk->nmodels; k++)
		if (pk->models[k].model->hp.modality == mod)
			return 1;
	return 0;
}

/* The installed models (and BTZ_MODEL_PATH's): the first one found for
 * each modality that --model left without one. A model file that does
 * not load is skipped with a warning: packing never needs a model. */
static void add_default_models(struct packer *pk)
{
	char **paths;
	size_t n = btz_model_default_paths(&paths);

	for (size_t i = 0; i < n; i++) {
		struct btz_model *m;
		struct btz_error err;

		if (btz_model_load(&m, paths[i], &err) != BTZ_OK) {
			btz_warn("%s (not used)", err.msg);
		} else if (have_model_for(pk, m->hp.modality)) {
			btz_model_free(m);
		} else {
			btz_note("%s: the %s model", paths[i],
				 btz_modality_name(m->hp.modality));
			add_loaded_model(pk, paths[i], m);
		}
		free(paths[i]);
	}
	free(paths);
}

static void add_loaded_model(struct packer *pk, const char *path,
			     struct btz_model *m)
{
	unsigned mod = m->hp.modality;

	if (have_model_for(pk, mod))
		btz_die("%s: a second %s model (one per modality)", path,
			btz_modality_name(mod));
	btz_model_method_init(&pk->models[pk->nmodels], m,
			      (unsigned)pk->nmodels);
	pk->table[pk->nmodels] = -1;
	/* The model first: the chunk coder keeps the smallest result. */
	pk->cand[mod][1] = pk->cand[mod][0];
	pk->cand[mod][0] = &pk->models[pk->nmodels].method;
	pk->ncand[mod] = 2;
	if (mod == BTZ_MOD_AUDIO && pk->models[pk->nmodels].planes.id != 0) {
		pk->cand[CLASS_MULTICHANNEL][1] = pk->cand[CLASS_MULTICHANNEL][0];
		pk->cand[CLASS_MULTICHANNEL][0] =
			&pk->models[pk->nmodels].planes;
		pk->ncand[CLASS_MULTICHANNEL] = 2;
	}
	pk->nmodels++;
}

typedef ssize_t (*read_fn)(void *ctx, void *buf, size_t n);

/* Reads up to n bytes, looping over short reads; -1 on error. */
static ssize_t read_full(read_fn rd, void *ctx, uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = rd(ctx, buf + got, n - got);

		if (k < 0)
			return -1;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

/* Streams one file's data into the chunk stream and records the member;
 * expect is its size if known before reading, else BTZ_SIZE_UNKNOWN.
 * Returns 0, or -1 if nothing was read (the caller skips the member). A
 * failure after data entered the stream is fatal: never a silent hole. */
static int pack_file(struct packer *pk, struct btz_member *m, read_fn rd,
		     void *ctx, const char *(*why)(void *ctx),
		     const char *display, uint64_t expect)
{
	XXH3_state_t *h = XXH3_createState();
	uint64_t size = 0, payload = 0;
	struct btz_payload pl;
	ssize_t k;
	struct btz_error err;

	if (h == NULL)
		btz_die("out of memory");
	XXH3_64bits_reset(h);
	k = read_full(rd, ctx, pk->rdbuf, BTZ_SNIFF_SIZE);
	if (k < 0) {
		btz_warn("%s: cannot read, skipped: %s", display, why(ctx));
		XXH3_freeState(h);
		return -1;
	}
	if ((size_t)k < BTZ_SNIFF_SIZE)
		expect = (uint64_t)k;
	btz_payload_find(&pl, pk->rdbuf, (size_t)k, expect);
	if (pk->force_mod >= 0 && pl.modality != (unsigned)pk->force_mod) {
		btz_payload_whole(&pl, (enum btz_modality)pk->force_mod);
		/* Raw samples: as many channels as --channels says (a
		 * WAV header's count stands). */
		if (pk->force_channels > 0)
			pl.channels = pk->force_channels;
	}
	while (k > 0) {
		XXH3_64bits_update(h, pk->rdbuf, (size_t)k);
		payload += append_member(pk, &pl, size, pk->rdbuf, (size_t)k);
		size += (uint64_t)k;
		k = rd(ctx, pk->rdbuf, READ_SIZE);
	}
	if (k < 0)
		btz_die("%s: read error after %llu bytes: %s", display,
			(unsigned long long)size, why(ctx));
	/* A header whose payload the file does not reach is just other. */
	m->modality = payload > 0 || pl.off == 0 ? pl.modality : BTZ_MOD_OTHER;
	m->size = size;
	m->checksum = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	if (btz_writer_add_member(&pk->w, m, &err) != BTZ_OK)
		btz_die("%s: %s", display, err.msg);
	return 0;
}

static ssize_t fd_read(void *ctx, void *buf, size_t n)
{
	ssize_t k;

	do
		k = read(*(int *)ctx, buf, n);
	while (k < 0 && errno == EINTR);
	return k;
}

static const char *fd_why(void *ctx)
{
	(void)ctx;
	return strerror(errno);
}

static ssize_t ar_read(void *ctx, void *buf, size_t n)
{
	la_ssize_t k = archive_read_data((struct archive *)ctx, buf, n);

	return k < 0 ? -1 : (ssize_t)k;
}

static const char *ar_why(void *ctx)
{
	return archive_error_string((struct archive *)ctx);
}

static void pack_stdin(struct packer *pk)
{
	struct btz_member m;
	struct timespec now;
	int fd = STDIN_FILENO;
	mode_t um = umask(0);

	umask(um);
	memset(&m, 0, sizeof(m));
	clock_gettime(CLOCK_REALTIME, &now);
	m.type = BTZ_TYPE_FILE;
	m.path = "stdin";
	m.mode = 0666 & ~um;
	m.uid = getuid();
	m.gid = getgid();
	m.uname = m.gname = "";
	m.mtime = now.tv_sec;
	m.mtime_nsec = (uint32_t)now.tv_nsec;
	if (pack_file(pk, &m, fd_read, &fd, fd_why, "(stdin)",
		      BTZ_SIZE_UNKNOWN) != 0)
		btz_die("(stdin): cannot read");
}

/* cpio (newc) stores a link set's data with its last name, which
 * libarchive reports as a hard link carrying data; the earlier names came
 * as an empty file and links to it. btz keeps data with the first member
 * of a set: the empty file and its links are taken out of the index (they
 * hold no data, so no offset moves), the data is stored under the file's
 * name, and the links, this name included, follow it. With no such
 * target, the data is kept as a separate file. */
static void relink_with_data(struct packer *pk, struct btz_member *m)
{
	struct btz_index *ix = &pk->w.ix;
	struct btz_error err;
	size_t i = ix->nmembers;

	while (i > 0 && strcmp(ix->members[i - 1].path, m->target) != 0)
		i--;
	if (i == 0 || ix->members[i - 1].type != BTZ_TYPE_FILE ||
	    ix->members[i - 1].size != 0) {
		btz_warn("%s: hard link with its own data, stored as a "
			 "separate file", m->path);
		m->type = BTZ_TYPE_FILE;
		m->target = NULL;
		return;
	}
	i--;
	pk->nlinks = 0;
	for (size_t k = ix->nmembers; k-- > i + 1;) {
		const struct btz_member *l = &ix->members[k];

		if (l->type != BTZ_TYPE_HARDLINK ||
		    strcmp(l->target, m->target) != 0)
			continue;
		pk->links = realloc(pk->links,
				    (pk->nlinks + 1) * sizeof(*pk->links));
		if (pk->links == NULL ||
		    (pk->links[pk->nlinks] = strdup(l->path)) == NULL)
			btz_die("out of memory");
		pk->nlinks++;
		if (btz_index_drop_member(ix, k, &err) != BTZ_OK)
			btz_die("%s: %s", m->path, err.msg);
	}
	if (btz_index_drop_member(ix, i, &err) != BTZ_OK)
		btz_die("%s: %s", m->path, err.msg);
	pk->links = realloc(pk->links, (pk->nlinks + 1) * sizeof(*pk->links));
	if (pk->links == NULL ||
	    (pk->links[pk->nlinks] = strdup(m->path)) == NULL)
		btz_die("out of memory");
	pk->nlinks++;
	/* This entry's data goes under the target's name. */
	m->path = m->target;
	m->target = NULL;
	m->type = BTZ_TYPE_FILE;
}

/* One entry from libarchive (disk walk or archive import). */
static void pack_entry(struct packer *pk, struct archive *a,
		       struct archive_entry *e)
{
	struct btz_member m;
	const char *why = NULL;
	char *path, *name, *target = NULL;
	const char *shown = archive_entry_pathname(e);
	struct btz_error err;
	int stripped = 0, st2 = 0;

	if (shown == NULL)
		shown = "(unnamed)";
	if (btz_entry_to_member(e, &m, &why) != 0) {
		btz_warn("%s: %s, skipped", shown, why);
		return;
	}
	path = strdup(shown);
	if (path == NULL)
		btz_die("out of memory");
	name = btz_entry_clean_path(path, &stripped);
	if (m.target != NULL && m.type == BTZ_TYPE_HARDLINK) {
		target = strdup(m.target);
		if (target == NULL)
			btz_die("out of memory");
		m.target = btz_entry_clean_path(target, &st2);
		if (m.target == NULL) {
			btz_warn("%s: hard link to an empty name, skipped",
				 shown);
			goto out;
		}
	}
	if (name == NULL) {
		if (m.type != BTZ_TYPE_DIR)
			btz_warn("%s: empty member name, skipped", shown);
		goto out;
	}
	if ((stripped || st2) && !pk->warned_strip) {
		btz_info("removing leading '/' and '../' from member names");
		pk->warned_strip = 1;
	}
	if (strlen(name) > BTZ_PATH_MAX) {
		btz_warn("%s: name longer than %d bytes, skipped", shown,
			 BTZ_PATH_MAX);
		goto out;
	}
	m.path = name;
	if (m.type == BTZ_TYPE_HARDLINK && archive_entry_size_is_set(e) &&
	    archive_entry_size(e) > 0)
		relink_with_data(pk, &m);
	if (m.type == BTZ_TYPE_FILE) {
		uint64_t expect = archive_entry_size_is_set(e) &&
					  archive_entry_size(e) >= 0
				  ? (uint64_t)archive_entry_size(e)
				  : BTZ_SIZE_UNKNOWN;
		int ok = pack_file(pk, &m, ar_read, a, ar_why, shown,
				   expect) == 0;

		/* The links of a relinked set, oldest first (see above). */
		m.type = BTZ_TYPE_HARDLINK;
		m.modality = BTZ_MOD_OTHER;
		m.target = m.path;
		while (pk->nlinks > 0) {
			m.path = pk->links[--pk->nlinks];
			if (ok && btz_writer_add_member(&pk->w, &m, &err) !=
				      BTZ_OK)
				btz_warn("%s: %s, skipped", m.path, err.msg);
			free(m.path);
		}
	} else if (btz_writer_add_member(&pk->w, &m, &err) != BTZ_OK) {
		btz_warn("%s: %s, skipped", shown, err.msg);
	}
out:
	free(path);
	free(target);
}

static void pack_paths(struct packer *pk, char **paths, int n)
{
	struct archive_entry_linkresolver *lr;
	struct archive_entry *e, *spare;
	struct archive *d;

	lr = archive_entry_linkresolver_new();
	d = archive_read_disk_new();
	e = archive_entry_new();
	if (lr == NULL || d == NULL || e == NULL)
		btz_die("out of memory");
	archive_entry_linkresolver_set_strategy(lr,
		ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	archive_read_disk_set_standard_lookup(d);
	archive_read_disk_set_symlink_physical(d);
	archive_read_disk_set_behavior(d, ARCHIVE_READDISK_NO_XATTR |
					  ARCHIVE_READDISK_NO_ACL |
					  ARCHIVE_READDISK_NO_FFLAGS);
	for (int i = 0; i < n; i++) {
		int r;

		if (archive_read_disk_open(d, paths[i]) != ARCHIVE_OK) {
			btz_warn("%s: %s, skipped", paths[i],
				 archive_error_string(d));
			continue;
		}
		for (;;) {
			struct archive_entry *cur;

			archive_entry_clear(e);
			r = archive_read_next_header2(d, e);
			if (r == ARCHIVE_EOF)
				break;
			if (r == ARCHIVE_FATAL) {
				btz_warn("%s: %s", paths[i],
					 archive_error_string(d));
				break;
			}
			if (r < ARCHIVE_WARN) {
				btz_warn("%s: %s, skipped",
					 archive_entry_pathname(e)
						 ? archive_entry_pathname(e)
						 : paths[i],
					 archive_error_string(d));
				continue;
			}
			if (r == ARCHIVE_WARN)
				btz_warn("%s: %s", archive_entry_pathname(e),
					 archive_error_string(d));
			if (pk->out_is_file &&
			    archive_entry_dev(e) == pk->out_dev &&
			    (ino_t)archive_entry_ino64(e) == pk->out_ino) {
				btz_warn("%s: is the archive being written, "
					 "skipped", archive_entry_pathname(e));
				continue;
			}
			archive_read_disk_descend(d);
			cur = e;
			spare = NULL;
			archive_entry_linkify(lr, &cur, &spare);
			if (cur != NULL)
				pack_entry(pk, d, cur);
			if (spare != NULL)
				archive_entry_free(spare);
		}
		archive_read_close(d);
	}
	archive_read_free(d);
	archive_entry_free(e);
	archive_entry_linkresolver_free(lr);
}

static void pack_tar(struct packer *pk, const char *src)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	const char *shown = strcmp(src, "-") == 0 ? "(stdin)" : src;
	int r;

	if (a == NULL)
		btz_die("out of memory");
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	if (archive_read_open_filename(a, strcmp(src, "-") == 0 ? NULL : src,
				       READ_SIZE) != ARCHIVE_OK)
		btz_die("%s: %s", shown, archive_error_string(a));
	for (;;) {
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r == ARCHIVE_WARN)
			btz_warn("%s: %s", shown, archive_error_string(a));
		else if (r != ARCHIVE_OK)
			btz_die("%s: %s", shown, archive_error_string(a));
		pack_entry(pk, a, e);
	}
	archive_read_free(a);
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: %s [OPTION]... [PATH]...\n"
"Pack files and directories into a .btz archive; with no PATH, pack\n"
"standard input to standard output.\n"
"\n"
"  -o, --output=FILE     write the archive to FILE ('-' = stdout);\n"
"                        default with one PATH: PATH.btz\n"
"      --from-tar=FILE   import an archive libarchive reads (tar, zip, cpio,\n"
"                        compressed or not; '-' = stdin)\n"
"      --chunk-size=SIZE bytes per chunk, 64K to 64M (default 8M)\n"
"  -0 ... -9             LZMA2 preset of the fallback method (default 9)\n"
"  -e, --extreme         LZMA2 extreme variant (slower, a little smaller)\n"
"      --model=PATH      code chunks of its modality with this model (.btm)\n"
"      --no-default-models  use no model but those given with --model\n"
"      --device=WHERE    run models on cpu, cuda or auto (default: a GPU\n"
"                        if one answers); the archive is the same\n"
"      --modality=MOD    treat every file as MOD: text, image, audio or other\n"
"                        (raw pixels or samples: the whole file is payload)\n"
"      --channels=N      with --modality=audio: raw samples interleave N\n"
"                        channels (default 1)\n"
"  -T, --threads=N       worker threads, 0 = one per CPU (default)\n"
"  -f, --force           overwrite the output; allow a terminal as output\n"
"  -k, --keep            keep input files (always: btzpack deletes nothing)\n"
"  -v, --verbose         progress on a terminal and a summary\n"
"  -q, --quiet           no warnings\n"
"  -h, --help            this help\n"
"  -V, --version         version\n"
"\n"
"Exit status: 0 ok, 1 error, 2 warning (something was skipped).\n",
		btz_progname);
}

/* PATH.btz beside a single input, or NULL when no name can be made. */
static char *default_output(const char *path)
{
	size_t n = strlen(path);
	char *s;

	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n == 0 || (n == 1 && path[0] == '/') ||
	    (n == 1 && path[0] == '.') || (n == 2 && !strncmp(path, "..", 2)) ||
	    (n >= 2 && path[n - 1] == '.' && path[n - 2] == '/') ||
	    (n >= 3 && !strncmp(path + n - 3, "/..", 3)))
		return NULL;
	s = malloc(n + 5);
	if (s != NULL)
		sprintf(s, "%.*s.btz", (int)n, path);
	return s;
}

int main(int argc, char **argv)
{
	enum { OPT_FROM_TAR = 256, OPT_CHUNK, OPT_MODEL, OPT_MODALITY,
	       OPT_NO_DEFAULTS, OPT_DEVICE, OPT_CHANNELS };
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "from-tar", required_argument, NULL, OPT_FROM_TAR },
		{ "chunk-size", required_argument, NULL, OPT_CHUNK },
		{ "extreme", no_argument, NULL, 'e' },
		{ "model", required_argument, NULL, OPT_MODEL },
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "no-default-models", no_argument, NULL, OPT_NO_DEFAULTS },
		{ "modality", required_argument, NULL, OPT_MODALITY },
		{ "channels", required_argument, NULL, OPT_CHANNELS },
		{ "threads", required_argument, NULL, 'T' },
		{ "force", no_argument, NULL, 'f' },
		{ "keep", no_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct packer pk;
	struct btz_out out;
	struct btz_error err;
	const char *output = NULL, *from_tar = NULL, *model_paths[4];
	size_t nmodel_paths = 0;
	int no_defaults = 0;
	enum btz_device_choice device = BTZ_RUN_AUTO;
	char *defout = NULL;
	int threads = btz_online_cpus(), force = 0, c;
	uint64_t chunk = DEFAULT_CHUNK, total = 0;
	uint32_t preset = 9, extreme = 0;
	struct stat st;
	double t0;

	btz_cli_init(argv[0]);
	memset(&pk, 0, sizeof(pk));
	pk.force_mod = -1;
	while ((c = getopt_long(argc, argv, "o:T:fkvqhVe0123456789", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case OPT_FROM_TAR: from_tar = optarg; break;
		case OPT_CHUNK:
			if (btz_parse_size(optarg, &chunk) != 0 ||
			    chunk < MIN_CHUNK || chunk > BTZ_CHUNK_MAX)
				btz_die("--chunk-size: '%s' is not a size from "
					"64K to 64M", optarg);
			break;
		case OPT_DEVICE: device = btz_device_arg(optarg); break;
		case OPT_MODEL:
			if (nmodel_paths == 4)
				btz_die("--model: at most one model per "
					"modality");
			model_paths[nmodel_paths++] = optarg;
			break;
		case OPT_MODALITY: {
			enum btz_modality mod;

			if (btz_modality_parse(optarg, &mod) != 0)
				btz_die("--modality: '%s' is not text, image, "
					"audio or other", optarg);
			pk.force_mod = (int)mod;
			break;
		}
		case OPT_CHANNELS: {
			char *end;
			unsigned long c = strtoul(optarg, &end, 10);

			if (*optarg < '1' || *optarg > '9' || *end != '\0' ||
			    c > BTZ_PLANES_MAX)
				btz_die("--channels: '%s' is not a channel count "
					"from 1 to %d", optarg, BTZ_PLANES_MAX);
			pk.force_channels = (unsigned)c;
			break;
		}
		case 'e': extreme = BTZ_LZMA_EXTREME; break;
		case 'T':
			threads = btz_parse_threads(optarg);
			if (threads < 0)
				btz_die("-T: '%s' is not a thread count",
					optarg);
			break;
		case 'f': force = 1; break;
		case 'k': break;
		case OPT_NO_DEFAULTS: no_defaults = 1; break;
		case 'v': btz_verbose = 1; break;
		case 'q': btz_quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("btzpack (btz) %s\n", PACKAGE_VERSION);
			return 0;
		default:
			if (c >= '0' && c <= '9') {
				preset = (uint32_t)(c - '0');
				break;
			}
			usage(stderr);
			return BTZ_EXIT_ERROR;
		}
	}
	argc -= optind;
	argv += optind;
	if (from_tar != NULL && argc > 0)
		btz_die("--from-tar takes no PATH arguments");
	if (output == NULL && argc > 1)
		btz_die("several inputs need -o ARCHIVE");
	if (output == NULL && argc == 1) {
		defout = default_output(argv[0]);
		if (defout == NULL)
			btz_die("%s: cannot name the archive after it; use -o",
				argv[0]);
		output = defout;
	}
	for (int i = 0; i < argc; i++) {
		if (lstat(argv[i], &st) != 0)
			btz_die("%s: %s", argv[i], strerror(errno));
		total = S_ISREG(st.st_mode) && total != UINT64_MAX
				? total + (uint64_t)st.st_size
				: UINT64_MAX;
	}
	if (total == UINT64_MAX)
		total = 0;
	if (pk.force_channels > 0 && pk.force_mod != BTZ_MOD_AUDIO)
		btz_die("--channels needs --modality=audio");
	if (argc == 0 && from_tar == NULL && isatty(STDIN_FILENO) && !force)
		btz_die("refusing to read data from a terminal (use -f)");

	btz_signals_install();
	if (btz_out_open(&out, output, force, 1) != 0)
		return BTZ_EXIT_ERROR;
	pk.outname = output && strcmp(output, "-") ? output : "(stdout)";
	if (fstat(out.fd, &st) == 0 && S_ISREG(st.st_mode)) {
		pk.out_is_file = 1;
		pk.out_dev = st.st_dev;
		pk.out_ino = st.st_ino;
	}
	pk.chunk_size = (size_t)chunk;
	pk.preset = preset | extreme;
	btz_method_lzma2(&pk.lzma, &pk.preset);
	for (int cls = 0; cls < NCLASSES; cls++) {
		pk.cand[cls][0] = &pk.lzma;
		pk.ncand[cls] = 1;
	}
	pk.nring = 2 * (size_t)threads + 1;
	pk.ring = calloc(pk.nring, sizeof(*pk.ring));
	pk.pool = btz_pool_create(threads);
	pk.rdbuf = malloc(BTZ_SNIFF_SIZE > READ_SIZE ? BTZ_SNIFF_SIZE
						     : READ_SIZE);
	if (pk.ring == NULL || pk.pool == NULL || pk.rdbuf == NULL)
		btz_die("out of memory");
	if (btz_writer_open(&pk.w, out.fd, &err) != BTZ_OK)
		btz_die("%s: %s", pk.outname, err.msg);
	for (size_t k = 0; k < nmodel_paths; k++)
		add_model(&pk, model_paths[k]);
	if (!no_defaults)
		add_default_models(&pk);
	if (pk.nmodels > 0)
		btz_device_choose(device);
	pk.cur_limit = limit_for(&pk, BTZ_MOD_OTHER, 0, 0);
	t0 = btz_now();
	btz_progress_start(&pk.prog, "btzpack", total);

	if (from_tar != NULL)
		pack_tar(&pk, from_tar);
	else if (argc == 0)
		pack_stdin(&pk);
	else
		pack_paths(&pk, argv, argc);

	submit_current(&pk);
	while (pk.count > 0)
		drain_one(&pk);
	if (btz_writer_finish(&pk.w, &err) != BTZ_OK)
		btz_die("%s: %s", pk.outname, err.msg);
	btz_progress_end(&pk.prog);
	if (btz_out_commit(&out) != 0)
		return BTZ_EXIT_ERROR;
	if (btz_verbose) {
		char a[32], b[32], r[32];
		double dt = btz_now() - t0;

		btz_note("%s: %zu members, %s -> %s (%.2f%%), %s/s",
			 pk.outname, pk.w.ix.nmembers,
			 btz_human(a, sizeof(a), (double)pk.stream_off),
			 btz_human(b, sizeof(b), (double)pk.w.pos),
			 pk.stream_off ? 100.0 * pk.w.pos / pk.stream_off : 0,
			 btz_human(r, sizeof(r),
				   dt > 0 ? pk.stream_off / dt : 0));
	}
	btz_writer_free(&pk.w);
	btz_pool_free(pk.pool);
	for (size_t k = 0; k < pk.nmodels; k++)
		btz_model_method_free(&pk.models[k]);
	for (size_t i = 0; i < pk.nring; i++) {
		free(pk.ring[i].in);
		free(pk.ring[i].out);
		free(pk.ring[i].scratch);
	}
	free(pk.ring);
	free(pk.rdbuf);
	free(pk.links);
	free(defout);
	return btz_exit_status();
}
