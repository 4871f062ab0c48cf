#include "safetensors.h"

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/file.h"
#include "models/json.h"

typedef struct st_map {
    void *base;   /* NULL for borrowed memory */
    size_t len;
    char *path;   /* owned */
} st_map_t;

struct mdl_st {
    st_map_t *maps;
    size_t n_maps;
    mdl_st_tensor_t *tensors; /* sorted by name once loading is done */
    size_t n_tensors, cap;
    size_t mapped_bytes;
};

size_t mdl_dtype_size(mdl_dtype_t t)
{
    return t == MDL_DTYPE_F32 ? 4 : 2;
}

const char *mdl_dtype_name(mdl_dtype_t t)
{
    switch (t) {
    case MDL_DTYPE_F32: return "F32";
    case MDL_DTYPE_F16: return "F16";
    case MDL_DTYPE_BF16: return "BF16";
    }
    return "?";
}

mdl_st_t *mdl_st_free(mdl_st_t *st)
{
    if (!st)
        return NULL;
    for (size_t i = 0; i < st->n_tensors; i++)
        free((char *)st->tensors[i].name);
    free(st->tensors);
    for (size_t i = 0; i < st->n_maps; i++) {
        if (st->maps[i].base)
            munmap(st->maps[i].base, st->maps[i].len);
        free(st->maps[i].path);
    }
    free(st->maps);
    free(st);
    return NULL;
}

