#include "registry.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>
#include <uv.h>

#include "log.h"
#include "metrics.h"
#include "models/file.h"
#include "names.h"
#include "router.h"

#define DEBOUNCE_MS 100
#define LARGE_MODEL_BYTES ((size_t)16 << 20) /* freed off the loop from this size up */
#define MAX_VERSIONS_SCANNED 4096

/* A watched directory; inotify is not recursive, so the root, every model folder and
 * every served version folder get one. */
typedef struct watch {
    uv_fs_event_t handle;
    struct watch *next;
    mdl_registry_t *reg;
    bool keep;            /* still wanted after the current scan */
    char path[1200];
} watch_t;

typedef struct mdl_waiter {
    void (*cb)(void *arg);
    void *arg;
    struct mdl_waiter *next;
} waiter_t;

struct mdl_registry {
    uv_loop_t *loop;
    mdl_registry_opts_t opts;
    char repository[1024];
    char root_real[PATH_MAX]; /* the repository with every symlink resolved */
    struct mdl_metrics *metrics;
    mdl_slot_t **slots;   /* stable pointers: requests hold them */
    size_t n_slots;
    watch_t *watches;
    uv_timer_t debounce;  /* one rescan shortly after a burst of events */
    uv_timer_t poll;
    size_t loads_running;
    unsigned open_handles;
    bool no_settle;       /* an admin call: load what is there now */
    bool closing;
};

typedef struct load_job {
    uv_work_t req;
    mdl_registry_t *reg;
    mdl_slot_t *slot;
    long version;
    uint64_t sig;
    char dir[1200];
    char kind[32];
    double *warmup;       /* owned copy of the slot's warm-up rows */
    size_t n_warmup_rows, n_warmup_cols;
    double negative_sampling_rate;
    char chat_template[16];
    char weights[8];      /* config "weights"; "" = stored */
    mdl_model_t *model;   /* result */
    mdl_err_t err;
    double seconds;
} load_job_t;

static void schedule_rescan(mdl_registry_t *reg, unsigned delay_ms);

const char *mdl_slot_state_name(mdl_slot_state_t s)
{
    return s == MDL_SLOT_READY     ? "ready"
           : s == MDL_SLOT_LOADING  ? "loading"
           : s == MDL_SLOT_UNLOADED ? "unloaded"
                                    : "failed";
}

/* dir + "/" + name into out; -ENAMETOOLONG instead of a silently cut path. */
static int path_join(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static double unix_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)now.tv_sec + now.tv_nsec / 1e9;
}

/* ---- what is on disk ---- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    return h * 0xFF51AFD7ED558CCDULL;
}

static int64_t ns_of(struct timespec t)
{
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* What a scan learns about a version folder. */
typedef struct folder_info {
    uint64_t sig;           /* fingerprint of its files */
    double newest_mtime;    /* unix seconds: its newest file, or the folder itself */
    bool ready;             /* a READY marker is there */
    bool published_whole;   /* moved or linked into place after its last change */
} folder_info_t;

/* Fingerprints the files in a version folder (names, sizes, mtimes, inodes; symlinks
 * followed, so an atomic symlink swap changes it).
 *
 * published_whole: rename(2) and symlink creation set the ctime of the entry they put in
 * place, and nothing but such metadata changes moves a ctime past the mtimes. So an entry
 * whose ctime is later than the folder's mtime (the last file added or removed) and not
 * earlier than any file's mtime arrived complete: its files were written before it was
 * renamed or linked in, and none has been written since (a tie with a file's mtime
 * counts: the last write and a rename right after it usually share a timestamp tick). A
 * folder written in place has its mtime equal to its ctime and waits for the settle time
 * as before. The timestamps compared must come from one clock, hence one filesystem. */
static void folder_scan(const char *dir, folder_info_t *ret)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    struct stat entry, folder;
    int64_t newest_file = INT64_MIN;
    bool one_device, any_file = false;

    memset(ret, 0, sizeof *ret);
    ret->sig = 0x5EED;
    if (!d)
        return;
    if (lstat(dir, &entry) != 0 || fstat(dirfd(d), &folder) != 0) {
        closedir(d);
        return;
    }
    one_device = entry.st_dev == folder.st_dev;
    ret->newest_mtime = (double)folder.st_mtim.tv_sec + folder.st_mtim.tv_nsec / 1e9;
    while ((e = readdir(d))) {
        char path[1400];
        struct stat st;
        double mtime;
        uint64_t name_hash = 1469598103934665603ULL;
        if (e->d_name[0] == '.' || path_join(path, sizeof path, dir, e->d_name) < 0 ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (strcmp(e->d_name, "READY") == 0)
            ret->ready = true;
        for (const char *p = e->d_name; *p; p++)
            name_hash = (name_hash ^ (unsigned char)*p) * 1099511628211ULL;
        /* Order-independent: readdir order is not stable. */
        ret->sig += mix(mix(mix(mix(name_hash, (uint64_t)st.st_size), (uint64_t)st.st_mtim.tv_sec),
                            (uint64_t)st.st_mtim.tv_nsec), (uint64_t)st.st_ino);
        mtime = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
        if (mtime > ret->newest_mtime)
            ret->newest_mtime = mtime;
        if (ns_of(st.st_mtim) > newest_file)
            newest_file = ns_of(st.st_mtim);
        one_device &= st.st_dev == entry.st_dev;
        any_file = true;
    }
    closedir(d);
    ret->published_whole = any_file && one_device && ns_of(entry.st_ctim) > ns_of(folder.st_mtim) &&
                           ns_of(entry.st_ctim) >= newest_file;
}

