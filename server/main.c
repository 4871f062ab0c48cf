/* modeld: argv -> config -> registry, workers, HTTP -> run the loop -> drain -> exit. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "handlers/handler.h"
#include "http.h"
#include "log.h"
#include "router.h"
#include "server.h"

static const char usage[] =
    "usage: modeld [--config FILE] [--listen HOST:PORT] [--model-repository DIR]\n"
    "              [--ready-file PATH] [--log-format json|text] [--log-level LEVEL]\n"
    "              [--check-config] [--list-routes] [--help] [--version]\n"
    "\n"
    "Serves the models in a repository over HTTP. Flags override the config file.\n"
    "  --config FILE            JSON config (see conf/modeld.json)\n"
    "  --listen HOST:PORT       address to bind (port 0 = any free port)\n"
    "  --model-repository DIR   folder of <model>/<version>/ artifacts\n"
    "  --ready-file PATH        write HOST:PORT there once serving\n"
    "  --log-format json|text   --log-level debug|info|warn|error\n"
    "  --check-config           validate the configuration and exit\n"
    "  --list-routes            print the route table (METHOD PATH, one a line) and exit\n";

typedef struct daemon_state {
    mdl_server_t srv;
    uv_signal_t sigterm, sigint, sighup;
    int exit_code;
} daemon_state_t;

/* Writes "HOST:PORT\n" to a temporary name and renames it, so readers never see half. */
static int write_ready_file(const char *path, const char *bound)
{
    char tmp[1100];
    FILE *f;

    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "w");
    if (!f)
        return -errno;
    if (fprintf(f, "%s\n", bound) < 0 || fclose(f) != 0) {
        unlink(tmp);
        return -EIO;
    }
    return rename(tmp, path) == 0 ? 0 : -errno;
}

/* The admin token: the file's first line, surrounding whitespace removed. Never logged. */
static int read_admin_token(mdl_server_t *srv)
{
    FILE *f = fopen(srv->config.admin_token_file, "r");
    size_t n;

    if (!f || !fgets(srv->admin_token, sizeof srv->admin_token, f)) {
        fprintf(stderr, "modeld: admin_token_file %s: %s\n", srv->config.admin_token_file,
                f ? "empty" : strerror(errno));
        if (f)
            fclose(f);
        return -EINVAL;
    }
    fclose(f);
    n = strcspn(srv->admin_token, "\r\n");
    srv->admin_token[n] = '\0';
    while (n > 0 && (srv->admin_token[n - 1] == ' ' || srv->admin_token[n - 1] == '\t'))
        srv->admin_token[--n] = '\0';
    if (n < 16) {
        fprintf(stderr, "modeld: admin_token_file %s: the token must be at least 16 characters\n",
                srv->config.admin_token_file);
        return -EINVAL;
    }
    return 0;
}

