/* For unit tests that need a loaded model: writes lr_json as lr.json into a fresh temporary
 * folder, loads it, removes the folder, and returns the model (NULL, with a message on
 * stderr, if it did not load). */
#ifndef MDL_TEST_LR_MODEL_H
#define MDL_TEST_LR_MODEL_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/model.h"

static inline mdl_model_t *test_lr_model(const char *lr_json)
{
    char dir[64], path[128];
    mdl_model_t *m = NULL;
    mdl_err_t err = {0};
    FILE *f;

    snprintf(dir, sizeof dir, "/tmp/modeld-unit-model-%ld", (long)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/lr.json", dir);
    if ((f = fopen(path, "w"))) {
        fputs(lr_json, f);
        fclose(f);
        if (mdl_model_load_dir(dir, NULL, &m, &err) < 0)
            fprintf(stderr, "cannot load the test model: %s\n", err.msg);
    }
    unlink(path);
    rmdir(dir);
    return m;
}

#endif
