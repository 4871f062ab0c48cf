"""Process lifecycle: ready file, /healthz and /readyz while models load or fail, model
listing and metadata, graceful drain on SIGTERM/SIGINT with requests in flight, and the
command-line surface (--check-config, --version, --help)."""

import datetime
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import threading
import time

import pytest

from conftest import (REPO_ROOT, Daemon, assert_common_headers, assert_error, lr_expected,
                      parse_raw_response, run_modeld, toy_expected, write_broken_model,
                      write_lr_model, write_toy_model)


def poll(deadline_s, fn, interval=0.02):
    """Calls fn() until it returns a truthy value or the deadline passes; returns the last
    value."""
    end = time.monotonic() + deadline_s
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(interval)


# -- ready file, healthz, readyz -------------------------------------------------------------

def test_ready_file_names_the_bound_port(toy_repo):
    with Daemon(toy_repo) as d:
        m = re.fullmatch(r"127\.0\.0\.1:(\d+)\n", d.ready_text)
        assert m, f"ready file content {d.ready_text!r}, want '127.0.0.1:PORT\\n'"
        port = int(m.group(1))
        assert 0 < port < 65536
        st, h, body = d.request("GET", "/healthz")
        assert (st, body) == (200, {"status": "ok"})
        assert_common_headers(h)
        st, _, body = d.request("GET", "/readyz")
        assert (st, body) == (200, {"status": "ready"})


def write_big_model(repo, name, n_features):
    feats = [f"f{i}" for i in range(n_features)]
    weights = [((i % 17) - 8) / 1000.0 for i in range(n_features)]
    write_lr_model(repo, name, feats, weights, 0.1)
    return feats, weights


def test_readyz_goes_ready_as_models_load(tmp_path):
    """With only good models /readyz ends at 200; before that it may say 503 not_ready
    with the models still loading, never 200 and then 503 again. /healthz is 200 all along."""
    repo = tmp_path / "repo"
    write_toy_model(repo)
    # A model big enough that loading it takes a moment.
    _, weights = write_big_model(repo, "big", 200_000)
    seen = []
    with Daemon(repo, wait_ready=False, config={"max_body_bytes": 16 * 1024 * 1024}) as d:
        def step():
            st, _, body = d.request("GET", "/readyz")
            hst, _, hbody = d.request("GET", "/healthz")
            seen.append((st, body, hst, hbody))
            return st == 200
        assert poll(60, step, interval=0.02), f"/readyz never 200; last {seen[-1]!r}"
        st, _, body = d.predict("big", [[1.0] * 200_000])
        assert st == 200, body
        assert body["predictions"][0] == pytest.approx(lr_expected(weights, 0.1, [1.0] * 200_000),
                                                       abs=1e-6)
    statuses = [s[0] for s in seen]
    first_ok = statuses.index(200)
    assert all(s == 503 for s in statuses[:first_ok]), statuses
    for st, body, hst, hbody in seen:
        assert (hst, hbody) == (200, {"status": "ok"}), f"/healthz while loading: {hst} {hbody!r}"
        if st == 503:
            assert body.get("status") == "not_ready", body
            names = {e["name"] for e in body["not_ready"]}
            assert names and names <= {"toy", "big"}, body
            assert all(e["state"] == "loading" for e in body["not_ready"]), body
        else:
            assert body == {"status": "ready"}, body
    print(f"readyz answers before ready: {first_ok} x 503")


@pytest.mark.parametrize("content", ["{ this is not json", "", json.dumps({"weights": "nope"})],
                         ids=["garbage", "empty", "wrong_schema"])
