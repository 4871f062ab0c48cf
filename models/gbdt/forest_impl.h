/* Internal to models/gbdt: the compiled forest (struct mdl_forest) shared by forest.c
 * (builder, general and perfect layouts, scoring entry points) and forest_bin.c (the
 * binned layout for LightGBM forests). Nothing outside models/gbdt/forest*.c includes
 * this; the public API is forest.h. */
#ifndef MDL_GBDT_FOREST_IMPL_H
#define MDL_GBDT_FOREST_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "forest.h"

/* node.meta: bits 0..7 flags, bits 8..31 feature index (< MDL_FOREST_MAX_FEATURES <= 2^24). */
#define FN_LEAF 0x01u
#define FN_CAT 0x02u
#define FN_DEFAULT_LEFT 0x04u
#define FN_MISS_SHIFT 3 /* 2 bits: mdl_forest_missing_t */
#define FN_FEATURE_SHIFT 8
_Static_assert(MDL_FOREST_MAX_FEATURES <= ((size_t)1 << 24), "feature index must fit node.meta");

typedef struct fnode {
    union {
        double thr;   /* NUMERIC: threshold (XGBoost: a float value) */
        double value; /* LEAF: output (XGBoost: a float value) */
        struct {
            uint32_t off;   /* CATEGORICAL: first word in forest cat_bits */
            uint32_t words; /*   bitset length in 32-bit words */
        } cat;
    } u;
    uint32_t meta;
    uint32_t next; /* split: left child (forest node index), right = next + 1; leaf: leaf index */
} fnode_t;

typedef struct leaf_aux {
    int32_t id;         /* MDL_OUTPUT_LEAF */
    uint32_t lin_off;   /* linear leaves: terms in forest lin_feat / lin_coef */
    uint32_t lin_terms;
    double lin_const;
} leaf_aux_t;

typedef struct ftree {
    uint32_t root;   /* forest node index */
    uint32_t group;  /* output the tree adds to */
    bool linear;
    double weight;   /* leaf multiplier */
    float weight_f;  /* the same as float (XGBoost) */
} ftree_t;

struct mdl_forest {
    mdl_forest_info_t info;
    char **names;        /* n_features */
    char *objective;
    double *base;        /* n_outputs, margin space (XGBoost: float values) */
    double sigmoid;
    bool average;
    double avg_div;      /* n_trees / n_outputs when averaging */
    bool weighted;       /* some tree weight != 1 */

    size_t n_trees, cap_trees;
    ftree_t *trees;
    size_t n_nodes, cap_nodes;
    fnode_t *nodes;
    size_t n_leaves, cap_leaves;
    leaf_aux_t *leaves;
    size_t n_cat, cap_cat;
    uint32_t *cat_bits;
    size_t n_lin, cap_lin;
    uint32_t *lin_feat;
    double *lin_coef;

    /* Perfect layout (XGBoost forests without categorical splits, depth <= PERFECT_MAX_DEPTH):
     * every tree padded to a complete binary tree of depth p_depth in heap order from 1
     * (root 1, children of i at 2i and 2i+1, slot 0 unused). A leaf above the bottom is
     * copied into every slot below it, so a walk is exactly p_depth branch-free steps.
     * Scores MARGIN and VALUE; LEAF output uses the general layout. NULL when not built. */
    unsigned p_depth;
    struct pnode *p_nodes; /* n_trees x 2^p_depth */
    float *p_leaves;       /* n_trees x 2^p_depth, leaf x tree weight, as XGBoost multiplies */

    /* Binned layout (forest_bin.c): LightGBM forests without categorical splits or linear
     * leaves. Scores MARGIN and VALUE. NULL when not built. */
    struct mdl__forest_bin *bin;
};

/* A split of the perfect layout. The scorer reads rows as 2 x n_features floats: x[j] with
 * NaN replaced by +inf, then x[j] with NaN replaced by -inf. A node whose missing values go
 * right reads the first copy, one whose missing values go left the second, so the step is
 * one comparison with no NaN test: x >= thr -> right (+inf >= any threshold; -inf >= a
 * threshold > -inf never, which is why a default-left split at -inf keeps the forest off
 * this layout). XGBoost's rule, x < thr -> left, is the same for every non-NaN x. */
typedef struct pnode {
    float thr;
    uint32_t col; /* feature, + n_features when missing values go left */
} pnode_t;

#define PERFECT_MAX_DEPTH 10

/* LightGBM's kZeroThreshold (a float constant compared as double). */
#define LGB_ZERO ((double)1e-35f)

/* ---- binned layout (forest_bin.c) ---- */

/* Builds f->bin when the layout applies (LightGBM, no categorical splits, no linear
 * leaves, at most 65535 columns and 65534 distinct thresholds per column; see
 * forest_bin.c); otherwise leaves it NULL. counts: n_nodes training counts per node (0 if
 * unknown), which only order memory. 0, or -ENOMEM. */
int mdl__forest_bin_build(mdl_forest_t *f, const double *counts);

/* Frees f->bin's contents; NULL-safe. */
void mdl__forest_bin_free(struct mdl__forest_bin *b);

/* Bytes of scratch mdl__forest_bin_margins needs for a call of n_rows rows (> 0). */
size_t mdl__forest_bin_scratch_bytes(const mdl_forest_t *f, size_t n_rows);

/* Margins of n rows (base score + trees, in tree order, in double) into m (n x
 * n_outputs), through f->bin. scratch: mdl__forest_bin_scratch_bytes(f, n) bytes. */
void mdl__forest_bin_margins(const mdl_forest_t *f, const double *rows, size_t n, double *m,
                             void *scratch);

#endif
