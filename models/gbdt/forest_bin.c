/* The binned layout: LightGBM forests (numeric splits, plain leaves) scored with integer
 * comparisons and no missing-value branches.
 *
 * A split's outcome depends only on where x falls among the thresholds the forest uses
 * on x's feature. So each row is first converted into "bins": for every column c (one per
 * distinct (feature, missing type, default side) that some split uses) with sorted
 * distinct thresholds t_0 < ... < t_{m-1}, bin = #{i : t_i < x}, computed with LightGBM's
 * double comparisons. Then x <= t_i (left) <=> bin <= i, and the split stores i. Missing
 * values become a bin before the conversion runs:
 *   NONE:  NaN is 0.0 (LightGBM), then binned as 0.0;
 *   NAN:   NaN -> 0 when missing values go left (0 <= any i), m when they go right
 *          (m > every i);
 *   ZERO:  NaN and |x| <= kZeroThreshold -> 0 or m by the same rule.
 * Every step is then idx = left + (bin[col] > i), for every value a double can hold (+-inf
 * and -0.0 included: the conversion compares them exactly as step_lgb does), so the
 * result is bit for bit the general layout's. A forest whose column would need more than
 * 65534 thresholds (bins are uint16) keeps the general layout.
 *
 * Slots are 8 bytes (right child = left + 1; in `nodes` each keeps its index in the
 * general layout, breadth first), each a split (column, threshold index, left child's slot
 * and two bits saying which children are leaves) or a leaf's value. So a step is
 *   right = bin[col] > i;  next = left + right;  done = leaf bit of that side,
 * and a walk never reads a leaf's slot until it adds the value.
 *
 * Walks: LightGBM's leaf-wise trees are deep (here up to ~30 levels) but most rows stop
 * early (5.5 steps per tree on the benchmark rows), so walks in lockstep lanes would wait
 * for their slowest member (2.2x the steps with 8 lanes). Every walk first crosses its
 * tree's top TOP_LEVELS levels, kept apart as a complete tree in one cache line (struct
 * top): those steps need no bookkeeping, their addresses come from registers, and every
 * tree has them. The walks still going on sit in a list; a pass steps each once and keeps
 * the unfinished ones, and the steps of a pass are independent, so the CPU overlaps them,
 * cache misses included. Rows are binned BIN_BLOCK at a time. A block of BIN_FEW_ROWS rows
 * or more walks one tree at a time (the tree stays in L1 while every row of the block goes
 * down it); smaller blocks walk each row down all trees at once, prefetching the node each
 * walk reads in the next pass.
 * The two ways want the slots in different orders, so the splits are kept twice. Blocks
 * walk breadth-first slots: a pass's walks sit at one depth, whose slots are adjacent.
 * Single rows walk slots in path order: each tree's sibling pairs depth first, the child
 * more training rows reached (LightGBM's internal_count) first, so a walk's next pair is
 * often in the cache line it has just read: 8-10 % faster at 1 and 16 rows, but 0.7-0.8x
 * for blocks.
 * Trees are added to each row in model order, in double, so no batch size changes a bit.
 * The layout costs 16 bytes per node, 8 per split threshold and 128 per tree on top of the
 * general one, which LEAF output still uses. Measurements and the variants that lost:
 * bench/RESULTS.md (GBDT section, "What changed in the scorer"). */
#include "forest_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef BIN_FEW_ROWS
#define BIN_FEW_ROWS 24 /* fewer rows per block: each row walks all trees on its own
                          * (measured faster at 16 rows, slower at 32) */
#endif
#ifndef BIN_BLOCK
#define BIN_BLOCK 256 /* rows binned per block, walked through one tree at a time */
#endif

#define BIN_MAX_THR 65534u   /* thresholds per column: bins 0..m fit uint16 */
#define BIN_MAX_COLS 65535u  /* columns: bnode.col is uint16 */
#define LINK_LEFT_LEAF (1u << 30)  /* bnode.link: the left child is a leaf */
#define LINK_RIGHT_LEAF (1u << 31) /*   the right child is a leaf */
#define LINK_SLOT 0x3FFFFFFFu      /*   the left child's slot */
_Static_assert(MDL_FOREST_MAX_TOTAL_NODES <= LINK_SLOT, "node slots must fit bnode.link");

