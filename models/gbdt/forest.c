/* The compiled forest and its scorer. See forest.h for the semantics.
 *
 * General layout (every forest; the only one for LEAF output and for LightGBM forests with
 * categorical splits or linear leaves): all trees share one node array. A node is 16
 * bytes: an 8-byte payload (split threshold, leaf value, or bitset offset + word count), a
 * 32-bit word holding the feature index and flags, and a 32-bit link. Each tree is laid
 * out breadth first from its root, so the two children of a split are adjacent: right =
 * left + 1 and a split stores only `left`. A leaf's link indexes a side table (reported
 * id, linear terms) that only leaf output and linear trees read. Nodes the root does not
 * reach are not copied.
 *
 * Perfect layout (XGBoost forests without categorical splits, depth <= 10, when it costs
 * at most 8 slots per general node): see build_perfect(). 8-byte splits, complete trees,
 * a fixed number of branch-free steps per walk; rows read as two float copies (NaN as
 * +inf, NaN as -inf) so that a step is one comparison (see pnode_t).
 *
 * Binned layout (LightGBM forests with numeric splits and plain leaves): forest_bin.c. Rows
 * become per-column threshold ranks, splits compare uint16s, walks sit in a compacted
 * list. Scores MARGIN and VALUE.
 *
 * Walks (general and perfect layouts): LANES independent walks advance in lockstep so their cache misses overlap. Small
 * batches walk several trees of one row at once; bigger ones take blocks of BLOCK_ROWS rows
 * through one tree at a time while it is cache-resident. Per row the trees are always
 * added in model order, in the library's precision, so batching never changes a result
 * (the unit tests compare every batch size against one whole batch, bit for bit).
 * Measured (tools/gbdt_speed.c, issue-3 shape: 1000 trees of depth 8, 100 features,
 * shared 2-core VM under load): general layout, one walk at a time ~237 us/row at batch 1
 * and ~123 at 10000; lockstep ~72 / ~50; perfect layout ~40-55 / ~18-21; with the lane
 * loops unrolled (idx in registers) ~35-45 / ~14-15; NaN-free step (two row copies)
 * -40% instructions, ~38 / ~12.6 (bench/gbdt/run.sh and bench/RESULTS.md have the
 * figures against XGBoost). A layout with 3-level subtrees per cache line (for batch 1),
 * 32-500 lanes per row, a branch-free LightGBM step, prefetching the next group's roots at
 * batch 1, 8 or 32 trees per row and 32-row blocks or 16 rows per tree in the perfect walk
 * measured no better (within the noise of a shared machine) and were dropped. Threads over
 * row blocks: mdl_forest_score_threads. */
#include "forest_impl.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct mdl_forest_builder {
    mdl_forest_t *f;
    bool failed;
    double *counts; /* per compiled node: the loader's count (0 for leaves); for the
                     * binned layout's slot order */
    size_t cap_counts;
};

/* ---- building --------------------------------------------------------------------------- */

/* Grows *p (elements of size `size`) to hold at least `need`; 0 or -ENOMEM. */
static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    size_t n = *cap ? *cap : 16;
    void *q;

    if (need <= *cap)
        return 0;
    while (n < need)
        n *= 2;
    if (n > SIZE_MAX / size)
        return -ENOMEM;
    q = realloc(*p, n * size);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

mdl_forest_t *mdl_forest_free(mdl_forest_t *f)
{
    if (!f)
        return NULL;
    if (f->names)
        for (size_t i = 0; i < f->info.n_features; i++)
            free(f->names[i]);
    free(f->names);
    free(f->objective);
    free(f->base);
    free(f->trees);
    free(f->nodes);
    free(f->leaves);
    free(f->cat_bits);
    free(f->lin_feat);
    free(f->lin_coef);
    free(f->p_nodes);
    free(f->p_leaves);
    mdl__forest_bin_free(f->bin);
    free(f);
    return NULL;
}

mdl_forest_builder_t *mdl_forest_builder_free(mdl_forest_builder_t *b)
{
    if (!b)
        return NULL;
    mdl_forest_free(b->f);
    free(b->counts);
    free(b);
    return NULL;
}

static const char *transform_name(mdl_forest_transform_t t)
{
    switch (t) {
    case MDL_TRANSFORM_IDENTITY: return "identity";
    case MDL_TRANSFORM_SIGMOID: return "sigmoid";
    case MDL_TRANSFORM_SOFTMAX: return "softmax";
    case MDL_TRANSFORM_ARGMAX: return "argmax";
    case MDL_TRANSFORM_EXP: return "exp";
    case MDL_TRANSFORM_SIGNED_SQUARE: return "signed square";
    case MDL_TRANSFORM_LOG1P_EXP: return "log1p(exp)";
    }
    return "unknown";
}

