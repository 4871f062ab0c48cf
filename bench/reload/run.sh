#!/usr/bin/env bash
# Hot-reload benchmark (issue 6): detect-to-serving latency, and :predict latency on a small
# model while a large one reloads.
#
#   bench/reload/run.sh                                   # full run, ~8-10 minutes
#   RELOAD_PUBLISHES=3 BENCH_DURATION=3s BENCH_REPS=1 bench/reload/run.sh   # smoke run
#
# All on 127.0.0.1, every step bounded by a timeout, everything started is killed on exit.
#   0. trains a ~GBDT_MB MB XGBoost binary:logistic JSON model on synthetic data
#      (bench/reload/train_gbdt.py) into the temp dir (never in the tree), builds a temp
#      repository: bc (conf/models/breast_cancer, the wrk target), lr (a copy of the same LR
#      model, the publish target), gb (the large model), kjv (the demo transformer
#      conf/models/kjv_llama, 4.7 MB safetensors + tokenizer) and t15 (random weights of
#      llama2.c's stories15M shape from bench/generate/make_model.py, 58 MB model.bin), and a
#      config derived from conf/modeld.json with repository_poll_ms / repository_settle_ms /
#      an admin token file;
#   1. detect-to-serving: RELOAD_PUBLISHES new versions of each of RELOAD_MODELS, each
#      published by rename(2) of a staged folder and separately by writing in place + a
#      READY marker; time from the rename / READY to the first answer from the new version
#      (bench/reload/driver.py publish; :predict, or for a transformer :generate of one token,
#      in a tight loop on one keep-alive connection);
#   2. wrk on bc's :predict (keep-alive, BENCH_CONNS connections, bench/predict.lua) for
#      BENCH_DURATION, BENCH_REPS rounds of {no reload, reload} with the order flipped every
#      round; during "reload" gb is reloaded with POST /v1/models/gb:reload every
#      RELOAD_INTERVAL_S s (start to start; bench/reload/driver.py reload);
#   3. prints a markdown report (medians, ratio) and writes it to BENCH_OUT.
#
# CPU placement (BENCH_PIN=auto and 2+ CPUs): modeld (all its threads, so the loader too) on
# CPU 0, wrk and the drivers on the other CPUs, as in bench/run.sh. BENCH_PIN=0: no pinning.
#
# Knobs: MODELD_BIN (build/modeld), RELOAD_POLL_MS (2000), RELOAD_SETTLE_MS (500),
# RELOAD_PUBLISHES (12), RELOAD_DETECT (1; 0 skips step 1), RELOAD_MODELS (lr gb kjv t15), RELOAD_GAP_S (1.0), RELOAD_INTERVAL_S (1.5), GBDT_MB (30),
# BENCH_CONNS (16), BENCH_DURATION (10s), BENCH_REPS (3), BENCH_PIN (auto|0|1),
# BENCH_OUT (bench/reload/last-run.md), BENCH_KEEP_TMP (0), GBDT_SRC (a folder with the
# model.json + row.json of an earlier train_gbdt.py run, to skip training).
set -euo pipefail

cd "$(dirname "$0")/../.."

MODELD_BIN=${MODELD_BIN:-build/modeld}
WRK_BIN=${WRK_BIN:-wrk}
PYTHON=${PYTHON:-/usr/bin/python3}
RELOAD_POLL_MS=${RELOAD_POLL_MS:-2000}
RELOAD_SETTLE_MS=${RELOAD_SETTLE_MS:-500}
RELOAD_PUBLISHES=${RELOAD_PUBLISHES:-12}
RELOAD_DETECT=${RELOAD_DETECT:-1}
RELOAD_MODELS=${RELOAD_MODELS:-lr gb kjv t15}
RELOAD_GAP_S=${RELOAD_GAP_S:-1.0}
RELOAD_INTERVAL_S=${RELOAD_INTERVAL_S:-1.5}
GBDT_MB=${GBDT_MB:-30}
GBDT_SRC=${GBDT_SRC:-}
BENCH_CONNS=${BENCH_CONNS:-16}
BENCH_DURATION=${BENCH_DURATION:-10s}
BENCH_REPS=${BENCH_REPS:-3}
BENCH_PIN=${BENCH_PIN:-auto}
BENCH_OUT=${BENCH_OUT:-bench/reload/last-run.md}
BENCH_KEEP_TMP=${BENCH_KEEP_TMP:-0}
DRIVER=bench/reload/driver.py
LUA=bench/predict.lua

BENCH_TAG=reload-bench
BENCH_STOP_VARS="RELOADER_PID MODELD_PID"
# shellcheck source=bench/lib.sh
. bench/lib.sh

for tool in "$WRK_BIN" curl "$PYTHON" timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
[ -x "$MODELD_BIN" ] || die "$MODELD_BIN missing: run make first"

