#include "kind.h"

#include "transformer.h"

static const char *const artifacts[] = {"model.safetensors.index.json", "model.safetensors",
                                        "model.bin", NULL};

/* path is the artifact mdl_model_load_dir found (first of `artifacts` present). */
static int load(const char *path, const mdl_load_opts_t *opts, mdl_model_t *m, mdl_err_t *reterr)
{
    mdl_tf_model_t *tf;
    int r = mdl_tf_load(path, opts ? opts->max_artifact_bytes : 0, &tf, reterr);

    if (r < 0)
        return r;
    m->impl = tf;
    m->task = MDL_TASK_GENERATION;
    return 0;
}

static void destroy(void *impl)
{
    mdl_tf_free(impl);
}

const mdl_kind_t mdl_kind_transformer = {
    .name = "transformer",
    .artifacts = artifacts,
    .load = load,
    .destroy = destroy,
    .tabular = NULL,
};