int mdl_forest_builder_new(const mdl_forest_params_t *p, mdl_forest_builder_t **ret,
                           mdl_err_t *reterr)
{
    mdl_forest_builder_t *b;
    mdl_forest_t *f;
    char name[32];

    if (p->flavor != MDL_FOREST_XGBOOST && p->flavor != MDL_FOREST_LIGHTGBM)
        return mdl_err_set(reterr, -EINVAL, "forest: unknown flavor %d", (int)p->flavor);
    if (p->n_features < 1 || p->n_features > MDL_FOREST_MAX_FEATURES)
        return mdl_err_set(reterr, p->n_features ? -E2BIG : -EBADMSG,
                           "forest: %zu features (must be 1..%zu)", p->n_features,
                           MDL_FOREST_MAX_FEATURES);
    if (p->n_outputs < 1 || p->n_outputs > MDL_FOREST_MAX_OUTPUTS)
        return mdl_err_set(reterr, p->n_outputs ? -E2BIG : -EBADMSG,
                           "forest: %zu outputs per row (must be 1..%zu)", p->n_outputs,
                           MDL_FOREST_MAX_OUTPUTS);
    if ((unsigned)p->transform > MDL_TRANSFORM_LOG1P_EXP)
        return mdl_err_set(reterr, -EINVAL, "forest: unknown transform %d", (int)p->transform);
    if ((p->transform == MDL_TRANSFORM_SOFTMAX || p->transform == MDL_TRANSFORM_ARGMAX) &&
        p->n_outputs < 2)
        return mdl_err_set(reterr, -EBADMSG, "forest: %s needs 2 or more outputs, have %zu",
                           transform_name(p->transform), p->n_outputs);
    if ((p->transform == MDL_TRANSFORM_SIGNED_SQUARE || p->transform == MDL_TRANSFORM_LOG1P_EXP) &&
        p->n_outputs != 1)
        return mdl_err_set(reterr, -EBADMSG, "forest: %s needs 1 output, have %zu",
                           transform_name(p->transform), p->n_outputs);
    if (!isfinite(p->sigmoid))
        return mdl_err_set(reterr, -EBADMSG, "forest: sigmoid scale is not finite");
    if (p->n_classes > MDL_FOREST_MAX_OUTPUTS)
        return mdl_err_set(reterr, -E2BIG, "forest: %zu classes (limit %zu)", p->n_classes,
                           MDL_FOREST_MAX_OUTPUTS);
    if (p->base_score)
        for (size_t i = 0; i < p->n_outputs; i++)
            if (!isfinite(p->base_score[i]))
                return mdl_err_set(reterr, -EBADMSG, "forest: base score %zu is not finite", i);

    b = calloc(1, sizeof *b);
    f = calloc(1, sizeof *f);
    if (!b || !f)
        goto nomem;
    b->f = f;
    f->info.flavor = p->flavor;
    f->info.task = p->task;
    f->info.n_features = p->n_features;
    f->info.n_outputs = p->n_outputs;
    f->info.n_classes = p->n_classes;
    f->info.transform = p->transform;
    f->sigmoid = p->sigmoid != 0 ? p->sigmoid : 1.0;
    f->average = p->average;
    f->names = calloc(p->n_features, sizeof *f->names);
    f->base = calloc(p->n_outputs, sizeof *f->base);
    f->objective = dup_str(p->objective ? p->objective : "");
    if (!f->names || !f->base || !f->objective)
        goto nomem;
    for (size_t i = 0; i < p->n_features; i++) {
        if (p->feature_names) {
            if (!p->feature_names[i]) {
                mdl_forest_builder_free(b);
                return mdl_err_set(reterr, -EBADMSG, "forest: feature %zu has no name", i);
            }
            f->names[i] = dup_str(p->feature_names[i]);
        } else {
            snprintf(name, sizeof name, "f%zu", i);
            f->names[i] = dup_str(name);
        }
        if (!f->names[i])
            goto nomem;
    }
    for (size_t i = 0; i < p->n_outputs; i++) {
        double v = p->base_score ? p->base_score[i] : 0.0;
        f->base[i] = p->flavor == MDL_FOREST_XGBOOST ? (double)(float)v : v;
    }
    f->info.feature_names = (const char *const *)f->names;
    f->info.objective = f->objective;
    *ret = b;
    return 0;

nomem:
    if (b)
        mdl_forest_builder_free(b);
    else
        mdl_forest_free(f);
    return mdl_err_set(reterr, -ENOMEM, "forest: out of memory");
}

/* Checks one reachable node (index i of tree t) apart from its children. */
static int check_node(const mdl_forest_t *f, const mdl_forest_tree_in_t *tree, size_t t,
                      size_t i, mdl_err_t *reterr)
{
    const mdl_forest_node_in_t *n = &tree->nodes[i];

    switch (n->type) {
    case MDL_NODE_LEAF:
        if (!isfinite(n->value))
            return mdl_err_set(reterr, -EBADMSG, "tree %zu node %zu: leaf value is not finite",
                               t, i);
        if (f->info.flavor == MDL_FOREST_XGBOOST && isfinite(n->value) &&
            !isfinite((float)n->value))
            return mdl_err_set(reterr, -EBADMSG,
                               "tree %zu node %zu: leaf value %g overflows a float", t, i,
                               n->value);
        if (tree->linear) {
            if (!isfinite(n->lin_const))
                return mdl_err_set(reterr, -EBADMSG,
                                   "tree %zu node %zu: linear constant is not finite", t, i);
            if (n->lin_offset > tree->n_lin || n->lin_terms > tree->n_lin - n->lin_offset)
                return mdl_err_set(reterr, -EBADMSG,
                                   "tree %zu node %zu: linear terms [%u, +%u) out of range "
                                   "(tree has %zu)", t, i, n->lin_offset, n->lin_terms,
                                   tree->n_lin);
        }
        return 0;
    case MDL_NODE_NUMERIC:
    case MDL_NODE_CATEGORICAL:
        break;
    default:
        return mdl_err_set(reterr, -EBADMSG, "tree %zu node %zu: unknown node type %u", t, i,
                           n->type);
    }
    if (n->feature >= f->info.n_features)
        return mdl_err_set(reterr, -EBADMSG,
                           "tree %zu node %zu: split feature %u out of range (model has %zu "
                           "features)", t, i, n->feature, f->info.n_features);
    if (n->missing > MDL_MISSING_ZERO)
        return mdl_err_set(reterr, -EBADMSG, "tree %zu node %zu: unknown missing type %u", t,
                           i, n->missing);
    if (!(n->count >= 0 && isfinite(n->count)))
        return mdl_err_set(reterr, -EBADMSG, "tree %zu node %zu: count %g is not a finite "
                           "number >= 0", t, i, n->count);
    if (f->info.flavor == MDL_FOREST_XGBOOST && n->missing != MDL_MISSING_NAN)
        return mdl_err_set(reterr, -EBADMSG,
                           "tree %zu node %zu: XGBoost splits treat only NaN as missing", t, i);
    if (n->type == MDL_NODE_NUMERIC) {
        if (isnan(n->threshold))
            return mdl_err_set(reterr, -EBADMSG, "tree %zu node %zu: threshold is NaN", t, i);
        if (f->info.flavor == MDL_FOREST_XGBOOST && isfinite(n->threshold) &&
            !isfinite((float)n->threshold))
            return mdl_err_set(reterr, -EBADMSG,
                               "tree %zu node %zu: threshold %g overflows a float", t, i,
                               n->threshold);
    } else {
        if (n->cat_offset > tree->n_cat_words || n->cat_words > tree->n_cat_words - n->cat_offset)
            return mdl_err_set(reterr, -EBADMSG,
                               "tree %zu node %zu: category bitset [%u, +%u) out of range (tree "
                               "has %zu words)", t, i, n->cat_offset, n->cat_words,
                               tree->n_cat_words);
    }
    return 0;
}