static int cmp_long_desc(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Integer-named subfolders of dir, highest first; returns the count (<= cap). */
static size_t list_versions(const char *dir, long *out, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    if (!d)
        return 0;
    while ((e = readdir(d)) && n < cap) {
        long v = mdl_version_parse(e->d_name);
        char path[1400];
        struct stat st;
        if (v < 0)
            continue;
        if (path_join(path, sizeof path, dir, e->d_name) == 0 && stat(path, &st) == 0 &&
            S_ISDIR(st.st_mode))
            out[n++] = v;
    }
    closedir(d);
    qsort(out, n, sizeof *out, cmp_long_desc);
    return n;
}

/* version_policy: "latest" | {"latest": N} | {"specific": [v, ...]}. */
static int parse_policy(mdl_slot_t *slot, const cJSON *v, const char *path, mdl_err_t *reterr)
{
    const cJSON *n = cJSON_IsObject(v) ? cJSON_GetObjectItem(v, "latest") : NULL;
    const cJSON *list = cJSON_IsObject(v) ? cJSON_GetObjectItem(v, "specific") : NULL;

    free(slot->specific);
    slot->specific = NULL;
    slot->n_specific = 0;
    slot->policy = MDL_POLICY_LATEST;
    slot->latest_n = 1;
    if (cJSON_IsString(v) && strcmp(v->valuestring, "latest") == 0)
        return 0;
    if (n && cJSON_GetArraySize(v) == 1 && cJSON_IsNumber(n) && n->valuedouble >= 1 &&
        n->valuedouble <= 64 && n->valuedouble == (double)(int)n->valuedouble) {
        slot->latest_n = (unsigned)n->valuedouble;
        return 0;
    }
    if (list && cJSON_GetArraySize(v) == 1 && cJSON_IsArray(list) && cJSON_GetArraySize(list) > 0 &&
        cJSON_GetArraySize(list) <= 64) {
        const cJSON *item;
        slot->specific = calloc((size_t)cJSON_GetArraySize(list), sizeof *slot->specific);
        if (!slot->specific)
            return mdl_err_set(reterr, -ENOMEM, "out of memory");
        cJSON_ArrayForEach(item, list) {
            if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > 1e15 ||
                item->valuedouble != (double)(long)item->valuedouble)
                return mdl_err_set(reterr, -EINVAL, "%s: version_policy.specific: versions are non-negative integers", path);
            slot->specific[slot->n_specific++] = (long)item->valuedouble;
        }
        slot->policy = MDL_POLICY_SPECIFIC;
        return 0;
    }
    return mdl_err_set(reterr, -EINVAL,
                       "%s: version_policy: expected \"latest\", {\"latest\": N} (1..64) or {\"specific\": [versions]}",
                       path);
}

/* warmup_instances: positional rows of numbers or null, all the same length. */
static int parse_warmup(mdl_slot_t *slot, const cJSON *v, const char *path, mdl_err_t *reterr)
{
    const cJSON *row, *x;
    size_t n_rows = (size_t)cJSON_GetArraySize(v), n_cols, i = 0;

    if (!cJSON_IsArray(v) || n_rows == 0 || n_rows > 1024 || !cJSON_IsArray(v->child) ||
        (n_cols = (size_t)cJSON_GetArraySize(v->child)) == 0 || n_cols > 100000)
        return mdl_err_set(reterr, -EINVAL, "%s: warmup_instances: expected 1..1024 rows, each an array of numbers", path);
    slot->warmup = malloc(n_rows * n_cols * sizeof *slot->warmup);
    if (!slot->warmup)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    cJSON_ArrayForEach(row, v) {
        if (!cJSON_IsArray(row) || (size_t)cJSON_GetArraySize(row) != n_cols)
            return mdl_err_set(reterr, -EINVAL, "%s: warmup_instances[%zu]: expected %zu values", path,
                               i / n_cols, n_cols);
        cJSON_ArrayForEach(x, row) {
            if (!cJSON_IsNumber(x) && !cJSON_IsNull(x))
                return mdl_err_set(reterr, -EINVAL, "%s: warmup_instances[%zu]: numbers or null only", path,
                                   i / n_cols);
            slot->warmup[i++] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
        }
    }
    slot->n_warmup_rows = n_rows;
    slot->n_warmup_cols = n_cols;
    return 0;
}