def test_failed_model_keeps_readyz_503(tmp_path, content):
    repo = tmp_path / "repo"
    write_toy_model(repo)
    write_broken_model(repo, "broken", content=content)
    with Daemon(repo, wait_ready=False) as d:
        def failed_reported():
            st, _, body = d.request("GET", "/readyz")
            ents = body.get("not_ready", []) if isinstance(body, dict) else []
            if st == 503 and [e.get("state") for e in ents] == ["failed"]:
                return body
            return None
        body = poll(20, failed_reported)
        assert body, f"/readyz never reported 'broken' as failed: {d.request('GET', '/readyz')!r}"
        assert body["status"] == "not_ready", body
        (ent,) = body["not_ready"]
        assert ent["name"] == "broken", body
        assert isinstance(ent.get("error"), str) and ent["error"].strip(), \
            f"failed model without its error: {body!r}"

        # The good model serves meanwhile, liveness holds, readiness stays 503.
        rows = [[30, 2.0, 0.5], [1, 1, 1]]
        for _ in range(3):
            st, _, pb = d.predict("toy", rows)
            assert st == 200, pb
            assert pb["predictions"] == pytest.approx([toy_expected(r) for r in rows], abs=1e-6)
            assert d.request("GET", "/healthz")[:1] == (200,)
            assert d.request("GET", "/readyz")[0] == 503
            time.sleep(0.2)

        msg = assert_error(d.predict("broken", [[1, 2, 3]]), 503, "model_not_ready")
        assert "broken" in msg, msg
        st, _, lst = d.request("GET", "/v1/models")
        assert st == 200
        states = {m["name"]: m["state"] for m in lst["models"]}
        assert states == {"toy": "ready", "broken": "failed"}, lst
        st, _, meta = d.request("GET", "/v1/models/broken")
        assert st == 200, meta
        assert meta["state"] == "failed" and isinstance(meta["last_error"], str) \
            and meta["last_error"].strip(), meta
        assert meta["last_error"] == ent["error"], (meta, ent)


# -- model listing and metadata ------------------------------------------------------------

def _parse_time(v):
    """loaded_at as a Unix time: accepts seconds since the epoch or an RFC 3339 string."""
    if isinstance(v, (int, float)):
        return float(v)
    assert isinstance(v, str), v
    s = v.replace("Z", "+00:00")
    t = datetime.datetime.fromisoformat(s)
    assert t.tzinfo is not None, f"loaded_at {v!r} has no time zone"
    return t.timestamp()


def test_models_list_and_metadata(tmp_path):
    repo = tmp_path / "repo"
    feats = ["age", "income", "score"]
    write_lr_model(repo, "alpha", feats, [1.0, 1.0, 1.0], 0.0, version=1)
    art3 = write_lr_model(repo, "alpha", feats, [0.2, -0.1, 0.7], -0.3, version=3)
    write_lr_model(repo, "beta", ["x", "y"], [0.5, 0.5], 0.0, version=2)
    t0 = time.time()
    with Daemon(repo) as d:
        st, h, lst = d.request("GET", "/v1/models")
        assert st == 200
        assert h["content-type"].startswith("application/json")
        assert_common_headers(h)
        by_name = {m["name"]: m for m in lst["models"]}
        assert set(by_name) == {"alpha", "beta"}, lst
        for name, ver in (("alpha", 3), ("beta", 2)):
            e = by_name[name]
            assert e["kind"] == "lr" and e["state"] == "ready", e
            assert str(e["version"]) == str(ver), f"{name}: version {e['version']!r}, highest is {ver}"

        st, h, meta = d.request("GET", "/v1/models/alpha")
        assert st == 200, meta
        assert_common_headers(h)
        assert meta["name"] == "alpha" and meta["kind"] == "lr" and meta["state"] == "ready"
        assert str(meta["version"]) == "3"
        assert meta["task"] == "binary"
        assert [(i["name"], i["type"]) for i in meta["inputs"]] == [(f, "number") for f in feats]
        assert isinstance(meta["outputs"], list) and meta["outputs"], meta
        assert [str(c) for c in meta["classes"]] == ["0", "1"], meta
        loaded = _parse_time(meta["loaded_at"])
        assert t0 - 2 <= loaded <= time.time() + 2, f"loaded_at {meta['loaded_at']!r} not within the run"
        a = meta["artifact"]
        data = art3.read_bytes()
        assert a["sha256"] == hashlib.sha256(data).hexdigest(), a
        assert a["bytes"] == len(data), a
        assert os.path.samefile(a["path"], art3), f"artifact.path {a['path']!r} is not {art3}"
        assert "last_error" in meta and meta["last_error"] in (None, ""), meta

        st, _, meta3 = d.request("GET", "/v1/models/alpha/versions/3")
        assert st == 200, meta3
        assert str(meta3["version"]) == "3" and meta3["artifact"]["sha256"] == a["sha256"]

        row = [40, 3.0, 1.5]
        want = lr_expected([0.2, -0.1, 0.7], -0.3, row)
        for version in (None, 3):
            st, _, pb = d.predict("alpha", [row], version=version)
            assert st == 200, pb
            assert pb["predictions"][0] == pytest.approx(want, abs=1e-6), "served the wrong version"
            assert str(pb["model"]["version"]) == "3" and pb["model"]["name"] == "alpha"
        st, _, pb = d.predict("alpha", [{"score": 1.5, "age": 40, "income": 3.0}])
        assert st == 200 and pb["predictions"][0] == pytest.approx(want, abs=1e-6), pb
        st, _, pb = d.predict("alpha", [[40, 3.0, 1.5]], output="margin")
        assert st == 200 and pb["predictions"][0] == pytest.approx(
            0.2 * 40 - 0.1 * 3.0 + 0.7 * 1.5 - 0.3, abs=1e-6), pb