int mdl_forest_builder_add_tree(mdl_forest_builder_t *b, const mdl_forest_tree_in_t *tree,
                                mdl_err_t *reterr)
{
    mdl_forest_t *f = b->f;
    size_t t = f->n_trees, n = tree->n_nodes, base, head, tail, n_leaves = 0;
    uint32_t *queue = NULL;  /* input node index of compiled slot base + k (BFS order) */
    uint8_t *seen = NULL;
    int r;

    if (b->failed)
        return mdl_err_set(reterr, -EINVAL, "forest: builder used after a failure");
    b->failed = true;
    if (t >= MDL_FOREST_MAX_TREES)
        return mdl_err_set(reterr, -E2BIG, "forest: more than %zu trees", MDL_FOREST_MAX_TREES);
    if (n < 1 || !tree->nodes)
        return mdl_err_set(reterr, -EBADMSG, "tree %zu: no nodes", t);
    if (n > MDL_FOREST_MAX_NODES)
        return mdl_err_set(reterr, -E2BIG, "tree %zu: %zu nodes (limit %zu)", t, n,
                           MDL_FOREST_MAX_NODES);
    if (f->n_nodes + n > MDL_FOREST_MAX_TOTAL_NODES)
        return mdl_err_set(reterr, -E2BIG, "tree %zu: forest exceeds %zu nodes", t,
                           MDL_FOREST_MAX_TOTAL_NODES);
    if (tree->n_cat_words > MDL_FOREST_MAX_CAT_WORDS)
        return mdl_err_set(reterr, -E2BIG, "tree %zu: %zu category words (limit %zu)", t,
                           tree->n_cat_words, MDL_FOREST_MAX_CAT_WORDS);
    if (tree->n_cat_words && !tree->cat_bits)
        return mdl_err_set(reterr, -EINVAL, "tree %zu: category words without bits", t);
    if (tree->n_lin > MDL_FOREST_MAX_NODES)
        return mdl_err_set(reterr, -E2BIG, "tree %zu: %zu linear terms (limit %zu)", t,
                           tree->n_lin, MDL_FOREST_MAX_NODES);
    if (tree->n_lin && (!tree->lin_features || !tree->lin_coefs))
        return mdl_err_set(reterr, -EINVAL, "tree %zu: linear terms without arrays", t);
    if (f->n_cat + tree->n_cat_words > MDL_FOREST_MAX_TOTAL_NODES ||
        f->n_lin + tree->n_lin > MDL_FOREST_MAX_TOTAL_NODES)
        return mdl_err_set(reterr, -E2BIG, "tree %zu: forest exceeds %zu bitset words or "
                           "linear terms", t, MDL_FOREST_MAX_TOTAL_NODES);
    if (tree->group >= f->info.n_outputs)
        return mdl_err_set(reterr, -EBADMSG, "tree %zu: output group %u out of range (model "
                           "has %zu outputs)", t, tree->group, f->info.n_outputs);
    if (!isfinite(tree->weight) ||
        (f->info.flavor == MDL_FOREST_XGBOOST && !isfinite((float)tree->weight)))
        return mdl_err_set(reterr, -EBADMSG, "tree %zu: weight is not finite", t);
    if (f->info.flavor == MDL_FOREST_LIGHTGBM && tree->weight != 1.0)
        return mdl_err_set(reterr, -EBADMSG, "tree %zu: LightGBM trees have weight 1", t);
    if (tree->linear && f->info.flavor != MDL_FOREST_LIGHTGBM)
        return mdl_err_set(reterr, -EBADMSG, "tree %zu: linear leaves are LightGBM only", t);
    for (size_t j = 0; j < tree->n_lin; j++) {
        if (tree->lin_features[j] >= f->info.n_features)
            return mdl_err_set(reterr, -EBADMSG, "tree %zu: linear term %zu: feature %u out of "
                               "range (model has %zu features)", t, j, tree->lin_features[j],
                               f->info.n_features);
        if (!isfinite(tree->lin_coefs[j]))
            return mdl_err_set(reterr, -EBADMSG, "tree %zu: linear term %zu: coefficient is "
                               "not finite", t, j);
    }

    queue = malloc(n * sizeof *queue);
    seen = calloc(n, 1);
    if (!queue || !seen) {
        r = mdl_err_set(reterr, -ENOMEM, "forest: out of memory");
        goto out;
    }

    /* Breadth-first walk from the root: every reachable node is checked once; a node
     * reached a second time means a cycle or a shared subtree. Slots are assigned in
     * visiting order, so queue[k] is the input node that becomes compiled node base + k,
     * and the two children of a split get consecutive slots. */
    queue[0] = 0;
    seen[0] = 1;
    head = 0;
    tail = 1;
    while (head < tail) {
        size_t i = queue[head++];
        const mdl_forest_node_in_t *nd = &tree->nodes[i];
        if ((r = check_node(f, tree, t, i, reterr)) < 0)
            goto out;
        if (nd->type == MDL_NODE_LEAF) {
            n_leaves++;
            continue;
        }
        for (int side = 0; side < 2; side++) {
            int32_t c = side ? nd->right : nd->left;
            if (c < 0 || (size_t)c >= n) {
                r = mdl_err_set(reterr, -EBADMSG, "tree %zu node %zu: %s child %d out of range "
                                "(tree has %zu nodes)", t, i, side ? "right" : "left", (int)c, n);
                goto out;
            }
            if (seen[c]) {
                r = mdl_err_set(reterr, -EBADMSG, "tree %zu node %zu: %s child %d is reached "
                                "twice (cycle or shared subtree)", t, i, side ? "right" : "left",
                                (int)c);
                goto out;
            }
            seen[c] = 1;
            queue[tail++] = (uint32_t)c;
        }
    }

    if (grow((void **)&f->trees, &f->cap_trees, t + 1, sizeof *f->trees) < 0 ||
        grow((void **)&f->nodes, &f->cap_nodes, f->n_nodes + tail, sizeof *f->nodes) < 0 ||
        grow((void **)&b->counts, &b->cap_counts, f->n_nodes + tail, sizeof *b->counts) < 0 ||
        grow((void **)&f->leaves, &f->cap_leaves, f->n_leaves + n_leaves, sizeof *f->leaves) < 0 ||
        grow((void **)&f->cat_bits, &f->cap_cat, f->n_cat + tree->n_cat_words,
             sizeof *f->cat_bits) < 0) {
        r = mdl_err_set(reterr, -ENOMEM, "forest: out of memory");
        goto out;
    }
    if (tree->n_lin) {
        size_t cap = f->cap_lin;
        if (grow((void **)&f->lin_feat, &cap, f->n_lin + tree->n_lin, sizeof *f->lin_feat) < 0 ||
            grow((void **)&f->lin_coef, &f->cap_lin, f->n_lin + tree->n_lin,
                 sizeof *f->lin_coef) < 0) {
            r = mdl_err_set(reterr, -ENOMEM, "forest: out of memory");
            goto out;
        }
    }

    /* Emit: slot k's children were assigned when k was visited, in order, so a running
     * counter of children gives each split its `left` slot. */
    base = f->n_nodes;
    {
        size_t next_child = base + 1;
        for (size_t k = 0; k < tail; k++) {
            const mdl_forest_node_in_t *nd = &tree->nodes[queue[k]];
            fnode_t *o = &f->nodes[base + k];
            memset(o, 0, sizeof *o);
            b->counts[base + k] = nd->type == MDL_NODE_LEAF ? 0.0 : nd->count;
            if (nd->type == MDL_NODE_LEAF) {
                leaf_aux_t *a = &f->leaves[f->n_leaves];
                o->meta = FN_LEAF;
                o->u.value = f->info.flavor == MDL_FOREST_XGBOOST ? (double)(float)nd->value
                                                                  : nd->value;
                o->next = (uint32_t)f->n_leaves++;
                a->id = nd->id;
                a->lin_off = tree->linear ? (uint32_t)(f->n_lin + nd->lin_offset) : 0;
                a->lin_terms = tree->linear ? nd->lin_terms : 0;
                a->lin_const = tree->linear ? nd->lin_const : 0.0;
                continue;
            }
            o->meta = ((uint32_t)nd->feature << FN_FEATURE_SHIFT) |
                      ((uint32_t)nd->missing << FN_MISS_SHIFT) |
                      (nd->default_left ? FN_DEFAULT_LEFT : 0u);
            if (nd->type == MDL_NODE_CATEGORICAL) {
                o->meta |= FN_CAT;
                o->u.cat.off = (uint32_t)(f->n_cat + nd->cat_offset);
                o->u.cat.words = nd->cat_words;
            } else {
                o->u.thr = f->info.flavor == MDL_FOREST_XGBOOST ? (double)(float)nd->threshold
                                                                : nd->threshold;
            }
            o->next = (uint32_t)next_child;
            next_child += 2;
        }
    }
    if (tree->n_cat_words)
        memcpy(f->cat_bits + f->n_cat, tree->cat_bits, tree->n_cat_words * sizeof *f->cat_bits);
    if (tree->n_lin) {
        memcpy(f->lin_feat + f->n_lin, tree->lin_features, tree->n_lin * sizeof *f->lin_feat);
        memcpy(f->lin_coef + f->n_lin, tree->lin_coefs, tree->n_lin * sizeof *f->lin_coef);
    }
    f->trees[t].root = (uint32_t)base;
    f->trees[t].group = tree->group;
    f->trees[t].linear = tree->linear;
    f->trees[t].weight = tree->weight;
    f->trees[t].weight_f = (float)tree->weight;
    if (tree->weight != 1.0)
        f->weighted = true;
    f->n_nodes += tail;
    f->n_cat += tree->n_cat_words;
    f->n_lin += tree->n_lin;
    f->n_trees++;
    b->failed = false;
    r = 0;
out:
    free(queue);
    free(seen);
    return r;
}

