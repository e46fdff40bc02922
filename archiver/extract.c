/* The decoding pipeline behind extraction, -c, -t and tar export. */
#include "archiver/extract.h"

#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

/* A ring slot: one chunk. A method that decodes many chunks at once
 * (btz_method_lockstep) gets runs of consecutive slots: the first one's
 * job decodes the whole group, and the others (lead set) are never
 * submitted; they are done when their leader is, which the consumer,
 * taking slots in ring order, always waits for first. */
struct djob {
	struct btz_job job;
	const struct btz_reader *r;
	const struct btz_methods *ms;
	size_t chunk;
	uint8_t *coded, *raw;
	size_t coded_cap, raw_cap;
	enum btz_status st;
	struct btz_error err;
	struct djob **group; /* leader: its group, itself first */
	size_t ngroup;
	struct djob *lead;   /* follower: the slot whose job decodes it */
};

static size_t lockstep(const struct btz_dstream *ds, size_t chunk)
{
	return ds->lockstep[ds->r->ix.chunks[chunk].method];
}

/* Reads chunk j->chunk into j's buffers. */
static enum btz_status djob_read(struct djob *j)
{
	const struct btz_chunk *c = &j->r->ix.chunks[j->chunk];

	/* Sizes come from a validated index: raw <= 64 MiB, coded <= raw. */
	if (j->coded_cap < c->coded_size) {
		free(j->coded);
		j->coded = malloc(c->coded_size);
		j->coded_cap = j->coded ? c->coded_size : 0;
	}
	if (j->raw_cap < c->raw_size) {
		free(j->raw);
		j->raw = malloc(c->raw_size);
		j->raw_cap = j->raw ? c->raw_size : 0;
	}
	if (j->coded == NULL || j->raw == NULL)
		return btz_fail(&j->err, BTZ_E_NOMEM, "out of memory");
	return btz_reader_read_chunk(j->r, j->chunk, j->coded, &j->err);
}

static void djob_run(struct btz_job *job)
{
	struct djob *j = (struct djob *)job;
	const struct btz_chunk *c[BTZ_LOCKSTEP_MAX];
	struct btz_method_part part[BTZ_LOCKSTEP_MAX];
	struct djob *got[BTZ_LOCKSTEP_MAX];
	size_t k = 0;

	if (j->ngroup <= 1) {
		j->st = djob_read(j);
		if (j->st == BTZ_OK)
			j->st = btz_chunk_decode(j->ms,
						 &j->r->ix.chunks[j->chunk],
						 j->coded, j->raw, &j->err);
		return;
	}
	/* A chunk that cannot be read fails alone; the rest decode
	 * together. */
	for (size_t i = 0; i < j->ngroup; i++) {
		struct djob *g = j->group[i];

		g->st = djob_read(g);
		if (g->st != BTZ_OK)
			continue;
		c[k] = &g->r->ix.chunks[g->chunk];
		part[k] = (struct btz_method_part){ .in = g->coded,
						    .out = g->raw };
		got[k++] = g;
	}
	btz_chunk_decode_many(j->ms, c, part, k);
	for (size_t i = 0; i < k; i++) {
		got[i]->st = part[i].st;
		got[i]->err = part[i].err;
	}
}

enum btz_status btz_dstream_init(struct btz_dstream *ds,
				 const struct btz_reader *r,
				 const struct btz_methods *ms,
				 struct btz_pool *pool, size_t nring,
				 const unsigned char *sel,
				 struct btz_error *err)
{
	const struct btz_index *ix = &r->ix;
	unsigned char *want;

	memset(ds, 0, sizeof(*ds));
	ds->r = r;
	ds->ms = ms;
	ds->pool = pool;
	ds->need = malloc((ix->nchunks ? ix->nchunks : 1) * sizeof(size_t));
	want = calloc(ix->nchunks ? ix->nchunks : 1, 1);
	if (ds->need == NULL || want == NULL) {
		free(want);
		btz_dstream_free(ds);
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < ix->nmembers; i++) {
		const struct btz_member *m = &ix->members[i];
		size_t c;

		if ((sel && !sel[i]) || m->type != BTZ_TYPE_FILE ||
		    m->size == 0)
			continue;
		c = btz_index_chunk_at(ix, m->offset);
		while (c < ix->nchunks &&
		       ix->chunks[c].offset < m->offset + m->size)
			want[c++] = 1;
	}
	for (size_t c = 0; c < ix->nchunks; c++)
		if (want[c])
			ds->need[ds->nneed++] = c;
	free(want);
	/* Each method's group size, asked once; room for two groups of
	 * the largest that a needed chunk uses in flight. */
	unsigned char used[256] = { 0 };
	for (size_t i = 0; i < ds->nneed; i++)
		used[ix->chunks[ds->need[i]].method] = 1;
	for (int id = 0; id < 256; id++) {
		size_t k = btz_method_lockstep(ms, (uint8_t)id);

		ds->lockstep[id] = k < BTZ_LOCKSTEP_MAX ? k : BTZ_LOCKSTEP_MAX;
		if (used[id] && nring < 2 * ds->lockstep[id] + 1)
			nring = 2 * ds->lockstep[id] + 1;
	}
	ds->nring = nring < 2 ? 2 : nring;
	ds->ring = calloc(ds->nring, sizeof(*ds->ring));
	ds->groups = calloc(ds->nring * BTZ_LOCKSTEP_MAX,
			    sizeof(*ds->groups));
	if (ds->ring == NULL || ds->groups == NULL) {
		btz_dstream_free(ds);
		return btz_fail(err, BTZ_E_NOMEM, "out of memory");
	}
	return BTZ_OK;
}

