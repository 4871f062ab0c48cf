#!/usr/bin/env bash
# Where does :predict latency go while a large model reloads? A diagnostic next to run.sh.
#
#   GBDT_SRC=DIR bench/reload/stall.sh     # DIR: model.json + row.json from train_gbdt.py
#
# Starts modeld (unpinned unless BENCH_PIN=1) on a temp repository with bc (the demo LR model)
# and gb (the large XGBoost model), then sends bc :predict back to back on ONE keep-alive
# connection (bench/reload/driver.py probe) for STALL_S seconds without reloads, and again
# for STALL_S seconds while gb is reloaded with POST :reload every RELOAD_INTERVAL_S s. Each
# request's start and round trip are lined up with each reload's start and answer (the swap
# happens just before the answer) and the round trips are reported by window: no reload;
# while a load runs; within 25 ms after a :reload answered (the swap, the release of the old
# version); the rest. Loopback only, bounded, everything killed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODELD_BIN=${MODELD_BIN:-build/modeld}
PYTHON=${PYTHON:-/usr/bin/python3}
GBDT_SRC=${GBDT_SRC:?set GBDT_SRC to a folder with model.json and row.json (train_gbdt.py)}
STALL_S=${STALL_S:-20}
RELOAD_INTERVAL_S=${RELOAD_INTERVAL_S:-1.5}
BENCH_PIN=${BENCH_PIN:-0}
DRIVER=bench/reload/driver.py

BENCH_TAG=stall
BENCH_STOP_VARS="RELOADER_PID MODELD_PID"
# shellcheck source=bench/lib.sh
. bench/lib.sh

MODELD_PID=""
RELOADER_PID=""
bench_tmp modeld-stall

PIN=()
[ "$BENCH_PIN" = 1 ] && PIN=(taskset -c 0)
cp "$MODELD_BIN" "$TMP/modeld"
mkdir -p "$TMP/repo/bc" "$TMP/repo/gb/1"
cp -r conf/models/breast_cancer/1 conf/models/breast_cancer/config.json "$TMP/repo/bc/"
echo '{"kind": "gbdt"}' >"$TMP/repo/gb/config.json"
cp "$GBDT_SRC/model.json" "$TMP/repo/gb/1/"
(umask 077; "$PYTHON" -c 'import secrets; print(secrets.token_hex(24))' >"$TMP/admin.token")
"$PYTHON" - "$TMP" <<'EOF'
import json, sys
t = sys.argv[1]
c = json.load(open("conf/modeld.json"))
c.update(model_repository=t + "/repo", admin_token_file=t + "/admin.token", log_level="warn")
json.dump(c, open(t + "/modeld.json", "w"))
EOF
"${PIN[@]}" "$TMP/modeld" --config "$TMP/modeld.json" --listen 127.0.0.1:0 --ready-file "$TMP/ready" 2>"$TMP/modeld.log" &
MODELD_PID=$!
for i in $(seq 600); do
    [ -s "$TMP/ready" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$(head -1 "$TMP/ready")/readyz")" = 200 ] && break
    kill -0 "$MODELD_PID" 2>/dev/null || die "modeld exited"
    sleep 0.1
done
ADDR=$(head -1 "$TMP/ready")
BODY=$("$PYTHON" -c '
import re
src = open("bench/predict.lua").read()
vals = [v.strip() for v in re.search(r"local row = \{(.*?)\}", src, re.S).group(1).replace("\n", " ").split(",") if v.strip()]
print("{\"instances\":[[" + ",".join(vals) + "]]}")')
log "modeld at $ADDR (${PIN[*]:-no pinning}); probe ${STALL_S}s without reloads"
timeout $((STALL_S + 30)) "$PYTHON" "$DRIVER" probe --addr "$ADDR" --path /v1/models/bc:predict --body "$BODY" \
    --seconds "$STALL_S" --out "$TMP/probe-none.txt"
log "probe ${STALL_S}s with gb :reload every ${RELOAD_INTERVAL_S}s"
"$PYTHON" "$DRIVER" reload --addr "$ADDR" --model gb --token-file "$TMP/admin.token" \
    --interval-s "$RELOAD_INTERVAL_S" --out "$TMP/reloads.txt" &
RELOADER_PID=$!
timeout $((STALL_S + 30)) "$PYTHON" "$DRIVER" probe --addr "$ADDR" --path /v1/models/bc:predict --body "$BODY" \
    --seconds "$STALL_S" --out "$TMP/probe-reload.txt"
stop_pid "$RELOADER_PID"
RELOADER_PID=""
"$PYTHON" - "$TMP" <<'EOF'
import statistics, sys
t = sys.argv[1]
def rows(f):
    return [tuple(float(x) for x in l.split()) for l in open(f"{t}/{f}")]
none, rel, reloads = rows("probe-none.txt"), rows("probe-reload.txt"), rows("reloads.txt")
spans = [(r[3], r[3] + r[2] / 1000) for r in reloads]  # (start, answer) of each :reload
def window(start, rtt_ms):
    end = start + rtt_ms / 1000
    for s, e in spans:
        if start <= e + 0.025 and end >= e:
            return "within 25 ms after a :reload answered"
    for s, e in spans:
        if s <= start <= e:
            return "while a load runs"
    return "reload phase, between loads"
def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]
groups = {"no reload": [r[1] for r in none]}
for r in rel:
    groups.setdefault(window(r[0], r[1]), []).append(r[1])
bad = sum(1 for r in none + rel if r[2] != 200)
print(f"{len(reloads)} reloads, median {statistics.median(r[2] for r in reloads):.0f} ms; non-200 probe answers: {bad}")
print("| window | requests | p50 ms | p99 ms | p99.9 ms | max ms | over 5 ms |")
print("|---|---:|---:|---:|---:|---:|---:|")
for k in ("no reload", "while a load runs", "within 25 ms after a :reload answered", "reload phase, between loads"):
    xs = groups.get(k, [])
    if xs:
        print(f"| {k} | {len(xs)} | {q(xs, .5):.3f} | {q(xs, .99):.3f} | {q(xs, .999):.3f} | {max(xs):.1f} | "
              f"{sum(x > 5 for x in xs)} |")
EOF