/* Depth of the subtree at compiled node i (a leaf has depth 0); -1 if deeper than max,
 * categorical, or a default-left split at -inf (see pnode_t). */
static int subtree_depth(const mdl_forest_t *f, uint32_t i, int max)
{
    const fnode_t *n = &f->nodes[i];
    int l, r;

    if (n->meta & FN_LEAF)
        return 0;
    if ((n->meta & FN_CAT) || max == 0 ||
        ((n->meta & FN_DEFAULT_LEFT) && n->u.thr == -INFINITY))
        return -1;
    if ((l = subtree_depth(f, n->next, max - 1)) < 0 ||
        (r = subtree_depth(f, n->next + 1, max - 1)) < 0)
        return -1;
    return 1 + (l > r ? l : r);
}

/* Writes the subtree at compiled node i into heap slot h of a perfect tree of depth D. */
static void fill_perfect(const mdl_forest_t *f, const ftree_t *tr, uint32_t i, size_t h,
                         unsigned level, unsigned D, pnode_t *pn, float *pl)
{
    const fnode_t *n = &f->nodes[i];

    if (level == D) {
        float v = (float)n->u.value;
        if (f->weighted)
            v = v * tr->weight_f;
        pl[h - ((size_t)1 << D)] = v;
        return;
    }
    if (n->meta & FN_LEAF) {
        /* both children are this leaf again: the direction taken does not matter */
        pn[h].thr = 0.0f;
        pn[h].col = 0;
        fill_perfect(f, tr, i, 2 * h, level + 1, D, pn, pl);
        fill_perfect(f, tr, i, 2 * h + 1, level + 1, D, pn, pl);
        return;
    }
    pn[h].thr = (float)n->u.thr;
    pn[h].col = (n->meta >> FN_FEATURE_SHIFT) +
                ((n->meta & FN_DEFAULT_LEFT) ? (uint32_t)f->info.n_features : 0u);
    fill_perfect(f, tr, n->next, 2 * h, level + 1, D, pn, pl);
    fill_perfect(f, tr, n->next + 1, 2 * h + 1, level + 1, D, pn, pl);
}

/* Builds the perfect layout when it applies and stays small (at most 8 slots per node of
 * the general layout); otherwise leaves it NULL. Only an allocation failure is an error. */
