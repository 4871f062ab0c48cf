#!/usr/bin/python3
""":rank latency and :score-auc throughput over HTTP (issue 5).

    /usr/bin/python3 bench/rank/run.py [--requests 500] [--rows 1000000] [--binary build/release/modeld]

1. :rank — trains an XGBoost binary:logistic model (Debian python3-xgboost: 100 features,
   300 trees of depth 6, hist, 5000 random rows, fixed seed) in a temporary repository, starts modeld on it, and
   times RANK requests of one query with 1000 candidates x 100 features (50 features in
   the query, 50 per candidate) on one keep-alive connection: p50 / p90 / p99 / max.
   The first answer is checked against the same rows through :predict, sorted.
2. :score-auc — writes ROWS NDJSON rows for the LR demo model (breast_cancer, 30
   features: the dataset's rows with noise, positional arrays, labels), streams the file
   to POST /v1/models/breast_cancer:score-auc with curl (-T, not read into memory), and
   reports rows/s, body MB/s and the daemon's peak RSS (VmHWM) before and after.
3. :score-auc without a model — SCORES_ROWS precomputed scores (CSV "score,label", 10%
   positives) to POST /v1/score-auc: wall time and peak RSS (the "10^7 rows fit" claim).
Prints a Markdown table; also written to bench/rank/last-run.md (gitignored).
"""

import argparse
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start(binary, repo, tmp):
    ready = os.path.join(tmp, "ready-" + os.path.basename(repo))
    if os.path.exists(ready):
        os.unlink(ready)
    log = open(os.path.join(tmp, "modeld.log"), "w")
    p = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--ready-file", ready, "--model-repository", repo,
                          "--log-level", "warn"], stdout=log, stderr=log)
    for _ in range(200):
        if os.path.exists(ready):
            host, port = open(ready).read().strip().rsplit(":", 1)
            for _ in range(200):
                c = http.client.HTTPConnection(host, int(port))
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return p, host, int(port)
                time.sleep(0.05)
        time.sleep(0.05)
    p.kill()
    sys.exit("modeld did not become ready")