def test_bundled_demo_repository_serves(demo_repo):
    """conf/models as shipped: loads, describes itself, and classifies the data it was
    trained on (scikit-learn's bundled breast-cancer set) about as well as any fitted
    LR does. Bit-level fidelity is test_lr_fidelity.py's job."""
    from sklearn.datasets import load_breast_cancer
    data = load_breast_cancer()
    with Daemon(demo_repo) as d:
        st, _, lst = d.request("GET", "/v1/models")
        assert st == 200
        # Other demo models (gbdt) have their own suites; all must be ready.
        models = {m["name"]: (m["kind"], m["state"]) for m in lst["models"]}
        assert models.get("breast_cancer") == ("lr", "ready"), lst
        assert all(state == "ready" for _, state in models.values()), lst
        st, _, meta = d.request("GET", "/v1/models/breast_cancer")
        assert st == 200, meta
        assert meta["task"] == "binary" and meta["classes"] == ["benign", "malignant"], meta
        assert len(meta["inputs"]) == 30 and all(i["type"] == "number" for i in meta["inputs"])
        art = demo_repo / "breast_cancer" / "1" / "lr.json"
        assert meta["artifact"]["sha256"] == hashlib.sha256(art.read_bytes()).hexdigest()

        rows = data.data[:60].tolist()
        st, _, pb = d.predict("breast_cancer", rows)
        assert st == 200, pb
        probs = pb["predictions"]
        assert len(probs) == 60 and all(0.0 <= p <= 1.0 for p in probs), probs
        # classes[1] is "malignant"; sklearn's target 0 means malignant.
        truth = [t == 0 for t in data.target[:60]]
        agree = sum((p > 0.5) == t for p, t in zip(probs, truth))
        assert agree >= 57, f"demo model agrees with the labels on only {agree}/60 training rows"
        # Named-feature rows give the same answers as positional ones.
        names = [i["name"] for i in meta["inputs"]]
        st, _, pn = d.predict("breast_cancer", [dict(zip(names, r)) for r in rows[:5]])
        assert st == 200 and pn["predictions"] == pytest.approx(probs[:5], abs=1e-12), pn


# -- graceful drain ------------------------------------------------------------------------

ROWS = [[(i % 90), (i % 7) * 0.5, (i % 13) - 6.0] for i in range(20000)]
BIG_BODY = json.dumps({"instances": ROWS}).encode()
WANT0, WANT_LAST = toy_expected(ROWS[0]), toy_expected(ROWS[-1])