/* Reads <model>/config.json if present: kind, version_policy, warmup_instances,
 * negative_sampling_rate, chat_template, weights. */
static int read_model_config(mdl_slot_t *slot, const char *dir, mdl_err_t *reterr)
{
    char path[1400], *data;
    size_t len;
    cJSON *root, *item;
    int r;

    slot->kind[0] = '\0';
    free(slot->warmup);
    slot->warmup = NULL;
    slot->n_warmup_rows = slot->n_warmup_cols = 0;
    slot->negative_sampling_rate = 0;
    slot->chat_template[0] = '\0';
    slot->weights[0] = '\0';
    r = parse_policy(slot, NULL, NULL, reterr); /* defaults */
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
            strlen(item->valuestring) < sizeof slot->kind)
            snprintf(slot->kind, sizeof slot->kind, "%s", item->valuestring);
        else if (strcmp(item->string, "version_policy") == 0)
            r = parse_policy(slot, item, path, reterr);
        else if (strcmp(item->string, "warmup_instances") == 0)
            r = parse_warmup(slot, item, path, reterr);
        else if (strcmp(item->string, "chat_template") == 0)
            r = cJSON_IsString(item) && (strcmp(item->valuestring, "plain") == 0 ||
                                         strcmp(item->valuestring, "chatml") == 0 ||
                                         strcmp(item->valuestring, "llama2") == 0)
                    ? (snprintf(slot->chat_template, sizeof slot->chat_template, "%s", item->valuestring), 0)
                    : mdl_err_set(reterr, -EINVAL, "%s: chat_template: expected \"plain\", \"chatml\" or \"llama2\"", path);
        else if (strcmp(item->string, "weights") == 0)
            r = cJSON_IsString(item) && (strcmp(item->valuestring, "stored") == 0 ||
                                         strcmp(item->valuestring, "q8_0") == 0)
                    ? (snprintf(slot->weights, sizeof slot->weights, "%s", item->valuestring), 0)
                    : mdl_err_set(reterr, -EINVAL, "%s: weights: expected \"stored\" or \"q8_0\"", path);
        else if (strcmp(item->string, "negative_sampling_rate") == 0)
            r = cJSON_IsNumber(item) && item->valuedouble > 0 && item->valuedouble <= 1
                    ? (slot->negative_sampling_rate = item->valuedouble, 0)
                    : mdl_err_set(reterr, -EINVAL, "%s: negative_sampling_rate: expected a number in (0, 1]", path);
        else
            r = mdl_err_set(reterr, -EINVAL, "%s: %s key '%s'", path,
                            strcmp(item->string, "kind") == 0 ? "bad value for" : "unknown", item->string);
        if (r < 0)
            break;
    }
    cJSON_Delete(root);
    return r;
}

static bool policy_selects(const mdl_slot_t *slot, long version, size_t rank)
{
    if (slot->policy == MDL_POLICY_LATEST)
        return rank < slot->latest_n;
    for (size_t i = 0; i < slot->n_specific; i++)
        if (slot->specific[i] == version)
            return true;
    return false;
}

/* 1: present and selected by the policy; 0: present, not selected; -1: folder gone. */
static int selection(const mdl_slot_t *slot, long number, const long *present, size_t n_present)
{
    for (size_t j = 0; j < n_present; j++)
        if (present[j] == number)
            return policy_selects(slot, number, j) ? 1 : 0;
    return -1;
}

/* ---- the serving view ---- */

static mdl_version_t *find_version(const mdl_slot_t *slot, long number)
{
    for (size_t i = 0; i < slot->n_versions; i++)
        if (slot->versions[i].number == number)
            return &slot->versions[i];
    return NULL;
}

const mdl_version_t *mdl_slot_version(const mdl_slot_t *slot, long number)
{
    return find_version(slot, number);
}

/* Recomputes what requests without a version get, and the slot's state. */
static void update_view(mdl_slot_t *slot)
{
    const mdl_version_t *best = NULL;
    bool loading = false;

    for (size_t i = 0; i < slot->n_versions; i++) {
        const mdl_version_t *v = &slot->versions[i];
        loading |= v->loading || v->settling;
        if (v->model && (!best || v->number > best->number))
            best = v;
    }
    slot->model = best ? best->model : NULL;
    slot->version = best ? best->number : -1;
    slot->loaded_at = best ? best->loaded_at : 0;
    slot->state = best      ? MDL_SLOT_READY
                  : loading ? MDL_SLOT_LOADING
                  : slot->unloaded ? MDL_SLOT_UNLOADED
                                   : MDL_SLOT_FAILED;
}

