// LightGBM's side of the GBDT benchmark (issue 3): trains the "LightGBM shape" model
// (binary, 1000 trees of 255 leaves, 100 features) on synthetic rows, saves it with
// LGBM_BoosterSaveModel (or reuses OUT_DIR/model.txt), writes test rows and LightGBM's raw
// scores for them, and times LGBM_BoosterPredictForMat (num_threads=1) at batch 1, 16, 256
// and 10000, one line per cell (thread CPU and wall us/row). The model and rows it writes
// are what tools/gbdt_speed.c times for modeld (same rows, margins checked bit for bit).
//
// LightGBM is not packaged by Debian: build v4.6.0 from source (see tools/gen_lgb_fixtures.cpp);
// bench/gbdt/run.sh builds and runs this file when LIGHTGBM_DIR points at that build:
//   g++ -O2 -std=c++17 -I $LIGHTGBM_DIR/include bench/gbdt/lightgbm_capi.cpp
//       -L $LIGHTGBM_DIR -l_lightgbm -Wl,-rpath,$LIGHTGBM_DIR -o lgb_bench   (one line)
//   lgb_bench OUT_DIR [TREES]      -> OUT_DIR/model.txt rows.f64 margin.f64
#include <LightGBM/c_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <ctime>
#include <vector>

namespace {

uint64_t s = 0x9E3779B97F4A7C15ull;
double uniform() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (double)(s >> 11) / 9007199254740992.0;
}

// CPU time of this thread (predictions run on it with num_threads=1), as tools/gbdt_speed.c
// measures modeld, so other load on the machine counts for neither.
double cpu_s() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double wall_s() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void check(int r, const char *what) {
    if (r) {
        fprintf(stderr, "%s: %s\n", what, LGBM_GetLastError());
        exit(1);
    }
}

void rows(int n, int nf, std::vector<double> &x, std::vector<float> *y) {
    x.resize((size_t)n * nf);
    if (y) y->resize(n);
    for (int i = 0; i < n; i++) {
        double *r = &x[(size_t)i * nf], z = 0;
        for (int j = 0; j < nf; j++) r[j] = uniform() * 2 - 1;
        for (int j = 0; j < 20; j++) z += (j % 2 ? 1 : -1) * r[j] * r[(j * 7 + 3) % nf];
        z += std::sin(3 * r[0]) + r[1] * r[2] * 2;
        if (y) (*y)[i] = z + 0.3 * (uniform() - 0.5) > 0 ? 1.0f : 0.0f;
    }
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUT_DIR [TREES]\n", argv[0]);
        return 2;
    }
    std::string dir = argv[1];
    int trees = argc > 2 ? atoi(argv[2]) : 1000, nf = 100, n_train = 60000, n_test = 10000;
    std::vector<double> xtr, xte;
    std::vector<float> ytr;
    rows(n_train, nf, xtr, &ytr);
    rows(n_test, nf, xte, nullptr);
    const char *params = "objective=binary num_leaves=255 min_data_in_leaf=5 learning_rate=0.05 "
                         "max_bin=255 num_threads=2 seed=1 verbose=-1";
    DatasetHandle ds;
    BoosterHandle b;
    std::string model = dir + "/model.txt";
    FILE *have = fopen(model.c_str(), "r");
    if (have) {
        // training takes minutes: an existing model.txt is timed as it is
        fclose(have);
    } else {
        check(LGBM_DatasetCreateFromMat(xtr.data(), C_API_DTYPE_FLOAT64, n_train, nf, 1, params,
                                        nullptr, &ds), "dataset");
        check(LGBM_DatasetSetField(ds, "label", ytr.data(), n_train, C_API_DTYPE_FLOAT32),
              "label");
        check(LGBM_BoosterCreate(ds, params, &b), "booster");
        for (int i = 0; i < trees; i++) {
            int fin = 0;
            check(LGBM_BoosterUpdateOneIter(b, &fin), "train");
            if (fin) break;
        }
        check(LGBM_BoosterSaveModel(b, 0, -1, 0, model.c_str()), "save");
        LGBM_BoosterFree(b);
        LGBM_DatasetFree(ds);
    }

    int iters;
    check(LGBM_BoosterCreateFromModelfile(model.c_str(), &iters, &b), "load");
    std::vector<double> out(n_test);
    int64_t len;
    check(LGBM_BoosterPredictForMat(b, xte.data(), C_API_DTYPE_FLOAT64, n_test, nf, 1,
                                    C_API_PREDICT_RAW_SCORE, 0, -1, "num_threads=1", &len,
                                    out.data()), "predict");
    FILE *f = fopen((dir + "/rows.f64").c_str(), "wb");
    fwrite(xte.data(), sizeof(double), xte.size(), f);
    fclose(f);
    f = fopen((dir + "/margin.f64").c_str(), "wb");
    fwrite(out.data(), sizeof(double), out.size(), f);
    fclose(f);
    printf("load: %d iterations, %d features\n", iters, nf);
    // one line per cell, the format of tools/gbdt_speed.c and bench/gbdt/xgb_capi.py;
    // consecutive slices, >= 10000 rows per pass, best of 3 passes
    for (int batch : {1, 16, 256, 10000}) {
        double best_c = 1e30, best_w = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            int done = 0;
            double c0 = cpu_s(), w0 = wall_s();
            while (done < n_test) {
                int n = std::min(batch, n_test - done);
                check(LGBM_BoosterPredictForMat(b, xte.data() + (size_t)done * nf,
                                                C_API_DTYPE_FLOAT64, n, nf, 1,
                                                C_API_PREDICT_NORMAL, 0, -1, "num_threads=1",
                                                &len, out.data()), "predict");
                done += n;
            }
            best_c = std::min(best_c, (cpu_s() - c0) * 1e6 / done);
            best_w = std::min(best_w, (wall_s() - w0) * 1e6 / done);
        }
        printf("lightgbm batch %d threads 1 cpu_us_row %.3f wall_us_row %.3f\n", batch, best_c,
               best_w);
        fflush(stdout);
    }
    LGBM_BoosterFree(b);
    return 0;
}
