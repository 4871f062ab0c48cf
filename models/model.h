/* The seam between the daemon and every model kind.
 *
 * A model is loaded once (on any thread), published, and from then on immutable: any
 * number of threads may score it at once while holding a reference. The refcount is the
 * only thing that changes after load; the last mdl_model_unref() frees it.
 *
 * Handlers ask for a capability (tabular scoring, later generation), never for a kind.
 * This header, like everything under models/, uses only libc: no uv, MHD or cJSON. */
#ifndef MDL_MODEL_H
#define MDL_MODEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

typedef struct mdl_model mdl_model_t;

/* What a tabular score call returns per row. */
typedef enum mdl_output {
    MDL_OUTPUT_VALUE = 0, /* transformed: probability, class id, regression value */
    MDL_OUTPUT_MARGIN,    /* raw score before the link (decision function) */
    MDL_OUTPUT_LEAF,      /* leaf index per tree (tree models only) */
} mdl_output_t;

typedef enum mdl_task {
    MDL_TASK_BINARY,     /* value: P(class 1), one per row */
    MDL_TASK_MULTICLASS, /* value: n_classes probabilities per row */
    MDL_TASK_REGRESSION, /* value: one number per row */
    MDL_TASK_RANKING,    /* value: one relevance score per row */
    MDL_TASK_DECISION,   /* linear SVM: decision function, no link; 1 or n_classes per row */
    MDL_TASK_GENERATION, /* text generation (kind "transformer"): no rows, see
                            mdl_model_lm() */
} mdl_task_t;

/* One input column as callers name it. Numeric unless n_categories > 0: then callers send
 * one of the category strings and the scorer receives its index (-1 = unknown). */
typedef struct mdl_feature {
    char *name;          /* owned */
    size_t n_categories; /* 0 = numeric */
    char **categories;   /* owned, n_categories strings */
    bool ignored;        /* the model reads nothing from it (e.g. a column its pipeline drops):
                            callers may send any scalar there */
} mdl_feature_t;

/* Options the repository config passes to a loader. */
typedef struct mdl_load_opts {
    const char *kind;          /* "lr", ...; NULL = detect from the artifact file name */
    size_t max_artifact_bytes; /* refuse larger artifacts; 0 = no limit */
    unsigned gen_threads;      /* transformer: threads of its generation engine (0 = 1) */
    unsigned max_sequences;    /* transformer: sequences generating at once (0 = 16) */
    const char *chat_template; /* transformer: "plain" | "chatml" | "llama2" overrides the
                                  tokenizer's; NULL = from tokenizer_config.json */
    const char *weights;       /* transformer: "stored" | "q8_0" (quantize the matmul
                                  weights at load); NULL = stored */
    double negative_sampling_rate; /* binary models trained on negatives kept at this rate
                                      (0, 1]: value outputs are calibrated back; 0 = none */
} mdl_load_opts_t;

/* Tabular capability. rows is n_rows x n_features, row-major; NaN = missing; categorical
 * columns hold the category index (-1 unknown). out is n_rows x output_width(kind).
 * Called from any thread on a published model; must not write to impl. */
typedef struct mdl_tabular_ops {
    size_t (*output_width)(const void *impl, mdl_output_t kind); /* 0 = not supported */
    int (*score)(const void *impl, const double *rows, size_t n_rows, mdl_output_t kind,
                 double *out, mdl_err_t *reterr);
} mdl_tabular_ops_t;

/* A model kind: how to recognise, load and free it, and what it can do. */
typedef struct mdl_kind {
    const char *name;              /* "lr" */
    const char *const *artifacts;  /* artifact file names that identify it, NULL-terminated */
    /* Parses and validates `path` (the artifact inside the version folder). On success sets
     * m->impl, m->task, m->features/n_features, m->classes/n_classes and returns 0; a
     * loader that reads the file whole also sets m->sha256 and m->artifact_bytes from those
     * bytes (else mdl_model_load_dir hashes the file afterwards). On
     * failure frees what it allocated in m (the caller frees the rest) and fills reterr. */
    int (*load)(const char *path, const mdl_load_opts_t *opts, mdl_model_t *m, mdl_err_t *reterr);
    void (*destroy)(void *impl);   /* frees impl; NULL-safe */
    const mdl_tabular_ops_t *tabular; /* NULL if the kind is not tabular */
} mdl_kind_t;

