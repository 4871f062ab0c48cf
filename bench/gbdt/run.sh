#!/usr/bin/env bash
# GBDT scorer benchmark (issue 3): modeld's forest scorer in process (tools/gbdt_speed.c)
# against XGBoost's C API (bench/gbdt/xgb_capi.py: ctypes on Debian python3-xgboost's
# libxgboost.so, XGBoosterPredictFromDense) on the same model and rows, and, when a
# LightGBM build is at hand, against LightGBM's C API (bench/gbdt/lightgbm_capi.cpp).
#
#   bench/gbdt/run.sh                          # + 5-25 min the first time (training), then ~3-6
#   BENCH_REPS=1 bench/gbdt/run.sh             # quick
#   LIGHTGBM_DIR=/path/to/LightGBM bench/gbdt/run.sh     # + the LightGBM comparison
#
# 1. Model (cached in BENCH_GBDT_DIR, default build/bench/gbdt; generated, never committed):
#    bench/gbdt/train_xgb.py trains binary:logistic, 1000 trees, max_depth 8, 100 features,
#    200k synthetic rows, and writes 10000 test rows and XGBoost's margins for them.
# 2. Builds build/release/libmodeld.a (make) and tools/gbdt_speed.c against it.
# 3. BENCH_REPS (5) rounds, modeld and XGBoost alternately (the order flips every round):
#    us/row of the transformed prediction at batch 1, 16, 256, 10000 with 1 thread and at
#    batch 10000 with 2 threads (modeld: mdl_forest_score_threads; XGBoost: nthread 2).
#    gbdt_speed first checks modeld's margins against XGBoost's bit for bit.
# 4. LightGBM (LIGHTGBM_DIR = a LightGBM 4.x source tree built with its lib_lightgbm.so at
#    the top, as tools/gen_lgb_fixtures.cpp describes; Debian has no LightGBM): builds
#    lightgbm_capi.cpp, trains the 1000-tree 255-leaf model once (cached in
#    BENCH_GBDT_DIR/lgb), checks modeld's raw scores against LightGBM's bit for bit, and runs
#    BENCH_REPS alternating rounds at batch 1, 16, 256, 10000 (1 thread).
# 5. bench/gbdt/report.py: medians over the rounds, ratios peer/modeld, written to
#    BENCH_GBDT_DIR/last-run.md and printed. Raw lines in BENCH_GBDT_DIR/raw.txt.
#
# Timing: CPU time of the scoring thread (1 thread) or of the process (2 threads), which
# other load on a shared machine disturbs far less than wall time; wall time is reported
# too, and the 1 -> 2 thread scaling is wall(1) / wall(2), meaningful only when the other
# vCPU is idle (the report prints the load average next to it).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${BENCH_GBDT_DIR:-build/bench/gbdt}
REPS=${BENCH_REPS:-5}
PY=/usr/bin/python3 # Debian's python3 (python3-xgboost), not a pyenv shim
mkdir -p "$OUT"
log() { printf '[bench/gbdt] %s\n' "$*" >&2; }

if [ ! -f "$OUT/model.json" ]; then
    log "training the XGBoost model into $OUT (minutes)"
    $PY bench/gbdt/train_xgb.py "$OUT"
fi
make -s build/release/libmodeld.a
cc -O2 -std=c11 -D_GNU_SOURCE -I. -o "$OUT/gbdt_speed" tools/gbdt_speed.c \
    build/release/libmodeld.a -lpthread -lm

LGB_OUT=$OUT/lgb
if [ -n "${LIGHTGBM_DIR:-}" ]; then
    [ -f "$LIGHTGBM_DIR/lib_lightgbm.so" ] || { log "no lib_lightgbm.so in $LIGHTGBM_DIR"; exit 1; }
    mkdir -p "$LGB_OUT"
    g++ -O2 -std=c++17 -I "$LIGHTGBM_DIR/include" bench/gbdt/lightgbm_capi.cpp \
        -L "$LIGHTGBM_DIR" -l_lightgbm -Wl,-rpath,"$LIGHTGBM_DIR" -o "$LGB_OUT/lgb_bench"
    if [ ! -f "$LGB_OUT/model.txt" ]; then
        log "training the LightGBM model into $LGB_OUT (minutes)"
        "$LGB_OUT/lgb_bench" "$LGB_OUT" > "$LGB_OUT/train.log"
    fi
else
    log "LIGHTGBM_DIR not set: no LightGBM comparison"
fi

RAW=$OUT/raw.txt
{
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "rev $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- models tools || echo +dirty)"
    echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) vCPUs"
    echo "xgboost $($PY -c 'import xgboost; print(xgboost.__version__)')"
} > "$RAW"
modeld_xgb() {
    "$OUT/gbdt_speed" "$OUT/model.json" "$OUT/rows.f64" 100 "$OUT/margin.f64" | sed "s/^/xgbmodel /"
}
xgb() {
    $PY bench/gbdt/xgb_capi.py "$OUT/model.json" "$OUT/rows.f64" 100 | sed "s/^/xgbmodel /"
}
modeld_lgb() {
    "$OUT/gbdt_speed" "$LGB_OUT/model.txt" "$LGB_OUT/rows.f64" 100 "$LGB_OUT/margin.f64" |
        grep -v 'threads 2' | sed "s/^/lgbmodel /"
}
lgb() {
    "$LGB_OUT/lgb_bench" "$LGB_OUT" | sed "s/^/lgbmodel /"
}
for r in $(seq "$REPS"); do
    log "round $r of $REPS"
    echo "round $r load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RAW"
    if [ $((r % 2)) = 1 ]; then modeld_xgb >> "$RAW"; xgb >> "$RAW"
    else xgb >> "$RAW"; modeld_xgb >> "$RAW"; fi
    if [ -n "${LIGHTGBM_DIR:-}" ]; then
        if [ $((r % 2)) = 1 ]; then modeld_lgb >> "$RAW"; lgb >> "$RAW"
        else lgb >> "$RAW"; modeld_lgb >> "$RAW"; fi
    fi
done
$PY bench/gbdt/report.py "$RAW" | tee "$OUT/last-run.md"
