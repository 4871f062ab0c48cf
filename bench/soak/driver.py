#!/usr/bin/python3
"""Mixed-load soak driver for bench/soak/run.sh (issue 8). Loopback only, standard library only.

  driver.py run --addr H:P --pid PID --repo DIR --stage DIR --token-file F --seconds S --out FILE
      runs every workload below at once for S seconds against modeld (PID) and writes one JSON
      file of results. Each workload group is its own process (the GIL would otherwise make the
      client the bottleneck), each client a thread with its own keep-alive connection:
        predict   LR (breast_cancer) and GBDT (xgb_breast_cancer, lgb_binary), batches of 1-8 rows
        eval      :rank (1-300 candidates, some multi-query) and :score-auc (JSON, NDJSON, CSV,
                  model-less scores; every 8th body is large: a 9 MB CSV or a 15 MB NDJSON)
        gen       :generate and /v1/completions streams (SSE), a few /v1/chat/completions and
                  non-streamed :generate; a quarter of the streams hang up after the first event
        control   /metrics every second (parsed; every counter and histogram series must never
                  go down), a reload every 10 s (alternately POST :reload with the admin token
                  and publishing version N+1 by rename(2) of a staged folder, then removing N
                  once N+1 serves), and a trickle of bad requests that must get their 4xx
      The main process samples modeld's RSS (/proc/PID/status) every 5 s and scrapes /metrics
      before and after the load, to compare the daemon's request counters with the client's.

  driver.py report --results FILE --modeld-rc N --sanitizer N [--rss-tolerance 0.05]
      prints the markdown report and exits 1 when a criterion fails: a 5xx, a transport error,
      an unexpected status, a counter that went down, daemon/client count mismatch, RSS at the
      end over (1 + tolerance) x RSS after the first minute, modeld's exit code not 0, or
      sanitizer output in its log.
"""
import argparse, http.client, json, multiprocessing as mp, os, random, re, shutil, signal, sys, threading, time, zlib

LR_MODEL, XGB_MODEL, LGB_MODEL, GEN_MODEL = "breast_cancer", "xgb_breast_cancer", "lgb_binary", "kjv_llama"
N_FEAT = {LR_MODEL: 30, XGB_MODEL: 30, LGB_MODEL: 20}
PROMPTS = ["In the beginning God created", "And the LORD said unto Moses,", "Blessed are",
           "And Jesus answered and said unto them,", "The LORD is my shepherd;", "Now these are the names"]
MAX_FAILS = 50  # failure messages kept per thread; the counts are always exact


class Stats:
    """One thread's results: per client key, latencies and status codes; per (daemon endpoint
    label, code) the count to compare with modeld_requests_total; failures as text."""

    def __init__(self):
        self.lat, self.codes, self.errors = {}, {}, {}
        self.daemon = {}
        self.fails, self.n_fails = [], 0
        self.notes = {}

    def add(self, key, label, code, secs):
        self.lat.setdefault(key, []).append(secs)
        c = self.codes.setdefault(key, {})
        c[str(code)] = c.get(str(code), 0) + 1
        k = f"{label} {code}"
        self.daemon[k] = self.daemon.get(k, 0) + 1

    def error(self, key, exc):
        e = self.errors.setdefault(key, {})
        name = type(exc).__name__
        e[name] = e.get(name, 0) + 1
        self.fail(f"{key}: transport error {name}: {exc}")

    def fail(self, msg):
        self.n_fails += 1
        if len(self.fails) < MAX_FAILS:
            self.fails.append(f"{time.strftime('%H:%M:%S')} {msg}")

    def note(self, k, v=1):
        self.notes[k] = self.notes.get(k, 0) + v


def merge(dst, src):
    for k, v in src.lat.items():
        dst.lat.setdefault(k, []).extend(v)
    for k, v in src.codes.items():
        d = dst.codes.setdefault(k, {})
        for c, n in v.items():
            d[c] = d.get(c, 0) + n
    for k, v in src.errors.items():
        d = dst.errors.setdefault(k, {})
        for c, n in v.items():
            d[c] = d.get(c, 0) + n
    for k, n in src.daemon.items():
        dst.daemon[k] = dst.daemon.get(k, 0) + n
    for k, n in src.notes.items():
        dst.notes[k] = dst.notes.get(k, 0) + n
    dst.fails.extend(src.fails[:MAX_FAILS])
    dst.n_fails += src.n_fails


