/* The route table: method + path pattern -> handler, with per-route checks the HTTP layer
 * applies before dispatch. Patterns are literal text with {m} (a model name:
 * [A-Za-z0-9._-], 1..64) and {v} (a version: 1..18 digits) placeholders. */
#ifndef MDL_ROUTER_H
#define MDL_ROUTER_H

#include <stddef.h>

#include "handlers/handler.h"
#include "names.h"

enum {
    MDL_ROUTE_MODEL = 1 << 0, /* {m} must name a model in the registry (404 otherwise) */
    MDL_ROUTE_READY = 1 << 1, /* ... and it must be loaded; the request holds a reference */
    MDL_ROUTE_JSON = 1 << 2,  /* body must be application/json */
    MDL_ROUTE_ADMIN = 1 << 3, /* needs the admin bearer token (or loopback, if allowed) */
    MDL_ROUTE_STREAM = 1 << 4, /* the handler runs before the body and takes it in pieces
                                  (mdl_request_stream_body); it checks the content type itself */
};

/* max_body: the configured max_eval_body_bytes (streamed evaluation bodies). */
#define MDL_BODY_EVAL (SIZE_MAX - 1)

struct mdl_route {
    const char *name;         /* metrics "endpoint" label */
    const char *method;
    const char *pattern;
    mdl_handler_fn *handler;
    unsigned flags;
    size_t max_body;          /* 0: no body; SIZE_MAX: the configured max_body_bytes;
                                 MDL_BODY_EVAL: max_eval_body_bytes */
};

typedef struct mdl_route_match {
    const mdl_route_t *route;
    char model[MDL_NAME_MAX + 1]; /* "" if the pattern has no {m} */
    long version;                 /* -1 if the pattern has no {v} */
    char allow[64];               /* for a path matched with the wrong method: "GET, POST" */
} mdl_route_match_t;

/* 0 and *ret filled; -ENOENT no route has this path; -EPERM a route has the path but not
 * the method (ret->allow lists the methods that do). */
int mdl_router_match(const char *method, const char *path, mdl_route_match_t *ret);

/* Number of routes and the i-th one (for listings, tests and OpenAPI checks). */
size_t mdl_router_count(void);
const mdl_route_t *mdl_router_at(size_t i);

/* Endpoint label for requests that match no route. */
extern const char mdl_route_none[];

#endif
