/* Worker threads over a FIFO of jobs. */
#include "archiver/pool.h"

#include <pthread.h>
#include <stdlib.h>

struct btz_pool {
	pthread_mutex_t lock;
	pthread_cond_t work; /* a job was queued, or stop */
	pthread_cond_t done; /* a job finished */
	struct btz_job *head, *tail;
	int stop;
	int nthreads;
	pthread_t *threads;
};

static void *worker(void *arg)
{
	struct btz_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct btz_job *job;

		while (p->head == NULL && !p->stop)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->head == NULL)
			break;
		job = p->head;
		p->head = job->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);
		job->run(job);
		pthread_mutex_lock(&p->lock);
		job->done = 1;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct btz_pool *btz_pool_create(int nthreads)
{
	struct btz_pool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	if (nthreads <= 1)
		return p;
	p->threads = calloc((size_t)nthreads, sizeof(*p->threads));
	if (p->threads == NULL) {
		btz_pool_free(p);
		return NULL;
	}
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
			break;
		p->nthreads++;
	}
	if (p->nthreads == 0) {
		btz_pool_free(p);
		return NULL;
	}
	return p;
}

void btz_pool_submit(struct btz_pool *p, struct btz_job *job)
{
	job->next = NULL;
	job->done = 0;
	if (p->nthreads == 0) {
		job->run(job);
		job->done = 1;
		return;
	}
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

void btz_pool_wait(struct btz_pool *p, struct btz_job *job)
{
	if (p->nthreads == 0)
		return;
	pthread_mutex_lock(&p->lock);
	while (!job->done)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

void btz_pool_free(struct btz_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	free(p);
}
