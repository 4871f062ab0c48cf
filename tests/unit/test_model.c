/* The model handle: atomic refcounts across threads, destroy exactly once at zero. */
#include <pthread.h>
#include <stdlib.h>

#include "models/model.h"
#include "check.h"

static atomic_int destroyed;

static void fake_destroy(void *impl)
{
    (void)impl;
    atomic_fetch_add(&destroyed, 1);
}

static const char *const no_artifacts[] = {NULL};
static const mdl_kind_t fake_kind = {"fake", no_artifacts, NULL, fake_destroy, NULL};

static mdl_model_t *fake_model(void)
{
    mdl_model_t *m = calloc(1, sizeof *m);
    m->kind = &fake_kind;
    atomic_init(&m->_refs, 1);
    return m;
}

static void *hammer(void *arg)
{
    mdl_model_t *m = arg;

    for (int i = 0; i < 200000; i++)
        mdl_model_unref(mdl_model_ref(m));
    return NULL;
}

static void test_refcount_threads(void)
{
    mdl_model_t *m = fake_model();
    pthread_t t[4];

    atomic_store(&destroyed, 0);
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, m);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(atomic_load(&destroyed), 0);
    CHECK_EQ_INT(atomic_load(&m->_refs), 1);
    CHECK(mdl_model_unref(m) == NULL);
    CHECK_EQ_INT(atomic_load(&destroyed), 1);
}

static void test_last_reference_frees(void)
{
    mdl_model_t *m = fake_model(), *held;

    atomic_store(&destroyed, 0);
    held = mdl_model_ref(m);   /* a request holds it */
    m = mdl_model_unref(m);    /* the registry swaps it out */
    CHECK(m == NULL);
    CHECK_EQ_INT(atomic_load(&destroyed), 0);
    mdl_model_unref(held);     /* the request ends */
    CHECK_EQ_INT(atomic_load(&destroyed), 1);
    CHECK(mdl_model_unref(NULL) == NULL);
    CHECK(mdl_model_ref(NULL) == NULL);
}

static void test_load_dir_errors(void)
{
    mdl_model_t *m = NULL;
    mdl_err_t err = {0};
    mdl_load_opts_t opts = {.kind = "nosuchkind"};

    CHECK_EQ_INT(mdl_model_load_dir("/nonexistent-dir", NULL, &m, &err), -ENOENT);
    CHECK(strstr(err.msg, "no model artifact") != NULL);
    CHECK(m == NULL);
    CHECK_EQ_INT(mdl_model_load_dir("/tmp", &opts, &m, &err), -EINVAL);
    CHECK(strstr(err.msg, "nosuchkind") != NULL);
    CHECK(mdl_kind_find("lr") != NULL);
    CHECK(mdl_kind_find("nosuchkind") == NULL);
}

int main(void)
{
    RUN(test_refcount_threads);
    RUN(test_last_reference_frees);
    RUN(test_load_dir_errors);
    return check_summary();
}
