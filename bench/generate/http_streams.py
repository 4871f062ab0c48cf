#!/usr/bin/python3
"""Generation over HTTP: one stream alone, then N concurrent streams (continuous batching),
against modeld serving a random-weight Llama of llama2.c's stories15M or stories110M shape
(bench/generate/make_model.py). Each stream asks :generate for TOKENS tokens at temperature
0 with "stream": true; the client timestamps every Server-Sent Event, so the figures are
what a caller sees: time to first token, the gaps between tokens (an event holding k tokens
counts as k gaps of 1/k of its wait), and the aggregate tokens/s.

    /usr/bin/python3 bench/generate/http_streams.py [--shape 110M] [--dtype f32|f16]
        [--streams 8] [--tokens 256] [--prompt 16] [--reps 3] [--threads 2]

Prints one line per round and a median summary; modeld is build/modeld (make first).
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_modeld(repo, threads, streams):
    tmp = tempfile.mkdtemp(prefix="genbench-")
    ready = os.path.join(tmp, "ready")
    cfg = os.path.join(tmp, "modeld.json")
    with open(cfg, "w") as f:
        json.dump({"generate_threads": threads, "max_sequences": max(streams, 1), "log_level": "warn",
                   "max_generate_tokens": 4096}, f)
    proc = subprocess.Popen([os.path.join(ROOT, "build", "modeld"), "--config", cfg, "--listen", "127.0.0.1:0",
                             "--ready-file", ready, "--model-repository", repo], stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not os.path.exists(ready):
        if time.time() > deadline or proc.poll() is not None:
            raise SystemExit("modeld did not start")
        time.sleep(0.05)
    host, port = open(ready).read().strip().rsplit(":", 1)
    while True:  # the model loads after the ready file
        s = socket.create_connection((host, int(port)))
        s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if b" 200 " in s.recv(100):
            s.close()
            break
        s.close()
        if time.time() > deadline:
            raise SystemExit("model did not load")
        time.sleep(0.1)
    return proc, host, int(port), tmp


def one_stream(host, port, prompt, tokens, out):
    body = json.dumps({"prompt": prompt, "max_tokens": tokens, "temperature": 0, "ignore_eos": True,
                       "stream": True}).encode()
    s = socket.create_connection((host, port))
    t0 = time.perf_counter()
    s.sendall(b"POST /v1/models/bench:generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    buf, arrivals, last = b"", [], None
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        now = time.perf_counter()
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            i = event.find(b"data: ")
            if i < 0:
                continue
            e = json.loads(event[i + 6:])
            if "token_ids" in e:
                arrivals.append((now, len(e["token_ids"])))
            elif "finish_reason" in e:
                last = e
    s.close()
    ttft = arrivals[0][0] - t0
    gaps, prev = [], arrivals[0][0]
    for t, k in arrivals[1:]:
        gaps += [(t - prev) / k] * k
        prev = t
    n = sum(k for _, k in arrivals)
    out.append({"ttft": ttft, "gaps": gaps, "tokens": n, "t0": t0, "t_end": arrivals[-1][0],
                "server_tps": last["timings"]["tokens_per_second"] if last else None})


def p(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def round_of(host, port, streams, tokens, prompt_len):
    out, threads = [], []
    for i in range(streams):
        prompt = [1] + [(37 * i + 11 * j) % 31999 + 1 for j in range(prompt_len - 1)]
        threads.append(threading.Thread(target=one_stream, args=(host, port, prompt, tokens, out)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    span = max(r["t_end"] for r in out) - min(r["t0"] for r in out)
    gaps = [g for r in out for g in r["gaps"]]
    return {"tps": sum(r["tokens"] for r in out) / span, "ttft_p50": p([r["ttft"] for r in out], 0.5),
            "ttft_max": max(r["ttft"] for r in out), "itl_p50": p(gaps, 0.5), "itl_p99": p(gaps, 0.99)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="110M")
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="genbench-model-")
    try:
        model = os.path.join(work, "repo", "bench", "1")
        subprocess.run([sys.executable, os.path.join(ROOT, "bench/generate/make_model.py"), model, "--shape", a.shape,
                        "--dtype", a.dtype], check=True)
        os.remove(os.path.join(model, "model.bin"))  # serve the safetensors form
        proc, host, port, tmp = start_modeld(os.path.join(work, "repo"), a.threads, a.streams)
        try:
            one_stream(host, port, [1, 2, 3], 8, [])  # warm the page cache and the engine
            rows = {"1": [], str(a.streams): []}
            for rep in range(a.reps):
                for n in (1, a.streams):
                    r = round_of(host, port, n, a.tokens, a.prompt)
                    rows[str(n)].append(r)
                    print(f"round {rep + 1} streams={n}: {r['tps']:.1f} tok/s aggregate, TTFT p50 "
                          f"{r['ttft_p50'] * 1e3:.1f} ms max {r['ttft_max'] * 1e3:.1f} ms, inter-token p50 "
                          f"{r['itl_p50'] * 1e3:.2f} ms p99 {r['itl_p99'] * 1e3:.2f} ms", flush=True)
            med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in rows.items()}
            one, many = med["1"], med[str(a.streams)]
            print(f"\n{a.shape} {a.dtype}, {a.threads} threads, {a.tokens} tokens, prompt {a.prompt}, "
                  f"medians of {a.reps}:")
            for n, m in med.items():
                print(f"  {n:>2} stream(s): {m['tps']:.1f} tok/s, TTFT p50 {m['ttft_p50'] * 1e3:.1f} ms "
                      f"(max {m['ttft_max'] * 1e3:.1f}), inter-token p50 {m['itl_p50'] * 1e3:.2f} ms "
                      f"p99 {m['itl_p99'] * 1e3:.2f} ms")
            print(f"  aggregate {a.streams} streams / 1 stream: {many['tps'] / one['tps']:.2f}x")
        finally:
            proc.terminate()
            proc.wait(30)
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