enum { COL_NONE, COL_NAN, COL_ZERO };

/* A slot: a split, or a leaf's value (a walk never reads a leaf as a split: the step
 * that reaches a leaf says so). */
typedef union bnode {
    struct {
        uint16_t col;  /* column of the binned row */
        uint16_t thr;  /* right when bin > thr */
        uint32_t link; /* left child's slot (right = left + 1) | LINK_*_LEAF */
    } s;
    double value;
} bnode_t;

/* A walk in progress: its node, and where it reads (walk_rows: the row's offset in the
 * block; walk_trees: the tree). */
typedef struct walk {
    uint32_t node;
    uint32_t aux;
} walk_t;

/* A tree's top TOP_LEVELS levels as a complete tree in heap order from 1 (a leaf above the
 * bottom turns into always-left splits down to it), and where each of the 8 ways out
 * leads: a split to walk on from, or a leaf | TOP_LEAF. One cache line. */
#define TOP_LEVELS 3
#define TOP_WAYS (1u << TOP_LEVELS)
#define TOP_LEAF (1u << 31)
_Static_assert(MDL_FOREST_MAX_TOTAL_NODES < TOP_LEAF, "node slots must fit top.exit");

typedef struct top {
    uint16_t col[TOP_WAYS]; /* [0] unused */
    uint16_t thr[TOP_WAYS]; /* right when bin > thr; 0xFFFF: always left (bins <= 65534) */
    uint32_t exit[TOP_WAYS];
} top_t;

typedef struct bcol {
    uint32_t feature;
    uint8_t kind;   /* COL_* */
    bool dleft;     /* NAN/ZERO: missing values go left */
    uint32_t n_thr; /* distinct thresholds, sorted, at thr[off ..] */
    uint32_t off;
} bcol_t;

struct mdl__forest_bin {
    size_t n_cols;
    size_t stride;   /* bins per row: n_cols, at least 1 (a forest of single leaves) */
    bcol_t *cols;
    double *thr;
    bnode_t *nodes;  /* n_nodes, indexed like the general layout (breadth first) */
    top_t *tops;     /* per tree, leading into nodes */
    bnode_t *path_nodes; /* the same in path order (see above) */
    top_t *path_tops;
};