static int build_perfect(mdl_forest_t *f)
{
    int depth = 0;
    size_t n_int, n_leaf;

    if (f->info.flavor != MDL_FOREST_XGBOOST)
        return 0;
    for (size_t t = 0; t < f->n_trees; t++) {
        int d = subtree_depth(f, f->trees[t].root, PERFECT_MAX_DEPTH);
        if (d < 0)
            return 0;
        if (d > depth)
            depth = d;
    }
    if (depth == 0)
        depth = 1;
    n_int = (size_t)1 << depth; /* slot 0 unused */
    n_leaf = (size_t)1 << depth;
    if (f->n_trees * (n_int + n_leaf) > 8 * f->n_nodes + 64)
        return 0;
    f->p_nodes = calloc(f->n_trees * n_int, sizeof *f->p_nodes);
    f->p_leaves = malloc(f->n_trees * n_leaf * sizeof *f->p_leaves);
    if (!f->p_nodes || !f->p_leaves)
        return -ENOMEM;
    f->p_depth = (unsigned)depth;
    for (size_t t = 0; t < f->n_trees; t++)
        fill_perfect(f, &f->trees[t], f->trees[t].root, 1, 0, (unsigned)depth,
                     f->p_nodes + t * n_int, f->p_leaves + t * n_leaf);
    return 0;
}

int mdl_forest_builder_finish(mdl_forest_builder_t *b, mdl_forest_t **ret, mdl_err_t *reterr)
{
    mdl_forest_t *f = b->f;
    int r;

    if (b->failed) {
        r = mdl_err_set(reterr, -EINVAL, "forest: builder used after a failure");
        goto fail;
    }
    if (f->n_trees == 0) {
        r = mdl_err_set(reterr, -EBADMSG, "forest: no trees");
        goto fail;
    }
    if (f->average) {
        if (f->n_trees % f->info.n_outputs != 0) {
            r = mdl_err_set(reterr, -EBADMSG, "forest: %zu trees do not divide into %zu outputs "
                            "for averaging", f->n_trees, f->info.n_outputs);
            goto fail;
        }
        f->avg_div = (double)(f->n_trees / f->info.n_outputs);
    }
    if (build_perfect(f) < 0 || mdl__forest_bin_build(f, b->counts) < 0) {
        r = mdl_err_set(reterr, -ENOMEM, "forest: out of memory");
        goto fail;
    }
    f->info.n_trees = f->n_trees;
    f->info.n_nodes = f->n_nodes;
    b->f = NULL;
    free(b->counts);
    free(b);
    *ret = f;
    return 0;
fail:
    mdl_forest_builder_free(b);
    return r;
}

const mdl_forest_info_t *mdl_forest_info(const mdl_forest_t *f)
{
    return &f->info;
}

size_t mdl_forest_output_width(const mdl_forest_t *f, mdl_output_t kind)
{
    switch (kind) {
    case MDL_OUTPUT_MARGIN:
        return f->info.n_outputs;
    case MDL_OUTPUT_VALUE:
        return f->info.transform == MDL_TRANSFORM_ARGMAX ? 1 : f->info.n_outputs;
    case MDL_OUTPUT_LEAF:
        return f->n_trees;
    }
    return 0;
}

/* ---- scoring ------------------------------------------------------------------------------ */

static inline bool in_bitset(const uint32_t *bits, uint32_t words, uint32_t c)
{
    return (c >> 5) < words && ((bits[c >> 5] >> (c & 31)) & 1u);
}

/* One step down from split n for row (the child index). XGBoost rules. */
static inline __attribute__((always_inline)) uint32_t step_xgb(const mdl_forest_t *f,
                                                               const fnode_t *n,
                                                               const double *row)
{
    double x = row[n->meta >> FN_FEATURE_SHIFT];
    unsigned right;

    if (__builtin_expect(n->meta & FN_CAT, 0)) {
        if (isnan(x)) {
            right = !(n->meta & FN_DEFAULT_LEFT);
        } else {
            float v = (float)x;
            /* negative, +inf or past the bitset: not in the set */
            right = !(v >= 0.0f && v < (float)n->u.cat.words * 32.0f &&
                      in_bitset(f->cat_bits + n->u.cat.off, n->u.cat.words, (uint32_t)v));
        }
    } else if (isnan(x)) {
        right = !(n->meta & FN_DEFAULT_LEFT);
    } else {
        right = !((double)(float)x < n->u.thr);
    }
    return n->next + right;
}

/* One step down from split n for row. LightGBM rules. */
static inline __attribute__((always_inline)) uint32_t step_lgb(const mdl_forest_t *f,
                                                               const fnode_t *n,
                                                               const double *row)
{
    double x = row[n->meta >> FN_FEATURE_SHIFT];
    unsigned miss = (n->meta >> FN_MISS_SHIFT) & 3u, right;

    if (n->meta & FN_CAT) {
        if (isnan(x))
            right = !(n->meta & FN_DEFAULT_LEFT);
        else
            /* (int)x truncates toward zero: x in (-1, 0) is category 0 */
            right = !(x > -1.0 && x < (double)n->u.cat.words * 32.0 &&
                      in_bitset(f->cat_bits + n->u.cat.off, n->u.cat.words, (uint32_t)x));
        return n->next + right;
    }
    if (isnan(x)) {
        if (miss == MDL_MISSING_NAN)
            return n->next + !(n->meta & FN_DEFAULT_LEFT);
        x = 0.0;
    }
    if (miss == MDL_MISSING_ZERO && x >= -LGB_ZERO && x <= LGB_ZERO)
        return n->next + !(n->meta & FN_DEFAULT_LEFT);
    return n->next + !(x <= n->u.thr);
}

static inline __attribute__((always_inline)) uint32_t step(const mdl_forest_t *f,
                                                           const fnode_t *n, const double *row,
                                                           bool xgb)
{
    return xgb ? step_xgb(f, n, row) : step_lgb(f, n, row);
}

/* Index of the leaf row reaches in the tree rooted at `root`. */
static uint32_t walk(const mdl_forest_t *f, uint32_t root, const double *row)
{
    const fnode_t *nodes = f->nodes;
    uint32_t i = root;
    bool xgb = f->info.flavor == MDL_FOREST_XGBOOST;

    while (!(nodes[i].meta & FN_LEAF))
        i = step(f, &nodes[i], row, xgb);
    return i;
}

/* LightGBM leaf output, linear leaves included. */
static inline double lgb_leaf_value(const mdl_forest_t *f, const ftree_t *t, const fnode_t *leaf,
                                    const double *row)
{
    if (t->linear) {
        const leaf_aux_t *a = &f->leaves[leaf->next];
        double out = a->lin_const;
        for (uint32_t j = 0; j < a->lin_terms; j++) {
            double x = row[f->lin_feat[a->lin_off + j]];
            if (isnan(x))
                return leaf->u.value;
            if (fabs(x) <= LGB_ZERO) /* LightGBM's C API reads these as 0 (see the splits) */
                x = 0.0;
            out += f->lin_coef[a->lin_off + j] * x;
        }
        return out;
    }
    return leaf->u.value;
}