MODELD_PID=""
RELOADER_PID=""
bench_tmp modeld-reload-bench

# --- CPU placement -----------------------------------------------------------------------
bench_pin
PIN_DESC="no pinning"
[ "$PINNED" = 1 ] && PIN_DESC="modeld (all threads, the loader too) on CPU 0, wrk and drivers on CPU $CLIENT_CPUSET"
BENCH_THREADS=${BENCH_THREADS:-$CLIENT_CPUS}
CLK_TCK=$(getconf CLK_TCK)

cpu_ticks() { # utime+stime of a whole process
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*") "}
    echo "$stat" | awk '{print $12 + $13}'
}
machine_busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
children_ticks() { # CPU of this shell's waited-for children, in ticks (as in bench/run.sh)
    times >"$TMP/times"
    awk -v hz="$CLK_TCK" 'NR == 2 {
        n = split($0, f, /[ms ]+/); t = 0
        for (i = 1; i + 1 <= n; i += 2) if (f[i] != "") t += f[i] * 60 + f[i + 1]
        printf "%d\n", t * hz }' "$TMP/times"
}
dur_s() { local d=$1; case $d in *s) echo "${d%s}" ;; *m) echo $((${d%m} * 60)) ;; *) echo "$d" ;; esac; }

# --- 0. models, repository, config ---------------------------------------------------------
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
# run a private copy: others may rebuild build/modeld during the run
cp "$MODELD_BIN" "$TMP/modeld"
MODELD_DESC="$MODELD_BIN built $(date -u -r "$MODELD_BIN" '+%H:%M UTC'), sha256 $(sha256sum "$TMP/modeld" | cut -c1-12)"
MODELD_BIN=$TMP/modeld
if [ -z "$GBDT_SRC" ]; then
    log "training the ~$GBDT_MB MB XGBoost model (synthetic data; bounded to 5 minutes)"
    GBDT_SRC=$TMP/gbdt
    timeout 300 "$PYTHON" bench/reload/train_gbdt.py "$GBDT_SRC" --target-mb "$GBDT_MB" \
        >"$TMP/train.json" || die "training failed or took over 5 minutes"
    cp "$TMP/train.json" "$GBDT_SRC/train.json"  # for reuse with GBDT_SRC (BENCH_KEEP_TMP=1)
elif [ -f "$GBDT_SRC/train.json" ]; then
    cp "$GBDT_SRC/train.json" "$TMP/train.json"
else
    echo "{\"path\": \"$GBDT_SRC/model.json\", \"bytes\": $(stat -c %s "$GBDT_SRC/model.json"), \"train_s\": null}" >"$TMP/train.json"
fi
log "model: $(cat "$TMP/train.json")"
GB_BODY="{\"instances\":[$(cat "$GBDT_SRC/row.json")]}"
LR_BODY=$("$PYTHON" - "$LUA" <<'EOF'
import re, sys
src = open(sys.argv[1]).read()
nums = re.search(r"local row = \{(.*?)\}", src, re.S).group(1)
vals = [v.strip() for v in nums.replace("\n", " ").split(",") if v.strip()]
print('{"instances":[[' + ",".join(vals) + "]]}")
EOF
)