static bool slot_busy(const mdl_slot_t *slot)
{
    for (size_t i = 0; i < slot->n_versions; i++)
        if (slot->versions[i].loading || slot->versions[i].settling)
            return true;
    return false;
}

/* Runs the callbacks of admin calls waiting for this model to settle. */
static void wake_waiters(mdl_slot_t *slot)
{
    waiter_t *w = slot->_waiters;

    if (slot_busy(slot))
        return;
    slot->_waiters = NULL;
    while (w) {
        waiter_t *next = w->next;
        w->cb(w->arg);
        free(w);
        w = next;
    }
}

static void set_error(mdl_slot_t *slot, const char *msg)
{
    snprintf(slot->last_error, sizeof slot->last_error, "%s", msg);
}

typedef struct free_job {
    uv_work_t req;
    mdl_model_t *model;
} free_job_t;

static void on_free_work(uv_work_t *req)
{
    free_job_t *job = req->data;
    mdl_model_unref(job->model);
}

static void on_free_done(uv_work_t *req, int status)
{
    (void)status;
    free(req->data);
}

void mdl_registry_release(mdl_registry_t *reg, mdl_model_t *m)
{
    free_job_t *job;

    /* Only the loop takes references, so a count of one cannot grow meanwhile. */
    if (m && !reg->closing && m->artifact_bytes >= LARGE_MODEL_BYTES &&
        atomic_load(&m->_refs) == 1 && (job = calloc(1, sizeof *job))) {
        job->model = m;
        job->req.data = job;
        if (uv_queue_work(reg->loop, &job->req, on_free_work, on_free_done) == 0)
            return;
        free(job);
    }
    mdl_model_unref(m);
}

static void remove_version(mdl_registry_t *reg, mdl_slot_t *slot, size_t i)
{
    char version[24];

    snprintf(version, sizeof version, "%ld", slot->versions[i].number);
    if (slot->versions[i].model)
        mdl_log_event(MDL_LOG_INFO, "model_unloaded", "model", slot->name, "version", version, NULL);
    mdl_registry_release(reg, slot->versions[i].model); /* requests holding it keep it alive */
    slot->versions[i] = slot->versions[--slot->n_versions];
}

static mdl_version_t *add_version(mdl_slot_t *slot, long number)
{
    mdl_version_t *nv = realloc(slot->versions, (slot->n_versions + 1) * sizeof *nv);

    if (!nv)
        return NULL;
    slot->versions = nv;
    nv = &slot->versions[slot->n_versions++];
    memset(nv, 0, sizeof *nv);
    nv->number = number;
    return nv;
}

/* ---- loading ---- */

/* Scores the configured warm-up rows on a freshly loaded model: a model that cannot score
 * them, or scores them to non-finite values, is not published. */
static int warm_up(load_job_t *job)
{
    const mdl_model_t *m = job->model;
    size_t width = mdl_model_output_width(m, MDL_OUTPUT_VALUE);
    double *out;
    int r;

    if (!mdl_model_is_tabular(m) || job->n_warmup_cols != m->n_features)
        return mdl_err_set(&job->err, -EINVAL, "warm-up rows have %zu values; the model takes %zu features",
                           job->n_warmup_cols, m->n_features);
    out = malloc(job->n_warmup_rows * (width ? width : 1) * sizeof *out);
    if (!out)
        return mdl_err_set(&job->err, -ENOMEM, "out of memory");
    r = mdl_model_score(m, job->warmup, job->n_warmup_rows, MDL_OUTPUT_VALUE, out, &job->err);
    for (size_t i = 0; r == 0 && i < job->n_warmup_rows * width; i++)
        if (!isfinite(out[i]))
            r = mdl_err_set(&job->err, -ERANGE, "warm-up row %zu scores to a non-finite value", i / width);
    if (r < 0)
        mdl_err_prefix(&job->err, "warm-up: ");
    free(out);
    return r;
}

/* Whether path, symlinks resolved, lies inside root (itself resolved). */
static bool inside(const char *root, const char *path, char *real)
{
    size_t n = strlen(root);

    if (!realpath(path, real))
        return true; /* gone meanwhile: the load reports it */
    return strncmp(real, root, n) == 0 && (real[n] == '/' || real[n] == '\0' || (n == 1 && root[0] == '/'));
}

/* A version folder and what is in it must resolve inside the repository: a symlink to
 * /etc or to another tenant's files is refused (allow_symlinks_outside lifts this).
 * Symlinks within it, such as Kubernetes' "..data" swaps, are fine. */
