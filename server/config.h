/* Daemon configuration: defaults, the JSON config file, then command-line overrides,
 * validated into one plain struct. Nothing else parses the config format. */
#ifndef MDL_CONFIG_H
#define MDL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"
#include "models/err.h"

typedef struct mdl_config {
    char listen_host[64];       /* numeric IPv4/IPv6 or "localhost" */
    unsigned listen_port;       /* 0 = ephemeral */
    char model_repository[1024];
    char ready_file[1024];      /* "" = none */
    unsigned workers;           /* inference threads */
    unsigned max_queue;         /* jobs waiting beyond the running ones; more -> 503 */
    size_t max_body_bytes;      /* request bodies on data routes */
    unsigned max_json_depth;
    size_t max_url_bytes;
    /* MHD's per-connection pool: request line, headers and read buffer (bodies are copied
     * out as they arrive). MHD zeroes it for every request, so it is a per-request cost:
     * 128 KiB measured at a third of the requests/s of 8 KiB. */
    size_t max_header_bytes;
    unsigned drain_timeout_ms;  /* SIGTERM: finish in-flight work up to this long */
    unsigned max_connections;
    unsigned connection_timeout_s; /* idle keep-alive connections are closed after this */
    unsigned max_connections_per_ip; /* 0 = no per-address limit */
    unsigned header_timeout_s;  /* a request's header must arrive within this of its first byte */
    unsigned body_timeout_s;    /* a body gets this long, plus 1 s per body_min_rate bytes */
    size_t body_min_rate;       /* bytes/s a body must average after body_timeout_s */
    unsigned request_timeout_ms; /* a queued job not started this long after queuing: 504; 0 = none */
    size_t inline_max_values;   /* rows*features up to this run on the loop thread */
    size_t max_instances;       /* rows per predict request */
    size_t max_eval_body_bytes; /* :score-auc bodies (streamed, never held whole) */
    size_t max_eval_rows;       /* rows per :score-auc request (about 16-32 bytes each are kept) */
    size_t max_rank_candidates; /* candidates per :rank query */
    size_t max_rank_queries;    /* queries per :rank request */
    size_t max_model_bytes;     /* artifact size limit */
    unsigned generate_threads;  /* threads one transformer's generation uses */
    unsigned max_sequences;     /* sequences generating at once per model (429 beyond) */
    size_t max_generate_tokens; /* max_tokens per generation request */
    unsigned repository_poll_ms;   /* rescan the repository this often; 0 = notifications only */
    unsigned repository_settle_ms; /* changed files load once unchanged and this old (or READY) */
    char ready_models[1024];       /* comma-separated models /readyz waits for; "" = all */
    char admin_token_file[1024];   /* "" = no token: admin calls refused unless... */
    bool admin_allow_loopback;     /* ...this allows them unauthenticated from loopback */
    bool allow_symlinks_outside;   /* model files may resolve outside model_repository */
    mdl_log_level_t log_level;
    mdl_log_format_t log_format;
} mdl_config_t;

void mdl_config_defaults(mdl_config_t *c);

/* Applies the JSON file at path over c. Unknown keys and bad values are errors naming the
 * key. Returns 0 or a negative code with reterr. */
int mdl_config_load_file(mdl_config_t *c, const char *path, mdl_err_t *reterr);

/* The same from data[0..len) (need not be NUL-terminated); name stands for the file in
 * messages. The pure part of load_file, for the fuzz target. */
int mdl_config_load_text(mdl_config_t *c, const char *name, const char *data, size_t len,
                         mdl_err_t *reterr);

/* Applies one setting given as text ("listen", "127.0.0.1:0"), as the command line does. */
int mdl_config_set(mdl_config_t *c, const char *key, const char *value, mdl_err_t *reterr);

/* Parses "HOST:PORT" or "[V6]:PORT" into c. */
int mdl_config_set_listen(mdl_config_t *c, const char *hostport, mdl_err_t *reterr);

#endif