def rss_peak(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                yield line.split()[0].rstrip(":"), int(line.split()[1]) // 1024


def bench_rank(binary, tmp, n_requests):
    import xgboost as xgb
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5000, 100))
    y = (X[:, :10].sum(1) + rng.normal(size=5000) > 0).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "seed": 1,
                         "tree_method": "hist", "nthread": 1},
                        xgb.DMatrix(X, label=y, feature_names=[f"x{i}" for i in range(100)]), num_boost_round=300)
    repo = os.path.join(tmp, "repo")
    os.makedirs(os.path.join(repo, "rank_gbdt", "1"))
    booster.save_model(os.path.join(repo, "rank_gbdt", "1", "model.json"))
    p, host, port = start(binary, repo, tmp)
    try:
        q = {f"x{i}": float(v) for i, v in enumerate(rng.normal(size=50))}
        cands = [dict({f"x{i}": round(float(v), 4) for i, v in zip(range(50, 100), rng.normal(size=50))}, id=j)
                 for j in range(1000)]
        body = json.dumps({"query": q, "candidates": cands, "top_k": 100}).encode()
        c = http.client.HTTPConnection(host, port)
        c.request("POST", "/v1/models/rank_gbdt:rank", body, {"Content-Type": "application/json"})
        first = json.loads(c.getresponse().read())
        rows = [dict(q, **{k: v for k, v in cd.items() if k != "id"}) for cd in cands]
        c.request("POST", "/v1/models/rank_gbdt:predict", json.dumps({"instances": rows}),
                  {"Content-Type": "application/json"})
        pred = json.loads(c.getresponse().read())["predictions"]
        want = sorted(range(1000), key=lambda i: -pred[i])[:100]
        assert [r["id"] for r in first["results"]] == want, "rank order differs from sorted :predict"
        lat, server = [], {"parse": [], "infer": [], "total": []}
        for _ in range(n_requests):
            t0 = time.perf_counter()
            c.request("POST", "/v1/models/rank_gbdt:rank", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            lat.append(time.perf_counter() - t0)
            assert r.status == 200
            for part in r.getheader("Server-Timing").split(","):
                name, dur = part.strip().split(";dur=")
                if name in server:
                    server[name].append(float(dur))
        lat = np.array(lat) * 1e3
        return {"requests": n_requests, "body_kb": len(body) / 1024, "p50": np.percentile(lat, 50),
                "p90": np.percentile(lat, 90), "p99": np.percentile(lat, 99), "max": lat.max(),
                **{f"server_{k}_p50": float(np.median(v)) for k, v in server.items()}}
    finally:
        p.terminate()
        p.wait()


def bench_score_auc(binary, tmp, n_rows):
    from sklearn.datasets import load_breast_cancer
    data = load_breast_cancer()
    rng = np.random.default_rng(2)
    path = os.path.join(tmp, "rows.ndjson")
    with open(path, "w") as f:
        for start_ in range(0, n_rows, 100000):
            n = min(100000, n_rows - start_)
            idx = rng.integers(0, len(data.data), n)
            X = data.data[idx] * rng.uniform(0.97, 1.03, size=(n, 30))
            y = (data.target[idx] == 0).astype(int)
            f.writelines('{"features": [%s], "label": %d}\n' % (",".join("%.5g" % v for v in x), l)
                          for x, l in zip(X, y))
    size = os.path.getsize(path)
    repo = os.path.join(tmp, "repo_lr")
    shutil.copytree(os.path.join(ROOT, "conf", "models", "breast_cancer"), os.path.join(repo, "breast_cancer"))
    p, host, port = start(binary, repo, tmp)
    try:
        before = dict(rss_peak(p.pid))
        t0 = time.perf_counter()
        hdrs = os.path.join(tmp, "headers")
        out = subprocess.run(["curl", "-s", "-X", "POST", "-T", path, "-H", "Content-Type: application/x-ndjson",
                              "-D", hdrs, f"http://{host}:{port}/v1/models/breast_cancer:score-auc"],
                             capture_output=True, check=True)
        secs = time.perf_counter() - t0
        ans = json.loads(out.stdout)
        timing = {}
        for line in open(hdrs):
            if line.lower().startswith("server-timing:"):
                for part in line.split(":", 1)[1].split(","):
                    name, dur = part.strip().split(";dur=")
                    timing[name] = float(dur) / 1e3
        assert ans["rows"] == n_rows, ans
        after = dict(rss_peak(p.pid))
        return {"rows": n_rows, "mb": size / 2**20, "secs": secs, "rows_s": n_rows / secs,
                "mb_s": size / 2**20 / secs, "rss_before": before["VmHWM"], "rss_peak": after["VmHWM"],
                "roc_auc": ans["metrics"]["roc_auc"], "parse_s": timing["parse"], "infer_s": timing["infer"]}
    finally:
        p.terminate()
        p.wait()


def bench_scores(binary, tmp, n_rows):
    rng = np.random.default_rng(3)
    path = os.path.join(tmp, "scores.csv")
    with open(path, "w") as f:
        f.write("score,label\n")
        for _ in range(0, n_rows, 1000000):
            y = (rng.random(1000000) < 0.1).astype(int)
            s = np.round(1 / (1 + np.exp(-(rng.normal(size=1000000) + y))), 4)
            f.write("\n".join(f"{a},{b}" for a, b in zip(s.tolist(), y.tolist())) + "\n")
    repo = os.path.join(tmp, "repo_empty")
    os.makedirs(repo)
    p, host, port = start(binary, repo, tmp)
    try:
        t0 = time.perf_counter()
        out = subprocess.run(["curl", "-s", "-X", "POST", "-T", path, "-H", "Content-Type: text/csv",
                              f"http://{host}:{port}/v1/score-auc"], capture_output=True, check=True)
        secs = time.perf_counter() - t0
        ans = json.loads(out.stdout)
        assert ans["rows"] == n_rows - n_rows % 1000000, ans
        return {"rows": ans["rows"], "mb": os.path.getsize(path) / 2**20, "secs": secs,
                "rss_peak": dict(rss_peak(p.pid))["VmHWM"]}
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--scores-rows", type=int, default=10000000)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/release/modeld"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-rank.")
    try:
        r = bench_rank(a.binary, tmp, a.requests)
        print("rank:", r, flush=True)
        s = bench_score_auc(a.binary, tmp, a.rows)
        big = bench_scores(a.binary, tmp, a.scores_rows) if a.scores_rows else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = (f"machine: {platform.node()} {os.cpu_count()} CPUs, {platform.platform()}; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
            "| :rank, 1 query x 1000 candidates x 100 features, XGBoost 300 trees depth 6 | value |\n|---|---|\n"
            f"| requests (one keep-alive connection, sequential) | {r['requests']} |\n"
            f"| request body | {r['body_kb']:.0f} KiB |\n"
            f"| p50 / p90 / p99 / max | {r['p50']:.2f} / {r['p90']:.2f} / {r['p99']:.2f} / {r['max']:.2f} ms |\n"
            f"| in the daemon (Server-Timing p50): decode / score / total | {r['server_parse_p50']:.2f} / "
            f"{r['server_infer_p50']:.2f} / {r['server_total_p50']:.2f} ms |\n\n"
            "| :score-auc, LR demo model (30 features), NDJSON streamed by curl -T | value |\n|---|---|\n"
            f"| rows / body | {s['rows']:,} / {s['mb']:.0f} MiB |\n"
            f"| wall time | {s['secs']:.2f} s |\n"
            f"| in the daemon: decode + score rows (worker steps) / metrics | {s['parse_s']:.2f} s / {s['infer_s']:.2f} s |\n"
            f"| throughput | {s['rows_s']:,.0f} rows/s ({s['mb_s']:.0f} MiB/s) |\n"
            f"| daemon peak RSS before / after | {s['rss_before']} / {s['rss_peak']} MiB |\n"
            f"| roc_auc | {s['roc_auc']:.6f} |\n")
    if big:
        text += ("\n| :score-auc, precomputed scores (CSV), no model | value |\n|---|---|\n"
                 f"| rows / body | {big['rows']:,} / {big['mb']:.0f} MiB |\n"
                 f"| wall time | {big['secs']:.2f} s ({big['rows'] / big['secs']:,.0f} rows/s) |\n"
                 f"| daemon peak RSS | {big['rss_peak']} MiB |\n")
    print(text)
    with open(os.path.join(ROOT, "bench/rank/last-run.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
