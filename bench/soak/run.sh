#!/usr/bin/env bash
# Soak test (issue 8): SOAK_SECONDS of mixed load on loopback against one modeld, then
# pass/fail on: zero 5xx, zero transport errors, every answer as expected, /metrics counters
# never going down, modeld's request counters equal to the client's, RSS at the end within
# +5 % of RSS after the first minute, SIGTERM -> exit code 0, no sanitizer output.
#
#   bench/soak/run.sh                                           # 10 minutes, build/modeld
#   SOAK_SECONDS=90 MODELD_BIN=build/asan/modeld bench/soak/run.sh   # short run under ASan+UBSan
#
# What runs at once (bench/soak/driver.py has the details): :predict clients (LR and GBDT,
# keep-alive), :rank, :score-auc (JSON, NDJSON, CSV, every 8th a 9-15 MB body), /metrics every
# second, :generate / /v1/completions SSE streams (a quarter hang up mid-stream), a reload
# every 10 s (alternately the admin :reload call and a new version folder published by
# rename), and a trickle of bad requests that must get their 4xx. modeld runs on
# 127.0.0.1:0 (--ready-file) from a private copy of the binary, with a temporary copy of
# conf/models and an admin token; everything it starts is stopped on exit.
#
# Knobs: MODELD_BIN (build/modeld), SOAK_SECONDS (600), SOAK_OUT (bench/soak/last-run.md),
# SOAK_RSS_ENFORCE (1; 0 reports the RSS check without failing on it, e.g. under ASan whose
# quarantine grows), SOAK_GLIBC_TUNABLES (fixed malloc mmap/trim thresholds, see below),
# BENCH_KEEP_TMP (0). Exit status 0 only when every criterion passes.
set -euo pipefail

cd "$(dirname "$0")/../.."

MODELD_BIN=${MODELD_BIN:-build/modeld}
PYTHON=${PYTHON:-/usr/bin/python3}
SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_OUT=${SOAK_OUT:-bench/soak/last-run.md}
SOAK_RSS_ENFORCE=${SOAK_RSS_ENFORCE:-1}
BENCH_KEEP_TMP=${BENCH_KEEP_TMP:-0}
GLIBC_TUNE=${SOAK_GLIBC_TUNABLES-glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072}
DRIVER=bench/soak/driver.py

BENCH_TAG=soak
BENCH_STOP_VARS="DRIVER_PID MODELD_PID"
# shellcheck source=bench/lib.sh
. bench/lib.sh

for tool in curl "$PYTHON" timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
[ -x "$MODELD_BIN" ] || die "$MODELD_BIN missing: run make (or make MODE=asan build/asan/modeld) first"

MODELD_PID=""
DRIVER_PID=""
bench_tmp modeld-soak

# A private copy: others may rebuild the binary during the run.
cp "$MODELD_BIN" "$TMP/modeld"
MODELD_DESC="$MODELD_BIN built $(date -u -r "$MODELD_BIN" '+%Y-%m-%d %H:%M UTC'), sha256 $(sha256sum "$TMP/modeld" | cut -c1-12)"
cp -r conf/models "$TMP/repo"
mkdir "$TMP/stage"  # same filesystem as the repository, for rename(2)
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$TMP/token"
"$PYTHON" - conf/modeld.json "$TMP" >"$TMP/modeld.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
tmp = sys.argv[2]
c.update({"model_repository": tmp + "/repo", "admin_token_file": tmp + "/token",
          "listen": "127.0.0.1:0", "log_level": "info"})
print(json.dumps(c, indent=1))
EOF

START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- server handlers models 2>/dev/null || COMMIT="$COMMIT (+ uncommitted changes)"
log "$START_DATE: $MODELD_DESC, $SOAK_SECONDS s, load $LOAD_BEFORE"

