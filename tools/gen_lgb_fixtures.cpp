// Writes tests/fixtures/lightgbm/<case>/: LightGBM models for the cases the shared golden
// fixtures (../shared/fixtures/gbdt/lgb_*) do not cover, and LightGBM's own predictions on
// test rows, so tests/unit/test_lightgbm.c can compare modeld with the library itself.
//
// LightGBM is not packaged by Debian. Build v4.6.0 from source (its C API is all this needs):
//   git clone --branch v4.6.0 --recursive https://github.com/microsoft/LightGBM
//   cmake -B build -S LightGBM -DCMAKE_BUILD_TYPE=Release && cmake --build build -j
//   g++ -O2 -std=c++17 -I LightGBM/include tools/gen_lgb_fixtures.cpp -L LightGBM -l_lightgbm
//       -Wl,-rpath,$PWD/LightGBM -o /tmp/gen_lgb_fixtures   (one line with the previous)
//   /tmp/gen_lgb_fixtures tests/fixtures/lightgbm
//
// Per case: model.txt (LGBM_BoosterSaveModel), input.csv (header f0..; empty field = NaN;
// values "%.17g"), expected_margin.csv (C_API_PREDICT_RAW_SCORE), expected_pred.csv
// (C_API_PREDICT_NORMAL), expected_leaf.csv (C_API_PREDICT_LEAF_INDEX), meta.json. The
// predictions come from a fresh booster loaded from model.txt. Test rows: random rows
// (with the case's share of NaN / zeros), then rows whose one feature sits exactly on a
// numeric split threshold of the model and on both float64 neighbours, then special rows
// (all NaN, zeros, -0, values around LightGBM's zero threshold 1e-35f, +-1e30).
#include <LightGBM/c_api.h>