/* Walks LANES independent (node, row) pairs down their trees in lockstep: the loads of
 * different lanes do not depend on each other, so their cache misses overlap. */
#ifndef LANES
#define LANES 8
#endif
/* Rows per block when a batch is walked tree by tree (the tree stays in cache). */
#ifndef BLOCK_ROWS
#define BLOCK_ROWS 64
#endif

static inline __attribute__((always_inline)) void walk_lanes(const mdl_forest_t *f,
                                                             uint32_t *idx,
                                                             const double *const *row,
                                                             unsigned lanes, bool xgb)
{
    const fnode_t *nodes = f->nodes;
    unsigned active;

    do {
        active = 0;
#pragma GCC unroll 8
        for (unsigned l = 0; l < lanes; l++) {
            const fnode_t *n = &nodes[idx[l]];
            if (!(n->meta & FN_LEAF)) {
                idx[l] = step(f, n, row[l], xgb);
                active = 1;
            }
        }
    } while (active);
}

/* Adds the leaf reached in tree t to row's margins m (in the library's precision). */
static inline __attribute__((always_inline)) void add_leaf(const mdl_forest_t *f,
                                                           const ftree_t *tr, uint32_t leaf,
                                                           const double *row, double *m, bool xgb)
{
    const fnode_t *n = &f->nodes[leaf];

    if (xgb) {
        /* float accumulation in tree order; float values are exact in the double slots */
        float v = (float)n->u.value;
        if (f->weighted)
            v = v * tr->weight_f;
        m[tr->group] = (double)((float)m[tr->group] + v);
    } else {
        m[tr->group] += lgb_leaf_value(f, tr, n, row);
    }
}

/* Margins of rows [0, n_rows) into m (n_rows x n_outputs), trees in order for every row.
 * Few rows: each row walks LANES trees at once. Many rows: blocks of rows walk one tree
 * at a time, LANES rows at once. */
static inline __attribute__((always_inline)) void margins(const mdl_forest_t *f,
                                                          const double *rows, size_t n_rows,
                                                          double *m, bool xgb)
{
    size_t nf = f->info.n_features, k = f->info.n_outputs, nt = f->n_trees;
    uint32_t idx[LANES];
    const double *rp[LANES];

    for (size_t r = 0; r < n_rows * k; r++)
        m[r] = f->base[r % k];
    if (n_rows < LANES) {
        for (size_t r = 0; r < n_rows; r++) {
            const double *row = rows + r * nf;
            for (unsigned l = 0; l < LANES; l++)
                rp[l] = row;
            for (size_t t = 0; t < nt; t += LANES) {
                unsigned lanes = nt - t < LANES ? (unsigned)(nt - t) : LANES;
                for (unsigned l = 0; l < lanes; l++)
                    idx[l] = f->trees[t + l].root;
                walk_lanes(f, idx, rp, lanes, xgb);
                for (unsigned l = 0; l < lanes; l++)
                    add_leaf(f, &f->trees[t + l], idx[l], row, m + r * k, xgb);
            }
        }
        return;
    }
    for (size_t r0 = 0; r0 < n_rows; r0 += BLOCK_ROWS) {
        size_t nb = n_rows - r0 < BLOCK_ROWS ? n_rows - r0 : BLOCK_ROWS;
        for (size_t t = 0; t < nt; t++) {
            const ftree_t *tr = &f->trees[t];
            for (size_t r = 0; r < nb; r += LANES) {
                unsigned lanes = nb - r < LANES ? (unsigned)(nb - r) : LANES;
                for (unsigned l = 0; l < lanes; l++) {
                    idx[l] = tr->root;
                    rp[l] = rows + (r0 + r + l) * nf;
                }
                walk_lanes(f, idx, rp, lanes, xgb);
                for (unsigned l = 0; l < lanes; l++)
                    add_leaf(f, tr, idx[l], rp[l], m + (r0 + r + l) * k, xgb);
            }
        }
    }
}

/* Perfect layout: rows are first converted to float (XGBoost compares in float), each into
 * 2 x n_features columns (see pnode_t), then `lanes` walks run D branch-free steps each,
 * in lockstep. Walk l starts in the tree at pn + l * pn_stride with the row at
 * x + l * x_stride: several trees of one row (x_stride 0) or several rows through one tree
 * (pn_stride 0). idx[l] ends as the leaf slot, 0 .. 2^D - 1. */
static inline __attribute__((always_inline)) void pwalk(const pnode_t *pn, size_t pn_stride,
                                                        const float *x, size_t x_stride,
                                                        unsigned D, unsigned lanes, size_t *idx)
{
    for (unsigned l = 0; l < lanes; l++)
        idx[l] = 1;
    for (unsigned d = 0; d < D; d++) {
#pragma GCC unroll 16
        for (unsigned l = 0; l < lanes; l++) {
            const pnode_t *n = &pn[l * pn_stride + idx[l]];
            idx[l] = 2 * idx[l] + (x[l * x_stride + n->col] >= n->thr);
        }
    }
    for (unsigned l = 0; l < lanes; l++)
        idx[l] -= (size_t)1 << D;
}

#ifndef P_ROW_LANES
#define P_ROW_LANES 16 /* trees walked at once for one row */
#endif
#ifndef P_BLOCK_LANES
#define P_BLOCK_LANES 8 /* rows walked at once through one tree */
#endif

/* Adds leaf slot i of tree t to margin *mg, in float as XGBoost does. */
static inline void padd(const mdl_forest_t *f, size_t t, size_t i, double *mg)
{
    *mg = (double)((float)*mg + f->p_leaves[(t << f->p_depth) + i]);
}

/* Adds leaf slot i of tree t to the row's margins mr: to *s, a float register, when the
 * forest has one output (1000 trees are a chain of 1000 dependent additions, and through
 * memory each would also wait for the previous store and two conversions; (float)(double)
 * s == s, so the sum is XGBoost's bit for bit), else to mr[group] with padd. */
static inline void prow_add(const mdl_forest_t *f, size_t t, size_t i, double *mr, float *s)
{
    if (f->info.n_outputs == 1)
        *s += f->p_leaves[(t << f->p_depth) + i];
    else
        padd(f, t, i, &mr[f->trees[t].group]);
}