REPO=$TMP/repo
mkdir -p "$REPO/bc" "$REPO/lr" "$REPO/gb/1" "$REPO/kjv" "$REPO/t15/1" "$TMP/stage" "$TMP/src-gb" "$TMP/src-lr" "$TMP/src-t15"
cp -r conf/models/breast_cancer/1 "$REPO/bc/1"
cp -r conf/models/breast_cancer/1 "$REPO/lr/1"
cp conf/models/breast_cancer/config.json "$REPO/bc/"
cp conf/models/breast_cancer/config.json "$REPO/lr/"
echo '{"kind": "gbdt"}' >"$REPO/gb/config.json"
cp "$GBDT_SRC/model.json" "$REPO/gb/1/model.json"
cp "$GBDT_SRC/model.json" "$TMP/src-gb/model.json"
cp conf/models/breast_cancer/1/* "$TMP/src-lr/"
GB_BYTES=$(stat -c %s "$GBDT_SRC/model.json")
cp -r conf/models/kjv_llama/1 "$REPO/kjv/1"
cp -r conf/models/kjv_llama/1 "$TMP/src-kjv"
timeout 120 "$PYTHON" bench/generate/make_model.py "$TMP/t15-gen" --shape 15M >/dev/null ||
    die "bench/generate/make_model.py failed"
cp "$TMP/t15-gen/model.bin" "$TMP/src-t15/model.bin"  # the llama2.c form only: one artifact
cp "$TMP/t15-gen/model.bin" "$REPO/t15/1/model.bin"
rm -rf "$TMP/t15-gen"
KJV_BYTES=$(du -sb "$TMP/src-kjv" | cut -f1)
T15_BYTES=$(stat -c %s "$TMP/src-t15/model.bin")
GEN_BODY='{"prompt":[1],"max_tokens":1}'

(umask 077; "$PYTHON" -c 'import secrets; print(secrets.token_hex(24))' >"$TMP/admin.token")
"$PYTHON" - conf/modeld.json "$TMP/modeld.json" "$REPO" "$RELOAD_POLL_MS" "$RELOAD_SETTLE_MS" "$TMP/admin.token" <<'EOF'
import json, sys
src, dst, repo, poll, settle, token = sys.argv[1:]
c = json.load(open(src))
c.update(model_repository=repo, repository_poll_ms=int(poll), repository_settle_ms=int(settle),
         admin_token_file=token, log_level="warn")
json.dump(c, open(dst, "w"), indent=1)
EOF

# --- start modeld ----------------------------------------------------------------------------
"${SERVER_PIN[@]}" "$MODELD_BIN" --config "$TMP/modeld.json" --listen 127.0.0.1:0 \
    --ready-file "$TMP/modeld.ready" 2>"$TMP/modeld.log" &
MODELD_PID=$!
deadline=$((SECONDS + 20))
while [ ! -s "$TMP/modeld.ready" ]; do
    kill -0 "$MODELD_PID" 2>/dev/null || { tail -20 "$TMP/modeld.log" >&2; die "modeld exited at startup"; }
    [ $SECONDS -lt "$deadline" ] || die "modeld wrote no ready file within 20 s"
    sleep 0.05
done
ADDR=$(head -1 "$TMP/modeld.ready")
deadline=$((SECONDS + 120))
until [ "$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 5 "http://$ADDR/readyz")" = 200 ]; do
    kill -0 "$MODELD_PID" 2>/dev/null || { tail -20 "$TMP/modeld.log" >&2; die "modeld died while loading"; }
    [ $SECONDS -lt "$deadline" ] || die "not ready within 120 s: $(cat "$TMP/body")"
    sleep 0.1
done
log "modeld pid $MODELD_PID at $ADDR, ready; $PIN_DESC"
body_of() { case $1 in gb) echo "$GB_BODY" ;; kjv|t15) echo "$GEN_BODY" ;; *) echo "$LR_BODY" ;; esac; }
path_of() { case $1 in kjv|t15) echo "/v1/models/$1:generate" ;; *) echo "/v1/models/$1:predict" ;; esac; }
for m in bc gb kjv t15; do
    code=$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 10 -X POST -H 'Content-Type: application/json' \
        --data-binary "$(body_of $m)" "http://$ADDR$(path_of $m)")
    [ "$code" = 200 ] || die "$m :predict answered $code: $(head -c 300 "$TMP/body")"
    log "$m predict: $(cat "$TMP/body")"
done
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 120 -X POST \
    -H "Authorization: Bearer $(cat "$TMP/admin.token")" "http://$ADDR/v1/models/gb:reload")
[ "$code" = 200 ] || die "gb :reload answered $code: $(head -c 300 "$TMP/body")"
log "gb :reload: $(head -c 300 "$TMP/body")"

# --- 1. detect-to-serving -----------------------------------------------------------------------
: >"$TMP/detect.jsonl"
declare -A next_v=([lr]=2 [gb]=2 [kjv]=2 [t15]=2)
MODES="rename ready"; [ "$RELOAD_DETECT" = 1 ] || MODES=""
for mode in $MODES; do
    for m in $RELOAD_MODELS; do
        v=${next_v[$m]}
        log "detect: $RELOAD_PUBLISHES publishes of $m by $mode (versions $v..)"
        timeout $((RELOAD_PUBLISHES * 70 + 30)) "${CLIENT_PIN[@]}" "$PYTHON" "$DRIVER" publish \
            --addr "$ADDR" --repo "$REPO" --model $m --src "$TMP/src-$m" --stage "$TMP/stage" \
            --mode $mode --first-version "$v" --count "$RELOAD_PUBLISHES" --body "$(body_of $m)" \
            --path "$(path_of $m)" --gap-s "$RELOAD_GAP_S" --timeout-s 60 >>"$TMP/detect.jsonl" ||
            die "publish driver failed ($m, $mode); see $TMP/detect.jsonl"
        log "  detect_ms: $(grep "\"model\": \"$m\", \"mode\": \"$mode\"" "$TMP/detect.jsonl" |
            grep -o '"detect_ms": [0-9.]*' | cut -d' ' -f2 | tr '\n' ' ')"
        next_v[$m]=$((v + RELOAD_PUBLISHES))
    done
done
kill -0 "$MODELD_PID" 2>/dev/null || die "modeld died during the publishes"

# --- 2. :predict latency on bc with and without gb reloading ----------------------------------
: >"$TMP/runs.tsv"
SECS=$(dur_s "$BENCH_DURATION")
run_wrk() { # phase rep -> appends a line to runs.tsv
    local phase=$1 rep=$2 out=$TMP/wrk.out t0 t1 w0 w1 b0 b1 c0 c1 r1=0 n_rel=""
    if [ "$phase" = reload ]; then
        "${CLIENT_PIN[@]}" "$PYTHON" "$DRIVER" reload --addr "$ADDR" --model gb \
            --token-file "$TMP/admin.token" --interval-s "$RELOAD_INTERVAL_S" --out "$TMP/reloads-$rep.txt" &
        RELOADER_PID=$!
    fi
    children_ticks >"$TMP/c0"
    t0=$(cpu_ticks "$MODELD_PID"); w0=$(date +%s%N); b0=$(machine_busy_ticks)
    BENCH_PATH=/v1/models/bc:predict timeout $((SECS + 20)) "${CLIENT_PIN[@]}" "$WRK_BIN" \
        -t"$BENCH_THREADS" -c"$BENCH_CONNS" -d"$BENCH_DURATION" --latency -s "$LUA" "http://$ADDR" \
        >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed or timed out"; }
    t1=$(cpu_ticks "$MODELD_PID"); w1=$(date +%s%N); b1=$(machine_busy_ticks)
    if [ "$phase" = reload ]; then
        r1=$(cpu_ticks "$RELOADER_PID")
        stop_pid "$RELOADER_PID"
        RELOADER_PID=""
        n_rel=$(awk '{n++; if ($2 != 200) bad++} END {printf " reloads=%d reload_errors=%d", n, bad + 0}' "$TMP/reloads-$rep.txt")
    fi
    children_ticks >"$TMP/c1"
    c0=$(cat "$TMP/c0"); c1=$(cat "$TMP/c1")
    # c1 - c0 = wrk + the reloader (waited for in stop_pid); r1 = the reloader's share
    kill -0 "$MODELD_PID" 2>/dev/null || die "modeld died during the $phase run"
    cat "$out" >>"$TMP/wrk-all.out"
    printf '%s\t%s\t%s%s%s\n' "$phase" "$rep" "$(grep '^BENCH ' "$out" | tail -1)" "$n_rel" \
        "$(awk -v t=$((t1 - t0)) -v c=$((c1 - c0)) -v r="$r1" -v b=$((b1 - b0)) -v hz="$CLK_TCK" \
            -v ns=$((w1 - w0)) 'BEGIN {s = ns / 1e9; if (c > r) c -= r; else c = 0
            o = b - t - c - r; if (o < 0) o = 0
            printf " cpu_pct=%.1f client_pct=%.1f other_pct=%.1f", 100 * t / hz / s, 100 * (c + r) / hz / s, 100 * o / hz / s}')" \
        >>"$TMP/runs.tsv"
    log "$phase #$rep: $(tail -1 "$TMP/runs.tsv" | grep -o 'rps=[^ ]*\|p50_us=[^ ]*\|p99_us=[^ ]*\|max_us=[^ ]*\|status_errors=[^ ]*\|reloads=[^ ]*\|cpu_pct=[^ ]*\|other_pct=[^ ]*' | tr '\n' ' ')"
}
log "wrk warm-up 2s"
BENCH_PATH=/v1/models/bc:predict timeout 30 "${CLIENT_PIN[@]}" "$WRK_BIN" -t"$BENCH_THREADS" -c"$BENCH_CONNS" \
    -d2s -s "$LUA" "http://$ADDR" >/dev/null 2>&1 || die "wrk warm-up failed"
for rep in $(seq "$BENCH_REPS"); do
    if [ $((rep % 2)) = 1 ]; then order="none reload"; else order="reload none"; fi
    for phase in $order; do run_wrk "$phase" "$rep"; done
done
curl -s --max-time 5 "http://$ADDR/metrics" >"$TMP/metrics.txt" || true
RSS_KB=$(awk '/^VmRSS:/ {print $2}' "/proc/$MODELD_PID/status")
HWM_KB=$(awk '/^VmHWM:/ {print $2}' "/proc/$MODELD_PID/status")
WARN_LINES=$(grep -c . "$TMP/modeld.log" || true)

# --- 3. report ------------------------------------------------------------------------------------
export MODELD_DESC START_DATE PIN_DESC BENCH_DURATION BENCH_THREADS BENCH_REPS BENCH_CONNS RELOAD_POLL_MS \
    RELOAD_SETTLE_MS RELOAD_INTERVAL_S RELOAD_GAP_S GB_BYTES KJV_BYTES T15_BYTES RSS_KB HWM_KB WARN_LINES
"$PYTHON" bench/reload/report.py "$TMP" "$BENCH_OUT"
log "report written to $BENCH_OUT"