// The LightGBM release this is built against, for meta.json (-DLGB_VERSION=\"v3.3.5\").
#ifndef LGB_VERSION
#define LGB_VERSION "v4.6.0"
#endif

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace {

uint64_t rng_state = 88172645463325252ull;

uint64_t next_u64() {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

double uniform() { return (double)(next_u64() >> 11) / 9007199254740992.0; }

double normal() {
    double s = 0;
    for (int i = 0; i < 12; i++) s += uniform();
    return s - 6.0;
}

enum Label { REG, BINARY, MULTI3, POISSON, PROB, GAMMA };

struct Case {
    const char *name;
    const char *params;  // LightGBM parameters (the common ones are appended)
    int n_feat, n_train, n_test, rounds;
    Label label;
    double nan_frac, zero_frac;
    int n_cat0, n_cat1;  // categories of features 0 and 1 (0: numeric)
    const char *notes;
};

const Case cases[] = {
    {"linear", "objective=regression linear_tree=true num_leaves=8 learning_rate=0.2", 6, 2000,
     200, 25, REG, 0.05, 0.0, 0, 0,
     "linear_tree: leaves hold linear models; a NaN input of a leaf's model falls back to the "
     "leaf value"},
    {"rf_binary",
     "boosting=rf objective=binary bagging_freq=1 bagging_fraction=0.7 feature_fraction=0.8 "
     "num_leaves=15",
     8, 2000, 200, 20, BINARY, 0.05, 0.0, 0, 0,
     "random forest: average_output; prediction = sigmoid(mean of trees); the raw score "
     "(margin) is LightGBM's PredictRaw, the plain sum (not averaged)"},
    {"rf_multi",
     "boosting=rf objective=multiclass num_class=3 bagging_freq=1 bagging_fraction=0.6 "
     "num_leaves=7",
     5, 1500, 150, 8, MULTI3, 0.0, 0.0, 0, 0, "random forest, 3 classes: 8 rounds x 3 trees"},
    {"poisson", "objective=poisson num_leaves=15 learning_rate=0.1", 6, 2000, 200, 30, POISSON,
     0.05, 0.0, 0, 0, "prediction = exp(margin)"},
    {"gamma", "objective=gamma num_leaves=7 learning_rate=0.1", 4, 1500, 150, 20, GAMMA, 0.0,
     0.0, 0, 0, "prediction = exp(margin)"},
    {"sqrt", "objective=regression reg_sqrt=true num_leaves=15", 6, 2000, 200, 30, REG, 0.05,
     0.0, 0, 0, "objective line 'regression sqrt': prediction = sign(m) * m * m"},
    {"ova", "objective=multiclassova num_class=3 sigmoid=1.3 num_leaves=7", 6, 2000, 200, 15,
     MULTI3, 0.05, 0.0, 0, 0, "one-vs-all: per-class sigmoid(1.3 * margin), not normalised"},
    {"zero_missing", "objective=binary zero_as_missing=true num_leaves=15", 6, 3000, 200, 25,
     BINARY, 0.05, 0.3, 0, 0, "zero_as_missing: missing type Zero in decision_type; 30% zeros"},
    {"no_missing", "objective=regression use_missing=false num_leaves=15", 6, 2000, 200, 25, REG,
     0.0, 0.0, 0, 0,
     "use_missing=false: missing type None (NaN is read as 0.0); the test rows have 10% NaN"},
    {"xentropy", "objective=cross_entropy num_leaves=15", 5, 2000, 200, 20, PROB, 0.0, 0.0, 0, 0,
     "labels in [0, 1]; prediction = sigmoid(margin)"},
    {"xentlambda", "objective=cross_entropy_lambda num_leaves=15", 5, 2000, 200, 20, PROB, 0.0,
     0.0, 0, 0, "prediction = log(1 + exp(margin))"},
    {"cat_wide",
     "objective=regression categorical_feature=0,1 max_cat_to_onehot=4 max_cat_threshold=64 "
     "cat_smooth=1 cat_l2=1 min_data_per_group=5 num_leaves=15",
     4, 4000, 200, 20, REG, 0.03, 0.0, 100, 3,
     "feature 0: 100 categories (bitsets over several words), feature 1: 3 categories "
     "(one-hot splits); test rows include unseen, negative, fractional, huge and NaN codes"},
    {"single_leaf", "objective=regression min_gain_to_split=1e30 num_leaves=7", 3, 500, 50, 5,
     REG, 0.0, 0.0, 0, 0, "no split is ever worth it: constant trees (num_leaves=1)"},
};

double score_of(const double *x, int nf) {
    double s = 0.8 * std::sin(x[0 % nf]) + 0.5 * x[1 % nf] * x[2 % nf] - 0.3 * x[3 % nf];
    if (nf > 4) s += 0.4 * std::fabs(x[4]);
    return s;
}

void make_rows(const Case &c, int n, bool test, std::vector<double> &x, std::vector<float> &y) {
    x.assign((size_t)n * c.n_feat, 0.0);
    y.assign(n, 0.0f);
    for (int i = 0; i < n; i++) {
        double *r = &x[(size_t)i * c.n_feat];
        for (int j = 0; j < c.n_feat; j++) r[j] = normal();
        if (c.n_cat0) r[0] = (double)(next_u64() % c.n_cat0);
        if (c.n_cat1) r[1] = (double)(next_u64() % c.n_cat1);
        double s = score_of(r, c.n_feat);
        if (c.n_cat0) s += std::sin(r[0] * 0.7) + (r[1] == 1 ? 0.8 : 0.0);
        for (int j = 0; j < c.n_feat; j++) {
            if (c.zero_frac > 0 && uniform() < c.zero_frac) r[j] = 0.0;
            double nan_frac = test && c.nan_frac == 0 && !strcmp(c.name, "no_missing") ? 0.1
                                                                                        : c.nan_frac;
            if (nan_frac > 0 && uniform() < nan_frac) r[j] = NAN;
        }
        double noise = 0.3 * normal();
        switch (c.label) {
        case REG: y[i] = (float)(s + noise + 3.0); break;
        case BINARY: y[i] = s + noise > 0.2 ? 1.0f : 0.0f; break;
        case MULTI3: {
            double a = s + noise, b = -s + 0.5 * r[1 % c.n_feat], d = 0.3 * normal();
            y[i] = a > b && a > d ? 0.0f : b > d ? 1.0f : 2.0f;
            break;
        }
        case POISSON: {
            double lambda = std::exp(0.4 * s), l = std::exp(-lambda), p = 1.0;
            int k = 0;
            do {
                k++;
                p *= uniform();
            } while (p > l && k < 1000);
            y[i] = (float)(k - 1);
            break;
        }
        case GAMMA: y[i] = (float)(std::exp(0.3 * s) * (0.5 + uniform())); break;
        case PROB: y[i] = (float)(1.0 / (1.0 + std::exp(-(s + noise)))); break;
        }
    }
}

void check(int r, const char *what) {
    if (r != 0) {
        fprintf(stderr, "%s: %s\n", what, LGBM_GetLastError());
        exit(1);
    }
}

std::string read_file(const std::string &path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// (feature, threshold) of the numeric splits in model text, in file order.
std::vector<std::pair<int, double>> numeric_splits(const std::string &model) {
    std::vector<std::pair<int, double>> out;
    std::istringstream in(model);
    std::string line;
    std::vector<int> feat;
    std::vector<double> thr;
    while (std::getline(in, line)) {
        auto val = line.substr(line.find('=') + 1);
        std::istringstream vs(val);
        if (line.rfind("split_feature=", 0) == 0) {
            feat.clear();
            int v;
            while (vs >> v) feat.push_back(v);
        } else if (line.rfind("threshold=", 0) == 0) {
            thr.clear();
            std::string tok;
            while (vs >> tok) thr.push_back(strtod(tok.c_str(), nullptr));
        } else if (line.rfind("decision_type=", 0) == 0) {
            int v, i = 0;
            while (vs >> v) {
                if (!(v & 1) && i < (int)thr.size() && i < (int)feat.size())
                    out.push_back({feat[i], thr[i]});
                i++;
            }
        }
    }
    return out;
}

void write_csv(const std::string &path, const std::vector<std::string> &header, const double *v,
               size_t rows, size_t cols, bool nan_empty) {
    FILE *f = fopen(path.c_str(), "w");
    for (size_t j = 0; j < cols; j++) fprintf(f, "%s%s", j ? "," : "", header[j].c_str());
    fprintf(f, "\n");
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < cols; j++) {
            double d = v[i * cols + j];
            if (j) fputc(',', f);
            if (std::isnan(d) && nan_empty) continue;
            if (std::isinf(d))
                fprintf(f, "%s", d > 0 ? "inf" : "-inf");
            else
                fprintf(f, "%.17g", d);
        }
        fprintf(f, "\n");
    }
    fclose(f);
}

// Column names: "f0".. for features (sep ""), "margin_0".. for outputs (sep "_"), or the
// bare prefix when there is one column and bare_if_one.
std::vector<std::string> names(const char *prefix, size_t n, bool bare_if_one,
                               const char *sep = "_") {
    std::vector<std::string> h;
    for (size_t k = 0; k < n; k++)
        h.push_back(n == 1 && bare_if_one ? std::string(prefix) : prefix + (sep + std::to_string(k)));
    return h;
}

// Predicts rows (n x n_feat) with a fresh booster from dir/model.txt and writes
// input.csv and the expected_*.csv files.
void predict_and_write(const std::string &dir, const std::vector<double> &rows, int n_feat,
                       int *ret_iters, int *ret_trees, int *ret_classes) {
    size_t n = rows.size() / n_feat;
    std::string model_path = dir + "/model.txt";
    BoosterHandle bst;
    int iters = 0, n_class = 0;
    check(LGBM_BoosterCreateFromModelfile(model_path.c_str(), &iters, &bst), "reload");
    check(LGBM_BoosterGetNumClasses(bst, &n_class), "classes");
    int n_trees = 0;
    check(LGBM_BoosterNumberOfTotalModel(bst, &n_trees), "trees");
    std::vector<double> margin(n * n_class), pred(n * n_class), leaf(n * (size_t)n_trees);
    int64_t len = 0;
    check(LGBM_BoosterPredictForMat(bst, rows.data(), C_API_DTYPE_FLOAT64, (int)n, n_feat, 1,
                                    C_API_PREDICT_RAW_SCORE, 0, -1, "", &len, margin.data()),
          "predict raw");
    check(LGBM_BoosterPredictForMat(bst, rows.data(), C_API_DTYPE_FLOAT64, (int)n, n_feat, 1,
                                    C_API_PREDICT_NORMAL, 0, -1, "", &len, pred.data()),
          "predict");
    check(LGBM_BoosterPredictForMat(bst, rows.data(), C_API_DTYPE_FLOAT64, (int)n, n_feat, 1,
                                    C_API_PREDICT_LEAF_INDEX, 0, -1, "", &len, leaf.data()),
          "predict leaf");
    LGBM_BoosterFree(bst);

    write_csv(dir + "/input.csv", names("f", n_feat, false, ""), rows.data(), n, n_feat, true);
    write_csv(dir + "/expected_margin.csv", names("margin", n_class, true), margin.data(), n,
              n_class, false);
    write_csv(dir + "/expected_pred.csv", names("pred", n_class, true), pred.data(), n, n_class,
              false);
    write_csv(dir + "/expected_leaf.csv", names("leaf", n_trees, false), leaf.data(), n,
              n_trees, false);
    *ret_iters = iters;
    *ret_trees = n_trees;
    *ret_classes = n_class;
}

void run_case(const Case &c, const std::string &root, const std::string &prefix) {
    rng_state = 88172645463325252ull ^ (uint64_t)std::hash<std::string>()(c.name);
    std::vector<double> xtr, xte;
    std::vector<float> ytr, yte;
    make_rows(c, c.n_train, false, xtr, ytr);
    make_rows(c, c.n_test, true, xte, yte);

    std::string params = std::string(c.params) +
                         " num_threads=1 deterministic=true force_col_wise=true seed=7 verbose=-1";
    DatasetHandle ds;
    BoosterHandle bst;
    check(LGBM_DatasetCreateFromMat(xtr.data(), C_API_DTYPE_FLOAT64, c.n_train, c.n_feat, 1,
                                    params.c_str(), nullptr, &ds),
          "dataset");
    check(LGBM_DatasetSetField(ds, "label", ytr.data(), c.n_train, C_API_DTYPE_FLOAT32), "label");
    std::vector<std::string> fnames = names("f", c.n_feat, false, "");
    std::vector<const char *> fptr;
    for (auto &fn : fnames) fptr.push_back(fn.c_str());
    check(LGBM_DatasetSetFeatureNames(ds, fptr.data(), c.n_feat), "feature names");
    check(LGBM_BoosterCreate(ds, params.c_str(), &bst), "booster");
    for (int it = 0; it < c.rounds; it++) {
        int finished = 0;
        check(LGBM_BoosterUpdateOneIter(bst, &finished), "update");
        if (finished) break;
    }
    std::string dir = root + "/" + prefix + c.name;
    mkdir(dir.c_str(), 0755);
    std::string model_path = dir + "/model.txt";
    check(LGBM_BoosterSaveModel(bst, 0, -1, 0, model_path.c_str()), "save");
    LGBM_BoosterFree(bst);
    LGBM_DatasetFree(ds);

    // Test rows: random, then threshold rows, then special rows.
    std::string model = read_file(model_path);
    auto splits = numeric_splits(model);
    std::vector<double> rows(xte);
    size_t used = 0;
    for (size_t s = 0; s < splits.size() && used < 40; s += 1 + splits.size() / 40, used++) {
        int f = splits[s].first;
        double t = splits[s].second;
        for (double v : {t, std::nextafter(t, INFINITY), std::nextafter(t, -INFINITY)}) {
            size_t base = rows.size() / c.n_feat % c.n_test;
            std::vector<double> r(xte.begin() + base * c.n_feat, xte.begin() + (base + 1) * c.n_feat);
            r[f] = v;
            rows.insert(rows.end(), r.begin(), r.end());
        }
    }
    const double kz = (double)1e-35f;
    for (double v : {(double)NAN, 0.0, -0.0, 1e-36, -1e-36, kz, -kz, std::nextafter(kz, 1.0),
                     std::nextafter(-kz, -1.0), 1e30, -1e30, 0.5, -0.5}) {
        std::vector<double> r(c.n_feat, v);
        rows.insert(rows.end(), r.begin(), r.end());
    }
    if (c.n_cat0) {
        for (double v : {100.0, 150.0, -1.0, -0.5, 3.7, 1e10, 2147483648.0, 3e9, 31.0, 32.0,
                         63.0, 64.0, 95.0, (double)NAN}) {
            std::vector<double> r(xte.begin(), xte.begin() + c.n_feat);
            r[0] = v;
            rows.insert(rows.end(), r.begin(), r.end());
            r[0] = 5;
            r[1] = v;
            rows.insert(rows.end(), r.begin(), r.end());
        }
    }
    size_t n = rows.size() / c.n_feat;

    int iters = 0, n_trees = 0, n_class = 0;
    predict_and_write(dir, rows, c.n_feat, &iters, &n_trees, &n_class);
    FILE *m = fopen((dir + "/meta.json").c_str(), "w");
    fprintf(m,
            "{\n \"library\": \"lightgbm " LGB_VERSION " (C API, built from source)\",\n"
            " \"generator\": \"tools/gen_lgb_fixtures.cpp\",\n \"params\": \"%s\",\n"
            " \"rounds\": %d,\n \"num_trees\": %d,\n \"num_class\": %d,\n \"num_features\": %d,\n"
            " \"num_rows\": %zu,\n \"notes\": \"%s\"\n}\n",
            params.c_str(), iters, n_trees, n_class, c.n_feat, n, c.notes);
    fclose(m);
    printf("%-12s %3d trees, %zu rows\n", (prefix + c.name).c_str(), n_trees, n);
}

}  // namespace