void mdl__forest_bin_free(struct mdl__forest_bin *b)
{
    if (!b)
        return;
    free(b->cols);
    free(b->thr);
    free(b->nodes);
    free(b->tops);
    free(b->path_nodes);
    free(b->path_tops);
    free(b);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Column slot of a split within its feature: NONE, NAN left/right, ZERO left/right. */
static unsigned split_slot(uint32_t meta)
{
    unsigned miss = (meta >> FN_MISS_SHIFT) & 3u, dl = (meta & FN_DEFAULT_LEFT) != 0;

    if (miss == MDL_MISSING_NONE)
        return 0;
    return miss == MDL_MISSING_NAN ? 1 + dl : 3 + dl;
}

/* Index of x in the sorted distinct values t[0 .. n) (x is one of them). */
static uint32_t find_thr(const double *t, uint32_t n, double x)
{
    uint32_t lo = 0, hi = n;

    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t[mid] <= x)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Fills tp from heap position pos down with the subtree at general slot i; its ways out
 * lead to slots at[i] (at NULL: slot i). b->nodes holds the splits already. */
static void fill_top(const mdl_forest_t *f, const struct mdl__forest_bin *b,
                     const uint32_t *at, top_t *tp, uint32_t i, unsigned pos)
{
    bool leaf = f->nodes[i].meta & FN_LEAF;
    uint32_t left = leaf ? i : f->nodes[i].next;

    if (pos >= TOP_WAYS) {
        tp->exit[pos - TOP_WAYS] = (at ? at[i] : i) | (leaf ? TOP_LEAF : 0u);
        return;
    }
    tp->col[pos] = leaf ? 0 : b->nodes[i].s.col;
    tp->thr[pos] = leaf ? 0xFFFF : b->nodes[i].s.thr;
    fill_top(f, b, at, tp, left, 2 * pos);
    fill_top(f, b, at, tp, leaf ? i : left + 1, 2 * pos + 1);
}

/* at[i] = slot of general slot i in path order: each tree keeps its range, its root
 * first, then its sibling pairs depth first, the pair under the child with the larger
 * count before the other's. */
static int order_by_path(const mdl_forest_t *f, const double *counts, uint32_t *at)
{
    uint32_t *stack = malloc((f->n_nodes ? f->n_nodes : 1) * sizeof *stack);

    if (!stack)
        return -ENOMEM;
    for (size_t t = 0; t < f->n_trees; t++) {
        uint32_t next = f->trees[t].root;
        size_t top = 0;
        at[next] = next;
        next++;
        stack[top++] = f->trees[t].root;
        while (top) {
            uint32_t i = stack[--top], l;
            if (f->nodes[i].meta & FN_LEAF)
                continue;
            l = f->nodes[i].next;
            at[l] = next++;
            at[l + 1] = next++;
            bool right_first = counts[l + 1] > counts[l];
            stack[top++] = right_first ? l : l + 1; /* popped second */
            stack[top++] = right_first ? l + 1 : l;
        }
    }
    free(stack);
    return 0;
}

/* Fills b->nodes (breadth first, the general layout's order) and b->tops. */
static void fill_slots(const mdl_forest_t *f, struct mdl__forest_bin *b,
                       const uint32_t *node_col)
{
    for (size_t i = 0; i < f->n_nodes; i++) {
        const fnode_t *n = &f->nodes[i];
        bnode_t *o = &b->nodes[i];
        if (n->meta & FN_LEAF) {
            o->value = n->u.value;
            continue;
        }
        const bcol_t *c = &b->cols[node_col[i]];
        o->s.col = (uint16_t)node_col[i];
        o->s.thr = (uint16_t)find_thr(b->thr + c->off, c->n_thr, n->u.thr);
        o->s.link = n->next | ((f->nodes[n->next].meta & FN_LEAF) ? LINK_LEFT_LEAF : 0u) |
                    ((f->nodes[n->next + 1].meta & FN_LEAF) ? LINK_RIGHT_LEAF : 0u);
    }
    for (size_t t = 0; t < f->n_trees; t++)
        fill_top(f, b, NULL, &b->tops[t], f->trees[t].root, 1);
}

/* Fills b->path_nodes and b->path_tops: b->nodes moved to the slots at[i]. */
static void fill_path_slots(const mdl_forest_t *f, struct mdl__forest_bin *b,
                            const uint32_t *at)
{
    for (size_t i = 0; i < f->n_nodes; i++) {
        bnode_t o = b->nodes[i];
        if (!(f->nodes[i].meta & FN_LEAF))
            o.s.link = at[o.s.link & LINK_SLOT] | (o.s.link & ~LINK_SLOT);
        b->path_nodes[at[i]] = o;
    }
    for (size_t t = 0; t < f->n_trees; t++)
        fill_top(f, b, at, &b->path_tops[t], f->trees[t].root, 1);
}

int mdl__forest_bin_build(mdl_forest_t *f, const double *counts)
{
    size_t nn = f->n_nodes, nf = f->info.n_features, n_split = 0, n_cols = 0, max_cols;
    int32_t *slot = NULL;    /* nf x 5: column of (feature, slot) or -1 */
    uint32_t *node_col = NULL, *at = NULL;
    struct mdl__forest_bin *b = NULL;
    int r = -ENOMEM;

    if (f->info.flavor != MDL_FOREST_LIGHTGBM)
        return 0;
    for (size_t t = 0; t < f->n_trees; t++)
        if (f->trees[t].linear)
            return 0;
    for (size_t i = 0; i < nn; i++) {
        if (f->nodes[i].meta & FN_CAT)
            return 0;
        n_split += !(f->nodes[i].meta & FN_LEAF);
    }
    max_cols = n_split < 5 * nf ? n_split : 5 * nf;
    b = calloc(1, sizeof *b);
    slot = malloc(5 * nf * sizeof *slot);
    node_col = malloc((nn ? nn : 1) * sizeof *node_col);
    at = malloc((nn ? nn : 1) * sizeof *at);
    if (!b || !slot || !node_col || !at)
        goto out;
    b->cols = calloc(max_cols ? max_cols : 1, sizeof *b->cols);
    b->thr = malloc((n_split ? n_split : 1) * sizeof *b->thr);
    b->nodes = malloc((nn ? nn : 1) * sizeof *b->nodes);
    b->tops = aligned_alloc(64, (f->n_trees ? f->n_trees : 1) * sizeof *b->tops);
    b->path_nodes = malloc((nn ? nn : 1) * sizeof *b->path_nodes);
    b->path_tops = aligned_alloc(64, (f->n_trees ? f->n_trees : 1) * sizeof *b->path_tops);
    if (!b->cols || !b->thr || !b->nodes || !b->tops || !b->path_nodes || !b->path_tops)
        goto out;
    for (size_t i = 0; i < 5 * nf; i++)
        slot[i] = -1;

    /* columns, and how many splits each has */
    for (size_t i = 0; i < nn; i++) {
        uint32_t meta = f->nodes[i].meta;
        size_t k;
        if (meta & FN_LEAF)
            continue;
        k = (size_t)(meta >> FN_FEATURE_SHIFT) * 5 + split_slot(meta);
        if (slot[k] < 0) {
            unsigned s = split_slot(meta);
            if (n_cols == BIN_MAX_COLS) {
                r = 0; /* too many columns for uint16: keep the general layout */
                goto out;
            }
            slot[k] = (int32_t)n_cols;
            b->cols[n_cols].feature = meta >> FN_FEATURE_SHIFT;
            b->cols[n_cols].kind = s == 0 ? COL_NONE : s <= 2 ? COL_NAN : COL_ZERO;
            b->cols[n_cols].dleft = s == 2 || s == 4;
            n_cols++;
        }
        node_col[i] = (uint32_t)slot[k];
        b->cols[slot[k]].n_thr++;
    }
    /* thresholds per column: sorted, duplicates dropped */
    {
        size_t off = 0;
        for (size_t c = 0; c < n_cols; c++) {
            b->cols[c].off = (uint32_t)off;
            off += b->cols[c].n_thr;
            b->cols[c].n_thr = 0;
        }
        for (size_t i = 0; i < nn; i++) {
            bcol_t *c;
            if (f->nodes[i].meta & FN_LEAF)
                continue;
            c = &b->cols[node_col[i]];
            b->thr[c->off + c->n_thr++] = f->nodes[i].u.thr;
        }
        for (size_t c = 0; c < n_cols; c++) {
            double *t = b->thr + b->cols[c].off;
            uint32_t n = b->cols[c].n_thr, u = 0;
            qsort(t, n, sizeof *t, cmp_double);
            for (uint32_t j = 0; j < n; j++)
                if (u == 0 || t[j] != t[u - 1])
                    t[u++] = t[j];
            if (u > BIN_MAX_THR) {
                r = 0; /* bins would not fit uint16: keep the general layout */
                goto out;
            }
            b->cols[c].n_thr = u;
        }
    }
    fill_slots(f, b, node_col);
    if (order_by_path(f, counts, at) < 0)
        goto out;
    fill_path_slots(f, b, at);
    b->n_cols = n_cols;
    b->stride = n_cols ? n_cols : 1;
    f->bin = b;
    b = NULL;
    r = 0;
out:
    mdl__forest_bin_free(b);
    free(slot);
    free(node_col);
    free(at);
    return r;
}

/* The bin every value of column c gets when x is missing (NaN; zero too for ZERO
 * columns), or UINT32_MAX; NONE columns read NaN as 0.0 (LightGBM), rewritten in *x. */
static inline uint32_t missing_bin(const bcol_t *c, double *x)
{
    uint32_t side = c->dleft ? 0 : c->n_thr;

    switch (c->kind) {
    case COL_NONE:
        if (isnan(*x))
            *x = 0.0;
        return UINT32_MAX;
    case COL_NAN:
        return isnan(*x) ? side : UINT32_MAX;
    default:
        return isnan(*x) || (*x >= -LGB_ZERO && *x <= LGB_ZERO) ? side : UINT32_MAX;
    }
}

/* Bins one row: bin = #{i : t[i] < x} by branch-free binary search over the column's
 * sorted thresholds t (at least one: a column exists for a split), BIN_LANES columns at
 * once so that their chains of dependent loads overlap (1.4x faster than one at a time). */
#define BIN_LANES 8
static void bin_row(const struct mdl__forest_bin *b, const double *row, uint16_t *xr)
{
    for (size_t c0 = 0; c0 < b->n_cols; c0 += BIN_LANES) {
        const double *t[BIN_LANES], *p[BIN_LANES];
        uint32_t n[BIN_LANES], miss[BIN_LANES], most = 0;
        double x[BIN_LANES];
        size_t nl = b->n_cols - c0 < BIN_LANES ? b->n_cols - c0 : BIN_LANES;

#pragma GCC unroll 8
        for (size_t l = 0; l < BIN_LANES; l++) {
            const bcol_t *c = &b->cols[c0 + (l < nl ? l : 0)];
            x[l] = row[c->feature];
            miss[l] = missing_bin(c, &x[l]);
            t[l] = p[l] = b->thr + c->off;
            n[l] = c->n_thr;
            most = n[l] > most ? n[l] : most;
        }
        for (; most > 1; most -= most / 2)
#pragma GCC unroll 8
            for (size_t l = 0; l < BIN_LANES; l++) {
                uint32_t half = n[l] / 2;
                p[l] = p[l][half] < x[l] ? p[l] + half : p[l];
                n[l] -= half;
            }
#pragma GCC unroll 8
        for (size_t l = 0; l < nl; l++) {
            uint32_t bin = (uint32_t)(p[l] - t[l]) + (*p[l] < x[l]);
            xr[c0 + l] = (uint16_t)(miss[l] != UINT32_MAX ? miss[l] : bin);
        }
    }
}

/* Bins rows [0, n) (n <= BIN_BLOCK) into xb, row r at xb + r * (stride + 2): its bins,
 * then the 32-bit leaf its last walk reached (see walk_rows). */
static void bin_rows(const mdl_forest_t *f, const double *rows, size_t n, uint16_t *xb)
{
    const struct mdl__forest_bin *b = f->bin;
    size_t nf = f->info.n_features, S2 = b->stride + 2;

    for (size_t r = 0; r < n; r++) {
        bin_row(b, rows + r * nf, xb + r * S2);
        if (b->n_cols == 0)
            xb[r * S2] = 0;
    }
}

/* One step from split slot i for bins x: *nx = the child's slot; true if it is a leaf. */
static inline bool step(const bnode_t *bn, uint32_t i, const uint16_t *x, uint32_t *nx)
{
    const bnode_t *nd = &bn[i];
    uint32_t link = nd->s.link, right = x[nd->s.col] > nd->s.thr;

    *nx = (link & LINK_SLOT) + right;
    return (link >> (30 + right)) & 1u;
}

/* The way out of tree top tp for bins x: a split slot, or a leaf slot | TOP_LEAF. */
static inline uint32_t top_exit(const top_t *tp, const uint16_t *x)
{
    unsigned p = 1;

#pragma GCC unroll 8
    for (unsigned d = 0; d < TOP_LEVELS; d++)
        p = 2 * p + (x[tp->col[p]] > tp->thr[p]);
    return tp->exit[p - TOP_WAYS];
}

/* Rows [0, n) of the binned block xb down the tree whose top is tp. Past the top, the
 * walks in progress sit in a list; each pass over it takes every walk one step and keeps
 * those that have not reached a leaf, so no walk waits for another and the steps of a
 * pass are independent of each other (the CPU overlaps them). Each row's leaf slot is
 * stored after its bins. */
static void walk_rows(const bnode_t *bn, const top_t *tp, uint16_t *xb, size_t S, size_t n,
                      walk_t *w)
{
    const size_t S2 = S + 2;
    size_t na = 0;
    uint32_t nx;

    for (size_t r = 0; r < n; r++) {
        uint32_t e = top_exit(tp, xb + r * S2), slot = e & ~TOP_LEAF;
        memcpy(xb + r * S2 + S, &slot, sizeof slot);
        w[na] = (walk_t){.node = slot, .aux = (uint32_t)(r * S2)};
        na += !(e & TOP_LEAF);
    }
    while (na) {
        size_t k = 0;
        for (size_t j = 0; j < na; j++) {
            walk_t v = w[j];
            bool done = step(bn, v.node, xb + v.aux, &nx);
            memcpy(xb + v.aux + S, &nx, sizeof nx);
            w[k] = (walk_t){.node = nx, .aux = v.aux};
            k += !done;
        }
        na = k;
    }
}

/* One row's bins x down every tree, the same way; leaf[t] = the leaf slot reached in
 * tree t (slots of path_nodes). The slot each walk reads next is prefetched: its miss
 * overlaps this pass. */
static void walk_trees(const mdl_forest_t *f, const uint16_t *x, walk_t *w, uint32_t *leaf)
{
    const bnode_t *bn = f->bin->path_nodes;
    const top_t *tops = f->bin->path_tops;
    size_t na = 0;
    uint32_t nx;

    for (size_t t = 0; t < f->n_trees; t++) {
        uint32_t e = top_exit(&tops[t], x), slot = e & ~TOP_LEAF;
        __builtin_prefetch(&bn[slot]);
        leaf[t] = slot;
        w[na] = (walk_t){.node = slot, .aux = (uint32_t)t};
        na += !(e & TOP_LEAF);
    }
    while (na) {
        size_t k = 0;
        for (size_t j = 0; j < na; j++) {
            walk_t v = w[j];
            bool done = step(bn, v.node, x, &nx);
            __builtin_prefetch(&bn[nx]);
            leaf[v.aux] = nx;
            w[k] = (walk_t){.node = nx, .aux = v.aux};
            k += !done;
        }
        na = k;
    }
}

/* Adds the leaves leaf[t] (path_nodes slots) to the row's margins mr, in tree order. */
static void add_leaves(const mdl_forest_t *f, const uint32_t *leaf, double *mr)
{
    const bnode_t *bn = f->bin->path_nodes;

    if (f->info.n_outputs == 1) {
        /* in a register: the sum is a chain of 1000 dependent additions, through memory
         * each would also wait for the previous store */
        double s = mr[0];
        for (size_t t = 0; t < f->n_trees; t++)
            s += bn[leaf[t]].value;
        mr[0] = s;
        return;
    }
    for (size_t t = 0; t < f->n_trees; t++)
        mr[f->trees[t].group] += bn[leaf[t]].value;
}

/* Scratch of a block of nb rows: the rows (bins, then a 32-bit leaf), then at this offset
 * in uint16 units (8-byte aligned) the walk list and a leaf per tree. */
static size_t walks_at(const struct mdl__forest_bin *b, size_t nb)
{
    return (nb * (b->stride + 2) + 3) & ~(size_t)3;
}

size_t mdl__forest_bin_scratch_bytes(const mdl_forest_t *f, size_t n_rows)
{
    size_t nb = n_rows < BIN_BLOCK ? n_rows : BIN_BLOCK;
    size_t nw = nb > f->n_trees ? nb : f->n_trees;

    return walks_at(f->bin, nb) * sizeof(uint16_t) + nw * sizeof(walk_t) +
           f->n_trees * sizeof(uint32_t);
}

void mdl__forest_bin_margins(const mdl_forest_t *f, const double *rows, size_t n, double *m,
                             void *scratch)
{
    const struct mdl__forest_bin *b = f->bin;
    const bnode_t *bn = b->nodes;
    size_t nf = f->info.n_features, k = f->info.n_outputs, nt = f->n_trees, S = b->stride;
    uint16_t *xb = scratch;

    for (size_t r = 0; r < n * k; r++)
        m[r] = f->base[r % k];
    for (size_t r0 = 0; r0 < n; r0 += BIN_BLOCK) {
        size_t nb = n - r0 < BIN_BLOCK ? n - r0 : BIN_BLOCK;
        walk_t *w = (walk_t *)(void *)(xb + walks_at(b, nb));
        bin_rows(f, rows + r0 * nf, nb, xb);
        if (nb < BIN_FEW_ROWS) {
            /* few rows: each walks all trees at once */
            uint32_t *leaf = (uint32_t *)(w + (nb > nt ? nb : nt));
            for (size_t r = 0; r < nb; r++) {
                walk_trees(f, xb + r * (S + 2), w, leaf);
                add_leaves(f, leaf, m + (r0 + r) * k);
            }
            continue;
        }
        /* one tree at a time through the block */
        for (size_t t = 0; t < nt; t++) {
            double *mg = m + r0 * k + f->trees[t].group;
            walk_rows(bn, &b->tops[t], xb, S, nb, w);
            for (size_t r = 0; r < nb; r++) {
                uint32_t leaf;
                memcpy(&leaf, xb + r * (S + 2) + S, sizeof leaf);
                mg[r * k] += bn[leaf].value;
            }
        }
    }
}