static int check_inside(const load_job_t *job, mdl_err_t *reterr)
{
    const char *root = job->reg->root_real;
    char real[PATH_MAX], path[1400];
    struct dirent *e;
    DIR *d;
    int r = 0;

    if (job->reg->opts.allow_symlinks_outside || !root[0])
        return 0;
    if (!inside(root, job->dir, real))
        return mdl_err_set(reterr, -EPERM, "%s resolves to %s, outside the repository (config "
                           "allow_symlinks_outside allows it)", job->dir, real);
    if (!(d = opendir(job->dir)))
        return 0;
    while (r == 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            path_join(path, sizeof path, job->dir, e->d_name) < 0)
            continue;
        if (!inside(root, path, real))
            r = mdl_err_set(reterr, -EPERM, "%s resolves to %s, outside the repository (config "
                            "allow_symlinks_outside allows it)", path, real);
    }
    closedir(d);
    return r;
}

static void on_load_work(uv_work_t *req)
{
    load_job_t *job = req->data;

    /* Loading competes with serving only for what is left over: on a one-core container
     * the event loop keeps its latency while a large model parses (measured: p90 0.4 ms ->
     * 3.5 ms at nice 0). This pool runs only loads and frees, so the setting can stay. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    pthread_setname_np(pthread_self(), "modeld-load");
    mdl_load_opts_t opts = {.kind = job->kind[0] ? job->kind : NULL,
                            .max_artifact_bytes = job->reg->opts.max_model_bytes,
                            .gen_threads = job->reg->opts.gen_threads,
                            .max_sequences = job->reg->opts.max_sequences,

                            .negative_sampling_rate = job->negative_sampling_rate,
                            .chat_template = job->chat_template[0] ? job->chat_template : NULL,
                            .weights = job->weights[0] ? job->weights : NULL};
    double t0 = uv_hrtime() / 1e9;

    if (check_inside(job, &job->err) == 0 &&
        mdl_model_load_dir(job->dir, &opts, &job->model, &job->err) == 0 && job->warmup &&
        warm_up(job) < 0)
        job->model = mdl_model_unref(job->model);
    job->seconds = uv_hrtime() / 1e9 - t0;
}

static void slot_free(mdl_slot_t *slot)
{
    while (slot->_waiters) { /* shutting down: nobody is left to answer */
        waiter_t *w = slot->_waiters;
        slot->_waiters = w->next;
        free(w);
    }
    for (size_t i = 0; i < slot->n_versions; i++)
        mdl_model_unref(slot->versions[i].model);
    free(slot->versions);
    free(slot->specific);
    free(slot->warmup);
    free(slot);
}

static void maybe_destroy(mdl_registry_t *reg)
{
    if (!reg->closing || reg->loads_running || reg->open_handles)
        return;
    for (size_t i = 0; i < reg->n_slots; i++)
        slot_free(reg->slots[i]);
    free(reg->slots);
    free(reg);
}

static void on_load_done(uv_work_t *req, int status)
{
    load_job_t *job = req->data;
    mdl_registry_t *reg = job->reg;
    mdl_slot_t *slot = job->slot;
    mdl_version_t *v;
    char version[24], ms[32];
    bool ok = status == 0 && job->model;

    reg->loads_running--;
    v = reg->closing || slot->removed ? NULL : find_version(slot, job->version);
    snprintf(version, sizeof version, "%ld", job->version);
    snprintf(ms, sizeof ms, "%.1f", job->seconds * 1000);
    if (!reg->closing && reg->metrics)
        mdl_metrics_model_load(reg->metrics, slot->name, ok, job->seconds);
    if (!v) { /* shutting down, or the version went away meanwhile */
        mdl_model_unref(job->model);
        free(job->warmup);
        free(job);
        maybe_destroy(reg);
        return;
    }
    v->loading = false;
    if (ok) {
        mdl_registry_release(reg, v->model); /* in-flight requests keep the old one alive */
        v->model = job->model;
        v->sig = job->sig;
        v->loaded_at = unix_now();
        v->error[0] = '\0';
        mdl_log_event(MDL_LOG_INFO, "model_loaded", "model", slot->name, "version", version, "kind",
                      job->model->kind->name, "load_ms", ms, NULL);
    } else {
        snprintf(v->error, sizeof v->error, "%s", status ? uv_strerror(status) : job->err.msg);
        v->failed_sig = job->sig;
        set_error(slot, v->error);
    }
    update_view(slot);
    wake_waiters(slot);
    free(job->warmup);
    if (!ok) {
        char serving[24] = "none";
        if (slot->version >= 0)
            snprintf(serving, sizeof serving, "%ld", slot->version);
        mdl_log_event(MDL_LOG_ERROR, "model_load_failed", "model", slot->name, "version", version,
                      "error", v->error, "serving_version", serving, NULL);
    }
    free(job);
    schedule_rescan(reg, 0); /* the files may have changed again while loading */
}

