/* libFuzzer target: the model-file JSON parser (models/json.c) on arbitrary bytes at a
 * depth limit from byte 0. A parsed document is walked whole (spans must tile it and stay
 * inside it, strings must be as long as they say); a failure carries a code and message. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Visits v and its subtree; returns the nodes seen. Recursion is bounded by max_depth. */
static size_t walk(const mdl_json_t *v, unsigned depth, unsigned max_depth)
{
    size_t n = 1;

    /* containers count toward the depth ([[1]] is depth 2), scalars do not */
    if ((v->type == MDL_JSON_ARRAY || v->type == MDL_JSON_OBJECT) && depth > max_depth)
        abort();
    if (v->type == MDL_JSON_STRING && strlen(v->u.str) > v->len)
        abort();
    if (v->type == MDL_JSON_ARRAY) {
        size_t count = 0;
        MDL_JSON_FOREACH(it, v) {
            n += walk(it, depth + 1, max_depth);
            count++;
        }
        if (count != v->len || mdl_json_at(v, count) != NULL)
            abort();
    } else if (v->type == MDL_JSON_OBJECT) {
        size_t count = 0;
        MDL_JSON_FOREACH_MEMBER(key, v) {
            if (key->type != MDL_JSON_STRING)
                abort();
            n += 1 + walk(key + 1, depth + 1, max_depth);
            /* a key holding "\u0000" cannot be named by a C string */
            if (strlen(key->u.str) == key->len && !mdl_json_find(v, key->u.str))
                abort();
            count++;
        }
        if (count != v->len)
            abort();
    }
    if (n != v->span)
        abort();
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mdl_json_doc_t *doc = NULL;
    mdl_err_t err = {0};
    unsigned max_depth;
    char *copy;
    int rc;

    if (size < 1)
        return 0;
    max_depth = 1 + data[0] % 64;
    /* not NUL-terminated: the parser must stop at len */
    copy = malloc(size - 1 ? size - 1 : 1);
    if (!copy)
        return 0;
    memcpy(copy, data + 1, size - 1);
    rc = mdl_json_parse(copy, size - 1, max_depth, &doc, &err);
    if (rc < 0) {
        if (err.code != rc || !err.msg[0] || doc)
            abort();
    } else if (walk(mdl_json_doc_root(doc), 1, max_depth) != mdl_json_doc_nodes(doc)) {
        abort();
    }
    mdl_json_doc_free(doc);
    free(copy);
    return 0;
}