static int push_tensor(mdl_st_t *st, const mdl_st_tensor_t *t)
{
    if (st->n_tensors == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        mdl_st_tensor_t *p = realloc(st->tensors, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        st->tensors = p;
        st->cap = cap;
    }
    st->tensors[st->n_tensors++] = *t;
    return 0;
}

/* An integral JSON number in [0, 2^53] (doubles are exact up to there). */
static bool as_u64(const mdl_json_t *v, uint64_t *ret)
{
    if (v->type != MDL_JSON_NUMBER || v->u.num < 0 || v->u.num > 9007199254740992.0 ||
        v->u.num != (double)(uint64_t)v->u.num)
        return false;
    *ret = (uint64_t)v->u.num;
    return true;
}

static int parse_dtype(const mdl_json_t *v, const char *file, const char *name, mdl_dtype_t *ret,
                       mdl_err_t *reterr)
{
    if (v->type != MDL_JSON_STRING)
        return mdl_err_set(reterr, -EBADMSG, "%s: tensor '%s': dtype is %s, expected a string", file,
                           name, mdl_json_type_name(v->type));
    if (strcmp(v->u.str, "F32") == 0)
        *ret = MDL_DTYPE_F32;
    else if (strcmp(v->u.str, "F16") == 0)
        *ret = MDL_DTYPE_F16;
    else if (strcmp(v->u.str, "BF16") == 0)
        *ret = MDL_DTYPE_BF16;
    else
        return mdl_err_set(reterr, -EBADMSG,
                           "%s: tensor '%s': dtype '%.20s' is not supported (F32, F16, BF16)", file,
                           name, v->u.str);
    return 0;
}

/* One tensor entry of a header: {"dtype", "shape", "data_offsets"} checked against the
 * data section of data_len bytes that starts at `data`. */
static int parse_entry(const mdl_json_t *obj, const char *file, const char *name,
                       const uint8_t *data, uint64_t data_len, mdl_st_tensor_t *t, mdl_err_t *reterr)
{
    static const char *const allowed[] = {"dtype", "shape", "data_offsets", NULL};
    const mdl_json_t *dtype, *shape, *offs;
    uint64_t begin, end, bytes;

    if (obj->type != MDL_JSON_OBJECT)
        return mdl_err_set(reterr, -EBADMSG, "%s: tensor '%s': entry is %s, expected an object",
                           file, name, mdl_json_type_name(obj->type));
    if (mdl_json_check_members(obj, name, allowed, reterr) < 0) {
        mdl_err_prefix(reterr, "%s: tensor ", file);
        return -EBADMSG;
    }
    dtype = mdl_json_find(obj, "dtype");
    shape = mdl_json_find(obj, "shape");
    offs = mdl_json_find(obj, "data_offsets");
    if (!dtype || !shape || !offs)
        return mdl_err_set(reterr, -EBADMSG, "%s: tensor '%s': missing %s", file, name,
                           !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    memset(t, 0, sizeof *t);
    if (parse_dtype(dtype, file, name, &t->dtype, reterr) < 0)
        return -EBADMSG;
    if (shape->type != MDL_JSON_ARRAY || shape->len > MDL_ST_MAX_DIMS)
        return mdl_err_set(reterr, -EBADMSG,
                           "%s: tensor '%s': shape must be an array of at most %d sizes", file,
                           name, MDL_ST_MAX_DIMS);
    t->numel = 1;
    MDL_JSON_FOREACH(d, shape) {
        uint64_t n;
        if (!as_u64(d, &n) || n > ((uint64_t)1 << 40))
            return mdl_err_set(reterr, -EBADMSG,
                               "%s: tensor '%s': shape[%u] is not a size in 0..2^40", file, name,
                               t->n_dims);
        if (n && t->numel > ((uint64_t)1 << 46) / n)
            return mdl_err_set(reterr, -EBADMSG, "%s: tensor '%s': element count overflows", file,
                               name);
        t->numel *= n;
        t->shape[t->n_dims++] = n;
    }
    if (offs->type != MDL_JSON_ARRAY || offs->len != 2 || !as_u64(offs + 1, &begin) ||
        !as_u64(offs + 2, &end))
        return mdl_err_set(reterr, -EBADMSG,
                           "%s: tensor '%s': data_offsets must be [begin, end] byte offsets", file,
                           name);
    if (begin > end || end > data_len)
        return mdl_err_set(reterr, -EBADMSG,
                           "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the "
                           "data section (%llu bytes)",
                           file, name, (unsigned long long)begin, (unsigned long long)end,
                           (unsigned long long)data_len);
    bytes = t->numel * mdl_dtype_size(t->dtype);
    if (end - begin != bytes)
        return mdl_err_set(reterr, -EBADMSG,
                           "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, but %s x "
                           "%llu elements need %llu",
                           file, name, (unsigned long long)begin, (unsigned long long)end,
                           (unsigned long long)(end - begin), mdl_dtype_name(t->dtype),
                           (unsigned long long)t->numel, (unsigned long long)bytes);
    t->data = data + begin;
    t->n_bytes = (size_t)bytes;
    return 0;
}

static int by_data(const void *a, const void *b)
{
    const mdl_st_tensor_t *x = *(const mdl_st_tensor_t *const *)a, *y = *(const mdl_st_tensor_t *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

/* Tensors [first, st->n_tensors) come from one file: none may share bytes. */
static int check_overlaps(mdl_st_t *st, size_t first, const uint8_t *data, const char *file,
                          mdl_err_t *reterr)
{
    size_t n = st->n_tensors - first;
    const mdl_st_tensor_t **v;
    int r = 0;

    if (n < 2)
        return 0;
    v = malloc(n * sizeof *v);
    if (!v)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        v[i] = &st->tensors[first + i];
    qsort(v, n, sizeof *v, by_data);
    for (size_t i = 1; i < n; i++) {
        const mdl_st_tensor_t *a = v[i - 1], *b = v[i];
        const uint8_t *a_end = (const uint8_t *)a->data + a->n_bytes;
        if (a->n_bytes && b->n_bytes && (const uint8_t *)b->data < a_end) {
            r = mdl_err_set(reterr, -EBADMSG,
                            "%s: tensors '%s' [%zu, %zu) and '%s' [%zu, %zu) overlap", file,
                            a->name, (size_t)((const uint8_t *)a->data - data),
                            (size_t)(a_end - data), b->name,
                            (size_t)((const uint8_t *)b->data - data),
                            (size_t)((const uint8_t *)b->data - data) + b->n_bytes);
            break;
        }
    }
    free(v);
    return r;
}

/* Validates one file's bytes and appends its tensors to st; `file` (owned by st) names it. */
static int parse_file(mdl_st_t *st, const uint8_t *base, size_t len, const char *file,
                      mdl_err_t *reterr)
{
    uint64_t hlen = 0;
    mdl_json_doc_t *doc = NULL;
    const mdl_json_t *root;
    size_t first = st->n_tensors;
    int r;

    if (len < 8)
        return mdl_err_set(reterr, -EBADMSG,
                           "%s: file is %zu bytes, too short for the 8-byte header length", file,
                           len);
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | base[i];
    if (hlen > MDL_ST_MAX_HEADER_BYTES)
        return mdl_err_set(reterr, -EBADMSG, "%s: header length %llu is over the %llu-byte limit",
                           file, (unsigned long long)hlen,
                           (unsigned long long)MDL_ST_MAX_HEADER_BYTES);
    if (hlen > len - 8)
        return mdl_err_set(reterr, -EBADMSG,
                           "%s: header length %llu runs past the end of the file (%zu bytes)", file,
                           (unsigned long long)hlen, len);
    r = mdl_json_parse((const char *)base + 8, (size_t)hlen, 8, &doc, reterr);
    if (r < 0) {
        mdl_err_prefix(reterr, "%s: header: ", file);
        return r;
    }
    root = mdl_json_doc_root(doc);
    if (root->type != MDL_JSON_OBJECT) {
        r = mdl_err_set(reterr, -EBADMSG, "%s: header is %s, expected an object", file,
                        mdl_json_type_name(root->type));
        goto out;
    }
    MDL_JSON_FOREACH_MEMBER(key, root) {
        mdl_st_tensor_t t;
        if (strcmp(key->u.str, "__metadata__") == 0)
            continue;
        if (strlen(key->u.str) != key->len || key->len == 0) {
            r = mdl_err_set(reterr, -EBADMSG, "%s: a tensor name is empty or holds a NUL byte",
                            file);
            goto out;
        }
        r = parse_entry(key + 1, file, key->u.str, base + 8 + hlen, len - 8 - hlen, &t, reterr);
        if (r < 0)
            goto out;
        t.file = file;
        t.name = strdup(key->u.str);
        if (!t.name || push_tensor(st, &t) < 0) {
            free((char *)t.name);
            r = mdl_err_set(reterr, -ENOMEM, "out of memory");
            goto out;
        }
    }
    r = check_overlaps(st, first, base + 8 + hlen, file, reterr);
out:
    mdl_json_doc_free(doc);
    return r;
}

static int add_map(mdl_st_t *st, void *base, size_t len, const char *path, st_map_t **ret)
{
    st_map_t *p = realloc(st->maps, (st->n_maps + 1) * sizeof *p);
    if (!p)
        return -ENOMEM;
    st->maps = p;
    p += st->n_maps;
    p->base = base;
    p->len = len;
    p->path = strdup(path);
    if (!p->path)
        return -ENOMEM;
    st->n_maps++;
    st->mapped_bytes += base ? len : 0;
    *ret = p;
    return 0;
}

static int map_file(mdl_st_t *st, const char *path, size_t max_bytes, mdl_err_t *reterr)
{
    void *base;
    size_t len;
    st_map_t *m;
    int r = mdl_file_map(path, 8, "the 8-byte header length", max_bytes, &base, &len, reterr);

    if (r < 0)
        return r;
    if (add_map(st, base, len, path, &m) < 0) {
        munmap(base, len);
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    }
    return parse_file(st, base, m->len, m->path, reterr);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const mdl_st_tensor_t *)a)->name, ((const mdl_st_tensor_t *)b)->name);
}

static int finish(mdl_st_t *st, mdl_err_t *reterr)
{
    if (st->n_tensors > 1)
        qsort(st->tensors, st->n_tensors, sizeof *st->tensors, by_name);
    for (size_t i = 1; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, st->tensors[i - 1].name) == 0)
            return mdl_err_set(reterr, -EBADMSG, "tensor '%s' appears twice (%s and %s)",
                               st->tensors[i].name, st->tensors[i - 1].file, st->tensors[i].file);
    return 0;
}

