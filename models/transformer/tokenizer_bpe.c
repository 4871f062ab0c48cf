/* The tokenizer's tables and its BPE merge loop.
 *
 * Merging is the classic agenda: a doubly linked list of symbols and a binary heap of
 * candidate pairs ordered by (rank, position). The best pair is popped, checked still
 * current (its two symbols unchanged and adjacent), merged, and the two pairs it forms
 * with its neighbours are pushed. Each merge costs O(log n), so a 100 kB text that is
 * one SentencePiece "word" takes milliseconds; stale entries are skipped when popped.
 * Ties in rank go to the leftmost pair, as SentencePiece, llama2.c and Hugging Face do. */
#include <stdlib.h>
#include <string.h>

#include "models/transformer/tokenizer_internal.h"

int mdl__tok_alloc(mdl_tokenizer_t *tok, size_t n)
{
    tok->n_vocab = n;
    tok->flags = calloc(n ? n : 1, 1);
    tok->key_off = calloc(n ? n : 1, sizeof *tok->key_off);
    tok->key_len = calloc(n ? n : 1, sizeof *tok->key_len);
    tok->piece_off = calloc(n ? n : 1, sizeof *tok->piece_off);
    tok->piece_len = calloc(n ? n : 1, sizeof *tok->piece_len);
    if (!tok->flags || !tok->key_off || !tok->key_len || !tok->piece_off || !tok->piece_len)
        return -ENOMEM;
    return 0;
}

int mdl__tok_text_add(mdl_tokenizer_t *tok, const void *s, size_t len, uint32_t *ret_off)
{
    if (tok->text_len + len + 1 > tok->text_cap) {
        size_t cap = tok->text_cap ? tok->text_cap : 4096;
        while (cap < tok->text_len + len + 1)
            cap *= 2;
        if (cap > UINT32_MAX)
            return -E2BIG;
        char *p = realloc(tok->text, cap);
        if (!p)
            return -ENOMEM;
        tok->text = p;
        tok->text_cap = cap;
    }
    if (len)
        memcpy(tok->text + tok->text_len, s, len);
    tok->text[tok->text_len + len] = '\0';
    *ret_off = (uint32_t)tok->text_len;
    tok->text_len += len + 1;
    return 0;
}

/* FNV-1a: short keys, good enough spread for open addressing with linear probing. */
static uint64_t hash_bytes(const uint8_t *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c *= 2;
    return c;
}

int mdl__tok_build_vocab(mdl_tokenizer_t *tok)
{
    size_t cap = pow2_at_least(tok->n_vocab * 2 + 1);
    tok_strmap_t *m = &tok->vocab;

    free(m->slots);
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots)
        return -ENOMEM;
    m->mask = cap - 1;
    for (size_t id = 0; id < tok->n_vocab; id++) {
        if (!(tok->flags[id] & TOKF_PRESENT))
            continue;
        const uint8_t *k = (const uint8_t *)tok->text + tok->key_off[id];
        size_t len = tok->key_len[id];
        size_t i = hash_bytes(k, len) & m->mask;
        for (;; i = (i + 1) & m->mask) {
            uint32_t s = m->slots[i];
            if (s == 0) {
                m->slots[i] = (uint32_t)id + 1;
                break;
            }
            if (tok->key_len[s - 1] == len && memcmp(tok->text + tok->key_off[s - 1], k, len) == 0)
                break; /* a repeated key keeps its first id */
        }
    }
    return 0;
}

int32_t mdl__tok_lookup(const mdl_tokenizer_t *tok, const void *s, size_t len)
{
    const tok_strmap_t *m = &tok->vocab;

    if (!m->slots)
        return -1;
    for (size_t i = hash_bytes(s, len) & m->mask;; i = (i + 1) & m->mask) {
        uint32_t v = m->slots[i];
        if (v == 0)
            return -1;
        if (tok->key_len[v - 1] == len && memcmp(tok->text + tok->key_off[v - 1], s, len) == 0)
            return (int32_t)(v - 1);
    }
}

static size_t hash_pair(uint64_t key)
{
    key ^= key >> 31;
    key *= 0x9E3779B97F4A7C15ull;
    return (size_t)(key ^ (key >> 32));
}

int mdl__tok_merges_init(tok_pairmap_t *m, size_t n)
{
    size_t cap = pow2_at_least(n * 2 + 1);

    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++)
        m->slots[i].key = UINT64_MAX;
    m->mask = cap - 1;
    m->n = 0;
    return 0;
}

int mdl__tok_merges_add(tok_pairmap_t *m, int32_t left, int32_t right, uint32_t rank,
                        int32_t merged)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;

    if ((m->n + 1) * 2 > m->mask + 1)
        return -E2BIG; /* callers size the table for every merge up front */
    for (size_t i = hash_pair(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key)
            return 0; /* HF keeps the first rank of a repeated merge */
        if (m->slots[i].key == UINT64_MAX) {
            m->slots[i] = (tok_merge_t){.key = key, .rank = rank, .merged = merged};
            m->n++;
            return 0;
        }
    }
}

const tok_merge_t *mdl__tok_merges_find(const tok_pairmap_t *m, int32_t left, int32_t right)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;

    if (!m->slots || m->n == 0)
        return NULL;
    for (size_t i = hash_pair(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key)
            return &m->slots[i];
        if (m->slots[i].key == UINT64_MAX)
            return NULL;
    }
}