/* One row's margins mr (n_outputs wide) through every tree, P_ROW_LANES trees at once. */
static void prow(const mdl_forest_t *f, const float *x, double *mr)
{
    size_t nt = f->n_trees, tw = (size_t)1 << f->p_depth, t = 0, idx[P_ROW_LANES];
    float s = (float)mr[0];

    for (; t + P_ROW_LANES <= nt; t += P_ROW_LANES) {
        pwalk(f->p_nodes + t * tw, tw, x, 0, f->p_depth, P_ROW_LANES, idx);
        for (unsigned l = 0; l < P_ROW_LANES; l++)
            prow_add(f, t + l, idx[l], mr, &s);
    }
    for (; t < nt; t++) {
        pwalk(f->p_nodes + t * tw, 0, x, 0, f->p_depth, 1, idx);
        prow_add(f, t, idx[0], mr, &s);
    }
    if (f->info.n_outputs == 1)
        mr[0] = (double)s;
}

static void margins_perfect(const mdl_forest_t *f, const float *xs, size_t n_rows, double *m)
{
    size_t xw = 2 * f->info.n_features, k = f->info.n_outputs, nt = f->n_trees;
    unsigned D = f->p_depth;
    size_t tw = (size_t)1 << D, idx[P_ROW_LANES > P_BLOCK_LANES ? P_ROW_LANES : P_BLOCK_LANES];

    for (size_t r = 0; r < n_rows * k; r++)
        m[r] = f->base[r % k];
    if (n_rows < P_BLOCK_LANES) {
        /* few rows: each row walks P_ROW_LANES trees at once */
        for (size_t r = 0; r < n_rows; r++)
            prow(f, xs + r * xw, m + r * k);
        return;
    }
    /* blocks of BLOCK_ROWS rows through one tree at a time, P_BLOCK_LANES rows at once */
    for (size_t r0 = 0; r0 < n_rows; r0 += BLOCK_ROWS) {
        size_t nb = n_rows - r0 < BLOCK_ROWS ? n_rows - r0 : BLOCK_ROWS;
        for (size_t t = 0; t < nt; t++) {
            const pnode_t *pn = f->p_nodes + t * tw;
            double *mg = m + r0 * k + f->trees[t].group;
            size_t r = 0;
            for (; r + P_BLOCK_LANES <= nb; r += P_BLOCK_LANES) {
                pwalk(pn, 0, xs + (r0 + r) * xw, xw, D, P_BLOCK_LANES, idx);
                for (unsigned l = 0; l < P_BLOCK_LANES; l++)
                    padd(f, t, idx[l], &mg[(r + l) * k]);
            }
            for (; r < nb; r++) {
                pwalk(pn, 0, xs + (r0 + r) * xw, 0, D, 1, idx);
                padd(f, t, idx[0], &mg[r * k]);
            }
        }
    }
}

static void margins_xgb(const mdl_forest_t *f, const double *rows, size_t n, double *m)
{
    margins(f, rows, n, m, true);
}

static void margins_lgb(const mdl_forest_t *f, const double *rows, size_t n, double *m)
{
    margins(f, rows, n, m, false);
}

/* Margins of n rows into m. scratch: what scratch_for allocated for at least n rows (the
 * perfect layout's float copies, the binned layout's bins), or NULL. */
static void margins_rows(const mdl_forest_t *f, const double *rows, size_t n, double *m,
                         void *scratch)
{
    size_t nf = f->info.n_features;
    float *xs = scratch;

    if (f->bin && scratch) {
        mdl__forest_bin_margins(f, rows, n, m, scratch);
    } else if (f->p_nodes && xs) {
        for (size_t r0 = 0; r0 < n; r0 += BLOCK_ROWS) {
            size_t nb = n - r0 < BLOCK_ROWS ? n - r0 : BLOCK_ROWS;
            for (size_t r = 0; r < nb; r++) {
                const double *row = rows + (r0 + r) * nf;
                float *x = xs + r * 2 * nf;
                for (size_t j = 0; j < nf; j++) {
                    x[j] = isnan(row[j]) ? INFINITY : (float)row[j];
                    x[nf + j] = isnan(row[j]) ? -INFINITY : (float)row[j];
                }
            }
            margins_perfect(f, xs, nb, m + r0 * f->info.n_outputs);
        }
    } else if (f->info.flavor == MDL_FOREST_XGBOOST) {
        margins_xgb(f, rows, n, m);
    } else {
        margins_lgb(f, rows, n, m);
    }
}

/* Scratch for margins_rows of n_rows rows (one allocation per call); NULL if not needed. */
static int scratch_for(const mdl_forest_t *f, size_t n_rows, void **ret, mdl_err_t *reterr)
{
    size_t nb = n_rows < BLOCK_ROWS ? n_rows : BLOCK_ROWS;

    *ret = NULL;
    if ((!f->p_nodes && !f->bin) || nb == 0)
        return 0;
    *ret = malloc(f->bin ? mdl__forest_bin_scratch_bytes(f, n_rows)
                         : nb * 2 * f->info.n_features * sizeof(float));
    if (!*ret)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    return 0;
}