static void start_load(mdl_registry_t *reg, mdl_slot_t *slot, mdl_version_t *v, const char *dir,
                       uint64_t sig)
{
    load_job_t *job = calloc(1, sizeof *job);
    int r;

    if (!job) {
        set_error(slot, "out of memory");
        return;
    }
    job->reg = reg;
    job->slot = slot;
    job->version = v->number;
    job->sig = sig;
    snprintf(job->dir, sizeof job->dir, "%s", dir);
    snprintf(job->kind, sizeof job->kind, "%s", slot->kind);
    job->negative_sampling_rate = slot->negative_sampling_rate;
    snprintf(job->chat_template, sizeof job->chat_template, "%s", slot->chat_template);
    snprintf(job->weights, sizeof job->weights, "%s", slot->weights);
    if (slot->warmup) {
        size_t bytes = slot->n_warmup_rows * slot->n_warmup_cols * sizeof *slot->warmup;
        job->warmup = malloc(bytes);
        if (!job->warmup) {
            free(job);
            set_error(slot, "out of memory");
            return;
        }
        memcpy(job->warmup, slot->warmup, bytes);
        job->n_warmup_rows = slot->n_warmup_rows;
        job->n_warmup_cols = slot->n_warmup_cols;
    }
    job->req.data = job;
    r = uv_queue_work(reg->loop, &job->req, on_load_work, on_load_done);
    if (r < 0) {
        free(job->warmup);
        free(job);
        set_error(slot, uv_strerror(r));
        return;
    }
    v->loading = true;
    reg->loads_running++;
}

/* ---- scanning ---- */

static void watch_dir(mdl_registry_t *reg, const char *path);

static void on_watch_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Brings one model's versions in line with its folder. initial: the first scan at
 * startup, when files are taken as complete. Returns true if something is still settling. */
static bool scan_model(mdl_registry_t *reg, mdl_slot_t *slot, const char *dir, bool initial)
{
    long present[MAX_VERSIONS_SCANNED];
    size_t n_present, rank = 0;
    mdl_err_t err = {0};
    bool settling = false, selected_serving = false;
    double now = unix_now();

    watch_dir(reg, dir);
    if (slot->unloaded) {
        update_view(slot);
        return false;
    }
    if (read_model_config(slot, dir, &err) < 0) {
        /* Keep serving what is loaded; nothing new loads until the config is fixed. */
        if (strcmp(slot->last_error, err.msg) != 0)
            mdl_log_event(MDL_LOG_ERROR, "model_config_invalid", "model", slot->name, "error", err.msg, NULL);
        set_error(slot, err.msg);
        update_view(slot);
        return false;
    }
    n_present = list_versions(dir, present, MAX_VERSIONS_SCANNED);
    /* Versions whose folder is gone go now. Versions the policy no longer selects keep
     * serving until a selected one does: a newer version that is still settling, loading
     * or broken must not leave the model with nothing to serve. */
    for (size_t i = 0; i < slot->n_versions; i++) {
        const mdl_version_t *v = &slot->versions[i];
        selected_serving |= v->model && selection(slot, v->number, present, n_present) > 0;
    }
    for (size_t i = 0; i < slot->n_versions;) {
        int sel = selection(slot, slot->versions[i].number, present, n_present);
        if (slot->versions[i].loading || sel > 0 || (sel == 0 && !selected_serving))
            i++;
        else
            remove_version(reg, slot, i);
    }
    for (size_t j = 0; j < n_present; j++, rank++) {
        char vdir[1200], name[24];
        mdl_version_t *v;
        folder_info_t info;

        if (!policy_selects(slot, present[j], rank))
            continue;
        snprintf(name, sizeof name, "%ld", present[j]);
        if (path_join(vdir, sizeof vdir, dir, name) < 0)
            continue;
        watch_dir(reg, vdir);
        folder_scan(vdir, &info);
        v = find_version(slot, present[j]);
        if (!v && !(v = add_version(slot, present[j]))) {
            set_error(slot, "out of memory");
            continue;
        }
        if (v->loading || (v->model && v->sig == info.sig) || info.sig == v->failed_sig)
            continue;
        /* Changed files load once they are complete: marked READY, renamed or linked in
         * whole, or neither they nor the folder modified for settle_ms. */
        if (!initial && !reg->no_settle && !info.ready && !info.published_whole &&
            info.newest_mtime > now - reg->opts.settle_ms / 1000.0) {
            v->settling = settling = true;
            continue;
        }
        v->settling = false;
        start_load(reg, slot, v, vdir, info.sig);
    }
    if (n_present == 0 && slot->n_versions == 0)
        set_error(slot, "no version folder (expected <model>/<integer version>/<artifact>)");
    else if (slot->n_versions == 0)
        set_error(slot, "the version policy selects none of the version folders");
    update_view(slot);
    wake_waiters(slot);
    return settling;
}