def connect(addr, timeout=60):
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def call(st, c, key, label, method, path, body=None, ctype="application/json", headers=None, expect=(200,)):
    """One request on keep-alive connection c; counts it. Returns (status, body bytes) or
    (None, None) on a transport error (c is closed then, and reopens on the next request)."""
    h = dict(headers or {})
    if body is not None and ctype:
        h["Content-Type"] = ctype
    t0 = time.monotonic()
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
    except (OSError, http.client.HTTPException) as e:
        st.error(key, e)
        c.close()
        return None, None
    st.add(key, label, r.status, time.monotonic() - t0)
    if r.status not in expect:
        st.fail(f"{key}: {method} {path} -> {r.status} (expected {expect}): {data[:200]!r}")
    if r.will_close:
        c.close()
    return r.status, data


def running(a):
    """False once the run is over; waits while the main process holds the load for a
    quiet RSS sample."""
    while a.pause.is_set() and time.monotonic() < a.stop_at:
        time.sleep(0.05)
    return time.monotonic() < a.stop_at


def rand_row(rng, n):
    return [round(rng.gauss(0, 1.5), 4) for _ in range(n)]


# --- predict ------------------------------------------------------------------------------

def predict_client(a, st, models, seed):
    rng = random.Random(seed)
    bodies = []  # prebuilt, so the client spends its CPU on requests
    for i in range(48):
        m = models[i % len(models)]
        n = rng.randint(1, 8)
        rows = [rand_row(rng, N_FEAT[m]) for _ in range(n)]
        if i % 5 == 0 and m != LR_MODEL:  # trees route missing values; LR has no imputer
            rows[0][rng.randrange(N_FEAT[m])] = None
        bodies.append((m, n, json.dumps({"instances": rows}).encode()))
    c = connect(a.addr, 30)
    i = 0
    while running(a):
        m, n, body = bodies[i % len(bodies)]
        i += 1
        code, data = call(st, c, f"predict {m}", "predict", "POST", f"/v1/models/{m}:predict", body)
        if code == 200:
            try:
                d = json.loads(data)
                p = d["predictions"]
                if len(p) != n or not all(0.0 <= x <= 1.0 for x in p):
                    st.fail(f"predict {m}: bad predictions {p!r}")
                st.note(f"version {m} {d['model']['version']}")
            except (ValueError, KeyError, TypeError) as e:
                st.fail(f"predict {m}: bad answer {e}: {data[:200]!r}")
    c.close()


# --- rank and score-auc ---------------------------------------------------------------------

def rank_client(a, st, seed):
    rng = random.Random(seed)
    c = connect(a.addr, 60)
    while running(a):
        m = rng.choice([LGB_MODEL, XGB_MODEL])
        nf, names = N_FEAT[m], a.features[m]

        def cand(k):  # every other feature set, the rest missing or from the query
            row = rand_row(rng, nf)
            return dict({"id": f"c{k}"}, **{names[j]: row[j] for j in range(nf) if j % 2})
        top_k = rng.choice([1, 5, 10, 50])
        if rng.random() < 0.2:
            qs = [{"query": {names[0]: 0.5}, "candidates": [cand(k) for k in range(rng.randint(1, 40))]}
                  for _ in range(rng.randint(2, 6))]
            body = {"queries": qs, "top_k": top_k}
            want = [min(top_k, len(q["candidates"])) for q in qs]
        else:
            n = rng.randint(1, 300)
            body = {"query": {names[0]: 0.5, names[2]: -1.0}, "candidates": [cand(k) for k in range(n)],
                    "top_k": top_k, "return_all_scores": rng.random() < 0.3}
            want = [min(top_k, n)]
        code, data = call(st, c, f"rank {m}", "rank", "POST", f"/v1/models/{m}:rank", json.dumps(body).encode())
        if code == 200:
            try:
                d = json.loads(data)
                got = [len(q["results"]) for q in d["queries"]] if "queries" in d else [len(d["results"])]
                if got != want:
                    st.fail(f"rank {m}: {got} results, expected {want}")
            except (ValueError, KeyError, TypeError) as e:
                st.fail(f"rank {m}: bad answer {e}: {data[:200]!r}")
    c.close()


