#include "registry.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

#include "log.h"
#include "models/file.h"
#include "router.h"

struct mdl_registry {
    uv_loop_t *loop;
    size_t max_model_bytes;
    mdl_slot_t **slots; /* stable pointers: requests hold them */
    size_t n_slots;
    size_t loads_running;
    bool closing;
};

typedef struct load_job {
    uv_work_t req;
    mdl_registry_t *reg;
    mdl_slot_t *slot;
    char dir[1100];
    long version;
    mdl_load_opts_t opts;
    mdl_model_t *model; /* result */
    mdl_err_t err;
    double seconds;
} load_job_t;

/* dir + "/" + name into out; -ENAMETOOLONG instead of a silently cut path. */
static int path_join(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

const char *mdl_slot_state_name(mdl_slot_state_t s)
{
    return s == MDL_SLOT_READY ? "ready" : s == MDL_SLOT_LOADING ? "loading" : "failed";
}

int mdl_registry_new(uv_loop_t *loop, size_t max_model_bytes, mdl_registry_t **ret)
{
    mdl_registry_t *reg = calloc(1, sizeof *reg);

    if (!reg)
        return -ENOMEM;
    reg->loop = loop;
    reg->max_model_bytes = max_model_bytes;
    *ret = reg;
    return 0;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MDL_NAME_MAX || s[0] == '.')
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* Highest integer-named subfolder of dir, or -1. */
static long highest_version(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    long best = -1;

    if (!d)
        return -1;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        char path[1200];
        struct stat st;
        if (n == 0 || n > 18 || strspn(e->d_name, "0123456789") != n)
            continue;
        if (path_join(path, sizeof path, dir, e->d_name) == 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode) && strtol(e->d_name, NULL, 10) > best)
            best = strtol(e->d_name, NULL, 10);
    }
    closedir(d);
    return best;
}

/* Reads <model>/config.json if present into the slot. */
static int read_model_config(mdl_slot_t *slot, const char *dir, mdl_err_t *reterr)
{
    char path[1200], *data;
    size_t len;
    cJSON *root, *item;
    int r;

    if (path_join(path, sizeof path, dir, "config.json") < 0)
        return mdl_err_set(reterr, -ENAMETOOLONG, "%s: path too long", dir);
    r = mdl_file_read(path, 1 << 20, &data, &len, NULL, reterr);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    root = cJSON_ParseWithLength(data, len);
    free(data);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mdl_err_set(reterr, -EINVAL, "%s: not a JSON object", path);
    }
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "kind") == 0 && cJSON_IsString(item) &&
            strlen(item->valuestring) < sizeof slot->kind) {
            snprintf(slot->kind, sizeof slot->kind, "%s", item->valuestring);
        } else {
            r = mdl_err_set(reterr, -EINVAL, "%s: %s key '%s'", path,
                            strcmp(item->string, "kind") == 0 ? "bad value for" : "unknown",
                            item->string);
            break;
        }
    }
    cJSON_Delete(root);
    return r;
}

static void on_load_work(uv_work_t *req)
{
    load_job_t *job = req->data;
    double t0 = uv_hrtime() / 1e9;

    job->opts.kind = job->slot->kind[0] ? job->slot->kind : NULL;
    job->opts.max_artifact_bytes = job->reg->max_model_bytes;
    mdl_model_load_dir(job->dir, &job->opts, &job->model, &job->err);
    job->seconds = uv_hrtime() / 1e9 - t0;
}

static void registry_destroy(mdl_registry_t *reg)
{
    for (size_t i = 0; i < reg->n_slots; i++) {
        mdl_model_unref(reg->slots[i]->model);
        free(reg->slots[i]);
    }
    free(reg->slots);
    free(reg);
}

static void on_load_done(uv_work_t *req, int status)
{
    load_job_t *job = req->data;
    mdl_registry_t *reg = job->reg;
    mdl_slot_t *slot = job->slot;
    char version[24], ms[32];

    reg->loads_running--;
    if (reg->closing) {
        mdl_model_unref(job->model);
        free(job);
        if (reg->loads_running == 0)
            registry_destroy(reg);
        return;
    }
    snprintf(version, sizeof version, "%ld", job->version);
    snprintf(ms, sizeof ms, "%.1f", job->seconds * 1000);
    if (status == 0 && job->model) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        mdl_model_unref(slot->model);
        slot->model = job->model;
        slot->version = job->version;
        slot->state = MDL_SLOT_READY;
        slot->loaded_at = (double)now.tv_sec + now.tv_nsec / 1e9;
        slot->last_error[0] = '\0';
        mdl_log_event(MDL_LOG_INFO, "model_loaded", "model", slot->name, "version", version, "kind",
                      job->model->kind->name, "load_ms", ms, NULL);
    } else {
        snprintf(slot->last_error, sizeof slot->last_error, "%s",
                 status ? uv_strerror(status) : job->err.msg);
        if (!slot->model)
            slot->state = MDL_SLOT_FAILED;
        mdl_log_event(MDL_LOG_ERROR, "model_load_failed", "model", slot->name, "version", version,
                      "error", slot->last_error, NULL);
    }
    free(job);
}