/* model.safetensors.index.json: maps every shard named in weight_map, then checks that each
 * tensor is in the shard the map names. */
static int open_index(mdl_st_t *st, const char *path, size_t max_bytes, mdl_err_t *reterr)
{
    char *text = NULL, dir[4096], shard[4096];
    size_t len, n_shards = 0;
    mdl_json_doc_t *doc = NULL;
    const mdl_json_t *map;
    const char **shards = NULL;
    const char *slash = strrchr(path, '/');
    int r;

    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    r = mdl_file_read(path, MDL_ST_MAX_INDEX_BYTES, &text, &len, NULL, reterr);
    if (r < 0)
        return r;
    r = mdl_json_parse(text, len, 16, &doc, reterr);
    if (r < 0) {
        mdl_err_prefix(reterr, "%s: ", path);
        goto out;
    }
    r = mdl_json_get(mdl_json_doc_root(doc), "", "weight_map", MDL_JSON_OBJECT, &map, reterr);
    if (r < 0) {
        mdl_err_prefix(reterr, "%s: ", path);
        goto out;
    }
    shards = calloc(map->len ? map->len : 1, sizeof *shards);
    if (!shards) {
        r = mdl_err_set(reterr, -ENOMEM, "out of memory");
        goto out;
    }
    MDL_JSON_FOREACH_MEMBER(key, map) {
        const char *f = key[1].type == MDL_JSON_STRING ? key[1].u.str : NULL;
        size_t i;
        if (!f || !*f || strchr(f, '/') || strcmp(f, "..") == 0 || strlen(f) != key[1].len) {
            r = mdl_err_set(reterr, -EBADMSG,
                            "%s: weight_map['%s'] must be a shard file name in the same folder",
                            path, key->u.str);
            goto out;
        }
        for (i = 0; i < n_shards && strcmp(shards[i], f) != 0; i++)
            ;
        if (i == n_shards) {
            if (n_shards == MDL_ST_MAX_SHARDS) {
                r = mdl_err_set(reterr, -EBADMSG, "%s: more than %d shards", path,
                                MDL_ST_MAX_SHARDS);
                goto out;
            }
            shards[n_shards++] = f;
            if ((size_t)snprintf(shard, sizeof shard, "%s/%s", dir, f) >= sizeof shard) {
                r = mdl_err_set(reterr, -EBADMSG, "%s: shard path too long", path);
                goto out;
            }
            r = map_file(st, shard, max_bytes, reterr);
            if (r < 0)
                goto out;
        }
    }
    r = finish(st, reterr);
    if (r < 0)
        goto out;
    MDL_JSON_FOREACH_MEMBER(key, map) {
        const mdl_st_tensor_t *t = mdl_st_find(st, key->u.str);
        const char *f = strrchr(t ? t->file : "", '/');
        if (!t || strcmp(f ? f + 1 : t->file, key[1].u.str) != 0) {
            r = mdl_err_set(reterr, -EBADMSG, "%s: tensor '%s' is not in shard %s", path,
                            key->u.str, key[1].u.str);
            goto out;
        }
    }
out:
    free(shards);
    mdl_json_doc_free(doc);
    free(text);
    return r;
}