void btz_dstream_free(struct btz_dstream *ds)
{
	/* Jobs still queued must finish before their buffers go; a
	 * follower's leader comes before it or has been waited for. */
	for (size_t k = 0; k < ds->count; k++) {
		struct djob *j = &ds->ring[(ds->head + k) % ds->nring];

		if (j->lead == NULL)
			btz_pool_wait(ds->pool, &j->job);
	}
	for (size_t i = 0; ds->ring && i < ds->nring; i++) {
		free(ds->ring[i].coded);
		free(ds->ring[i].raw);
	}
	free(ds->ring);
	free(ds->groups);
	free(ds->need);
	memset(ds, 0, sizeof(*ds));
}

static void refill(struct btz_dstream *ds)
{
	while (ds->count < ds->nring && ds->next < ds->nneed) {
		size_t at = (ds->head + ds->count) % ds->nring;
		struct djob *j = &ds->ring[at];
		uint8_t method;
		size_t k;

		j->r = ds->r;
		j->ms = ds->ms;
		j->chunk = ds->need[ds->next++];
		j->job.run = djob_run;
		j->lead = NULL;
		j->group = ds->groups + at * BTZ_LOCKSTEP_MAX;
		j->group[0] = j;
		j->ngroup = 1;
		ds->count++;
		/* The following chunks of the same method join its group. */
		method = ds->r->ix.chunks[j->chunk].method;
		k = lockstep(ds, j->chunk);
		while (j->ngroup < k && ds->count < ds->nring &&
		       ds->next < ds->nneed &&
		       ds->r->ix.chunks[ds->need[ds->next]].method == method) {
			struct djob *f =
				&ds->ring[(ds->head + ds->count) % ds->nring];

			f->r = ds->r;
			f->ms = ds->ms;
			f->chunk = ds->need[ds->next++];
			f->lead = j;
			f->ngroup = 0;
			j->group[j->ngroup++] = f;
			ds->count++;
		}
		btz_pool_submit(ds->pool, &j->job);
	}
}

/* Decoded bytes of chunk ci, which must be the current or a later
 * needed chunk; chunks before it are dropped. */
static enum btz_status get_chunk(struct btz_dstream *ds, size_t ci,
				 const uint8_t **data, struct btz_error *err)
{
	if (ds->cur != NULL && ds->cur->chunk == ci) {
		/* A failed chunk fails every member that shares it. */
		if (ds->cur->st != BTZ_OK) {
			*err = ds->cur->err;
			return ds->cur->st;
		}
		*data = ds->cur->raw;
		return BTZ_OK;
	}
	for (;;) {
		struct djob *j;

		if (ds->cur != NULL) {
			/* Release the consumed slot. */
			ds->cur = NULL;
			ds->head = (ds->head + 1) % ds->nring;
			ds->count--;
		}
		refill(ds);
		if (ds->count == 0)
			return btz_fail(err, BTZ_E_ARG,
					"chunk %zu was not planned", ci);
		j = &ds->ring[ds->head];
		if (j->lead == NULL)
			btz_pool_wait(ds->pool, &j->job);
		ds->cur = j;
		if (j->chunk > ci)
			return btz_fail(err, BTZ_E_ARG,
					"chunk %zu requested out of order", ci);
		if (j->chunk < ci)
			continue;
		refill(ds);
		if (j->st != BTZ_OK) {
			*err = j->err;
			return j->st;
		}
		*data = j->raw;
		return BTZ_OK;
	}
}

enum btz_status btz_member_read(struct btz_dstream *ds,
				const struct btz_member *m, btz_sink sink,
				void *ctx, struct btz_error *err)
{
	const struct btz_index *ix = &ds->r->ix;
	uint64_t done = 0;
	XXH3_state_t h;

	if (m->type != BTZ_TYPE_FILE)
		return BTZ_OK;
	XXH3_64bits_reset(&h);
	while (done < m->size) {
		uint64_t off = m->offset + done;
		size_t ci = btz_index_chunk_at(ix, off);
		const struct btz_chunk *c;
		const uint8_t *data = NULL;
		uint64_t take;
		enum btz_status s;

		if (ci >= ix->nchunks)
			return btz_fail(err, BTZ_E_CORRUPT,
					"no chunk holds offset %llu",
					(unsigned long long)off);
		c = &ix->chunks[ci];
		s = get_chunk(ds, ci, &data, err);
		if (s != BTZ_OK)
			return btz_fail_prefix(err, "chunk %zu", ci);
		take = c->offset + c->raw_size - off;
		if (take > m->size - done)
			take = m->size - done;
		XXH3_64bits_update(&h, data + (off - c->offset), (size_t)take);
		if (sink && sink(ctx, data + (off - c->offset), (size_t)take,
				 done, err) != 0)
			return err->status ? err->status : BTZ_E_IO;
		done += take;
	}
	if (!BTZ_SUM_OK(XXH3_64bits_digest(&h), m->checksum))
		return btz_fail(err, BTZ_E_CHECKSUM,
				"content checksum mismatch");
	return BTZ_OK;
}

enum btz_status btz_archive_verify(const struct btz_reader *r,
				   const struct btz_methods *ms,
				   struct btz_pool *pool, size_t nring,
				   struct btz_error *err)
{
	struct btz_dstream ds;
	enum btz_status s;

	BTZ_TRY(btz_dstream_init(&ds, r, ms, pool, nring, NULL, err));
	s = BTZ_OK;
	for (size_t i = 0; i < r->ix.nmembers && s == BTZ_OK; i++) {
		s = btz_member_read(&ds, &r->ix.members[i], NULL, NULL, err);
		if (s != BTZ_OK)
			btz_fail_prefix(err, "member %s", r->ix.members[i].path);
	}
	btz_dstream_free(&ds);
	return s;
}