void mdl__tok_maps_free(mdl_tokenizer_t *tok)
{
    free(tok->vocab.slots);
    tok->vocab.slots = NULL;
    free(tok->merges.slots);
    tok->merges.slots = NULL;
}

int mdl__tok_ids_push(tok_ids_t *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

/* ---- the merge loop --------------------------------------------------------------- */

typedef struct cand {
    uint32_t rank;
    int32_t left, right;  /* symbol indices */
    int32_t lid, rid;     /* their ids when pushed: a mismatch on pop means stale */
    int32_t merged;
} cand_t;

static bool cand_before(const cand_t *a, const cand_t *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->left < b->left;
}

typedef struct heap {
    cand_t *v;
    size_t n, cap;
} heap_t;

static void heap_push(heap_t *h, cand_t c)
{
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &h->v[p]))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
}

static cand_t heap_pop(heap_t *h)
{
    cand_t top = h->v[0], last = h->v[--h->n];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && cand_before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!cand_before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

int mdl__tok_scratch_reserve(tok_scratch_t *sc, size_t n)
{
    if (n > sc->cap_syms) {
        size_t cap = sc->cap_syms * 2 > n ? sc->cap_syms * 2 : n < 64 ? 64 : n;
        tok_sym_t *s = realloc(sc->syms, cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        sc->syms = s;
        sc->cap_syms = cap;
    }
    return 0;
}

/* Every merge pushes at most two candidates and the first pass at most n - 1, so the heap
 * never holds more than 3n. */
static int heap_reserve(tok_scratch_t *sc, size_t n)
{
    if (3 * n > sc->cap_heap) {
        size_t cap = sc->cap_heap * 2 > 3 * n ? sc->cap_heap * 2 : 3 * n;
        cand_t *c = realloc(sc->heap, cap * sizeof *c);
        if (!c)
            return -ENOMEM;
        sc->heap = c;
        sc->cap_heap = cap;
    }
    return 0;
}

void mdl__tok_scratch_free(tok_scratch_t *sc)
{
    free(sc->syms);
    free(sc->heap);
    memset(sc, 0, sizeof *sc);
}

static void try_pair(const mdl_tokenizer_t *tok, heap_t *h, const tok_sym_t *syms, int32_t l)
{
    int32_t r = syms[l].next;
    if (r < 0 || syms[l].id < 0 || syms[r].id < 0)
        return;
    const tok_merge_t *m = mdl__tok_merges_find(&tok->merges, syms[l].id, syms[r].id);
    if (m)
        heap_push(h, (cand_t){m->rank, l, r, syms[l].id, syms[r].id, m->merged});
}

/* An unknown character: its bytes as <0xNN> tokens when every one exists (byte
 * fallback), else one unk, fused with an unk just before it if fuse_unk. */
static int emit_unknown(const mdl_tokenizer_t *tok, const tok_sym_t *s, tok_ids_t *out,
                        bool *last_unk)
{
    bool bytes_ok = tok->byte_fallback;
    for (unsigned i = 0; i < s->n_bytes && bytes_ok; i++)
        bytes_ok = tok->byte_id[s->bytes[i]] >= 0;
    if (bytes_ok) {
        for (unsigned i = 0; i < s->n_bytes; i++) {
            int rc = mdl__tok_ids_push(out, tok->byte_id[s->bytes[i]]);
            if (rc < 0)
                return rc;
        }
        *last_unk = false;
        return 0;
    }
    if (tok->unk_id < 0 || (tok->fuse_unk && *last_unk))
        return 0; /* loaders refuse tokenizers that could get here without an unk */
    *last_unk = true;
    return mdl__tok_ids_push(out, tok->unk_id);
}

int mdl__tok_bpe(const mdl_tokenizer_t *tok, tok_scratch_t *sc, size_t n, tok_ids_t *out)
{
    tok_sym_t *syms = sc->syms;
    bool last_unk = false;
    int rc;

    if (n == 0)
        return 0;
    if (n > 1 && tok->merges.n > 0 && (rc = heap_reserve(sc, n)) < 0)
        return rc;
    heap_t h = {.v = sc->heap, .n = 0, .cap = sc->cap_heap};
    for (size_t i = 0; i < n; i++) {
        syms[i].prev = (int32_t)i - 1;
        syms[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    if (n > 1 && tok->merges.n > 0) {
        for (size_t i = 0; i + 1 < n; i++)
            try_pair(tok, &h, syms, (int32_t)i);
        while (h.n) {
            cand_t c = heap_pop(&h);
            tok_sym_t *l = &syms[c.left];
            if (l->id != c.lid || l->next != c.right || syms[c.right].id != c.rid)
                continue; /* stale: one side merged since */
            tok_sym_t *r = &syms[c.right];
            l->id = c.merged;
            l->next = r->next;
            if (r->next >= 0)
                syms[r->next].prev = c.left;
            r->id = INT32_MIN; /* dead; never matches a candidate's id */
            r->next = -1;
            if (l->prev >= 0)
                try_pair(tok, &h, syms, l->prev);
            try_pair(tok, &h, syms, c.left);
        }
    }
    for (int32_t i = 0; i >= 0; i = syms[i].next) {
        if (syms[i].id >= 0) {
            last_unk = tok->unk_id >= 0 && syms[i].id == tok->unk_id;
            rc = mdl__tok_ids_push(out, syms[i].id);
        } else {
            rc = emit_unknown(tok, &syms[i], out, &last_unk);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}