def auc_bodies(a, rng):
    """(key, path, content type, body, rows) variants; the big ones are built once."""
    feats = a.features[LR_MODEL]
    def rows(n, nf=30):
        return [rand_row(rng, nf) for _ in range(n)]
    def labels(n):
        return [rng.randint(0, 1) for _ in range(n)]
    def csv(n):
        lines = [",".join(feats + ["label"])]
        for r, y in zip(rows(n), labels(n)):
            lines.append(",".join(map(repr, r)) + f",{y}")
        return ("\n".join(lines) + "\n").encode()
    def ndjson_feat(n):
        return "".join(json.dumps({"features": r, "label": y}) + "\n" for r, y in zip(rows(n), labels(n))).encode()
    def ndjson_scores(n):
        return "".join(json.dumps({"score": round(rng.random(), 5), "label": rng.randint(0, 1),
                                   "group": f"q{i // 20}"}) + "\n" for i in range(n)).encode()
    small = [
        ("score-auc scores json", "/v1/score-auc", "application/json",
         json.dumps({"scores": [round(rng.random(), 5) for _ in range(500)], "labels": labels(500)}).encode(), 500),
        ("score-auc model json", f"/v1/models/{LR_MODEL}:score-auc", "application/json",
         json.dumps({"instances": rows(300), "labels": labels(300)}).encode(), 300),
        ("score-auc model ndjson", f"/v1/models/{LR_MODEL}:score-auc?threshold=0.4", "application/x-ndjson",
         ndjson_feat(1000), 1000),
        ("score-auc model csv", f"/v1/models/{XGB_MODEL}:score-auc", "text/csv", csv(2000), 2000),
        ("score-auc scores ndjson", "/v1/score-auc?k=5", "application/x-ndjson", ndjson_scores(3000), 3000),
    ]
    large = [
        ("score-auc large csv", f"/v1/models/{LR_MODEL}:score-auc", "text/csv", csv(40000), 40000),
        ("score-auc large ndjson", "/v1/score-auc", "application/x-ndjson", ndjson_scores(300000), 300000),
    ]
    return small, large


