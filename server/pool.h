/* The inference worker pool: a fixed number of threads and a bounded queue. Jobs are
 * submitted on the loop thread; `work` runs on a worker, then `done` runs back on the loop
 * thread (woken through a uv_async_t). Separate from libuv's own pool, which model loads
 * and file system calls use, so inference never starves them nor they it. */
#ifndef MDL_POOL_H
#define MDL_POOL_H

#include <stdbool.h>
#include <stddef.h>

struct uv_loop_s;
typedef struct mdl_pool mdl_pool_t;
typedef struct mdl_job mdl_job_t;

struct mdl_job {
    void (*work)(mdl_job_t *job);               /* worker thread */
    void (*done)(mdl_job_t *job, int cancelled); /* loop thread */
    double t_submit, t_start, t_end;            /* monotonic seconds, set by the pool */
    mdl_job_t *_next;
};

/* A callback any thread can ask the loop to run: how generation threads hand tokens to
 * their HTTP requests. Posting one that is already queued does nothing, so a producer may
 * post after every token and the loop runs fn once for all that arrived. The poster keeps
 * it alive until fn has run (fn is the loop's cue that it may be freed). */
typedef struct mdl_post mdl_post_t;
struct mdl_post {
    void (*fn)(mdl_post_t *post); /* loop thread */
    mdl_post_t *_next;
    bool _queued;
};

/* Loop thread. threads >= 1; at most threads + max_queue jobs in the pool at once. */
int mdl_pool_new(struct uv_loop_s *loop, unsigned threads, unsigned max_queue, mdl_pool_t **ret);

/* Loop thread. 0, or -EBUSY when full, or -ECANCELED after mdl_pool_stop. The job must stay
 * alive until its done callback has run. */
int mdl_pool_submit(mdl_pool_t *p, mdl_job_t *job);

/* Any thread. Runs post->fn(post) on the loop thread soon (after mdl_pool_stop: never). */
void mdl_pool_post(mdl_pool_t *p, mdl_post_t *post);

/* Loop thread. Takes post off the queue if it is there, so its owner may free it once no
 * thread will post it again. */
void mdl_pool_unpost(mdl_pool_t *p, mdl_post_t *post);

/* Jobs submitted and not yet done. */
size_t mdl_pool_pending(const mdl_pool_t *p);

/* Loop thread. Cancels queued jobs (done with cancelled=1), waits for running ones, calls
 * every outstanding done callback, joins the threads. Idempotent. */
void mdl_pool_stop(mdl_pool_t *p);

/* Loop thread, after mdl_pool_stop; closes the async handle, then frees the pool in its
 * close callback. */
void mdl_pool_free(mdl_pool_t *p);

#endif
