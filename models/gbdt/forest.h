/* One compiled representation for every tree ensemble modeld serves (XGBoost and
 * LightGBM), and the one scorer that walks it.
 *
 * Loaders never see the compiled layout. They describe each tree as a plain node array
 * (mdl_forest_node_in_t, the layout of the file they read) and hand it to a builder:
 *
 *   mdl_forest_builder_t *b;
 *   mdl_forest_builder_new(&params, &b, reterr);      params: flavor, features, outputs...
 *   for each tree: mdl_forest_builder_add_tree(b, &tree, reterr);   copies, validates
 *   mdl_forest_builder_finish(b, &forest, reterr);    consumes b whatever happens
 *
 * add_tree validates the tree completely (children in range, every node reached at most
 * once from the root so no cycles or shared subtrees, features < n_features, bitsets and
 * linear coefficients in bounds, finite thresholds / leaf values / weights) and its message
 * names the tree and node ("tree 3 node 17: right child 99 out of range (tree has 31
 * nodes)"), so a loader needs to check only what is specific to its file format. Nodes the
 * root does not reach are allowed (XGBoost keeps pruned nodes in its arrays), never
 * checked, and dropped. finish checks the forest-level counts (at least one tree, groups <
 * n_outputs, LightGBM average needs n_trees divisible by n_outputs).
 *
 * Semantics that differ between the libraries are chosen by the forest's flavor (and, for
 * LightGBM, per node):
 *
 *   XGBoost (MDL_FOREST_XGBOOST)
 *     - input x is cast to float; thresholds are float; numeric split: x < threshold -> left;
 *     - NaN -> default child (node must use MDL_MISSING_NAN);
 *     - categorical: NaN -> default child; x < 0, x = +inf or x >= bits in the node's
 *       bitset -> "not in set"; else category (int)x, in set -> left;
 *       (XGBoost itself sends set members right: its loader swaps the children);
 *     - margin accumulates in float: m = (float)base_score[g]; then, in tree order,
 *       m += (float)leaf * (float)weight (weight = dart weight_drop, else 1);
 *     - transforms in float (as XGBoost computes them).
 *   LightGBM (MDL_FOREST_LIGHTGBM)
 *     - input x and thresholds are double; numeric split per node missing type:
 *         NONE: NaN is taken as 0.0, then x <= threshold -> left;
 *         ZERO: NaN is taken as 0.0; |x| <= 1e-35f -> default child; else x <= threshold;
 *         NAN:  NaN -> default child; else x <= threshold;
 *     - categorical: NaN -> default child (LightGBM v3/v4 always send NaN right: set
 *       default_left = false, missing = NAN); c = (int)x (truncation toward zero, so
 *       -0.5 is category 0); x <= -1 or c >= bits in the bitset -> "not in set";
 *       in set -> left, not in set -> right;
 *     - linear leaves: out = lin_const + sum coef[j] * x[feature[j]], in that order; if any
 *       of those x is NaN the plain leaf value is used instead (LightGBM's rule);
 *     - margin accumulates in double in tree order, starting from base_score[g] (LightGBM
 *       files have none: pass NULL = zeros); average (rf average_output): VALUE divides the
 *       sums by n_trees/n_outputs before the transform, MARGIN stays the sum (LightGBM's
 *       PredictRaw does not average, Predict does);
 *     - transforms in double.
 *
 * "Not in set" always means the right child. Categorical inputs are numbers (the category
 * code); the scorer never sees strings.
 *
 * Outputs (mdl_output_t from model.h) per row:
 *   MARGIN  n_outputs raw scores (base score + trees; not averaged, as the libraries' raw
 *           score);
 *   VALUE   n_outputs transformed values, except ARGMAX: 1 (the class id, first maximum);
 *   LEAF    n_trees numbers: the `id` of the leaf reached in each tree, in tree order.
 *
 * Threads: a builder belongs to one thread. A finished forest is immutable; any number of
 * threads may score it at once. Scoring allocates at most a scratch buffer or two per call
 * (float copies or bins of a block of rows, margins for ARGMAX), never per row; -ENOMEM if
 * that fails. No function here logs. */
#ifndef MDL_GBDT_FOREST_H
#define MDL_GBDT_FOREST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/err.h"
#include "models/model.h"

/* Limits on anything a model file declares, checked before allocating. */
#define MDL_FOREST_MAX_TREES ((size_t)1 << 20)
#define MDL_FOREST_MAX_NODES ((size_t)1 << 24)       /* per tree */
#define MDL_FOREST_MAX_TOTAL_NODES ((size_t)1 << 28) /* whole forest */
/* Every feature gets a name (generated "f<i>" when the file has none) and rows are dense,
 * so a file declaring millions of features would cost memory out of proportion to its
 * size; 2^18 columns is already 2 MiB per row. */
