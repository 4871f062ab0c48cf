/* The model registry: one slot per model folder in the repository, each holding the
 * serving model as a refcounted immutable handle. Loads run on libuv's pool, off the loop
 * and away from the inference workers; the result is published on the loop thread.
 * Loop thread only (no locks: nothing else touches it). */
#ifndef MDL_REGISTRY_H
#define MDL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "models/model.h"

struct uv_loop_s;
typedef struct mdl_registry mdl_registry_t;
typedef struct mdl_slot mdl_slot_t;

typedef enum { MDL_SLOT_LOADING, MDL_SLOT_READY, MDL_SLOT_FAILED } mdl_slot_state_t;

struct mdl_slot {
    char name[65];
    char kind[32];           /* from config.json, "" = detect from the artifact */
    mdl_slot_state_t state;
    mdl_model_t *model;      /* serving model (one reference owned by the slot), or NULL */
    long version;            /* serving version, -1 if none */
    double loaded_at;        /* unix seconds of the last successful load */
    char last_error[320];    /* "" if the last load succeeded */
};

int mdl_registry_new(struct uv_loop_s *loop, size_t max_model_bytes, mdl_registry_t **ret);

/* Scans repo_dir and starts loading every model found. Fails only if the directory itself
 * cannot be read; a bad model becomes a FAILED slot and the others load. */
int mdl_registry_scan(mdl_registry_t *reg, const char *repo_dir, mdl_err_t *reterr);

size_t mdl_registry_count(const mdl_registry_t *reg);
mdl_slot_t *mdl_registry_at(const mdl_registry_t *reg, size_t i);
mdl_slot_t *mdl_registry_find(const mdl_registry_t *reg, const char *name);

/* A new reference to the slot's serving model, or NULL if none is loaded. */
mdl_model_t *mdl_registry_acquire(mdl_slot_t *slot);

/* True when every slot is READY. */
bool mdl_registry_all_ready(const mdl_registry_t *reg);

const char *mdl_slot_state_name(mdl_slot_state_t s);

/* Releases every slot's model; loads still running finish and are dropped, and the
 * registry is freed when the last one has. */
void mdl_registry_free(mdl_registry_t *reg);

#endif
