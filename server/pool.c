#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

#include "handlers/handler.h"

struct mdl_pool {
    uv_async_t wake;           /* loop side: done jobs are waiting */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    mdl_job_t *queue_head, *queue_tail; /* waiting for a worker */
    mdl_job_t *done_head;              /* finished, waiting for the loop (LIFO, reversed) */
    mdl_post_t *posts;                 /* posted callbacks waiting for the loop (LIFO) */
    size_t pending;            /* loop thread only: submitted, done not yet called */
    size_t capacity;
    unsigned n_threads;
    pthread_t *threads;
    bool stopping;
};

static void *worker_main(void *arg)
{
    mdl_pool_t *p = arg;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        mdl_job_t *job;
        while (!p->queue_head && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        if (!p->queue_head)
            break;
        job = p->queue_head;
        p->queue_head = job->_next;
        if (!p->queue_head)
            p->queue_tail = NULL;
        pthread_mutex_unlock(&p->lock);

        job->t_start = mdl_now();
        job->work(job);
        job->t_end = mdl_now();

        pthread_mutex_lock(&p->lock);
        job->_next = p->done_head;
        p->done_head = job;
        uv_async_send(&p->wake);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Runs done callbacks in completion order. */
static void run_done(mdl_pool_t *p)
{
    mdl_job_t *list, *rev = NULL;

    pthread_mutex_lock(&p->lock);
    list = p->done_head;
    p->done_head = NULL;
    pthread_mutex_unlock(&p->lock);
    while (list) {
        mdl_job_t *next = list->_next;
        list->_next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        mdl_job_t *next = rev->_next;
        p->pending--;
        rev->done(rev, 0);
        rev = next;
    }
}

static void run_posts(mdl_pool_t *p)
{
    mdl_post_t *list, *rev = NULL;

    pthread_mutex_lock(&p->lock);
    list = p->posts;
    p->posts = NULL;
    pthread_mutex_unlock(&p->lock);
    while (list) {
        mdl_post_t *next = list->_next;
        list->_next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        mdl_post_t *next = rev->_next;
        /* Still marked queued until now, so no poster touched _next; a post arriving
         * after this line queues it again, one before it is seen by this fn call. */
        pthread_mutex_lock(&p->lock);
        rev->_queued = false;
        pthread_mutex_unlock(&p->lock);
        rev->fn(rev);
        rev = next;
    }
}

static void on_wake(uv_async_t *h)
{
    run_done(h->data);
    run_posts(h->data);
}

void mdl_pool_unpost(mdl_pool_t *p, mdl_post_t *post)
{
    pthread_mutex_lock(&p->lock);
    if (post->_queued) {
        for (mdl_post_t **link = &p->posts; *link; link = &(*link)->_next) {
            if (*link == post) {
                *link = post->_next;
                post->_queued = false;
                break;
            }
        }
    }
    pthread_mutex_unlock(&p->lock);
}

void mdl_pool_post(mdl_pool_t *p, mdl_post_t *post)
{
    pthread_mutex_lock(&p->lock);
    if (!post->_queued && !p->stopping) {
        post->_queued = true;
        post->_next = p->posts;
        p->posts = post;
        uv_async_send(&p->wake);
    }
    pthread_mutex_unlock(&p->lock);
}

int mdl_pool_new(uv_loop_t *loop, unsigned threads, unsigned max_queue, mdl_pool_t **ret)
{
    mdl_pool_t *p = calloc(1, sizeof *p);
    int r;

    if (!p)
        return -ENOMEM;
    p->threads = calloc(threads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return -ENOMEM;
    }
    p->capacity = (size_t)threads + max_queue;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    r = uv_async_init(loop, &p->wake, on_wake);
    if (r < 0) {
        free(p->threads);
        free(p);
        return r;
    }
    p->wake.data = p;
    for (unsigned i = 0; i < threads; i++) {
        r = pthread_create(&p->threads[i], NULL, worker_main, p);
        if (r != 0) {
            p->n_threads = i;
            mdl_pool_stop(p);
            mdl_pool_free(p);
            return -r;
        }
        /* named here, not in the thread: the name shows before the thread first runs */
        pthread_setname_np(p->threads[i], "modeld-worker");
        p->n_threads = i + 1;
    }
    *ret = p;
    return 0;
}

int mdl_pool_submit(mdl_pool_t *p, mdl_job_t *job)
{
    if (p->stopping)
        return -ECANCELED;
    if (p->pending >= p->capacity)
        return -EBUSY;
    job->t_submit = mdl_now();
    job->_next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->queue_tail)
        p->queue_tail->_next = job;
    else
        p->queue_head = job;
    p->queue_tail = job;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    p->pending++;
    return 0;
}

size_t mdl_pool_pending(const mdl_pool_t *p)
{
    return p->pending;
}

void mdl_pool_stop(mdl_pool_t *p)
{
    mdl_job_t *cancelled;

    pthread_mutex_lock(&p->lock);
    if (p->stopping && !p->n_threads) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    p->stopping = true;
    cancelled = p->queue_head;
    p->queue_head = p->queue_tail = NULL;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);

    while (cancelled) {
        mdl_job_t *next = cancelled->_next;
        p->pending--;
        cancelled->done(cancelled, 1);
        cancelled = next;
    }
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    p->n_threads = 0;
    run_done(p);
}

static void on_closed(uv_handle_t *h)
{
    mdl_pool_t *p = h->data;

    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->threads);
    free(p);
}

void mdl_pool_free(mdl_pool_t *p)
{
    if (p)
        uv_close((uv_handle_t *)&p->wake, on_closed);
}