int mdl_st_open(const char *path, size_t max_bytes, mdl_st_t **ret, mdl_err_t *reterr)
{
    mdl_st_t *st = calloc(1, sizeof *st);
    size_t n = strlen(path);
    int r;

    if (!st)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    if (n >= 11 && strcmp(path + n - 11, ".index.json") == 0)
        r = open_index(st, path, max_bytes, reterr);
    else if ((r = map_file(st, path, max_bytes, reterr)) == 0)
        r = finish(st, reterr);
    if (r < 0) {
        mdl_st_free(st);
        return r;
    }
    *ret = st;
    return 0;
}

int mdl_st_open_mem(const void *data, size_t len, const char *label, mdl_st_t **ret,
                    mdl_err_t *reterr)
{
    mdl_st_t *st = calloc(1, sizeof *st);
    st_map_t *m;
    int r;

    if (!st)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    r = add_map(st, NULL, len, label, &m);
    if (r < 0)
        r = mdl_err_set(reterr, -ENOMEM, "out of memory");
    else if ((r = parse_file(st, data, len, m->path, reterr)) == 0)
        r = finish(st, reterr);
    if (r < 0) {
        mdl_st_free(st);
        return r;
    }
    *ret = st;
    return 0;
}

const mdl_st_tensor_t *mdl_st_find(const mdl_st_t *st, const char *name)
{
    size_t lo = 0, hi = st->n_tensors;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->tensors[mid].name);
        if (c == 0)
            return &st->tensors[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

size_t mdl_st_count(const mdl_st_t *st)
{
    return st->n_tensors;
}

const mdl_st_tensor_t *mdl_st_at(const mdl_st_t *st, size_t i)
{
    return i < st->n_tensors ? &st->tensors[i] : NULL;
}

size_t mdl_st_mapped_bytes(const mdl_st_t *st)
{
    return st->mapped_bytes;
}
