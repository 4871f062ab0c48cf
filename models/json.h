/* A small, bounded JSON reader for model artifacts (models/ may not use cJSON).
 *
 * mdl_json_parse() validates a whole document (RFC 8259, strict: no comments, no trailing
 * commas, no NaN/Infinity, valid UTF-8, no lone surrogates) and builds a read-only DOM:
 * one flat array of nodes in document order plus one arena of decoded strings, so a
 * document of any size costs three allocations. A container's children follow it
 * directly, each subtree is contiguous, and node->span says how many nodes a subtree
 * holds, so the next sibling is `node + node->span`. Object members are stored as a key
 * node (a STRING) followed by the value's subtree.
 *
 * Costs: iterating an array or object is a pointer walk; mdl_json_at() is O(1) when all
 * elements are scalars (the common case for weight arrays) and O(i) otherwise;
 * mdl_json_find() is a linear scan of the members (fine for the small objects of model
 * files; index big objects yourself if you look up many keys in them).
 *
 * Numbers are correctly rounded, so every double written with a round-trip printer (Python
 * repr, %.17g) reads back bit for bit: tokens whose digits fit in 53 bits with a power of
 * ten up to 10^22 take an exact fast path (one IEEE multiply or divide), the rest go to
 * strtod on a NUL-terminated copy. A number too large for a double is a parse error.
 * strtod follows LC_NUMERIC; the daemon never calls setlocale, so that is the "C" locale.
 *
 * Errors: -EBADMSG with a message naming the byte offset, line:col, the path of the value
 * being parsed (e.g. "trees[3].split[7]") and what was expected; -ENOMEM; -E2BIG for input
 * of 4 GiB or more (callers bound input size long before that). The typed getters below
 * return -EBADMSG with a message naming the field path.
 *
 * Threads: a parsed document is immutable; any number of threads may read it. */
#ifndef MDL_JSON_H
#define MDL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Nesting limit enforced whatever the caller asks for (the parser recurses). */
#define MDL_JSON_MAX_DEPTH 1000

typedef enum mdl_json_type {
    MDL_JSON_NULL = 0,
    MDL_JSON_BOOL,
    MDL_JSON_NUMBER,
    MDL_JSON_STRING,
    MDL_JSON_ARRAY,
    MDL_JSON_OBJECT,
} mdl_json_type_t;

/* One value. Read-only; lives as long as its document. */
typedef struct mdl_json {
    uint8_t type;    /* mdl_json_type_t */
    uint32_t offset; /* byte offset of the value's first character in the input */
    uint32_t len;    /* STRING: bytes without the NUL; ARRAY: elements; OBJECT: members */
    uint32_t span;   /* nodes in this subtree including itself; next sibling = this + span */
    union {
        double num;      /* NUMBER: always finite */
        bool boolean;    /* BOOL */
        const char *str; /* STRING: UTF-8, NUL-terminated; may hold "\u0000" bytes (use len) */
    } u;
} mdl_json_t;

typedef struct mdl_json_doc mdl_json_doc_t;

/* Parses data[0..len) (need not be NUL-terminated) into a new document in *ret_doc.
 * max_depth bounds container nesting ([[1]] is depth 2); values above MDL_JSON_MAX_DEPTH
 * are lowered to it. Any thread; no logging. */
int mdl_json_parse(const char *data, size_t len, unsigned max_depth, mdl_json_doc_t **ret_doc,
                   mdl_err_t *reterr);

/* Frees the document and every node and string in it; NULL-safe; returns NULL. */
mdl_json_doc_t *mdl_json_doc_free(mdl_json_doc_t *doc);

/* The top-level value. */
const mdl_json_t *mdl_json_doc_root(const mdl_json_doc_t *doc);

/* Number of nodes in the document (for memory accounting). */
size_t mdl_json_doc_nodes(const mdl_json_doc_t *doc);

/* "a number", "an object", ...: for error messages. */
const char *mdl_json_type_name(mdl_json_type_t t);

/* Iterates the elements of an array: MDL_JSON_FOREACH(it, arr) { use it; } */
#define MDL_JSON_FOREACH(it, arr)                                                                  \
    for (const mdl_json_t *it = (arr) + 1, *it##_end_ = (arr) + (arr)->span; it < it##_end_;       \
         it += it->span)

/* Iterates the members of an object; `key` is the key node, key + 1 its value. */
#define MDL_JSON_FOREACH_MEMBER(key, obj)                                                          \
    for (const mdl_json_t *key = (obj) + 1, *key##_end_ = (obj) + (obj)->span; key < key##_end_;  \
         key += 1 + key[1].span)

/* Element i of an array, or NULL if out of range or v is not an array. */
const mdl_json_t *mdl_json_at(const mdl_json_t *v, size_t i);

/* Value of the first member named key (NUL-terminated), or NULL if absent or v is not an
 * object. */
const mdl_json_t *mdl_json_find(const mdl_json_t *v, const char *key);

/* Appends ".key" or "[i]" to a field path held in buf (for error messages); returns buf.
 * An empty parent yields "key". Truncates silently. */
char *mdl_json_path_key(char *buf, size_t size, const char *parent, const char *key);
char *mdl_json_path_index(char *buf, size_t size, const char *parent, size_t i);

/* Typed access with field-path errors. `path` is the path of v (or of obj), "" for the
 * root; messages look like "preprocess.steps[1].mean: expected an array, got null (byte
 * 312)". All return 0 or -EBADMSG and write ret only on success. */

/* v must have type t. */
int mdl_json_expect(const mdl_json_t *v, mdl_json_type_t t, const char *path, mdl_err_t *reterr);
/* obj must be an object holding member key of type t. */
int mdl_json_get(const mdl_json_t *obj, const char *path, const char *key, mdl_json_type_t t,
                 const mdl_json_t **ret, mdl_err_t *reterr);
int mdl_json_get_number(const mdl_json_t *obj, const char *path, const char *key, double *ret,
                        mdl_err_t *reterr);
/* An integral number in [min, max]. */
int mdl_json_get_int(const mdl_json_t *obj, const char *path, const char *key, long long min,
                     long long max, long long *ret, mdl_err_t *reterr);
int mdl_json_get_bool(const mdl_json_t *obj, const char *path, const char *key, bool *ret,
                      mdl_err_t *reterr);
/* A string without embedded NUL bytes (so it is safe as a C string). */
int mdl_json_get_string(const mdl_json_t *obj, const char *path, const char *key,
                        const char **ret, mdl_err_t *reterr);
/* v must be an array of exactly n numbers; copies them to out. */
int mdl_json_numbers(const mdl_json_t *v, const char *path, double *out, size_t n,
                     mdl_err_t *reterr);
/* Every key of obj must be in allowed (NULL-terminated) and appear once. */
int mdl_json_check_members(const mdl_json_t *obj, const char *path, const char *const *allowed,
                           mdl_err_t *reterr);

#endif
