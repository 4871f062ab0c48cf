/* A small team of worker threads for the transformer's matmuls and attention.
 *
 * mdl_tf_team_run(team, fn, arg) runs fn(arg, tid) on every member at once (the calling
 * thread is member 0, the T-1 workers are 1..T-1) and returns when all have finished.
 * Work is split inside fn, usually by an atomic chunk counter so a member that gets
 * descheduled (2 shared cores) does not hold the others up.
 *
 * A forward pass makes a few dozen runs per token, so starting one must cost well under a
 * microsecond: idle workers spin on a generation counter for a short while, then sleep on
 * a condition variable (so a team between requests costs no CPU).
 *
 * Threads: one thread at a time drives a team (the generation thread). */
#ifndef MDL_TRANSFORMER_TEAM_H
#define MDL_TRANSFORMER_TEAM_H

#include <stddef.h>

#define MDL_TF_MAX_THREADS 64

typedef struct mdl_tf_team mdl_tf_team_t;
typedef void mdl_tf_team_fn(void *arg, size_t tid);

/* n_threads members in all (>= 1; 1 = no workers, runs inline). 0 or -errno. */
int mdl_tf_team_new(size_t n_threads, mdl_tf_team_t **ret);

/* Stops and joins the workers; NULL-safe; returns NULL. */
mdl_tf_team_t *mdl_tf_team_free(mdl_tf_team_t *team);

size_t mdl_tf_team_size(const mdl_tf_team_t *team);

void mdl_tf_team_run(mdl_tf_team_t *team, mdl_tf_team_fn *fn, void *arg);

#endif