struct mdl_model {
    atomic_long _refs;        /* private: use mdl_model_ref/unref */
    const mdl_kind_t *kind;
    void *impl;               /* kind-private, immutable after load */
    mdl_task_t task;
    size_t n_features;
    mdl_feature_t *features;  /* owned, n_features */
    size_t n_classes;         /* 0 for regression/ranking */
    char **classes;           /* owned class labels as text, n_classes */
    char artifact[512];       /* path of the artifact that was loaded */
    char sha256[65];          /* of the artifact bytes, hex */
    size_t artifact_bytes;
    size_t cost_per_row;      /* rough work to score one row (multiply-adds, node visits),
                                 for deciding what is cheap enough for the event loop;
                                 0 = n_features */
    size_t *_by_name;         /* private: feature columns sorted by name */
    double negative_sampling_rate; /* 0 = none; else mdl_model_score maps a value output p
                                      to p / (p + (1 - p) / rate) (binary models only) */
};

/* Loads the model in version folder `dir`: picks the kind (opts->kind or by artifact file
 * name), hashes the artifact and calls the kind's loader. Returns 0 and a model with one
 * reference in *ret, or a negative code with reterr naming the file and the problem.
 * Any thread; does no logging. */
int mdl_model_load_dir(const char *dir, const mdl_load_opts_t *opts, mdl_model_t **ret,
                       mdl_err_t *reterr);

/* Refcounting; any thread. unref frees at zero and returns NULL (p = mdl_model_unref(p)). */
mdl_model_t *mdl_model_ref(mdl_model_t *m);
mdl_model_t *mdl_model_unref(mdl_model_t *m);

/* The kinds compiled in, NULL-terminated, and lookup by name (NULL if unknown). */
extern const mdl_kind_t *const mdl_kinds[];
const mdl_kind_t *mdl_kind_find(const char *name);

bool mdl_model_is_tabular(const mdl_model_t *m);

/* Generation capability: the weights, tokenizer and engine behind a model of kind
 * "transformer" (struct in models/transformer/kind.h), or NULL for every other kind.
 * Lives as long as m. */
typedef struct mdl_lm mdl_lm_t;
const mdl_lm_t *mdl_model_lm(const mdl_model_t *m);

size_t mdl_model_output_width(const mdl_model_t *m, mdl_output_t kind);
int mdl_model_score(const mdl_model_t *m, const double *rows, size_t n_rows, mdl_output_t kind,
                    double *out, mdl_err_t *reterr);

/* Column of a feature name, or -1. Category index of `value` for feature `col`, or -1. */
long mdl_model_feature_index(const mdl_model_t *m, const char *name);
long mdl_model_category_index(const mdl_model_t *m, size_t col, const char *value);

const char *mdl_task_name(mdl_task_t t);

/* For loaders that parse the artifact from memory: reads it whole, refusing more than
 * kind_max bytes (or opts->max_artifact_bytes if lower), and hashes those same bytes into
 * m->sha256 / m->artifact_bytes. The caller frees *ret_data. */
int mdl_model_read_artifact(const char *path, const mdl_load_opts_t *opts, size_t kind_max,
                            mdl_model_t *m, char **ret_data, size_t *ret_len, mdl_err_t *reterr);

/* Frees m->features, m->classes and the name index, half-built ones included, and resets
 * them to empty; leaves impl alone. For loaders' failure paths and for mdl_model_unref. */
void mdl_model_free_metadata(mdl_model_t *m);

/* Helpers for loaders: allocate m->features / m->classes (zeroed). 0 or -ENOMEM. */
int mdl_model_alloc_features(mdl_model_t *m, size_t n);
int mdl_model_alloc_classes(mdl_model_t *m, size_t n);

#endif