# Sanitizer builds: report leaks at exit and make any report fatal (exit code != 0).
# glibc: a fixed mmap threshold and trim threshold, so freed big buffers (15 MB bodies,
# streams) go back to the OS and RSS with no request in flight tracks live memory, not
# which buffer sizes happened to be freed last (the default threshold adapts upwards and
# keeps them in the heap). SOAK_GLIBC_TUNABLES= (empty) runs with glibc's defaults.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    GLIBC_TUNABLES=$GLIBC_TUNE "$TMP/modeld" --config "$TMP/modeld.json" --ready-file "$TMP/ready" 2>"$TMP/modeld.log" &
MODELD_PID=$!

for _ in $(seq 300); do
    [ -s "$TMP/ready" ] && break
    kill -0 "$MODELD_PID" 2>/dev/null || die "modeld exited at start: $(tail -5 "$TMP/modeld.log")"
    sleep 0.1
done
[ -s "$TMP/ready" ] || die "no ready file after 30 s"
ADDR=$(cat "$TMP/ready")
for _ in $(seq 600); do
    [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$ADDR/readyz")" = 200 ] && break
    sleep 0.1
done
[ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$ADDR/readyz")" = 200 ] || die "models not ready after 60 s"
log "modeld pid $MODELD_PID on $ADDR; load phase starts"

timeout $((SOAK_SECONDS + 600)) "$PYTHON" "$DRIVER" run --addr "$ADDR" --pid "$MODELD_PID" --repo "$TMP/repo" \
    --stage "$TMP/stage" --token-file "$TMP/token" --seconds "$SOAK_SECONDS" --out "$TMP/results.json" &
DRIVER_PID=$!
DRIVER_RC=0
wait "$DRIVER_PID" || DRIVER_RC=$?
DRIVER_PID=""
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
[ "$DRIVER_RC" = 0 ] || log "driver exited with $DRIVER_RC"

# SIGTERM: modeld drains (drain_timeout_ms) and must exit 0.
MODELD_RC=missing
if kill -0 "$MODELD_PID" 2>/dev/null; then
    kill -TERM "$MODELD_PID"
    for _ in $(seq 300); do
        kill -0 "$MODELD_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$MODELD_PID" 2>/dev/null; then
        log "modeld still running 30 s after SIGTERM; killing it"
        kill -KILL "$MODELD_PID" 2>/dev/null || true
    fi
fi
MODELD_RC=0
wait "$MODELD_PID" || MODELD_RC=$?
MODELD_PID=""
SAN=$(grep -cE 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$TMP/modeld.log" || true)
[ "$SAN" = 0 ] || grep -m 20 -E -A 20 'Sanitizer|runtime error:' "$TMP/modeld.log" >&2 || true
[ -f "$TMP/results.json" ] || die "the driver wrote no results (exit $DRIVER_RC)"

{
    echo "Run $START_DATE on $(nproc) vCPUs ($(uname -r)); load average (1/5/15 min) before $LOAD_BEFORE, after $LOAD_AFTER."
    echo "Commit $COMMIT; $MODELD_DESC."
    echo "Command: SOAK_SECONDS=$SOAK_SECONDS MODELD_BIN=$MODELD_BIN bench/soak/run.sh (modeld with GLIBC_TUNABLES=$GLIBC_TUNE)"
    echo "modeld log: $(wc -l <"$TMP/modeld.log") lines, $(grep -c ' error ' "$TMP/modeld.log" || true) at level error, $(grep -c ' warn ' "$TMP/modeld.log" || true) at level warn."
    echo
} >"$TMP/report.md"
REPORT_RC=0
"$PYTHON" "$DRIVER" report --results "$TMP/results.json" --modeld-rc "$MODELD_RC" --sanitizer "$SAN" \
    --rss-enforce "$SOAK_RSS_ENFORCE" >>"$TMP/report.md" || REPORT_RC=$?
[ "$DRIVER_RC" = 0 ] || { echo "**FAIL**: the driver exited with $DRIVER_RC" >>"$TMP/report.md"; REPORT_RC=1; }
cp "$TMP/report.md" "$SOAK_OUT"
cp "$TMP/results.json" "${SOAK_OUT%.md}.json"
cat "$TMP/report.md"
log "report written to $SOAK_OUT (raw: ${SOAK_OUT%.md}.json)"
exit "$REPORT_RC"
