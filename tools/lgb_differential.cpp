// Differential check of the LightGBM loader + forest scorer against LightGBM itself: random
// hand-made v4 models (1-6 trees of 1-8 leaves; numeric splits of every missing type and
// default direction with thresholds on and around 0, +-1e-35f, small integers, +-1e30, inf;
// categorical splits with random multi-word bitsets; linear leaves unless NOLINEAR is set)
// and rows of the same edge values and NaN, scored by LightGBM's C API (raw score, leaf
// index) and by modeld; every differing row is reported. Not part of the build:
//   g++ -O1 -std=c++17 -I LightGBM/include tools/lgb_differential.cpp build/release/libmodeld.a
//       -L LightGBM -l_lightgbm -Wl,-rpath,$PWD/LightGBM -lm -lpthread -o /tmp/lgb_diff   (one line)
//   /tmp/lgb_diff [MODELS]
// Known difference: LightGBM's C API reads |x| <= 1e-35f as 0.0; for splits the loader
// moves thresholds to match (exact), but a linear leaf multiplies the raw x, so results
// within ~1e-34 of 0 can differ in linear trees.
#include <LightGBM/c_api.h>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
extern "C" {
typedef struct mdl_forest mdl_forest_t;
typedef struct mdl_err { int code; char msg[256]; } mdl_err_t;
int mdl_gbdt_load_lightgbm(const char *, size_t, mdl_forest_t **, mdl_err_t *);
int mdl_forest_score(const mdl_forest_t *, const double *, size_t, int, double *, mdl_err_t *);
mdl_forest_t *mdl_forest_free(mdl_forest_t *);
}
enum { MDL_OUTPUT_VALUE, MDL_OUTPUT_MARGIN, MDL_OUTPUT_LEAF };
static uint64_t st = 12345;
static uint64_t rnd() { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return st; }
static int ri(int n) { return (int)(rnd() % (uint64_t)n); }
static const double kz = (double)1e-35f;
static double pool(void) {
    static const double v[] = {0.0, -0.0, 1e-36, -1e-36, kz, -kz, 5e-36, -5e-36, 0.5, -0.5, 1, -1, 2.5, 3, 3.7, 31, 32, 63, 64, 1e30, -1e30, 1e-300};
    int k = ri(sizeof v / sizeof v[0] + 3);
    if (k >= (int)(sizeof v / sizeof v[0])) return (double)(ri(2001) - 1000) / 100.0;
    return v[k];
}
static std::string fmt(double d) { char b[64]; if (std::isinf(d)) return d > 0 ? "inf" : "-inf"; snprintf(b, sizeof b, "%.17g", d); return b; }
int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 200, bad = 0;
    for (int it = 0; it < iters; it++) {
        int nf = 1 + ri(5), ntrees = 1 + ri(6);
        std::string trees;
        std::vector<std::string> blocks;
        for (int t = 0; t < ntrees; t++) {
            int nl = 1 + ri(8);
            bool linear = getenv("NOLINEAR") ? false : ri(4) == 0;
            // random tree: split leaves
            std::vector<int> left, right;
            struct Ref { int node, side; };
            std::vector<Ref> leaves = {{-1, 0}};
            int ni = 0;
            for (int k = 1; k < nl; k++) {
                int pick = ri((int)leaves.size());
                Ref r = leaves[pick];
                left.push_back(0); right.push_back(0);
                if (r.node >= 0) (r.side ? right : left)[r.node] = ni;
                leaves[pick] = {ni, 0};
                leaves.push_back({ni, 1});
                ni++;
            }
            for (size_t j = 0; j < leaves.size(); j++)
                if (leaves[j].node >= 0) (leaves[j].side ? right : left)[leaves[j].node] = ~(int)j;
            std::string sf, th, dt, lc, rc, lv, cb = "0", ct;
            int ncat = 0, words = 0;
            for (int k = 0; k < ni; k++) {
                int d;
                bool cat = ri(4) == 0;
                if (cat) {
                    d = 1; th += std::to_string(ncat) + " ";
                    int w = 1 + ri(3);
                    for (int q = 0; q < w; q++) ct += std::to_string((uint32_t)rnd()) + " ";
                    words += w; ncat++; cb += " " + std::to_string(words);
                } else {
                    static const int dts[] = {0, 2, 4, 6, 8, 10};
                    d = dts[ri(6)];
                    double thr = ri(10) == 0 ? INFINITY : pool();
                    th += fmt(thr) + " ";
                }
                sf += std::to_string(ri(nf)) + " "; dt += std::to_string(d) + " ";
                lc += std::to_string(left[k]) + " "; rc += std::to_string(right[k]) + " ";
            }
            for (int j = 0; j < nl; j++) lv += fmt((double)(ri(2001) - 1000) / 64.0) + " ";
            auto trim = [](std::string s) { if (!s.empty() && s.back() == ' ') s.pop_back(); return s; };
            std::string b = "num_leaves=" + std::to_string(nl) + "\nnum_cat=" + std::to_string(ncat) +
                "\nsplit_feature=" + trim(sf) +
                "\nthreshold=" + trim(th) + "\ndecision_type=" + trim(dt) + "\nleft_child=" + trim(lc) +
                "\nright_child=" + trim(rc) + "\nleaf_value=" + trim(lv) + "\n";
            if (ncat) b += "cat_boundaries=" + cb + "\ncat_threshold=" + trim(ct) + "\n";
            b += std::string("is_linear=") + (linear ? "1" : "0") + "\n";
            if (linear) {
                std::string c = "", nfs = "", lf = "", co = "";
                for (int j = 0; j < nl; j++) {
                    c += fmt(pool()) + " ";
                    int m = ri(nf + 1);
                    nfs += std::to_string(m) + " ";
                    for (int q = 0; q < m; q++) { lf += std::to_string(q) + " "; co += fmt((double)(ri(200) - 100) / 8.0) + " "; }
                    lf += " "; co += " ";
                }
                b += "leaf_const=" + trim(c) + "\nnum_features=" + trim(nfs) + "\nleaf_features=" + lf + "\nleaf_coeff=" + co + "\n";
            }
            b += "shrinkage=1\n";
            blocks.push_back("Tree=" + std::to_string(t) + "\n" + b + "\n\n");
        }
        std::string fnames, finfo, sizes;
        for (int j = 0; j < nf; j++) { fnames += (j ? " f" : "f") + std::to_string(j); finfo += (j ? " " : "") + std::string("[-1:1]"); }
        for (auto &bl : blocks) sizes += (sizes.empty() ? "" : " ") + std::to_string(bl.size());
        std::string m = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=" +
            std::to_string(nf - 1) + "\nobjective=regression\nfeature_names=" + fnames + "\nfeature_infos=" + finfo +
            "\ntree_sizes=" + sizes + "\n\n";
        for (auto &bl : blocks) m += bl;
        m += "end of trees\n";
        int n_it; BoosterHandle bst;
        if (LGBM_BoosterLoadModelFromString(m.c_str(), &n_it, &bst)) { printf("lgb load fail: %s\n", LGBM_GetLastError()); return 1; }
        mdl_forest_t *f; mdl_err_t err;
        if (mdl_gbdt_load_lightgbm(m.c_str(), m.size(), &f, &err)) { printf("ours load fail: %s\n%s\n", err.msg, m.c_str()); return 1; }
        int nr = 40;
        std::vector<double> rows(nr * nf);
        for (auto &x : rows) x = ri(8) == 0 ? NAN : pool();
        std::vector<double> a(nr), b(nr), la(nr * ntrees), lb(nr * ntrees);
        int64_t len;
        LGBM_BoosterPredictForMat(bst, rows.data(), C_API_DTYPE_FLOAT64, nr, nf, 1, C_API_PREDICT_RAW_SCORE, 0, -1, "num_threads=1", &len, a.data());
        LGBM_BoosterPredictForMat(bst, rows.data(), C_API_DTYPE_FLOAT64, nr, nf, 1, C_API_PREDICT_LEAF_INDEX, 0, -1, "num_threads=1", &len, la.data());
        mdl_forest_score(f, rows.data(), nr, MDL_OUTPUT_MARGIN, b.data(), &err);
        mdl_forest_score(f, rows.data(), nr, MDL_OUTPUT_LEAF, lb.data(), &err);
        for (int i = 0; i < nr; i++) {
            bool leafdiff = false;
            for (int t = 0; t < ntrees; t++) leafdiff |= la[i * ntrees + t] != lb[i * ntrees + t];
            if (memcmp(&a[i], &b[i], 8) || leafdiff) {
                if (bad++ < 5) {
                    printf("iter %d row %d: lgb %.17g ours %.17g%s\n  x:", it, i, a[i], b[i], leafdiff ? " (leaf differs)" : "");
                    for (int j = 0; j < nf; j++) printf(" %.17g", rows[i * nf + j]);
                    printf("\n");
                    if (bad == 1) printf("%s\n", m.c_str());
                }
            }
        }
        mdl_forest_free(f);
        LGBM_BoosterFree(bst);
    }
    printf("%d differing rows\n", bad);
    return bad != 0;
}