static mdl_slot_t *add_slot(mdl_registry_t *reg, const char *name)
{
    mdl_slot_t **ns = realloc(reg->slots, (reg->n_slots + 1) * sizeof *ns);
    mdl_slot_t *slot;

    if (!ns)
        return NULL;
    reg->slots = ns;
    slot = calloc(1, sizeof *slot);
    if (!slot)
        return NULL;
    snprintf(slot->name, sizeof slot->name, "%s", name);
    slot->version = -1;
    slot->state = MDL_SLOT_LOADING;
    reg->slots[reg->n_slots++] = slot;
    return slot;
}

static void fail_slot(mdl_slot_t *slot, const char *msg)
{
    slot->state = MDL_SLOT_FAILED;
    snprintf(slot->last_error, sizeof slot->last_error, "%s", msg);
    mdl_log_event(MDL_LOG_ERROR, "model_load_failed", "model", slot->name, "error", msg, NULL);
}

static void start_load(mdl_registry_t *reg, mdl_slot_t *slot, const char *model_dir)
{
    mdl_err_t err = {0};
    load_job_t *job;
    long version;
    char version_name[24];
    int r;

    if (read_model_config(slot, model_dir, &err) < 0) {
        fail_slot(slot, err.msg);
        return;
    }
    version = highest_version(model_dir);
    if (version < 0) {
        fail_slot(slot, "no version folder (expected <model>/1/<artifact>)");
        return;
    }
    job = calloc(1, sizeof *job);
    if (!job) {
        fail_slot(slot, "out of memory");
        return;
    }
    job->reg = reg;
    job->slot = slot;
    job->version = version;
    snprintf(version_name, sizeof version_name, "%ld", version);
    if (path_join(job->dir, sizeof job->dir, model_dir, version_name) < 0) {
        free(job);
        fail_slot(slot, "path too long");
        return;
    }
    job->req.data = job;
    r = uv_queue_work(reg->loop, &job->req, on_load_work, on_load_done);
    if (r < 0) {
        free(job);
        fail_slot(slot, uv_strerror(r));
        return;
    }
    reg->loads_running++;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int mdl_registry_scan(mdl_registry_t *reg, const char *repo_dir, mdl_err_t *reterr)
{
    DIR *d = opendir(repo_dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    int r = 0;

    if (!d)
        return mdl_err_set(reterr, -errno, "model repository %s: %s", repo_dir, strerror(errno));
    while ((e = readdir(d))) {
        char path[1200];
        struct stat st;
        char **nn;
        if (e->d_name[0] == '.' || path_join(path, sizeof path, repo_dir, e->d_name) < 0 || stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        nn = realloc(names, (n + 1) * sizeof *nn);
        if (!nn || !(nn[n] = strdup(e->d_name))) {
            names = nn ? nn : names;
            r = mdl_err_set(reterr, -ENOMEM, "out of memory");
            break;
        }
        names = nn;
        n++;
    }
    closedir(d);
    if (r == 0)
        qsort(names, n, sizeof *names, cmp_names); /* stable listing order */
    for (size_t i = 0; r == 0 && i < n; i++) {
        char path[1200];
        if (!valid_name(names[i])) {
            mdl_log_event(MDL_LOG_WARN, "model_skipped", "folder", names[i], "reason",
                          "name must be 1..64 of [A-Za-z0-9._-]", NULL);
            continue;
        }
        if (mdl_registry_find(reg, names[i]))
            continue;
        mdl_slot_t *slot = add_slot(reg, names[i]);
        if (!slot) {
            r = mdl_err_set(reterr, -ENOMEM, "out of memory");
            break;
        }
        if (path_join(path, sizeof path, repo_dir, names[i]) < 0) {
            fail_slot(slot, "path too long");
            continue;
        }
        start_load(reg, slot, path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return r;
}

size_t mdl_registry_count(const mdl_registry_t *reg)
{
    return reg->n_slots;
}

mdl_slot_t *mdl_registry_at(const mdl_registry_t *reg, size_t i)
{
    return i < reg->n_slots ? reg->slots[i] : NULL;
}

mdl_slot_t *mdl_registry_find(const mdl_registry_t *reg, const char *name)
{
    for (size_t i = 0; i < reg->n_slots; i++)
        if (strcmp(reg->slots[i]->name, name) == 0)
            return reg->slots[i];
    return NULL;
}

mdl_model_t *mdl_registry_acquire(mdl_slot_t *slot)
{
    return mdl_model_ref(slot->model);
}

bool mdl_registry_all_ready(const mdl_registry_t *reg)
{
    for (size_t i = 0; i < reg->n_slots; i++)
        if (reg->slots[i]->state != MDL_SLOT_READY)
            return false;
    return true;
}

void mdl_registry_free(mdl_registry_t *reg)
{
    if (!reg)
        return;
    reg->closing = true;
    if (reg->loads_running == 0)
        registry_destroy(reg);
}