def auc_client(a, st, seed):
    rng = random.Random(seed)
    small, large = auc_bodies(a, rng)
    c = connect(a.addr, 120)
    i = 0
    while running(a):
        i += 1
        key, path, ctype, body, n = large[(i // 8) % len(large)] if i % 8 == 0 else rng.choice(small)
        code, data = call(st, c, key, "score_auc", "POST", path, body, ctype)
        if code == 200:
            try:
                d = json.loads(data)
                if d["rows"] != n:
                    st.fail(f"{key}: rows {d['rows']} != {n}")
            except (ValueError, KeyError, TypeError) as e:
                st.fail(f"{key}: bad answer {e}: {data[:200]!r}")
    c.close()


# --- generation ---------------------------------------------------------------------------

def gen_stream(a, st, c, key, label, path, body, done_marker, drop):
    """One SSE request. drop: hang up after the first event (the daemon must cancel the
    sequence). Returns nothing; counts and checks."""
    t0 = time.monotonic()
    try:
        c.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        r = c.getresponse()
    except (OSError, http.client.HTTPException) as e:
        st.error(key, e)
        c.close()
        return
    if r.status != 200:
        data = r.read()
        st.add(key, label, r.status, time.monotonic() - t0)
        st.fail(f"{key}: {r.status}: {data[:200]!r}")
        return
    if not (r.getheader("Content-Type") or "").startswith("text/event-stream"):
        st.fail(f"{key}: content type {r.getheader('Content-Type')!r}")
    events, finished = 0, False
    try:
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            payload = line[6:]
            events += 1
            if payload == b"[DONE]":
                finished = done_marker == "[DONE]"
                break
            ev = json.loads(payload)
            if "error" in ev:
                st.fail(f"{key}: error event {payload[:200]!r}")
                break
            if done_marker == "finish_reason" and ev.get("finish_reason"):
                finished = True
                break
            if drop:
                break
        if drop:
            c.close()  # hang up mid-stream
            st.note(f"{key} dropped")
        else:
            r.read()  # the rest of the chunked body, so the connection can be reused
            if r.will_close:
                c.close()
    except (OSError, http.client.HTTPException, ValueError) as e:
        st.error(key, e)
        c.close()
        return
    st.add(key, label, 200, time.monotonic() - t0)
    if not drop and not finished:
        st.fail(f"{key}: stream ended without its final event ({events} events)")


def gen_client(a, st, seed):
    rng = random.Random(seed)
    c = connect(a.addr, 60)
    while running(a):
        prompt = rng.choice(PROMPTS)
        n = rng.randint(8, 64)
        samp = {"max_tokens": n, "temperature": 0.8, "top_p": 0.95, "seed": rng.randint(0, 1 << 30)}
        x = rng.random()
        drop = rng.random() < 0.25
        if x < 0.45:
            gen_stream(a, st, c, "generate stream" + (" (dropped)" if drop else ""), "generate",
                       f"/v1/models/{GEN_MODEL}:generate", dict(samp, prompt=prompt, stream=True), "finish_reason", drop)
        elif x < 0.8:
            gen_stream(a, st, c, "completions stream" + (" (dropped)" if drop else ""), "completions", "/v1/completions",
                       dict(samp, model=GEN_MODEL, prompt=prompt, stream=True), "[DONE]", drop)
        elif x < 0.9:
            gen_stream(a, st, c, "chat stream", "chat_completions", "/v1/chat/completions",
                       dict(samp, model=GEN_MODEL, stream=True, messages=[{"role": "user", "content": prompt}]),
                       "[DONE]", False)
        else:
            code, data = call(st, c, "generate", "generate", "POST", f"/v1/models/{GEN_MODEL}:generate",
                              json.dumps(dict(samp, prompt=prompt)).encode())
            if code == 200:
                try:
                    d = json.loads(data)
                    if d["usage"]["completion_tokens"] != len(d["token_ids"]) or len(d["token_ids"]) > n:
                        st.fail(f"generate: token count mismatch {data[:200]!r}")
                except (ValueError, KeyError, TypeError) as e:
                    st.fail(f"generate: bad answer {e}: {data[:200]!r}")
    c.close()


# --- control: metrics, reloads, bad requests ---------------------------------------------

SERIES_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def parse_metrics(text):
    """{series: value} for every counter and histogram series, plus {name: value} for the rest."""
    types, mono, other = {}, {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            continue
        if not line or line.startswith("#"):
            continue
        m = SERIES_RE.match(line)
        if not m:
            raise ValueError(f"unparsable metrics line {line!r}")
        name, labels, val = m.group(1), m.group(2) or "", float(m.group(3))
        fam = name
        for suf in ("_bucket", "_sum", "_count", "_total"):
            if name.endswith(suf) and name[: -len(suf)] in types:
                fam = name[: -len(suf)]
        if types.get(fam) in ("counter", "histogram"):
            mono[name + labels] = val
        else:
            other[name + labels] = val
    return mono, other


def requests_by_endpoint(mono):
    """modeld_requests_total summed over models: {"endpoint code": n}."""
    out = {}
    for k, v in mono.items():
        m = re.match(r'modeld_requests_total\{endpoint="([^"]*)",model="[^"]*",code="(\d+)"\}', k)
        if m:
            key = f"{m.group(1)} {m.group(2)}"
            out[key] = out.get(key, 0) + int(v)
    return out


def scrape(a, st, c, key="metrics"):
    code, data = call(st, c, key, "metrics", "GET", "/metrics")
    if code != 200:
        return None
    try:
        return parse_metrics(data.decode())
    except ValueError as e:
        st.fail(f"metrics: {e}")
        return None


def metrics_client(a, st, seed):
    c = connect(a.addr, 30)
    prev, n_series, went_down = None, 0, 0
    nxt = time.monotonic()
    while running(a):
        got = scrape(a, st, c)
        if got:
            mono, _ = got
            n_series = max(n_series, len(mono))
            if prev:
                for k, v in mono.items():
                    if k in prev and v < prev[k]:
                        went_down += 1
                        st.fail(f"metrics: counter went down: {k} {prev[k]} -> {v}")
                gone = [k for k in prev if k not in mono]
                if gone:
                    st.note("metrics series disappeared", len(gone))
            prev = mono
        nxt = max(nxt + 1.0, time.monotonic() - 1.0)  # no burst after a pause
        time.sleep(max(0.0, nxt - time.monotonic()))
    st.note("metrics counters went down", went_down)
    st.note("metrics max series", n_series)
    c.close()


def model_version(a, st, c, m):
    code, data = call(st, c, "model info", "model", "GET", f"/v1/models/{m}")
    if code != 200:
        return None, None
    d = json.loads(data)
    return d.get("version"), d.get("state")


def publish(a, st, c, m):
    """Version N+1 of m by rename(2) of a staged copy of N; N is removed once N+1 serves."""
    mdir = os.path.join(a.repo, m)
    cur = max(int(v) for v in os.listdir(mdir) if v.isdigit())
    new = cur + 1
    stage = os.path.join(a.stage, f"{m}-{new}")
    shutil.copytree(os.path.join(mdir, str(cur)), stage)
    t0 = time.monotonic()
    os.rename(stage, os.path.join(mdir, str(new)))
    while time.monotonic() - t0 < 60:
        v, state = model_version(a, st, c, m)
        if v == new and state == "ready":
            st.add("publish (rename) to serving", "-", 200, time.monotonic() - t0)
            shutil.rmtree(os.path.join(mdir, str(cur)))
            return
        time.sleep(0.2)
    st.fail(f"publish {m} v{new}: not serving after 60 s")


def reload_client(a, st, seed):
    token = open(a.token_file).read().strip()
    auth = {"Authorization": f"Bearer {token}"}
    c = connect(a.addr, 120)
    admin_models = [GEN_MODEL, LGB_MODEL, XGB_MODEL, LR_MODEL]
    pub_models = [LR_MODEL, XGB_MODEL, GEN_MODEL, LGB_MODEL]
    i = 0
    nxt = time.monotonic() + 10
    while True:
        while time.monotonic() < nxt and time.monotonic() < a.stop_at:
            time.sleep(0.05)
        if not running(a):
            break
        nxt = max(nxt + 10, time.monotonic())
        if i % 2 == 0:
            m = admin_models[(i // 2) % len(admin_models)]
            call(st, c, f"reload (admin) {m}", "admin", "POST", f"/v1/models/{m}:reload", b"", None, auth)
        else:
            m = pub_models[(i // 2) % len(pub_models)]
            try:
                publish(a, st, c, m)
            except OSError as e:
                st.fail(f"publish {m}: {e}")
        i += 1
    c.close()


def bad_requests(a):
    """(key, label, method, path, body, content type, headers, expected code)."""
    lr = f"/v1/models/{LR_MODEL}"
    return [
        ("bad: malformed json", "predict", "POST", f"{lr}:predict", b'{"instances": [[1, 2,', "application/json", None, 400),
        ("bad: unknown model", "predict", "POST", "/v1/models/no_such_model:predict", b'{"instances": [[1]]}',
         "application/json", None, 404),
        ("bad: wrong feature count", "predict", "POST", f"{lr}:predict", b'{"instances": [[1, 2, 3]]}',
         "application/json", None, 400),
        ("bad: not json type", "predict", "POST", f"{lr}:predict", b"1,2,3", "text/plain", None, 415),
        ("bad: unknown route", "none", "GET", "/v1/nothing/here", None, None, None, 404),
        ("bad: wrong method", "none", "GET", f"{lr}:predict", None, None, None, 405),
        ("bad: rank malformed", "rank", "POST", f"/v1/models/{LGB_MODEL}:rank", b'{"candidates": 7}',
         "application/json", None, 400),
        ("bad: score-auc length mismatch", "score_auc", "POST", "/v1/score-auc",
         b'{"scores": [0.1, 0.2], "labels": [1]}', "application/json", None, 400),
        ("bad: score-auc csv line", "score_auc", "POST", f"{lr}:score-auc", b"mean_radius,label\n1,0\n2\n",
         "text/csv", None, 400),
        ("bad: generate unknown field", "generate", "POST", f"/v1/models/{GEN_MODEL}:generate",
         b'{"prompt": "x", "bogus": 1}', "application/json", None, 400),
        ("bad: completions unknown model", "completions", "POST", "/v1/completions",
         b'{"model": "no_such_model", "prompt": "x"}', "application/json", None, 404),
        ("bad: admin without token", "admin", "POST", f"{lr}:reload", b"", None, None, 401),
        ("bad: admin wrong token", "admin", "POST", f"{lr}:reload", b"", None,
         {"Authorization": "Bearer wrong-token-wrong-token"}, 403),
    ]


def bad_client(a, st, seed):
    rng = random.Random(seed)
    cases = bad_requests(a)
    c = connect(a.addr, 30)
    while running(a):
        key, label, method, path, body, ctype, hdr, want = rng.choice(cases)
        code, _ = call(st, c, key, label, method, path, body, ctype, hdr, (want,))
        time.sleep(0.2)
    c.close()


# --- orchestration --------------------------------------------------------------------------

GROUPS = {
    "predict": [(predict_client, ([LR_MODEL],)), (predict_client, ([LR_MODEL],)), (predict_client, ([LR_MODEL],)),
                (predict_client, ([XGB_MODEL, LGB_MODEL],)), (predict_client, ([XGB_MODEL, LGB_MODEL],)),
                (predict_client, ([LGB_MODEL, XGB_MODEL],))],
    "eval": [(rank_client, ()), (rank_client, ()), (auc_client, ())],
    "gen": [(gen_client, ()), (gen_client, ()), (gen_client, ())],
    "control": [(metrics_client, ()), (reload_client, ()), (bad_client, ())],
}


def run_group(a, name, out_path):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    stats = [Stats() for _ in GROUPS[name]]
    threads = []
    for i, (fn, extra) in enumerate(GROUPS[name]):
        def body(fn=fn, extra=extra, st=stats[i], seed=zlib.crc32(f"{name}{i}".encode())):
            try:
                fn(a, st, *extra, seed) if extra else fn(a, st, seed)
            except Exception as e:  # a driver bug must not pass as a clean run
                st.fail(f"{name}/{fn.__name__}: client crashed: {type(e).__name__}: {e}")
        t = threading.Thread(target=body, daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(max(1.0, a.stop_at - time.monotonic() + 180))
    total = Stats()
    for s in stats:
        merge(total, s)
    if any(t.is_alive() for t in threads):
        total.fail(f"{name}: a client thread did not stop in time")
    with open(out_path, "w") as f:
        json.dump(total.__dict__, f)


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pct(xs, q):
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


def features(a, m):
    c = connect(a.addr)
    c.request("GET", f"/v1/models/{m}")
    d = json.loads(c.getresponse().read())
    c.close()
    return [i["name"] for i in d["inputs"]]


def quiet_rss(a, st, t_start):
    """RSS with no request in flight: the clients hold (a.pause) until modeld reports one
    request in flight (the scrape asking) and no active sequence, then 3 samples 0.3 s
    apart after 1 s. Under load RSS swings by +-30 % with what is in flight (15 MB bodies,
    streams), which would drown a 5 % criterion. Returns (t, median kB, wait s)."""
    a.pause.set()
    t0 = time.monotonic()
    c = connect(a.addr, 30)
    try:
        while time.monotonic() - t0 < 30:
            got = scrape(a, st, c)
            if got:
                other = got[1]
                busy = other.get("modeld_inflight_requests", 0) + sum(
                    v for k, v in other.items() if k.startswith("modeld_generate_active_sequences"))
                if busy <= 1:
                    break
            time.sleep(0.2)
        waited = time.monotonic() - t0
        time.sleep(1.0)
        kbs = []
        for _ in range(3):
            kbs.append(rss_kb(a.pid) or 0)
            time.sleep(0.3)
    finally:
        c.close()
        a.pause.clear()
    return (round(t0 - t_start, 1), sorted(kbs)[1], round(waited, 2))


def run(a):
    main = Stats()
    a.pause = mp.Event()
    a.features = {m: features(a, m) for m in (LR_MODEL, XGB_MODEL, LGB_MODEL)}
    c = connect(a.addr)
    base = scrape(a, main, c)
    c.close()  # idle for the whole run, past connection_timeout_s: the final scrape reconnects
    t_start = time.monotonic()
    a.stop_at = t_start + a.seconds
    procs = {}
    for name in GROUPS:
        p = mp.Process(target=run_group, args=(a, name, f"{a.out}.{name}"), daemon=True)
        p.start()
        procs[name] = p

    def on_term(*_):
        for p in procs.values():
            if p.is_alive():
                p.terminate()
        sys.exit(143)
    signal.signal(signal.SIGTERM, on_term)

    rss, quiet, alive, paused = [], [], True, 0.0
    first_quiet = min(60.0, a.seconds / 2)  # short smoke runs still get two quiet samples
    nxt, next_quiet = t_start, t_start + first_quiet
    while time.monotonic() < a.stop_at:
        kb = rss_kb(a.pid)
        if kb is None:
            alive = False
            main.fail("modeld is gone (crashed?)")
            break
        rss.append((round(time.monotonic() - t_start, 1), kb))
        if time.monotonic() >= next_quiet and a.stop_at - time.monotonic() > min(30.0, a.seconds / 4):
            tq = time.monotonic()
            quiet.append(quiet_rss(a, main, t_start))
            paused += time.monotonic() - tq
            next_quiet += 60
        nxt = max(nxt + 5, time.monotonic() - 5)
        time.sleep(max(0.0, min(nxt, a.stop_at) - time.monotonic()))
    end_kb = rss_kb(a.pid)
    if end_kb is not None:
        rss.append((round(time.monotonic() - t_start, 1), end_kb))
    for name, p in procs.items():
        p.join(max(1.0, a.stop_at - time.monotonic() + 240))
        if p.is_alive():
            p.terminate()
            main.fail(f"{name}: client process did not finish")
    wall = time.monotonic() - t_start
    if alive:
        quiet.append(quiet_rss(a, main, t_start))  # the clients are done: the end figure
    total = Stats()
    merge(total, main)
    for name in GROUPS:
        try:
            with open(f"{a.out}.{name}") as f:
                s = Stats()
                s.__dict__.update(json.load(f))
                merge(total, s)
            os.unlink(f"{a.out}.{name}")
        except (OSError, ValueError) as e:
            total.fail(f"{name}: no results ({e})")
    time.sleep(1.0)  # let hung-up streams finish on the daemon's side
    fin = Stats()  # not counted: the daemon's final figures cannot include this scrape
    c = connect(a.addr)
    final = scrape(a, fin, c) if alive else None
    c.close()
    total.fails.extend(fin.fails)
    total.n_fails += fin.n_fails
    res = {"seconds": a.seconds, "wall_s": round(wall, 1), "paused_s": round(paused, 1), "rss_kb": rss, "quiet_rss": quiet, "fails": total.fails,
           "n_fails": total.n_fails, "notes": total.notes, "errors": total.errors, "codes": total.codes,
           "endpoints": {}, "client_by_label": total.daemon, "daemon_by_label": None, "final_rss_metric": None}
    for k, xs in total.lat.items():
        xs.sort()
        res["endpoints"][k] = {"n": len(xs), "rps": round(len(xs) / (wall - paused), 2), "p50_ms": round(pct(xs, 0.5) * 1e3, 2),
                               "p99_ms": round(pct(xs, 0.99) * 1e3, 2), "max_ms": round(xs[-1] * 1e3, 2)}
    if base and final:
        b, f = requests_by_endpoint(base[0]), requests_by_endpoint(final[0])
        res["daemon_by_label"] = {k: f[k] - b.get(k, 0) for k in f if f[k] - b.get(k, 0)}
        res["final_rss_metric"] = final[1].get("process_resident_memory_bytes")
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=1)
    return 0


# --- report ---------------------------------------------------------------------------------

def report(a):
    r = json.load(open(a.results))
    ok = True
    out = []
    def crit(name, passed, detail):
        nonlocal ok
        ok = ok and passed
        out.append(f"| {name} | {'pass' if passed else '**FAIL**'} | {detail} |")

    out.append(f"Load phase {r['wall_s']} s (asked {r['seconds']} s).\n")
    out.append("| client endpoint | requests | req/s | p50 ms | p99 ms | max ms | statuses |")
    out.append("|---|---:|---:|---:|---:|---:|---|")
    for k in sorted(r["endpoints"]):
        e = r["endpoints"][k]
        codes = " ".join(f"{c}:{n}" for c, n in sorted(r["codes"].get(k, {}).items()))
        out.append(f"| {k} | {e['n']} | {e['rps']} | {e['p50_ms']} | {e['p99_ms']} | {e['max_ms']} | {codes} |")
    status = {}
    for k, cs in r["codes"].items():
        for c, n in cs.items():
            if k.startswith("publish"):
                continue
            status[c] = status.get(c, 0) + n
    out.append("\nStatus counts over all requests: " + ", ".join(f"{c}: {n}" for c, n in sorted(status.items())))
    n5 = sum(n for c, n in status.items() if c.startswith("5"))
    n_err = sum(sum(v.values()) for v in r["errors"].values())
    for k in ("notes",):
        if r[k]:
            out.append("\nNotes: " + ", ".join(f"{n}: {v}" for n, v in sorted(r[k].items())))

    rss = r["rss_kb"]
    if rss:
        marks = [min(rss, key=lambda s: abs(s[0] - 60 * m)) for m in range(0, int(rss[-1][0] // 60) + 1)]
        out.append("\nRSS (VmRSS, MiB), the sample nearest each minute: " + ", ".join(
            f"{t:.0f} s: {kb / 1024:.1f}" for t, kb in marks)
            + f"; min {min(kb for _, kb in rss) / 1024:.1f}, max {max(kb for _, kb in rss) / 1024:.1f}, "
            f"end ({rss[-1][0]:.0f} s) {rss[-1][1] / 1024:.1f} ({len(rss)} samples)")
    # Under load one 5 s sample swings by +-30 % with what is in flight (a 15 MB :score-auc
    # body, 30 streams): the criterion compares quiet samples (no request in flight).
    quiet = r.get("quiet_rss") or []
    if quiet:
        out.append("\nRSS with no request in flight (MiB; the load held for the sample, "
                   f"{r.get('paused_s', 0)} s in all, left out of req/s): "
                   + ", ".join(f"{t:.0f} s: {kb / 1024:.1f}" for t, kb, _ in quiet[:-1])
                   + f", end: {quiet[-1][1] / 1024:.1f}")
    ref = quiet[0][1] if len(quiet) >= 2 else None
    end = quiet[-1][1] if len(quiet) >= 2 else None
    out.append("\n| criterion | result | detail |")
    out.append("|---|---|---|")
    crit("zero 5xx", n5 == 0, f"{n5} 5xx")
    crit("zero transport errors", n_err == 0, json.dumps(r["errors"]) if n_err else "0")
    unexpected = r["n_fails"]
    crit("every answer as expected (2xx for good requests, the right 4xx for bad ones, well-formed bodies)",
         unexpected == 0, f"{unexpected} failures" + ("; first: " + "; ".join(r["fails"][:5]) if unexpected else ""))
    down = r["notes"].get("metrics counters went down", 0)
    crit("/metrics counters only grow (every scrape vs the one before)", down == 0, f"{down} decreases")
    d, cl = r["daemon_by_label"], {k: v for k, v in r["client_by_label"].items() if not k.startswith("- ")}
    if d is None:
        crit("daemon counts = client counts", False, "no final /metrics")
    else:
        keys = sorted(set(d) | set(cl))
        diff = {k: (cl.get(k, 0), d.get(k, 0)) for k in keys if cl.get(k, 0) != d.get(k, 0)}
        crit("modeld_requests_total (delta over the run) = client counts, per endpoint and code", not diff,
             "all equal: " + ", ".join(f"{k}: {cl[k]}" for k in keys if k in cl) if not diff else
             "client vs daemon: " + json.dumps(diff))
    if not ref or not end:
        crit("RSS at the end within +5 % of RSS after minute 1", False, "no quiet samples (run under 90 s?)")
    else:
        ratio = end / ref
        passed = ratio <= 1 + a.rss_tolerance or not a.rss_enforce
        crit(f"RSS at the end within +{a.rss_tolerance * 100:.0f} % of RSS after {quiet[0][0]:.0f} s (no request in flight)"
             + ("" if a.rss_enforce else " (reported only)"),
             passed, f"{ref / 1024:.1f} MiB -> {end / 1024:.1f} MiB ({(ratio - 1) * 100:+.2f} %)")
    crit("SIGTERM: exit code 0", a.modeld_rc == 0, f"exit code {a.modeld_rc}")
    crit("no sanitizer output in modeld's log", a.sanitizer == 0, f"{a.sanitizer} marker lines")
    print("\n".join(out))
    print(f"\nRESULT: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    for k in ("addr", "repo", "stage", "token-file", "out"):
        p.add_argument("--" + k, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--seconds", type=float, default=600)
    q = sub.add_parser("report")
    q.add_argument("--results", required=True)
    q.add_argument("--modeld-rc", type=int, required=True)
    q.add_argument("--sanitizer", type=int, required=True)
    q.add_argument("--rss-tolerance", type=float, default=0.05)
    q.add_argument("--rss-enforce", type=int, default=1)
    a = ap.parse_args()
    return run(a) if a.cmd == "run" else report(a)


if __name__ == "__main__":
    sys.exit(main())
