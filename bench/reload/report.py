#!/usr/bin/python3
"""Markdown report of bench/reload/run.sh: report.py TMP_DIR OUT_FILE (settings from the env)."""
import json, os, statistics, subprocess, sys

tmp, out_path = sys.argv[1], sys.argv[2]
env = os.environ


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=5).stdout.strip()
    except Exception:
        return "?"


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, q):  # linear interpolation between closest ranks
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ms(us):
    return us / 1000.0


train = json.load(open(os.path.join(tmp, "train.json")))
det = [json.loads(l) for l in open(os.path.join(tmp, "detect.jsonl"))]
runs = []
for row in open(os.path.join(tmp, "runs.tsv")):
    phase, rep, line = row.rstrip("\n").split("\t")
    d = {k: float(v) for k, v in (t.split("=", 1) for t in line.split() if "=" in t)}
    runs.append(dict(phase=phase, rep=int(rep), **d))

cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-")
dirty = "+dirty" if sh("git status --porcelain -- server handlers models") else ""
mb = int(env["GB_BYTES"]) / 1e6
L = []
L.append(f"# Hot reload: detect-to-serving, :predict latency during reloads ({env['START_DATE']})")
L.append("")
L.append(f"- machine: {sh('nproc')} CPUs, {cpu}, kernel {sh('uname -r')}; shared and noisy; "
         f"load average at the end {' '.join(open('/proc/loadavg').read().split()[:3])}")
L.append(f"- modeld: {env.get('MODELD_DESC', '?')}; tree at {sh('git rev-parse --short HEAD')}{dirty}; `--log-level warn`, repository_poll_ms "
         f"{env['RELOAD_POLL_MS']}, repository_settle_ms {env['RELOAD_SETTLE_MS']}; {env['PIN_DESC']}")
L.append(f"- large model: XGBoost binary:logistic, {train.get('trees', '?')} trees of depth <= 10, "
         f"{mb:.1f} MB JSON (synthetic data, trained in {train.get('train_s')} s)")
L.append("")
if det:
    L.append("Detect-to-serving: time from rename(2) of the staged folder / creation of READY to the first "
             ":predict (transformers: :generate of 1 token) answered by the new version (polled on one keep-alive connection); load = modeld's own "
             "modeld_model_load_duration_seconds for that version; mean ms per poll = detect time / :predict calls "
             "made while waiting (one keep-alive connection, so this is the round trip of the polled model's "
             ":predict during the load).")
    L.append("")
    L.append("| model | publish | n | median ms | p90 ms | min ms | max ms | load median ms | mean ms per poll | slowest poll ms (median) | non-200 while polling | versions answering |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    names = {"lr": "LR breast_cancer", "gb": f"XGBoost {mb:.0f} MB",
             "kjv": f"transformer kjv_llama ({int(env.get('KJV_BYTES', 0)) / 1e6:.1f} MB folder)",
             "t15": f"transformer stories15M-shaped ({int(env.get('T15_BYTES', 0)) / 1e6:.0f} MB .bin)"}
    for m in names:
        for mode in ("rename", "ready"):
            rs = [r for r in det if r["model"] == m and r["mode"] == mode]
            if not rs:
                continue
            ds = [r["detect_ms"] for r in rs if r["detect_ms"] is not None]
            lds = [r["load_ms"] for r in rs if r["load_ms"] is not None]
            bad = sum(sum(r["non_200"].values()) for r in rs)
            odd = [r["versions_seen"] for r in rs if not set(r["versions_seen"]) <= {r["version"] - 1, r["version"]}]
            name = names[m]
            L.append(f"| {name} | {mode} | {len(ds)} | {med(ds):.1f} | {pct(ds, 0.9):.1f} | {min(ds):.1f} | "
                     f"{max(ds):.1f} | {med(lds):.1f} | {sum(ds) / max(1, sum(r['polls'] for r in rs)):.2f} | "
                     f"{med([r.get('max_poll_ms', float('nan')) for r in rs]):.1f} | {bad} | {'previous or new only' if not odd else odd} |")
    L.append("")
