/* The worker pool: work off the loop, done on it, bounded capacity, cancel on stop. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "server/pool.h"
#include "check.h"

typedef struct test_job {
    mdl_job_t job;
    pthread_t worker_thread;
    int done_calls, cancelled;
    pthread_mutex_t *gate; /* held by the test to keep a worker busy */
} test_job_t;

static pthread_t loop_thread;

static void work(mdl_job_t *job)
{
    test_job_t *t = (test_job_t *)job;
    t->worker_thread = pthread_self();
    if (t->gate) {
        pthread_mutex_lock(t->gate);
        pthread_mutex_unlock(t->gate);
    }
}

static void done(mdl_job_t *job, int cancelled)
{
    test_job_t *t = (test_job_t *)job;
    CHECK(pthread_equal(pthread_self(), loop_thread));
    t->done_calls++;
    t->cancelled = cancelled;
}

static void test_runs_off_loop(void)
{
    uv_loop_t loop;
    mdl_pool_t *pool;
    test_job_t jobs[8] = {0};

    loop_thread = pthread_self();
    uv_loop_init(&loop);
    CHECK_EQ_INT(mdl_pool_new(&loop, 2, 6, &pool), 0);
    for (int i = 0; i < 8; i++) {
        jobs[i].job.work = work;
        jobs[i].job.done = done;
        CHECK_EQ_INT(mdl_pool_submit(pool, &jobs[i].job), 0);
    }
    while (mdl_pool_pending(pool) > 0)
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ_INT(jobs[i].done_calls, 1);
        CHECK_EQ_INT(jobs[i].cancelled, 0);
        CHECK(!pthread_equal(jobs[i].worker_thread, loop_thread));
        CHECK(jobs[i].job.t_start >= jobs[i].job.t_submit);
    }
    mdl_pool_stop(pool);
    mdl_pool_free(pool);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_full_and_cancel(void)
{
    uv_loop_t loop;
    mdl_pool_t *pool;
    pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
    test_job_t jobs[4] = {0};
    test_job_t extra = {0};

    loop_thread = pthread_self();
    uv_loop_init(&loop);
    CHECK_EQ_INT(mdl_pool_new(&loop, 1, 3, &pool), 0);
    pthread_mutex_lock(&gate);
    for (int i = 0; i < 4; i++) {
        jobs[i].job.work = work;
        jobs[i].job.done = done;
        jobs[i].gate = &gate;
        CHECK_EQ_INT(mdl_pool_submit(pool, &jobs[i].job), 0);
    }
    extra.job.work = work;
    extra.job.done = done;
    CHECK_EQ_INT(mdl_pool_submit(pool, &extra.job), -EBUSY); /* 1 running + 3 queued */
    usleep(20000); /* let the worker pick up job 0 and block on the gate */
    pthread_mutex_unlock(&gate);
    mdl_pool_stop(pool); /* queued jobs that have not started are cancelled */
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(jobs[i].done_calls, 1);
    CHECK_EQ_INT(jobs[0].cancelled, 0);
    CHECK_EQ_INT(extra.done_calls, 0);
    CHECK_EQ_INT(mdl_pool_submit(pool, &extra.job), -ECANCELED);
    mdl_pool_free(pool);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

/* A producer thread posts after each of 20 000 increments; the loop must see the final
 * value, never run fn off the loop, and may coalesce posts. */
typedef struct counter_post {
    mdl_post_t post;
    pthread_mutex_t lock;
    long produced, seen_last;
    long calls;
    int off_loop;
    mdl_pool_t *pool;
} counter_post_t;

static void on_counter(mdl_post_t *post)
{
    counter_post_t *c = (counter_post_t *)post;
    c->off_loop |= !pthread_equal(pthread_self(), loop_thread);
    pthread_mutex_lock(&c->lock);
    c->seen_last = c->produced;
    pthread_mutex_unlock(&c->lock);
    c->calls++;
}

static void *produce(void *arg)
{
    counter_post_t *c = arg;
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&c->lock);
        c->produced++;
        pthread_mutex_unlock(&c->lock);
        mdl_pool_post(c->pool, &c->post);
    }
    return NULL;
}

static void test_post_from_another_thread(void)
{
    uv_loop_t loop;
    counter_post_t c = {.post.fn = on_counter, .lock = PTHREAD_MUTEX_INITIALIZER};
    pthread_t producer;

    loop_thread = pthread_self();
    uv_loop_init(&loop);
    CHECK_EQ_INT(mdl_pool_new(&loop, 1, 1, &c.pool), 0);
    pthread_create(&producer, NULL, produce, &c);
    while (c.seen_last < 20000)
        uv_run(&loop, UV_RUN_ONCE);
    pthread_join(producer, NULL);
    CHECK_EQ_INT(c.seen_last, 20000);
    CHECK(c.calls >= 1 && c.calls <= 20000);
    CHECK_EQ_INT(c.off_loop, 0);
    mdl_pool_stop(c.pool);
    mdl_pool_free(c.pool);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    RUN(test_runs_off_loop);
    RUN(test_full_and_cancel);
    RUN(test_post_from_another_thread);
    return check_summary();
}
