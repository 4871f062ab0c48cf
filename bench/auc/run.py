#!/usr/bin/python3
"""ROC-AUC: modeld's C core vs sklearn.metrics.roc_auc_score, same data, same run.

    /usr/bin/python3 bench/auc/run.py [--runs 3] [--sizes 1000000,10000000]

Builds bench/auc/auc_bench.c from models/eval (cc -O2, as `make` builds the library),
generates float64 scores with 10% positives (fixed seed) per size, plain and heavily
tied (rounded to 2 decimals), writes them as raw float64 files, times
roc_auc_score(labels, scores) RUNS times in this process and the C core RUNS times in a
child process on the same files, checks the two AUCs agree to 1e-12, and prints a
Markdown table of medians (also written to bench/auc/last-run.md, gitignored by bench/).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import sklearn
from sklearn.metrics import roc_auc_score

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build(tmp):
    exe = os.path.join(tmp, "auc_bench")
    srcs = [os.path.join(ROOT, "bench/auc/auc_bench.c"), os.path.join(ROOT, "models/err.c")]
    srcs += sorted(os.path.join(ROOT, "models/eval", f)
                   for f in os.listdir(os.path.join(ROOT, "models/eval")) if f.endswith(".c"))
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
                    "-I", ROOT, "-o", exe] + srcs + ["-lm"], check=True)
    return exe


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="1000000,10000000")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(tmp)
        for n in [int(x) for x in args.sizes.split(",")]:
            rng = np.random.default_rng(20261129 + n)
            y = (rng.random(n) < 0.1).astype(np.float64)
            plain = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + y)))
            for kind, s in (("plain", plain), ("tied (2 decimals)", np.round(plain, 2))):
                sp, yp = os.path.join(tmp, "s.f64"), os.path.join(tmp, "y.f64")
                s.tofile(sp)
                y.tofile(yp)
                load0 = loadavg()
                sk, sk_auc = [], None
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    sk_auc = roc_auc_score(y, s)
                    sk.append(time.perf_counter() - t0)
                out = subprocess.run([exe, sp, yp, str(args.runs)], check=True,
                                     capture_output=True, text=True).stdout
                c = json.loads(out)
                diff = abs(c["auc"] - sk_auc)
                assert diff <= 1e-12, f"n={n} {kind}: C {c['auc']!r} sklearn {sk_auc!r}"
                assert c["binary_auc"] == c["auc"]
                r = dict(n=n, kind=kind, sk=statistics.median(sk), c=statistics.median(c["core_s"]),
                         full=statistics.median(c["binary_s"]), diff=diff, auc=sk_auc,
                         sk_all=sk, c_all=c["core_s"], load=f"{load0} -> {loadavg()}")
                rows.append(r)
                print(json.dumps(r), file=sys.stderr)
    lines = [
        f"- machine: {os.cpu_count()} vCPUs, {cpu_model()}, {platform.platform()}; "
        f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
        f"numpy {np.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- median of {args.runs} runs each; load average (1/5/15 min) before -> after each row",
        "",
        "| rows | scores | sklearn roc_auc_score s | C core s | sklearn / C | C all binary metrics s "
        "| AUC | abs diff | load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['n']:.0e} | {r['kind']} | {r['sk']:.3f} | {r['c']:.4f} | "
                     f"{r['sk'] / r['c']:.1f}x | {r['full']:.3f} | {r['auc']:.12f} | "
                     f"{r['diff']:.1e} | {r['load']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(ROOT, "bench/auc/last-run.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