// A fixture CSV: header, then numbers; empty field = NaN.
std::vector<double> read_csv(const std::string &path, size_t *cols) {
    std::vector<double> v;
    std::ifstream f(path);
    std::string line;
    std::getline(f, line);
    *cols = 1;
    for (char ch : line) *cols += ch == ',';
    while (std::getline(f, line)) {
        size_t start = 0;
        for (;;) {
            size_t comma = line.find(',', start);
            std::string tok = line.substr(start, comma == std::string::npos ? std::string::npos
                                                                             : comma - start);
            v.push_back(tok.empty() ? NAN : strtod(tok.c_str(), nullptr));
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
    }
    return v;
}

// --predict DIR: LightGBM's outputs for a hand-written DIR/model.txt on DIR/input.csv.
// --check DIR: predicts DIR/input.csv with DIR/model.txt and compares the raw scores with
// DIR/expected_margin.csv bit for bit (to see that this build of LightGBM is the one that
// made the shared fixtures). Returns the number of differing values.
int check_dir(const std::string &dir) {
    size_t nf, nk;
    std::vector<double> x = read_csv(dir + "/input.csv", &nf);
    std::vector<double> want = read_csv(dir + "/expected_margin.csv", &nk);
    size_t n = x.size() / nf;
    int iters;
    BoosterHandle bst;
    check(LGBM_BoosterCreateFromModelfile((dir + "/model.txt").c_str(), &iters, &bst), "load");
    std::vector<double> got(n * nk);
    int64_t len;
    check(LGBM_BoosterPredictForMat(bst, x.data(), C_API_DTYPE_FLOAT64, (int)n, (int)nf, 1,
                                    C_API_PREDICT_RAW_SCORE, 0, -1, "", &len, got.data()),
          "predict");
    LGBM_BoosterFree(bst);
    int diff = 0;
    for (size_t i = 0; i < got.size() && i < want.size(); i++)
        diff += memcmp(&got[i], &want[i], sizeof got[i]) != 0;
    printf("%s: %zu values, %d differ\n", dir.c_str(), got.size(), diff);
    return diff;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--check")) return check_dir(argv[2]) ? 1 : 0;
    if (argc == 3 && !strcmp(argv[1], "--predict")) {
        // a hand-written DIR/model.txt and DIR/input.csv: write LightGBM's expected outputs
        size_t nf;
        std::vector<double> rows = read_csv(std::string(argv[2]) + "/input.csv", &nf);
        int iters, trees, classes;
        predict_and_write(argv[2], rows, (int)nf, &iters, &trees, &classes);
        printf("%s: %zu rows, %d trees\n", argv[2], rows.size() / nf, trees);
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr,
                "usage: %s OUT_DIR [--prefix P] [CASE...] | --check FIXTURE_DIR | --predict "
                "FIXTURE_DIR\n",
                argv[0]);
        return 2;
    }
    // --prefix P names the folders P<case> (v3_ for the cases made with LightGBM v3.3.5);
    // CASE... picks cases (default: all).
    std::string prefix;
    std::vector<std::string> only;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--prefix") && i + 1 < argc)
            prefix = argv[++i];
        else
            only.push_back(argv[i]);
    }
    mkdir(argv[1], 0755);
    for (const Case &c : cases) {
        bool pick = only.empty();
        for (auto &o : only) pick |= o == c.name;
        if (!pick) continue;
        run_case(c, argv[1], prefix);
    }
    return 0;
}