L.append(f"`:predict` on the LR model (bc) with `wrk -t{env['BENCH_THREADS']} -c{env['BENCH_CONNS']} "
         f"-d{env['BENCH_DURATION']} --latency -s bench/predict.lua` (keep-alive), {env['BENCH_REPS']} rounds, "
         f"order flipped every round; \"reload\" = `POST /v1/models/gb:reload` (bearer token) every "
         f"{env['RELOAD_INTERVAL_S']} s start to start during the run:")
L.append("")
L.append("| run | round | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | socket errors | reloads (failed) "
         "| modeld CPU % | client CPU % | other load % |")
L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
for r in runs:
    sock = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeout_errors"]
    rel = f"{r['reloads']:.0f} ({r['reload_errors']:.0f})" if "reloads" in r else "-"
    L.append(f"| {r['phase']} | {r['rep']} | {r['rps']:,.0f} | {ms(r['p50_us']):.3f} | {ms(r['p90_us']):.3f} | "
             f"{ms(r['p99_us']):.3f} | {ms(r['max_us']):.1f} | {r['status_errors']:.0f} | {sock:.0f} | {rel} | "
             f"{r['cpu_pct']:.0f} | {r['client_pct']:.0f} | {r['other_pct']:.0f} |")
L.append("")
summ = {}
for ph in ("none", "reload"):
    rs = [r for r in runs if r["phase"] == ph]
    summ[ph] = dict(rps=med([r["rps"] for r in rs]), p50=med([r["p50_us"] for r in rs]),
                    p99=med([r["p99_us"] for r in rs]), mx=med([r["max_us"] for r in rs]),
                    other=med([r["other_pct"] for r in rs]),
                    fail=sum(r["status_errors"] + r["connect_errors"] + r["read_errors"] + r["write_errors"]
                             + r["timeout_errors"] for r in rs))
L.append("| medians | req/s | p50 ms | p99 ms | max ms | failed requests (all rounds) | other load % |")
L.append("|---|---:|---:|---:|---:|---:|---:|")
for ph in ("none", "reload"):
    s = summ[ph]
    L.append(f"| {ph} | {s['rps']:,.0f} | {ms(s['p50']):.3f} | {ms(s['p99']):.3f} | {ms(s['mx']):.1f} | "
             f"{s['fail']:.0f} | {s['other']:.0f} |")
ratio = summ["reload"]["p99"] / summ["none"]["p99"]
L.append(f"| reload / none | {summ['reload']['rps'] / summ['none']['rps']:.2f}x | "
         f"{summ['reload']['p50'] / summ['none']['p50']:.2f}x | **{ratio:.2f}x** | "
         f"{summ['reload']['mx'] / summ['none']['mx']:.2f}x | | |")
L.append("")
L.append(f"- target p99 with reload <= 1.2x without: {ratio:.2f}x -> {'met' if ratio <= 1.2 else 'NOT met'}")
rel_ms = []
for f in sorted(os.listdir(tmp)):
    if f.startswith("reloads-"):
        rel_ms += [float(l.split()[2]) for l in open(os.path.join(tmp, f)) if l.split()[1] == "200"]
if rel_ms:
    L.append(f"- `:reload` of the large model answered in median {med(rel_ms):.0f} ms (p90 {pct(rel_ms, 0.9):.0f}, "
             f"max {max(rel_ms):.0f}) over {len(rel_ms)} reloads")
metrics = open(os.path.join(tmp, "metrics.txt")).read().splitlines() if os.path.exists(
    os.path.join(tmp, "metrics.txt")) else []
bad = [l.strip() for l in metrics if l.startswith("modeld_requests_total") and 'code="200"' not in l
       and 'endpoint="readyz"' not in l]  # /readyz is 503 while the script waits for startup
L.append(f"- modeld's own counters, requests other than /readyz not answered 200 over the whole run: "
         f"{bad if bad else 'none'}")
loads = [l.strip() for l in metrics if l.startswith("modeld_model_load_total")]
L.append(f"- {'; '.join(loads)}")
L.append(f"- modeld VmRSS at the end {int(env['RSS_KB']) / 1024:.0f} MiB, VmHWM {int(env['HWM_KB']) / 1024:.0f} MiB; "
         f"{env['WARN_LINES']} lines in its warn-level log")
text = "\n".join(L) + "\n"
open(out_path, "w").write(text)
print(text)