static float sigmoid_f(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* Transforms the margins m (n_outputs; averaged here first when the forest averages, so m
 * is clobbered) into out (output_width(VALUE)); m and out may be the same buffer except
 * for ARGMAX. */
static void transform_row(const mdl_forest_t *f, double *m, double *out)
{
    size_t k = f->info.n_outputs;
    bool xgb = f->info.flavor == MDL_FOREST_XGBOOST;

    /* LightGBM's Predict averages what PredictRaw summed (rf), then converts */
    if (f->average)
        for (size_t g = 0; g < k; g++)
            m[g] /= f->avg_div;

    switch (f->info.transform) {
    case MDL_TRANSFORM_IDENTITY:
        for (size_t g = 0; g < k; g++)
            out[g] = m[g];
        break;
    case MDL_TRANSFORM_SIGMOID:
        for (size_t g = 0; g < k; g++)
            out[g] = xgb ? (double)sigmoid_f((float)m[g])
                         : 1.0 / (1.0 + exp(-f->sigmoid * m[g]));
        break;
    case MDL_TRANSFORM_SOFTMAX:
        if (xgb) {
            float wmax = (float)m[0];
            double wsum = 0.0;
            for (size_t g = 1; g < k; g++)
                if ((float)m[g] > wmax)
                    wmax = (float)m[g];
            for (size_t g = 0; g < k; g++) {
                float e = expf((float)m[g] - wmax);
                out[g] = (double)e;
                wsum += e;
            }
            for (size_t g = 0; g < k; g++)
                out[g] = (double)((float)out[g] / (float)wsum);
        } else {
            double wmax = m[0], wsum = 0.0;
            for (size_t g = 1; g < k; g++)
                if (m[g] > wmax)
                    wmax = m[g];
            for (size_t g = 0; g < k; g++) {
                out[g] = exp(m[g] - wmax);
                wsum += out[g];
            }
            for (size_t g = 0; g < k; g++)
                out[g] /= wsum;
        }
        break;
    case MDL_TRANSFORM_ARGMAX: {
        size_t best = 0;
        for (size_t g = 1; g < k; g++)
            if (m[g] > m[best])
                best = g;
        out[0] = (double)best;
        break;
    }
    case MDL_TRANSFORM_EXP:
        for (size_t g = 0; g < k; g++)
            out[g] = xgb ? (double)expf((float)m[g]) : exp(m[g]);
        break;
    case MDL_TRANSFORM_SIGNED_SQUARE:
        out[0] = (m[0] > 0 ? 1.0 : m[0] < 0 ? -1.0 : 0.0) * m[0] * m[0];
        break;
    case MDL_TRANSFORM_LOG1P_EXP:
        out[0] = log1p(exp(m[0]));
        break;
    }
}

int mdl_forest_score(const mdl_forest_t *f, const double *rows, size_t n_rows, mdl_output_t kind,
                     double *out, mdl_err_t *reterr)
{
    size_t nf = f->info.n_features, k = f->info.n_outputs;
    void *xs;

    switch (kind) {
    case MDL_OUTPUT_LEAF:
        for (size_t r = 0; r < n_rows; r++) {
            const double *row = rows + r * nf;
            double *o = out + r * f->n_trees;
            for (size_t t = 0; t < f->n_trees; t++)
                o[t] = (double)f->leaves[f->nodes[walk(f, f->trees[t].root, row)].next].id;
        }
        return 0;
    case MDL_OUTPUT_MARGIN:
    case MDL_OUTPUT_VALUE:
        break;
    default:
        return mdl_err_set(reterr, -EINVAL, "output kind %d not supported", (int)kind);
    }
    if (scratch_for(f, n_rows, &xs, reterr) < 0)
        return -ENOMEM;
    if (kind == MDL_OUTPUT_MARGIN) {
        margins_rows(f, rows, n_rows, out, xs);
    } else if (f->info.transform == MDL_TRANSFORM_ARGMAX) {
        /* margins need k slots per row but the output has 1: scratch, one block at a time
         * (one allocation per call, none per row) */
        size_t chunk = n_rows < BLOCK_ROWS ? n_rows : BLOCK_ROWS;
        double *m = malloc((chunk ? chunk : 1) * k * sizeof *m);
        if (!m) {
            free(xs);
            return mdl_err_set(reterr, -ENOMEM, "out of memory");
        }
        for (size_t r0 = 0; r0 < n_rows; r0 += chunk) {
            size_t nb = n_rows - r0 < chunk ? n_rows - r0 : chunk;
            margins_rows(f, rows + r0 * nf, nb, m, xs);
            for (size_t r = 0; r < nb; r++)
                transform_row(f, m + r * k, out + r0 + r);
        }
        free(m);
    } else {
        margins_rows(f, rows, n_rows, out, xs);
        for (size_t r = 0; r < n_rows; r++)
            transform_row(f, out + r * k, out + r * k);
    }
    free(xs);
    return 0;
}

/* ---- threads over row blocks --------------------------------------------------------------- */

typedef struct score_part {
    const mdl_forest_t *f;
    const double *rows;
    size_t n_rows;
    mdl_output_t kind;
    double *out;
    int r;
    mdl_err_t err;
} score_part_t;

static void *score_part(void *arg)
{
    score_part_t *p = arg;
    p->r = mdl_forest_score(p->f, p->rows, p->n_rows, p->kind, p->out, &p->err);
    return NULL;
}

int mdl_forest_score_threads(const mdl_forest_t *f, const double *rows, size_t n_rows,
                             mdl_output_t kind, double *out, unsigned n_threads,
                             mdl_err_t *reterr)
{
    size_t nf = f->info.n_features, w = mdl_forest_output_width(f, kind), per, off = 0;
    score_part_t part[MDL_FOREST_MAX_THREADS];
    pthread_t tid[MDL_FOREST_MAX_THREADS];
    unsigned n = n_threads, started = 0;
    int r = 0;

    if (n > MDL_FOREST_MAX_THREADS)
        n = MDL_FOREST_MAX_THREADS;
    if (n > n_rows / MDL_FOREST_MIN_ROWS_PER_THREAD)
        n = (unsigned)(n_rows / MDL_FOREST_MIN_ROWS_PER_THREAD);
    if (n <= 1 || w == 0)
        return mdl_forest_score(f, rows, n_rows, kind, out, reterr);
    /* parts of whole row blocks, the last one takes the rest */
    per = (n_rows / n + BLOCK_ROWS - 1) / BLOCK_ROWS * BLOCK_ROWS;
    for (unsigned i = 0; i < n; i++) {
        size_t cnt = i + 1 == n || per > n_rows - off ? n_rows - off : per;
        part[i] = (score_part_t){.f = f, .rows = rows + off * nf, .n_rows = cnt, .kind = kind,
                                 .out = out + off * w};
        off += cnt;
    }
    for (unsigned i = 1; i < n; i++) {
        if (pthread_create(&tid[i], NULL, score_part, &part[i]) != 0)
            break;
        started++;
    }
    /* parts whose thread did not start run here, after the first */
    for (unsigned i = 0; i < n; i++)
        if (i == 0 || i > started)
            score_part(&part[i]);
    for (unsigned i = 1; i <= started; i++)
        pthread_join(tid[i], NULL);
    for (unsigned i = 0; i < n && r == 0; i++)
        if (part[i].r < 0) {
            r = part[i].r;
            if (reterr)
                *reterr = part[i].err;
        }
    return r;
}
