"""/metrics: valid Prometheus text (promtool), counts exactly the requests made, keeps
label sets bounded, and a real Prometheus server scrapes it."""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from conftest import Daemon, free_port, write_lr_model, write_toy_model

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
DOC_ENDPOINTS = {"healthz", "readyz", "metrics", "models", "model", "predict", "admin", "none",
                 "infer", "v2_server", "v2_health", "v2_model", "v2_stats"}


# -- a small parser for the Prometheus text format 0.0.4 ---------------------------------------

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _parse_labels(s, i, line):
    """s[i] == '{'. Returns (labels dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        while s[i] == " ":
            i += 1
        if s[i] == "}":
            return labels, i + 1
        m = _LABEL.match(s, i)
        assert m, f"bad label name in {line!r}"
        name = m.group(0)
        i = m.end()
        assert s[i:i + 2] == '="', f"bad label syntax in {line!r}"
        i += 2
        val = []
        while s[i] != '"':
            if s[i] == "\\":
                nxt = s[i + 1]
                assert nxt in 'n"\\', f"bad escape in {line!r}"
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            else:
                val.append(s[i])
                i += 1
        i += 1
        assert name not in labels, f"duplicate label {name} in {line!r}"
        labels[name] = "".join(val)
        if s[i] == ",":
            i += 1
        else:
            assert s[i] == "}", f"bad label list in {line!r}"


class Metrics:
    """Parsed exposition: .types {family: type}, .samples [(name, labels, value)]."""

    def __init__(self, text):
        self.text = text
        self.types = {}
        self.samples = []
        for line in text.split("\n"):
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 4 and parts[1] == "TYPE":
                    assert parts[2] not in self.types, f"TYPE twice for {parts[2]}"
                    self.types[parts[2]] = parts[3].strip()
                continue
            m = _NAME.match(line)
            assert m, f"bad sample line {line!r}"
            name, i = m.group(0), m.end()
            labels = {}
            if i < len(line) and line[i] == "{":
                labels, i = _parse_labels(line, i, line)
            rest = line[i:].split()
            assert 1 <= len(rest) <= 2, f"bad sample line {line!r}"
            self.samples.append((name, labels, float(rest[0])))

    def series(self, name, **match):
        return [(lab, v) for n, lab, v in self.samples
                if n == name and all(lab.get(k) == str(w) for k, w in match.items())]

    def value(self, name, **labels):
        """The value of the one series with exactly these labels; 0 when absent
        (counters that were never incremented need not be exported)."""
        hits = [v for n, lab, v in self.samples
                if n == name and lab == {k: str(w) for k, w in labels.items()}]
        assert len(hits) <= 1, f"{name}{labels} exported {len(hits)} times"
        return hits[0] if hits else 0.0

    def total(self, name, **match):
        return sum(v for _lab, v in self.series(name, **match))

    def histogram(self, family, **labels):
        """(buckets [(le, count)] sorted by le, count, sum) of one histogram series."""
        want = {k: str(w) for k, w in labels.items()}
        buckets = []
        for n, lab, v in self.samples:
            if n == family + "_bucket" and {k: w for k, w in lab.items() if k != "le"} == want:
                buckets.append((float(lab["le"]), v))
        buckets.sort()
        return buckets, self.value(family + "_count", **labels), self.value(family + "_sum", **labels)


def scrape(d):
    st, h, text = d.request("GET", "/metrics")
    assert st == 200, text
    ctype = h.get("content-type", "")
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, \
        f"/metrics Content-Type {ctype!r}, want text/plain; version=0.0.4"
    return Metrics(text)


def promtool_check(text):
    assert os.access(PROMTOOL, os.X_OK), f"{PROMTOOL} missing (Debian package prometheus)"
    cp = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                        text=True, timeout=30)
    assert cp.returncode == 0, \
        f"promtool check metrics failed ({cp.returncode}):\n{cp.stdout}{cp.stderr}"


def assert_histogram_sane(m, family, **labels):
    buckets, count, total = m.histogram(family, **labels)
    assert buckets, f"{family}{labels}: no buckets"
    assert buckets[-1][0] == math.inf, f"{family}{labels}: no +Inf bucket"
    prev = 0.0
    for le, c in buckets:
        assert c >= prev, f"{family}{labels}: bucket le={le} count {c} < previous {prev}"
        prev = c
    assert buckets[-1][1] == count, f"{family}{labels}: +Inf bucket {buckets[-1][1]} != _count {count}"
    assert total >= 0
    return count, total


# -- exact counting --------------------------------------------------------------------------

@pytest.fixture
def two_model_repo(tmp_path):
    repo = tmp_path / "repo"
    write_toy_model(repo, "toy")
    write_lr_model(repo, "other", ["a", "b"], [1.0, -1.0], 0.25)
    return repo


def test_counts_exactly_what_was_requested(two_model_repo):
    batches = [1, 2, 3, 4, 5, 6, 7]                 # N good predicts on toy
    n_bad, n_badver, n_other, n_health = 3, 2, 2, 5
    randoms = ["zz" + uuid.uuid4().hex for _ in range(4)]
    with Daemon(two_model_repo) as d:
        before = scrape(d)
        assert before.value("modeld_requests_total", endpoint="predict", model="toy", code="200") == 0

        for b in batches:
            st, _, body = d.predict("toy", [[1, 2, 3]] * b)
            assert st == 200 and len(body["predictions"]) == b
        for _ in range(n_bad):
            assert d.predict("toy", [[1, 2]])[0] == 400
        for _ in range(n_badver):
            assert d.predict("toy", [[1, 2, 3]], version=77)[0] == 404
        for r in randoms:
            assert d.predict(r, [[1, 2, 3]])[0] == 404
            assert d.request("GET", "/v1/models/" + r)[0] == 404
            assert d.request("GET", "/" + r)[0] == 404
        for _ in range(n_other):
            assert d.predict("other", [[1, 2]])[0] == 200
        for _ in range(n_health):
            assert d.request("GET", "/healthz")[0] == 200

        m = scrape(d)
        promtool_check(m.text)

    N = len(batches)
    rq = "modeld_requests_total"
    assert m.types.get(rq) == "counter", f"TYPE of {rq}: {m.types.get(rq)}"
    assert m.value(rq, endpoint="predict", model="toy", code="200") == N
    assert m.value(rq, endpoint="predict", model="toy", code="400") == n_bad
    assert m.value(rq, endpoint="predict", model="toy", code="404") == n_badver
    assert m.value(rq, endpoint="predict", model="other", code="200") == n_other
    # Unknown models are counted, but never under their (unbounded) names.
    assert m.total(rq, endpoint="predict", code="404") == n_badver + len(randoms)
    assert m.total(rq, endpoint="model", code="404") == len(randoms)
    assert m.value(rq, endpoint="healthz", model="", code="200") == n_health
    for r in randoms:
        assert r not in m.text, f"a 404 URL created a series: {r!r} appears in /metrics"
    models = {lab["model"] for n, lab, _ in m.samples if "model" in lab}
    assert models <= {"toy", "other", ""}, f"model labels: {models}"

    # Latency histogram: one observation per request, buckets cumulative.
    hist = "modeld_request_duration_seconds"
    assert m.types.get(hist) == "histogram", f"TYPE of {hist}: {m.types.get(hist)}"
    count, total = assert_histogram_sane(m, hist, endpoint="predict", model="toy")
    assert count == N + n_bad + n_badver
    assert total > 0
    # Same invariant for every (endpoint, model) pair but /metrics itself (the scrape in
    # progress may be in one and not yet in the other).
    pairs = {(lab["endpoint"], lab["model"]) for n, lab, _ in m.samples
             if n == hist + "_count"}
    assert ("healthz", "") in pairs and ("predict", "other") in pairs, pairs
    for ep, mod in pairs:
        if ep == "metrics":
            continue
        c, _ = assert_histogram_sane(m, hist, endpoint=ep, model=mod)
        assert c == m.total(rq, endpoint=ep, model=mod), \
            f"{hist}{{endpoint={ep},model={mod}}}_count {c} != sum of {rq} {m.total(rq, endpoint=ep, model=mod)}"

    # Inference: one observation per successful predict on that model.
    inf = "modeld_inference_duration_seconds"
    assert m.types.get(inf) == "histogram", f"TYPE of {inf}: {m.types.get(inf)}"
    c, s = assert_histogram_sane(m, inf, model="toy")
    assert c == N and s > 0
    c, _ = assert_histogram_sane(m, inf, model="other")
    assert c == n_other

    # Batch size: however requests were grouped, the rows add up.
    bs = "modeld_batch_size"
    assert m.types.get(bs) == "histogram", f"TYPE of {bs}: {m.types.get(bs)}"
    assert m.total(bs + "_sum") == sum(batches) + n_other

    assert "modeld_queue_duration_seconds" in m.types
    assert m.value("modeld_model_loaded", model="toy", version="1") == 1
    assert m.value("modeld_model_loaded", model="other", version="1") == 1
    inflight = m.series("modeld_inflight_requests")
    assert len(inflight) == 1 and 0 <= inflight[0][1] <= 1, inflight

    # Last, as the least important: the endpoint label takes only the documented values.
    endpoints = {lab.get("endpoint") for n, lab, _ in m.samples if "endpoint" in lab}
    assert endpoints <= DOC_ENDPOINTS | {""}, \
        f"endpoint label values outside docs/api.md: {sorted(endpoints - DOC_ENDPOINTS)}"


def test_metrics_counts_itself_once_per_scrape(toy_repo):
    with Daemon(toy_repo) as d:
        vals = [scrape(d).value("modeld_requests_total", endpoint="metrics", model="", code="200")
                for _ in range(4)]
    assert [b - a for a, b in zip(vals, vals[1:])] == [1, 1, 1], vals


def _proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def test_process_metrics_match_proc(toy_repo):
    with Daemon(toy_repo) as d:
        for _ in range(20):
            d.predict("toy", [[1, 2, 3]] * 200)
        m = scrape(d)
        promtool_check(m.text)
        pid = d.proc.pid
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        rss = int(_proc_status(pid)["VmRSS"].split()[0]) * 1024
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        started = d.started_at

    start = m.value("process_start_time_seconds")
    assert started - 2 <= start <= started + 5, f"process_start_time_seconds {start} vs spawn {started}"
    assert abs(m.value("process_open_fds") - fds) <= 8, (m.value("process_open_fds"), fds)
    rss_m = m.value("process_resident_memory_bytes")
    assert rss / 2 <= rss_m <= rss * 2, (rss_m, rss)
    cpu_m = m.value("process_cpu_seconds_total")
    assert 0 <= cpu_m <= cpu + 0.05 and cpu_m >= cpu - 1.0, (cpu_m, cpu)
    assert m.types.get("process_cpu_seconds_total") == "counter"


# -- a real Prometheus -----------------------------------------------------------------------

def _get_json(url, timeout=3.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def test_real_prometheus_scrapes(toy_repo, tmp_path):
    assert os.access(PROMETHEUS, os.X_OK), f"{PROMETHEUS} missing (Debian package prometheus)"
    with Daemon(toy_repo) as d:
        for _ in range(3):
            assert d.predict("toy", [[1, 2, 3]])[0] == 200
        port = free_port()
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: modeld\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{d.port}']\n")
        log = open(tmp_path / "prometheus.log", "wb")
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        target, result, last = None, None, None
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and result is None:
                assert prom.poll() is None, \
                    f"prometheus exited {prom.returncode}:\n{(tmp_path / 'prometheus.log').read_text()[-3000:]}"
                time.sleep(0.5)
                try:
                    if target is None or target.get("health") != "up":
                        ts = _get_json(base + "/api/v1/targets")["data"]["activeTargets"]
                        mine = [t for t in ts if f":{d.port}" in t.get("scrapeUrl", "")]
                        target = mine[0] if mine else None
                        last = target
                        continue
                    q = urllib.parse.quote('modeld_requests_total{endpoint="predict",model="toy",code="200"}')
                    ans = _get_json(f"{base}/api/v1/query?query={q}")
                    last = ans
                    if ans.get("status") == "success" and ans["data"]["result"]:
                        result = ans["data"]["result"]
                except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
                    last = repr(e)
            anyq = _get_json(f"{base}/api/v1/query?query=modeld_requests_total") if result else None
            # rate() over the scrapes: 5 more requests after Prometheus has seen the first
            # 3 must show as a positive rate, and the raw samples must step from 3 to 8.
            sel = 'modeld_requests_total{endpoint="predict",model="toy",code="200"}'
            rate, samples = None, None
            if result:
                for _ in range(5):
                    assert d.predict("toy", [[1, 2, 3]])[0] == 200
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    time.sleep(0.5)
                    try:
                        q = urllib.parse.quote(f"rate({sel}[1m])")
                        ans = _get_json(f"{base}/api/v1/query?query={q}")
                        last = ans
                        r = ans["data"]["result"] if ans.get("status") == "success" else []
                        if r and float(r[0]["value"][1]) > 0:
                            rate = float(r[0]["value"][1])
                            q = urllib.parse.quote(f"{sel}[1m]")
                            samples = [float(v) for _t, v in
                                       _get_json(f"{base}/api/v1/query?query={q}")["data"]["result"][0]["values"]]
                            if samples[-1] == 8.0:
                                break
                    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError) as e:
                        last = repr(e)
        finally:
            prom.send_signal(signal.SIGTERM)
            try:
                prom.wait(10)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait(5)
            log.close()
    assert target is not None and target.get("health") == "up", \
        f"Prometheus target not up within 30 s: {last!r}"
    assert target.get("lastError", "") == "", target
    assert result, f"Prometheus has no modeld_requests_total sample within 30 s: {last!r}"
    assert float(result[0]["value"][1]) == 3.0, result
    assert result[0]["metric"]["job"] == "modeld"
    assert anyq["status"] == "success" and len(anyq["data"]["result"]) >= 2, anyq
    assert rate is not None and rate > 0, f"rate() never saw the 5 later requests: {last!r}"
    assert samples and samples[0] == 3.0 and samples[-1] == 8.0, samples
    shutil.rmtree(tmp_path / "tsdb", ignore_errors=True)