#define MDL_FOREST_MAX_FEATURES ((size_t)1 << 18)
#define MDL_FOREST_MAX_OUTPUTS ((size_t)1 << 16)
#define MDL_FOREST_MAX_CAT_WORDS ((size_t)1 << 20)   /* per tree: 32 Mi categories */

typedef enum mdl_forest_flavor {
    MDL_FOREST_XGBOOST = 0,
    MDL_FOREST_LIGHTGBM,
} mdl_forest_flavor_t;

/* Applied to the margins for MDL_OUTPUT_VALUE. */
typedef enum mdl_forest_transform {
    MDL_TRANSFORM_IDENTITY = 0, /* regression, ranking, binary:logitraw */
    MDL_TRANSFORM_SIGMOID,      /* per output: 1 / (1 + exp(-sigmoid * m)); binary, and
                                 * LightGBM multiclassova (per class, not normalised) */
    MDL_TRANSFORM_SOFTMAX,      /* over the n_outputs margins */
    MDL_TRANSFORM_ARGMAX,       /* XGBoost multi:softmax: class id of the largest margin;
                                 * VALUE width 1 */
    MDL_TRANSFORM_EXP,          /* poisson, gamma, tweedie */
    MDL_TRANSFORM_SIGNED_SQUARE,/* LightGBM regression with sqrt: sign(m) * m * m */
    MDL_TRANSFORM_LOG1P_EXP,    /* LightGBM cross_entropy_lambda: log(1 + exp(m)) */
} mdl_forest_transform_t;

typedef enum mdl_forest_node_type {
    MDL_NODE_LEAF = 0,
    MDL_NODE_NUMERIC,
    MDL_NODE_CATEGORICAL,
} mdl_forest_node_type_t;

typedef enum mdl_forest_missing {
    MDL_MISSING_NAN = 0, /* NaN -> default child (the only choice for XGBoost) */
    MDL_MISSING_NONE,    /* LightGBM: NaN is read as 0.0 */
    MDL_MISSING_ZERO,    /* LightGBM: NaN read as 0.0; zero (|x| <= 1e-35f) -> default child */
} mdl_forest_missing_t;

/* One node as a loader describes it. Children index the same tree's node array. */
typedef struct mdl_forest_node_in {
    uint8_t type;         /* mdl_forest_node_type_t */
    uint8_t missing;      /* mdl_forest_missing_t (splits) */
    bool default_left;    /* splits: where missing values go (see above) */
    int32_t left, right;  /* splits: child node indices; ignored for leaves */
    uint32_t feature;     /* splits: input column, < n_features */
    double threshold;     /* NUMERIC: finite (XGBoost: a float value; +-inf allowed) */
    uint32_t cat_offset;  /* CATEGORICAL: bitset = tree.cat_bits[cat_offset .. +cat_words); */
    uint32_t cat_words;   /*   bit c (word c / 32, bit c % 32) set -> category c goes left */
    double value;         /* LEAF: output value, finite */
    int32_t id;           /* LEAF: what MDL_OUTPUT_LEAF reports (XGBoost node id,
                           * LightGBM leaf index) */
    uint32_t lin_offset;  /* LEAF of a linear tree: terms tree.lin_features/lin_coefs */
    uint32_t lin_terms;   /*   [lin_offset .. +lin_terms) */
    double lin_const;     /* LEAF of a linear tree: the constant term, finite */
    double count;         /* splits: training rows that reached the node (LightGBM
                           * internal_count), 0 if unknown; >= 0. Only orders the scorer's
                           * memory so that common paths share cache lines */
} mdl_forest_node_in_t;

/* One tree as a loader describes it; the builder copies what it needs. */
typedef struct mdl_forest_tree_in {
    size_t n_nodes;                     /* >= 1; root = nodes[0] */
    const mdl_forest_node_in_t *nodes;
    size_t n_cat_words;                 /* categorical bitsets of this tree */
    const uint32_t *cat_bits;
    bool linear;                        /* leaves use lin_* (LightGBM linear_tree) */
    size_t n_lin;                       /* linear terms of this tree */
    const uint32_t *lin_features;       /* each < n_features */
    const double *lin_coefs;            /* finite */
    uint32_t group;                     /* output (class) the tree adds to, < n_outputs */
    double weight;                      /* leaf multiplier (dart weight_drop); finite; 1 if
                                         * unused. LightGBM: must be 1 */
} mdl_forest_tree_in_t;

