/* The model registry: one slot per model folder in the repository, each serving the
 * versions its version policy selects as refcounted immutable handles.
 *
 * The repository is rescanned when it changes (inotify through uv_fs_event, debounced),
 * on a polling timer (for filesystems without notifications and symlink swaps), on SIGHUP
 * and on request. A version folder whose files changed is reloaded; loads run on libuv's
 * pool, off the loop and away from the inference workers, and are published on the loop
 * thread. Requests hold their own reference, so a swap never disturbs them, and the old
 * model is freed when its last request ends. A failed load changes nothing that serves.
 *
 * Publishing protocol: write the version folder under a temporary name and rename (or
 * symlink) it into place, or put a READY file in it when complete; either loads at once.
 * Otherwise files still changing are not loaded until neither they nor the folder have
 * been modified for settle_ms.
 * Loop thread only (no locks: nothing else touches it). */
#ifndef MDL_REGISTRY_H
#define MDL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/model.h"

struct uv_loop_s;
struct mdl_metrics;
typedef struct mdl_registry mdl_registry_t;
typedef struct mdl_slot mdl_slot_t;

typedef enum { MDL_SLOT_LOADING, MDL_SLOT_READY, MDL_SLOT_FAILED, MDL_SLOT_UNLOADED } mdl_slot_state_t;

/* One version folder of a model. */
typedef struct mdl_version {
    long number;
    mdl_model_t *model;       /* loaded (one reference owned here), or NULL */
    double loaded_at;         /* unix seconds */
    uint64_t sig;             /* signature of the files `model` was loaded from */
    uint64_t failed_sig;      /* files whose load failed: not retried until they change */
    bool loading;
    bool settling;            /* changed files seen, waiting for them to be complete */
    char error[320];          /* last load error of this version, "" if none */
} mdl_version_t;

typedef enum { MDL_POLICY_LATEST, MDL_POLICY_SPECIFIC } mdl_policy_kind_t;

struct mdl_slot {
    char name[65];
    char kind[32];            /* from config.json, "" = detect from the artifact */
    /* The serving view, what requests without a version get: the highest loaded version. */
    mdl_slot_state_t state;
    mdl_model_t *model;       /* borrowed from versions[]; acquire to keep it */
    long version;             /* -1 if none */
    double loaded_at;
    char last_error[320];     /* the most recent load or config error, "" if none */
    /* All versions the policy selects that are present. */
    mdl_version_t *versions;
    size_t n_versions;
    mdl_policy_kind_t policy;
    unsigned latest_n;        /* MDL_POLICY_LATEST: serve the N highest */
    long *specific;           /* MDL_POLICY_SPECIFIC: these versions */
    size_t n_specific;
    double *warmup;           /* config "warmup_instances": rows scored before a version is published */
    size_t n_warmup_rows, n_warmup_cols;
    double negative_sampling_rate; /* config "negative_sampling_rate"; 0 = none */
    char chat_template[16];   /* config "chat_template" for transformers; "" = from the tokenizer */
    char weights[8];          /* config "weights" for transformers ("stored", "q8_0"); "" = stored */
    bool removed;             /* its folder is gone: hidden, kept for requests still holding it */
    bool unloaded;            /* unloaded by an admin call: serves nothing until loaded again */
    bool _seen;
    struct mdl_waiter *_waiters;
};

typedef struct mdl_registry_opts {
    const char *repository;
    size_t max_model_bytes;
    unsigned gen_threads, max_sequences; /* for transformer models' engines */
    unsigned poll_ms;         /* rescan period; 0 = notifications only */
    unsigned settle_ms;       /* changed files must be this old and unchanged for a scan */
    bool allow_symlinks_outside; /* else a version whose files resolve outside the repository fails */
} mdl_registry_opts_t;

/* Creates the registry and scans the repository, starting every load. Fails only if the
 * repository itself cannot be read; a bad model becomes a FAILED slot. metrics may be NULL. */
int mdl_registry_new(struct uv_loop_s *loop, const mdl_registry_opts_t *opts,
                     struct mdl_metrics *metrics, mdl_registry_t **ret, mdl_err_t *reterr);

/* Rescans the whole repository now (SIGHUP, admin). */
void mdl_registry_rescan(mdl_registry_t *reg);

size_t mdl_registry_count(const mdl_registry_t *reg);
/* The i-th slot, removed ones included (check slot->removed). */
mdl_slot_t *mdl_registry_at(const mdl_registry_t *reg, size_t i);
/* A slot that is not removed, by name; NULL if none. */
mdl_slot_t *mdl_registry_find(const mdl_registry_t *reg, const char *name);

/* A new reference to the model serving `version` (-1: the serving view), or NULL. */
mdl_model_t *mdl_registry_acquire(const mdl_slot_t *slot, long version);
/* The version entry numbered `number`, or NULL. */
const mdl_version_t *mdl_slot_version(const mdl_slot_t *slot, long number);

/* Drops a reference to m (NULL-safe). When it is the last one and the model is large,
 * the freeing happens on libuv's pool so the loop never stalls on it. */
void mdl_registry_release(mdl_registry_t *reg, mdl_model_t *m);


const char *mdl_slot_state_name(mdl_slot_state_t s);

/* Admin operations on one model (loop thread). load: clears an unload and rescans it;
 * unload: releases every version (requests holding one finish on it); reload: loads the
 * selected versions again from disk even if unchanged. name may be a folder not seen yet. */
int mdl_registry_load(mdl_registry_t *reg, const char *name, mdl_err_t *reterr);
int mdl_registry_unload(mdl_registry_t *reg, const char *name, mdl_err_t *reterr);
int mdl_registry_reload(mdl_registry_t *reg, const char *name, mdl_err_t *reterr);

/* Calls cb(arg) once the model has nothing loading or settling (at once if already so).
 * The callback runs on the loop thread. Returns 0 or -ENOMEM. */
int mdl_registry_when_settled(mdl_registry_t *reg, mdl_slot_t *slot, void (*cb)(void *arg), void *arg);

/* Runs every pending when_settled callback now (shutdown: answer before connections close). */
void mdl_registry_wake_all(mdl_registry_t *reg);

/* Closes watches and timers and releases every model; loads still running finish and are
 * dropped, and the registry is freed when the last one has. */
void mdl_registry_free(mdl_registry_t *reg);

#endif
