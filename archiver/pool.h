/* A fixed pool of worker threads running jobs; callers keep their own
 * order (submit in order, wait for the oldest), so output order, and so
 * every byte of an archive, is independent of the thread count. */
#ifndef BTZ_ARCHIVER_POOL_H
#define BTZ_ARCHIVER_POOL_H

struct btz_job {
	void (*run)(struct btz_job *job);
	struct btz_job *next; /* pool-private */
	int done;             /* pool-private */
};

struct btz_pool;

/* nthreads <= 1 runs each job inside btz_pool_submit. */
struct btz_pool *btz_pool_create(int nthreads);
void btz_pool_submit(struct btz_pool *p, struct btz_job *job);
void btz_pool_wait(struct btz_pool *p, struct btz_job *job);
void btz_pool_free(struct btz_pool *p);

#endif