typedef struct mdl_forest_params {
    mdl_forest_flavor_t flavor;
    mdl_task_t task;                  /* for the model metadata */
    size_t n_features;                /* input columns, 1..MDL_FOREST_MAX_FEATURES */
    const char *const *feature_names; /* n_features names, copied; NULL = "f0".."fN-1" */
    size_t n_outputs;                 /* margins per row (1 or n_classes) */
    size_t n_classes;                 /* metadata: 0 regression/ranking, 2 binary, K */
    const double *base_score;         /* n_outputs margin-space values, copied; NULL = 0 */
    mdl_forest_transform_t transform;
    double sigmoid;                   /* SIGMOID scale (LightGBM "sigmoid:"); 0 means 1 */
    bool average;                     /* LightGBM average_output (rf) */
    const char *objective;            /* e.g. "binary:logistic"; copied; may be NULL */
} mdl_forest_params_t;

typedef struct mdl_forest mdl_forest_t;
typedef struct mdl_forest_builder mdl_forest_builder_t;

/* Starts a forest. Checks the params (counts within limits, finite base scores, a
 * transform that fits n_outputs). 0, or -EBADMSG / -E2BIG / -ENOMEM with reterr. */
int mdl_forest_builder_new(const mdl_forest_params_t *params, mdl_forest_builder_t **ret,
                           mdl_err_t *reterr);

/* Validates tree (see the top of this file) and appends a copy. The tree index used in
 * messages is the number of trees added before. 0, or -EBADMSG / -E2BIG / -ENOMEM; after
 * a failure the builder may only be freed. */
int mdl_forest_builder_add_tree(mdl_forest_builder_t *b, const mdl_forest_tree_in_t *tree,
                                mdl_err_t *reterr);

/* Compiles the trees into the scoring layout and frees b (also on failure). 0 and a new
 * forest in *ret, or -EBADMSG (e.g. no trees) / -ENOMEM. */
int mdl_forest_builder_finish(mdl_forest_builder_t *b, mdl_forest_t **ret, mdl_err_t *reterr);

/* Frees an unfinished builder; NULL-safe; returns NULL. */
mdl_forest_builder_t *mdl_forest_builder_free(mdl_forest_builder_t *b);

/* Frees a forest; NULL-safe; returns NULL. */
mdl_forest_t *mdl_forest_free(mdl_forest_t *f);

/* What gbdt.c needs to fill the model metadata. Pointers live as long as the forest. */
typedef struct mdl_forest_info {
    mdl_forest_flavor_t flavor;
    mdl_task_t task;
    size_t n_features;
    const char *const *feature_names; /* n_features, never NULL */
    size_t n_outputs;
    size_t n_classes;
    size_t n_trees;
    size_t n_nodes;                   /* all trees */
    mdl_forest_transform_t transform;
    const char *objective;            /* "" if none was given */
} mdl_forest_info_t;

const mdl_forest_info_t *mdl_forest_info(const mdl_forest_t *f);

/* Values per row for an output kind (see the top of this file); 0 = not supported. */
size_t mdl_forest_output_width(const mdl_forest_t *f, mdl_output_t kind);

/* Scores n_rows rows (row-major, n_features doubles each; NaN = missing) into out
 * (n_rows x output_width). 0, -EINVAL for an unsupported kind, or -ENOMEM. Any thread. */
int mdl_forest_score(const mdl_forest_t *f, const double *rows, size_t n_rows, mdl_output_t kind,
                     double *out, mdl_err_t *reterr);

/* Rows per thread below which mdl_forest_score_threads uses fewer threads (a thread start
 * costs tens of microseconds; 256 rows of a 1000-tree forest take milliseconds). */
#define MDL_FOREST_MIN_ROWS_PER_THREAD 256
#define MDL_FOREST_MAX_THREADS 64

/* mdl_forest_score with the rows split into up to n_threads contiguous parts (at least
 * MDL_FOREST_MIN_ROWS_PER_THREAD rows each) scored at once: the caller scores the first
 * part and n-1 threads started for this call the others, joined before it returns. Rows
 * are independent, so the output is bit for bit that of mdl_forest_score. For one big
 * batch on an otherwise idle machine; the server's worker pool already runs requests in
 * parallel. n_threads 0 or 1 = mdl_forest_score; at most MDL_FOREST_MAX_THREADS. A part
 * whose thread cannot be started is scored by the caller. 0, or the errors of
 * mdl_forest_score. Any thread. */
int mdl_forest_score_threads(const mdl_forest_t *f, const double *rows, size_t n_rows,
                             mdl_output_t kind, double *out, unsigned n_threads,
                             mdl_err_t *reterr);

#endif