class Hammer(threading.Thread):
    """Sends big predicts on fresh connections until the listener refuses or stop is set.
    Records every outcome with its start/end time."""

    def __init__(self, d, stop_evt, deadline):
        super().__init__(daemon=True)
        self.d, self.stop_evt, self.deadline = d, stop_evt, deadline
        self.ok = []        # (t_start, t_end)
        self.failures = []  # (t_start, t_fail, what)
        self.refused_at = None

    def run(self):
        while not self.stop_evt.is_set() and time.monotonic() < self.deadline:
            t0 = time.monotonic()
            c = http.client.HTTPConnection(self.d.host, self.d.port, timeout=15)
            try:
                c.connect()
            except ConnectionRefusedError:
                # When the refusal came, not when the attempt began: under load this thread
                # can wait tens of ms for the GIL between taking t0 and calling connect().
                self.refused_at = time.monotonic()
                return
            except OSError as e:
                self.failures.append((t0, time.monotonic(), f"connect: {e!r}"))
                return
            phase = "sending the request"
            try:
                c.request("POST", "/v1/models/toy:predict", BIG_BODY,
                          {"Content-Type": "application/json"})
                phase = "waiting for the response"
                r = c.getresponse()
                phase = "reading the response body"
                data = r.read()
                if r.status != 200:
                    self.failures.append((t0, time.monotonic(), f"HTTP {r.status}: {data[:300]!r}"))
                    continue
                preds = json.loads(data)["predictions"]
                if (len(preds) != len(ROWS) or abs(preds[0] - WANT0) > 1e-6
                        or abs(preds[-1] - WANT_LAST) > 1e-6):
                    self.failures.append((t0, time.monotonic(), "wrong predictions"))
                    continue
                self.ok.append((t0, time.monotonic()))
            except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
                self.failures.append((t0, time.monotonic(),
                                      f"connected, then {e!r} while {phase}"))
            finally:
                c.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_drain_loses_no_request(toy_repo, sig):
    cfg = {"max_body_bytes": 8 * 1024 * 1024, "drain_timeout_ms": 10000}
    with Daemon(toy_repo, config=cfg) as d:
        # A keep-alive connection opened before the signal, to ask /readyz during drain.
        ka = d.connection(timeout=5)
        st, _, body = d.request("GET", "/readyz", conn=ka)
        assert st == 200, body

        stop_evt = threading.Event()
        hammers = [Hammer(d, stop_evt, time.monotonic() + 40) for _ in range(8)]
        for t in hammers:
            t.start()
        assert poll(15, lambda: all(len(t.ok) >= 2 for t in hammers), interval=0.05), \
            f"hammers did not get going: {[len(t.ok) for t in hammers]} ok, " \
            f"failures {[f for t in hammers for f in t.failures][:3]}"

        # A request whose body is half uploaded when the signal arrives.
        slow = socket.create_connection((d.host, d.port), timeout=10)
        small = json.dumps({"instances": [[30, 2.0, 0.5]] * 50}).encode()
        slow.sendall(b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nConnection: close\r\n"
                     + f"Content-Length: {len(small)}\r\n\r\n".encode() + small[:len(small) // 2])
        time.sleep(0.1)

        t_sig = time.monotonic()
        d.send_signal(sig)

        # /readyz on the keep-alive connection until it stops saying 200 (the loop may
        # take a moment under this load to see the signal): then 503 "draining", or the
        # connection is gone. Either way draining has begun before the slow upload ends.
        ka_answers, t_drain_seen = [], None
        while time.monotonic() < t_sig + 5:
            try:
                st, _, body = d.request("GET", "/readyz", conn=ka)
            except (OSError, http.client.HTTPException) as e:
                ka_answers.append(("unreachable", repr(e)))
                t_drain_seen = time.monotonic()
                break
            ka_answers.append((st, body))
            if st != 200:
                t_drain_seen = time.monotonic()
                break
            time.sleep(0.05)
        ka.close()
        # A new connection now: refused (listener closed) or 503 "draining".
        try:
            st, _, body = d.request("GET", "/readyz", timeout=5)
            new_conn_answer = (st, body)
        except ConnectionRefusedError as e:
            new_conn_answer = ("refused", repr(e))

        time.sleep(0.5)
        slow_answer = b""
        try:
            slow.sendall(small[len(small) // 2:])
            slow.settimeout(10)
            while True:
                chunk = slow.recv(65536)
                if not chunk:
                    break
                slow_answer += chunk
        except OSError as e:
            slow_answer += f"\n<<{e!r}>>".encode()
        finally:
            slow.close()

        rc = d.wait_exit(20)
        stop_evt.set()
        for t in hammers:
            t.join(20)
        assert not any(t.is_alive() for t in hammers), "a client thread hung"

    assert rc == 0, f"exit code {rc} after {sig.name}"
    failures = [f for t in hammers for f in t.failures]
    seen = f"{t_drain_seen - t_sig:+.3f}s" if t_drain_seen else "never"
    assert not failures, (f"{len(failures)} request(s) lost around {sig.name} "
                          f"(times relative to the signal; drain visible on /readyz at {seen}): "
                          + "; ".join(f"[{a - t_sig:+.3f}s..{b - t_sig:+.3f}s] {w}"
                                      for a, b, w in failures[:5]))
    for t in hammers:
        assert t.refused_at is None or t.refused_at >= t_sig, "refused before the signal"
    in_flight = sum(1 for t in hammers for a, b in t.ok if a < t_sig < b)
    assert in_flight >= 1, "no hammer request was in flight at the signal; the test proved nothing"

    assert slow_answer.startswith(b"HTTP/1.1 "), \
        f"half-uploaded request got no response after {sig.name}: {slow_answer[:300]!r}"
    st, _, body = parse_raw_response(slow_answer)
    assert st == 200 and len(body["predictions"]) == 50, (st, body)

    assert ka_answers and ka_answers[-1][0] != 200, \
        f"/readyz still 200 five seconds after {sig.name}: {ka_answers[-3:]!r}"
    for st, body in (ka_answers[-1], new_conn_answer):
        if isinstance(st, int):
            assert st == 503 and body.get("status") == "draining", \
                f"/readyz during drain after {sig.name} answered {st} {body!r}, want 503 draining"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_drain_serves_connections_already_queued(toy_repo, sig):
    """Deterministic form of the accept/close race: while the daemon is stopped (SIGSTOP,
    as a busy loop would be) 30 clients connect and send complete requests; the kernel
    queues them on the listen socket. Then the drain signal arrives first. All 30 were
    sent before draining began, so all 30 must get a 200, none a reset."""
    body = json.dumps({"instances": [[30, 2.0, 0.5]]}).encode()
    req = (b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    with Daemon(toy_repo) as d:
        os.kill(d.proc.pid, signal.SIGSTOP)
        socks = []
        try:
            for _ in range(30):
                s = socket.create_connection((d.host, d.port), timeout=10)
                s.sendall(req)
                socks.append(s)
            d.send_signal(sig)
            time.sleep(0.05)
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        outcomes = []
        for s in socks:
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError as e:
                outcomes.append(f"reset after {len(data)} bytes: {e!r}")
                continue
            finally:
                s.close()
            try:
                st, _, rb = parse_raw_response(data)
            except Exception as e:  # noqa: BLE001 - any unparsable answer is a loss
                outcomes.append(f"unparsable answer {data[:80]!r}: {e!r}")
                continue
            ok = st == 200 and rb["predictions"][0] == pytest.approx(toy_expected([30, 2.0, 0.5]))
            outcomes.append("200" if ok else f"HTTP {st} {rb!r}")
        rc = d.wait_exit(20)
    lost = [o for o in outcomes if o != "200"]
    assert not lost, (f"{len(lost)} of 30 requests queued before {sig.name} were lost, e.g. "
                      f"{lost[0]}")
    assert rc == 0


# -- command line -------------------------------------------------------------------------

def test_check_config_accepts_shipped_config():
    conf = REPO_ROOT / "conf" / "modeld.json"
    assert conf.is_file(), f"{conf} missing"
    cp = run_modeld(["--check-config", "--config", conf])
    assert cp.returncode == 0, f"--check-config {conf}: exit {cp.returncode}\n{cp.stdout}{cp.stderr}"


BAD_CONFIGS = [
    ("unknown_key", {"workers": 2, "frobnicate_level": 3}, "frobnicate_level"),
    ("workers_string", {"workers": "many"}, "workers"),
    ("max_body_negative", {"max_body_bytes": -1}, "max_body_bytes"),
    ("log_level_bad", {"log_level": "loud"}, "log_level"),
    ("listen_bad", {"listen": "no-port-here"}, "listen"),
    ("depth_not_number", {"max_json_depth": [1]}, "max_json_depth"),
]


@pytest.mark.parametrize("cfg,key", [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_check_config_rejects(tmp_path, cfg, key):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(cfg))
    cp = run_modeld(["--check-config", "--config", p])
    out = cp.stdout + cp.stderr
    assert cp.returncode == 2, f"--check-config on {cfg}: exit {cp.returncode}, want 2\n{out}"
    assert key in out, f"--check-config on {cfg}: message does not name {key!r}:\n{out}"


def test_check_config_malformed_json(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"workers": 2,')
    cp = run_modeld(["--check-config", "--config", p])
    assert cp.returncode != 0
    assert "broken.json" in cp.stdout + cp.stderr


def test_bad_config_refuses_to_start(tmp_path, toy_repo):
    """Not only --check-config: a daemon started with a bad config exits 2 and never
    writes its ready file."""
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"frobnicate_level": 3}))
    ready = tmp_path / "ready"
    cp = run_modeld(["--config", p, "--listen", "127.0.0.1:0", "--ready-file", ready,
                     "--model-repository", toy_repo])
    assert cp.returncode == 2, f"exit {cp.returncode}\n{cp.stderr}"
    assert "frobnicate_level" in cp.stdout + cp.stderr
    assert not ready.exists()


def test_version_and_help():
    cp = run_modeld(["--version"])
    assert cp.returncode == 0, cp.stderr
    assert re.search(r"modeld.*\d+\.\d+", cp.stdout), f"--version printed {cp.stdout!r}"
    cp = run_modeld(["--help"])
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout + cp.stderr
    for flag in ("--config", "--listen", "--model-repository", "--ready-file", "--log-format",
                 "--log-level", "--check-config", "--help", "--version"):
        assert flag in out, f"--help does not mention {flag}:\n{out}"


def test_unknown_flag_is_refused():
    cp = run_modeld(["--no-such-flag"])
    assert cp.returncode != 0
    assert "--no-such-flag" in cp.stdout + cp.stderr


def test_ready_models_config_limits_what_readiness_waits_for(tmp_path):
    """With ready_models set, /readyz waits only for those: a broken model outside the list
    does not keep the pod unready, and a listed model the repository lacks does."""
    repo = tmp_path / "repo"
    write_toy_model(repo)
    write_broken_model(repo, "broken")
    with Daemon(repo, config={"ready_models": "toy"}) as d:
        st, _, body = d.request("GET", "/readyz")
        assert (st, body) == (200, {"status": "ready"})
    with Daemon(repo, config={"ready_models": "toy,ghost"}, wait_ready=False) as d:
        deadline = time.time() + 10
        while True:
            st, _, body = d.request("GET", "/readyz")
            states = {e["name"]: e["state"] for e in body.get("not_ready", [])}
            if states.get("toy") != "loading" or time.time() > deadline:
                break
            time.sleep(0.02)
        assert st == 503 and states == {"ghost": "missing"}, body