static void on_close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_drained(mdl_server_t *srv)
{
    daemon_state_t *d = (daemon_state_t *)srv;

    mdl_pool_stop(srv->pool);      /* runs every outstanding done callback */
    mdl_generate_shutdown(srv);    /* ends generations still streaming or held */
    mdl_registry_wake_all(srv->registry); /* admin calls waiting for a load answer now */
    mdl_http_stop(srv->http);
    mdl_pool_free(srv->pool);
    mdl_registry_free(srv->registry);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    mdl_log_event(MDL_LOG_INFO, "stopped", NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    daemon_state_t *d = h->data;

    if (signum == SIGHUP) {
        mdl_log_event(MDL_LOG_INFO, "sighup", "msg", "rescanning the model repository", NULL);
        if (!d->srv.draining)
            mdl_registry_rescan(d->srv.registry);
        return;
    }
    if (d->srv.draining)
        return;
    d->srv.draining = true;
    mdl_log_event(MDL_LOG_INFO, "draining", "signal", signum == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    mdl_http_drain(d->srv.http, on_drained);
}

static int parse_args(int argc, char **argv, mdl_config_t *c, int *check_only)
{
    enum { O_CONFIG = 1, O_LISTEN, O_REPO, O_READY, O_LOGFMT, O_LOGLVL, O_CHECK, O_HELP, O_VERSION, O_ROUTES };
    static const struct option opts[] = {
        {"config", required_argument, NULL, O_CONFIG},
        {"listen", required_argument, NULL, O_LISTEN},
        {"model-repository", required_argument, NULL, O_REPO},
        {"ready-file", required_argument, NULL, O_READY},
        {"log-format", required_argument, NULL, O_LOGFMT},
        {"log-level", required_argument, NULL, O_LOGLVL},
        {"check-config", no_argument, NULL, O_CHECK},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {"list-routes", no_argument, NULL, O_ROUTES},
        {NULL, 0, NULL, 0},
    };
    /* Flags override the file whatever their order, so the file is read first. */
    static const char *const keys[] = {[O_LISTEN] = "listen", [O_REPO] = "model_repository",
                                       [O_READY] = "ready_file", [O_LOGFMT] = "log_format",
                                       [O_LOGLVL] = "log_level"};
    const char *values[O_VERSION + 1] = {0};
    mdl_err_t err = {0};
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_HELP:
            fputs(usage, stdout);
            exit(0);
        case O_VERSION:
            printf("modeld %s\n", MDL_VERSION);
            exit(0);
        case O_ROUTES: /* for docs/openapi.yaml's test: every route must be documented */
            for (size_t i = 0; i < mdl_router_count(); i++)
                printf("%s %s\n", mdl_router_at(i)->method, mdl_router_at(i)->pattern);
            exit(0);
        case O_CHECK:
            *check_only = 1;
            break;
        case '?':
            fputs(usage, stderr);
            return -EINVAL;
        default:
            values[o] = optarg;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "modeld: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    if (values[O_CONFIG] && mdl_config_load_file(c, values[O_CONFIG], &err) < 0) {
        fprintf(stderr, "modeld: config: %s\n", err.msg);
        return err.code;
    }
    for (int k = O_LISTEN; k <= O_LOGLVL; k++)
        if (values[k] && mdl_config_set(c, keys[k], values[k], &err) < 0) {
            fprintf(stderr, "modeld: --%s: %s\n", opts[k - 1].name, err.msg);
            return err.code;
        }
    return 0;
}

int main(int argc, char **argv)
{
    static daemon_state_t d; /* static: zeroed, and lives past uv_run */
    mdl_server_t *srv = &d.srv;
    mdl_err_t err = {0};
    char bound[128];
    int check_only = 0, r;

    mdl_config_defaults(&srv->config);
    if (parse_args(argc, argv, &srv->config, &check_only) < 0)
        return 2;
    if (check_only) {
        printf("configuration ok\n");
        return 0;
    }
    mdl_log_setup(srv->config.log_level, srv->config.log_format);
    if (srv->config.admin_token_file[0] && read_admin_token(srv) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);

    srv->loop = uv_default_loop();
    srv->metrics = mdl_metrics_new();
    if (!srv->metrics || mdl_pool_new(srv->loop, srv->config.workers, srv->config.max_queue, &srv->pool) < 0) {
        mdl_log_event(MDL_LOG_ERROR, "startup_failed", "error", "out of memory", NULL);
        return 1;
    }
    {
        mdl_registry_opts_t ro = {
            .repository = srv->config.model_repository,
            .max_model_bytes = srv->config.max_model_bytes,
            .gen_threads = srv->config.generate_threads,
            .max_sequences = srv->config.max_sequences,
            .poll_ms = srv->config.repository_poll_ms,
            .settle_ms = srv->config.repository_settle_ms,
            .allow_symlinks_outside = srv->config.allow_symlinks_outside,
        };
        if (mdl_registry_new(srv->loop, &ro, srv->metrics, &srv->registry, &err) < 0) {
            mdl_log_event(MDL_LOG_ERROR, "startup_failed", "error", err.msg, NULL);
            return 1;
        }
    }
    if (mdl_http_start(srv, bound, sizeof bound, &err) < 0) {
        mdl_log_event(MDL_LOG_ERROR, "startup_failed", "error", err.msg, NULL);
        return 1;
    }
    d.sigterm.data = d.sigint.data = d.sighup.data = &d;
    uv_signal_init(srv->loop, &d.sigterm);
    uv_signal_init(srv->loop, &d.sigint);
    uv_signal_init(srv->loop, &d.sighup);
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sighup, on_signal, SIGHUP);
    if (srv->config.ready_file[0] && (r = write_ready_file(srv->config.ready_file, bound)) < 0) {
        mdl_log_event(MDL_LOG_ERROR, "startup_failed", "error", "cannot write the ready file",
                      "path", srv->config.ready_file, NULL);
        return 1;
    }
    mdl_log_event(MDL_LOG_INFO, "serving", "listen", bound, "repository", srv->config.model_repository,
                  "version", MDL_VERSION, NULL);

    uv_run(srv->loop, UV_RUN_DEFAULT);

    uv_walk(srv->loop, on_close_any, NULL);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    r = uv_loop_close(srv->loop);
    mdl_metrics_free(srv->metrics);
    mdl_log_flush();
    if (r != 0) {
        fprintf(stderr, "modeld: event loop did not close cleanly: %s\n", uv_strerror(r));
        return 1;
    }
    return d.exit_code;
}