static mdl_slot_t *find_any(const mdl_registry_t *reg, const char *name)
{
    for (size_t i = 0; i < reg->n_slots; i++)
        if (strcmp(reg->slots[i]->name, name) == 0)
            return reg->slots[i];
    return NULL;
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
    memcpy(slot->name, name, strnlen(name, sizeof slot->name - 1)); /* valid_name: <= 64 */
    slot->version = -1;
    slot->state = MDL_SLOT_LOADING;
    slot->latest_n = 1;
    reg->slots[reg->n_slots++] = slot;
    return slot;
}

static void scan(mdl_registry_t *reg, bool initial)
{
    DIR *d;
    struct dirent *e;
    bool settling = false;

    for (watch_t *w = reg->watches; w; w = w->next)
        w->keep = false;
    for (size_t i = 0; i < reg->n_slots; i++)
        reg->slots[i]->_seen = false;
    watch_dir(reg, reg->repository);
    d = opendir(reg->repository);
    while (d && (e = readdir(d))) {
        char path[1200];
        struct stat st;
        mdl_slot_t *slot;
        if (e->d_name[0] == '.' || path_join(path, sizeof path, reg->repository, e->d_name) < 0 ||
            stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (!mdl_name_valid(e->d_name)) {
            if (initial)
                mdl_log_event(MDL_LOG_WARN, "model_skipped", "folder", e->d_name, "reason",
                              "name must be 1..64 of [A-Za-z0-9._-]", NULL);
            continue;
        }
        slot = find_any(reg, e->d_name);
        if (!slot && !(slot = add_slot(reg, e->d_name)))
            continue;
        if (slot->removed)
            mdl_log_event(MDL_LOG_INFO, "model_added", "model", slot->name, NULL);
        slot->removed = false;
        slot->_seen = true;
        settling |= scan_model(reg, slot, path, initial);
    }
    if (d)
        closedir(d);
    for (size_t i = 0; i < reg->n_slots; i++) {
        mdl_slot_t *slot = reg->slots[i];
        if (slot->_seen || slot->removed)
            continue;
        /* The folder is gone: hide the slot and let go of its models (requests holding
         * one finish on it). The slot itself stays: requests may point at it. */
        mdl_log_event(MDL_LOG_INFO, "model_removed", "model", slot->name, NULL);
        for (size_t j = slot->n_versions; j-- > 0;)
            if (!slot->versions[j].loading)
                remove_version(reg, slot, j);
        slot->removed = true;
        update_view(slot);
    }
    /* Close the watches on folders that are gone. */
    for (watch_t **p = &reg->watches; *p;) {
        watch_t *w = *p;
        if (w->keep) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        uv_close((uv_handle_t *)&w->handle, on_watch_closed);
    }
    if (settling)
        schedule_rescan(reg, reg->opts.settle_ms);
}

static void on_debounce(uv_timer_t *t)
{
    scan(t->data, false);
}

static void schedule_rescan(mdl_registry_t *reg, unsigned delay_ms)
{
    if (reg->closing)
        return;
    /* A pending rescan that comes sooner stands. */
    if (uv_is_active((uv_handle_t *)&reg->debounce) &&
        uv_timer_get_due_in(&reg->debounce) <= delay_ms + DEBOUNCE_MS)
        return;
    uv_timer_start(&reg->debounce, on_debounce, delay_ms + DEBOUNCE_MS, 0);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    watch_t *w = h->data;
    (void)filename, (void)events, (void)status;
    schedule_rescan(w->reg, 0);
}

static void watch_dir(mdl_registry_t *reg, const char *path)
{
    watch_t *w;

    for (w = reg->watches; w; w = w->next)
        if (strcmp(w->path, path) == 0) {
            w->keep = true;
            return;
        }
    w = calloc(1, sizeof *w);
    if (!w)
        return; /* the polling timer still sees changes */
    snprintf(w->path, sizeof w->path, "%s", path);
    w->reg = reg;
    w->keep = true;
    w->handle.data = w;
    uv_fs_event_init(reg->loop, &w->handle);
    if (uv_fs_event_start(&w->handle, on_fs_event, w->path, 0) < 0) {
        uv_close((uv_handle_t *)&w->handle, on_watch_closed);
        return;
    }
    w->next = reg->watches;
    reg->watches = w;
}

static void on_poll(uv_timer_t *t)
{
    scan(t->data, false);
}

/* ---- public ---- */

int mdl_registry_new(uv_loop_t *loop, const mdl_registry_opts_t *opts, struct mdl_metrics *metrics,
                     mdl_registry_t **ret, mdl_err_t *reterr)
{
    mdl_registry_t *reg = calloc(1, sizeof *reg);
    struct stat st;

    if (!reg)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    if (stat(opts->repository, &st) != 0 || !S_ISDIR(st.st_mode)) {
        int r = mdl_err_set(reterr, -ENOENT, "model repository %s: %s", opts->repository,
                            errno ? strerror(errno) : "not a directory");
        free(reg);
        return r;
    }
    reg->loop = loop;
    reg->opts = *opts;
    snprintf(reg->repository, sizeof reg->repository, "%s", opts->repository);
    reg->opts.repository = reg->repository;
    if (!realpath(reg->repository, reg->root_real))
        reg->root_real[0] = '\0';
    reg->metrics = metrics;
    uv_timer_init(loop, &reg->debounce);
    reg->debounce.data = reg;
    uv_timer_init(loop, &reg->poll);
    reg->poll.data = reg;
    reg->open_handles = 2;
    if (opts->poll_ms)
        uv_timer_start(&reg->poll, on_poll, opts->poll_ms, opts->poll_ms);
    scan(reg, true);
    *ret = reg;
    return 0;
}

void mdl_registry_rescan(mdl_registry_t *reg)
{
    scan(reg, false);
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
    mdl_slot_t *slot = find_any(reg, name);
    return slot && !slot->removed ? slot : NULL;
}

mdl_model_t *mdl_registry_acquire(const mdl_slot_t *slot, long version)
{
    const mdl_version_t *v;

    if (version < 0)
        return mdl_model_ref(slot->model);
    v = find_version(slot, version);
    return v ? mdl_model_ref(v->model) : NULL;
}

int mdl_registry_when_settled(mdl_registry_t *reg, mdl_slot_t *slot, void (*cb)(void *arg), void *arg)
{
    waiter_t *w;
    (void)reg;

    if (!slot_busy(slot)) {
        cb(arg);
        return 0;
    }
    w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->cb = cb;
    w->arg = arg;
    w->next = slot->_waiters;
    slot->_waiters = w;
    return 0;
}

/* The slot for name after a rescan (so a folder added a moment ago counts). */
static mdl_slot_t *admin_slot(mdl_registry_t *reg, const char *name, mdl_err_t *reterr)
{
    mdl_slot_t *slot;

    reg->no_settle = true;
    scan(reg, false);
    reg->no_settle = false;
    slot = mdl_registry_find(reg, name);
    if (!slot)
        mdl_err_set(reterr, -ENOENT, "model '%s' not found in the repository", name);
    return slot;
}

int mdl_registry_load(mdl_registry_t *reg, const char *name, mdl_err_t *reterr)
{
    mdl_slot_t *slot = mdl_registry_find(reg, name);

    if (slot && slot->unloaded) {
        slot->unloaded = false;
        mdl_log_event(MDL_LOG_INFO, "model_load_requested", "model", name, NULL);
    }
    /* An explicit request loads what is there now, without waiting for files to settle. */
    return admin_slot(reg, name, reterr) ? 0 : -ENOENT;
}

int mdl_registry_unload(mdl_registry_t *reg, const char *name, mdl_err_t *reterr)
{
    mdl_slot_t *slot = mdl_registry_find(reg, name);

    if (!slot)
        return mdl_err_set(reterr, -ENOENT, "model '%s' not found", name);
    slot->unloaded = true;
    for (size_t j = slot->n_versions; j-- > 0;)
        if (!slot->versions[j].loading)
            remove_version(reg, slot, j);
    update_view(slot);
    mdl_log_event(MDL_LOG_INFO, "model_unload_requested", "model", name, NULL);
    return 0;
}

int mdl_registry_reload(mdl_registry_t *reg, const char *name, mdl_err_t *reterr)
{
    mdl_slot_t *slot = mdl_registry_find(reg, name);

    if (slot) {
        slot->unloaded = false;
        /* Forget what was loaded from, so every selected version loads again. */
        for (size_t i = 0; i < slot->n_versions; i++)
            slot->versions[i].sig = slot->versions[i].failed_sig = 0;
    }
    mdl_log_event(MDL_LOG_INFO, "model_reload_requested", "model", name, NULL);
    return admin_slot(reg, name, reterr) ? 0 : -ENOENT;
}

void mdl_registry_wake_all(mdl_registry_t *reg)
{
    for (size_t i = 0; i < reg->n_slots; i++) {
        waiter_t *w = reg->slots[i]->_waiters;
        reg->slots[i]->_waiters = NULL;
        while (w) {
            waiter_t *next = w->next;
            w->cb(w->arg);
            free(w);
            w = next;
        }
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    mdl_registry_t *reg = h->data;
    reg->open_handles--;
    maybe_destroy(reg);
}

void mdl_registry_free(mdl_registry_t *reg)
{
    if (!reg)
        return;
    reg->closing = true;
    while (reg->watches) {
        watch_t *w = reg->watches;
        reg->watches = w->next;
        uv_close((uv_handle_t *)&w->handle, on_watch_closed);
    }
    uv_close((uv_handle_t *)&reg->debounce, on_handle_closed);
    uv_close((uv_handle_t *)&reg->poll, on_handle_closed);
}
