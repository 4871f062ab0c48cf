#include "team.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

/* Spins before sleeping: about 100 us, longer than the gaps between the runs of one
 * token (norms, RoPE), much shorter than the gap between requests. */
#define SPIN_ROUNDS 4000

/* A run's `entered` word: workers that joined it, plus this bit once the caller has
 * finished its own share and closed the run. A worker that arrives after that skips it:
 * with chunked work there is nothing left to do, and on a busy machine waiting for a
 * descheduled worker to wake up would cost a time slice. */
#define CLOSED 0x80000000u

typedef struct worker {
    mdl_tf_team_t *team;
    size_t tid;
    pthread_t thread;
} worker_t;

struct mdl_tf_team {
    size_t n;                  /* members including the caller */
    worker_t *workers;         /* n - 1 */
    size_t n_started;
    atomic_uint gen;           /* bumped once per run */
    atomic_uint entered;       /* see CLOSED */
    atomic_uint done;          /* workers finished with the current run */
    atomic_int sleepers;       /* workers waiting on cond */
    atomic_bool quit;
    mdl_tf_team_fn *fn;        /* the current run; written before gen is bumped */
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *p)
{
    worker_t *w = p;
    mdl_tf_team_t *t = w->team;
    unsigned seen = 0;

    for (;;) {
        unsigned g = 0;
        for (int i = 0; i < SPIN_ROUNDS; i++) {
            if ((g = atomic_load_explicit(&t->gen, memory_order_acquire)) != seen)
                break;
            cpu_relax();
        }
        if (g == seen) {
            pthread_mutex_lock(&t->lock);
            atomic_fetch_add(&t->sleepers, 1);
            while ((g = atomic_load(&t->gen)) == seen)
                pthread_cond_wait(&t->cond, &t->lock);
            atomic_fetch_sub(&t->sleepers, 1);
            pthread_mutex_unlock(&t->lock);
        }
        seen = g;
        if (atomic_load_explicit(&t->quit, memory_order_acquire))
            break;
        /* joins whichever run is current (fn and arg are written before entered is reset) */
        if (atomic_fetch_add_explicit(&t->entered, 1, memory_order_acq_rel) & CLOSED)
            continue;
        t->fn(t->arg, w->tid);
        atomic_fetch_add_explicit(&t->done, 1, memory_order_release);
    }
    return NULL;
}

static void wake(mdl_tf_team_t *t)
{
    atomic_fetch_add(&t->gen, 1);
    if (atomic_load(&t->sleepers) > 0) {
        pthread_mutex_lock(&t->lock);
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->lock);
    }
}

mdl_tf_team_t *mdl_tf_team_free(mdl_tf_team_t *t)
{
    if (!t)
        return NULL;
    if (t->n_started) {
        atomic_store(&t->quit, true);
        wake(t);
        for (size_t i = 0; i < t->n_started; i++)
            pthread_join(t->workers[i].thread, NULL);
    }
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t->workers);
    free(t);
    return NULL;
}

int mdl_tf_team_new(size_t n_threads, mdl_tf_team_t **ret)
{
    mdl_tf_team_t *t;

    if (n_threads < 1 || n_threads > MDL_TF_MAX_THREADS)
        return -EINVAL;
    t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->n = n_threads;
    atomic_init(&t->gen, 0);
    atomic_init(&t->done, 0);
    atomic_init(&t->entered, CLOSED);
    atomic_init(&t->sleepers, 0);
    atomic_init(&t->quit, false);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    t->workers = calloc(n_threads, sizeof *t->workers);
    if (!t->workers) {
        mdl_tf_team_free(t);
        return -ENOMEM;
    }
    for (size_t i = 0; i + 1 < n_threads; i++) {
        worker_t *w = &t->workers[i];
        int r;
        w->team = t;
        w->tid = i + 1;
        r = pthread_create(&w->thread, NULL, worker_main, w);
        if (r != 0) {
            mdl_tf_team_free(t);
            return -r;
        }
        /* named here, not in the thread: the name shows before the thread first runs (a
         * helper the caller never waited for may not have run at all) */
        pthread_setname_np(w->thread, "modeld-team");
        t->n_started++;
    }
    *ret = t;
    return 0;
}

size_t mdl_tf_team_size(const mdl_tf_team_t *t)
{
    return t->n;
}

void mdl_tf_team_run(mdl_tf_team_t *t, mdl_tf_team_fn *fn, void *arg)
{
    size_t spins = 0;
    unsigned joined;

    if (t->n == 1) {
        fn(arg, 0);
        return;
    }
    t->fn = fn;
    t->arg = arg;
    atomic_store_explicit(&t->done, 0, memory_order_relaxed);
    atomic_store_explicit(&t->entered, 0, memory_order_release);
    wake(t);
    fn(arg, 0);
    joined = atomic_fetch_or_explicit(&t->entered, CLOSED, memory_order_acq_rel) & ~CLOSED;
    while (atomic_load_explicit(&t->done, memory_order_acquire) < joined) {
        /* a worker may be descheduled on a busy machine: stop burning our core */
        if (++spins > SPIN_ROUNDS)
            sched_yield();
        else
            cpu_relax();
    }
}
