"""End-to-end harness: runs the real modeld binary on a real port.

    from conftest import Daemon
    with Daemon(repo_dir, args=[...], config={...} or None, wait_ready=True) as d:
        status, headers, body = d.request("POST", "/v1/models/m:predict", {"instances": [[1, 2, 3]]})

The binary comes from $MODELD_BIN (default build/release/modeld, relative to the repository
root). It is started with `--listen 127.0.0.1:0 --ready-file <tmp> --model-repository <repo>`
(+ `--config <tmp json>`); the harness waits for the ready file, then (wait_ready) for
GET /readyz == 200. Leaving the `with` block sends SIGTERM and fails the test if the exit
code is not 0, if the daemon died by a signal, or if stderr holds a sanitizer report
(the redis check_sanitizer_errors / h2o spawn_server habit).

Every wait in here has a deadline; nothing loops unbounded.
"""

import copy
import http.client
import io
import json
import math
import os
import shlex
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

START_DEADLINE_S = 20.0   # ready file must appear within this
READY_DEADLINE_S = 20.0   # /readyz must reach 200 within this (wait_ready)
STOP_DEADLINE_S = 20.0    # process must exit within this after the stop signal
REQUEST_TIMEOUT_S = 15.0  # per HTTP request

SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "ThreadSanitizer", "UndefinedBehaviorSanitizer")

# The daemon must put these into every response (docs/api.md).
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def modeld_bin():
    """Absolute path of the binary under test."""
    p = Path(os.environ.get("MODELD_BIN", "build/release/modeld"))
    if not p.is_absolute():
        p = REPO_ROOT / p
    return p


def require_binary():
    p = modeld_bin()
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"modeld binary not found or not executable: {p} (build it with `make`, "
                    f"or point MODELD_BIN at it)")
    return p


def sanitizer_report(text):
    """The first sanitizer marker found in text, or None."""
    for m in SANITIZER_MARKERS:
        if m in text:
            return m
    return None


def run_modeld(args, timeout=15.0):
    """Runs the binary to completion (for --version, --help, --check-config).
    Returns CompletedProcess with text stdout/stderr; fails the test on timeout or a
    sanitizer report."""
    binary = require_binary()
    try:
        cp = subprocess.run([str(binary)] + [str(a) for a in args], capture_output=True,
                            text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=_child_env())
    except subprocess.TimeoutExpired:
        pytest.fail(f"modeld {' '.join(map(str, args))} did not exit within {timeout}s")
    bad = sanitizer_report(cp.stderr)
    if bad:
        pytest.fail(f"modeld {' '.join(map(str, args))}: '{bad}' in stderr:\n{cp.stderr[-4000:]}")
    return cp


def _child_env():
    env = dict(os.environ)
    # Harmless for release builds; makes ASAN/UBSAN builds report and fail loudly.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


class CIDict(dict):
    """Response headers: a dict whose lookups ignore case. Repeated headers are joined
    with ", " (RFC 9110 5.3)."""

    def __init__(self, pairs=()):
        super().__init__()
        for k, v in pairs:
            k = k.lower()
            super().__setitem__(k, v if k not in self else self[k] + ", " + v)

    def __getitem__(self, k):
        return super().__getitem__(k.lower())

    def __contains__(self, k):
        return super().__contains__(k.lower())

    def get(self, k, default=None):
        return super().get(k.lower(), default)


def _decode_body(headers, data, raw):
    if raw:
        return data
    ctype = headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() == "application/json":
        try:
            return json.loads(data)
        except ValueError:
            # Keep the text so the assertion that fails shows what came back.
            return data.decode("utf-8", "replace")
    return data.decode("utf-8", "replace")


class _BytesSock:
    """Lets http.client.HTTPResponse parse bytes we already read from a raw socket."""

    def __init__(self, data):
        self._data = data

    def makefile(self, *_a, **_k):
        return io.BytesIO(self._data)


def parse_raw_response(data, raw=False):
    """Parses one HTTP/1.1 response held in bytes -> (status, headers, body)."""
    resp = http.client.HTTPResponse(_BytesSock(data))
    resp.begin()
    body = resp.read()
    headers = CIDict(resp.getheaders())
    return resp.status, headers, _decode_body(headers, body, raw)


class Daemon:
    """One modeld process for the duration of a `with` block. See the module docstring."""

    def __init__(self, repo_dir, args=(), config=None, wait_ready=True, env=None):
        self.repo_dir = Path(repo_dir)
        self.args = [str(a) for a in args]
        self.config = copy.deepcopy(config)
        self.wait_ready = wait_ready
        self.env = env
        self.proc = None
        self.host = None
        self.port = None
        self.url = None
        self.ready_text = None
        self.exit_code = None
        self.started_at = None
        self._tmp = None
        self._stderr_file = None
        self._stdout_file = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self):
        binary = require_binary()
        self._tmp = Path(tempfile.mkdtemp(prefix="modeld-e2e-"))
        ready = self._tmp / "ready"
        # MODELD_WRAPPER runs the daemon under a tool, e.g. valgrind (make valgrind).
        argv = shlex.split(os.environ.get("MODELD_WRAPPER", "")) + [str(binary)]
        if self.config is not None:
            cfg = self._tmp / "modeld.json"
            cfg.write_text(json.dumps(self.config))
            argv += ["--config", str(cfg)]
        argv += ["--listen", "127.0.0.1:0", "--ready-file", str(ready),
                 "--model-repository", str(self.repo_dir)]
        argv += self.args
        self.argv = argv
        self._stderr_path = self._tmp / "stderr"
        self._stdout_path = self._tmp / "stdout"
        self._stderr_file = open(self._stderr_path, "wb")
        self._stdout_file = open(self._stdout_path, "wb")
        env = _child_env()
        if self.env:
            env.update(self.env)
        self.started_at = time.time()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stdout_file,
                                     stderr=self._stderr_file, env=env)
        self._wait_ready_file(ready)
        if self.wait_ready:
            self.wait_until_ready()
        return self

    def _wait_ready_file(self, ready):
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            if self.proc.poll() is not None:
                self._fail_startup(f"modeld exited with {self.proc.returncode} before writing "
                                   f"the ready file")
            try:
                text = ready.read_text()
            except FileNotFoundError:
                text = ""
            # Written atomically per docs/api.md; a partial file would lack the newline.
            if text.endswith("\n"):
                break
            if time.monotonic() > deadline:
                self._fail_startup(f"no complete ready file within {START_DEADLINE_S}s "
                                   f"(content so far: {text!r})")
            time.sleep(0.01)
        self.ready_text = text
        m = re.fullmatch(r"(.+):(\d+)\n", text)
        if not m:
            self._fail_startup(f"ready file content {text!r} is not HOST:PORT\\n")
        self.host, self.port = m.group(1), int(m.group(2))
        self.url = f"http://{self.host}:{self.port}"

    def wait_until_ready(self, deadline_s=READY_DEADLINE_S):
        """Polls GET /readyz until 200; fails the test at the deadline."""
        deadline = time.monotonic() + deadline_s
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail_startup(f"modeld exited with {self.proc.returncode} while waiting "
                                   f"for /readyz")
            try:
                last = self.request("GET", "/readyz")
                if last[0] == 200:
                    return last
            except OSError as e:
                last = repr(e)
            time.sleep(0.02)
        self._fail_startup(f"/readyz not 200 within {deadline_s}s; last answer: {last!r}")

    def wait_settled(self, *names, deadline_s=READY_DEADLINE_S):
        """Polls GET /v1/models/{name} until every model is known and none is loading (a
        model outside ready_models, or a broken one, may still be loading when /readyz
        answers); fails the test at the deadline. Returns {name: state}."""
        deadline = time.monotonic() + deadline_s
        while True:
            states = {n: self.request("GET", f"/v1/models/{n}")[2].get("state") for n in names}
            if all(s not in (None, "loading") for s in states.values()):
                return states
            if time.monotonic() > deadline:
                pytest.fail(f"models still loading after {deadline_s}s: {states}")
            time.sleep(0.02)

    def _fail_startup(self, why):
        self._kill()
        pytest.fail(f"{why}\nargv: {' '.join(self.argv)}\nstderr:\n{self.stderr_text()[-4000:]}")

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def send_signal(self, sig):
        """Sends sig to a running daemon (no wait)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, deadline_s=STOP_DEADLINE_S):
        """Waits for the process to exit; returns the exit code (negative = killed by that
        signal, as subprocess reports it). Fails the test (after SIGKILL) at the deadline."""
        try:
            self.proc.wait(deadline_s)
        except subprocess.TimeoutExpired:
            self._kill()
            self.exit_code = self.proc.returncode
            pytest.fail(f"modeld did not exit within {deadline_s}s; killed.\n"
                        f"stderr:\n{self.stderr_text()[-4000:]}")
        self.exit_code = self.proc.returncode
        return self.exit_code

    def stop(self, sig=signal.SIGTERM, deadline_s=STOP_DEADLINE_S):
        """Sends sig (if still running) and waits for the exit; returns the exit code."""
        self.send_signal(sig)
        return self.wait_exit(deadline_s)

    def check_clean_exit(self):
        """Fails the test on an unclean exit or sanitizer output (after stop())."""
        rc = self.exit_code
        err = self.stderr_text()
        bad = sanitizer_report(err)
        if bad:
            pytest.fail(f"'{bad}' in modeld stderr:\n{err[-6000:]}")
        if rc is None:
            pytest.fail("modeld was not stopped")
        if rc < 0:
            pytest.fail(f"modeld died by signal {-rc} ({signal.Signals(-rc).name}):\n{err[-4000:]}")
        if rc != 0:
            pytest.fail(f"modeld exited with code {rc}:\n{err[-4000:]}")

    def close(self):
        for f in (self._stderr_file, self._stdout_file):
            if f:
                f.close()
        self._stderr_file = self._stdout_file = None

    def cleanup(self):
        self.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self._kill()
            self.cleanup()
            raise

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                # The test already failed: stop the daemon, show its stderr, and let the
                # original failure be the one reported.
                try:
                    if self.proc.poll() is None:
                        self.proc.send_signal(signal.SIGTERM)
                        self.proc.wait(STOP_DEADLINE_S)
                except subprocess.TimeoutExpired:
                    pass
                self._kill()
                sys.stderr.write(f"--- modeld stderr (tail) ---\n{self.stderr_text()[-4000:]}\n")
                return False
            self.stop()
            self.check_clean_exit()
            return False
        finally:
            self.cleanup()

    # -- output ------------------------------------------------------------------------

    def stderr_text(self):
        if self._stderr_file:
            self._stderr_file.flush()
        try:
            return self._stderr_path.read_text(errors="replace")
        except (AttributeError, OSError):
            return ""

    def stdout_text(self):
        try:
            return self._stdout_path.read_text(errors="replace")
        except (AttributeError, OSError):
            return ""

    # -- HTTP ------------------------------------------------------------------------

    def connection(self, timeout=REQUEST_TIMEOUT_S):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=False, conn=None,
                timeout=REQUEST_TIMEOUT_S):
        """One request on a fresh connection (or on `conn`, kept open).
        body: dict/list -> JSON with Content-Type application/json; bytes/str sent as is.
        Returns (status, headers (case-insensitive), JSON if the response is JSON else text;
        bytes if raw)."""
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            if not any(k.lower() == "content-type" for k in hdrs):
                hdrs["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode()
        own = conn is None
        c = conn or self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=hdrs)
            resp = c.getresponse()
            data = resp.read()
            rh = CIDict(resp.getheaders())
            return resp.status, rh, _decode_body(rh, data, raw)
        finally:
            if own:
                c.close()

    def predict(self, model, instances, version=None, **extra):
        path = f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "")
        body = {"instances": instances}
        body.update(extra)
        return self.request("POST", path + ":predict", body)

    def raw_exchange(self, head, chunks=(), timeout=REQUEST_TIMEOUT_S, stop_sending_on_reply=True):
        """Sends `head` (request line + headers, bytes) then each of `chunks` on a raw
        socket, watching for a reply between sends (a server may answer, e.g. 413, before
        the upload is over and then close). Returns (raw response bytes, bytes of chunks
        actually sent). Stops sending once a reply starts arriving if stop_sending_on_reply."""
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        got = bytearray()
        sent = 0
        deadline = time.monotonic() + timeout
        try:
            s.sendall(head)
            for ch in chunks:
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    if not _recv_some(s, got):
                        break
                    if stop_sending_on_reply:
                        break
                try:
                    s.sendall(ch)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(ch)
                if time.monotonic() > deadline:
                    break
            # Read until the response is complete, EOF, or the deadline.
            while time.monotonic() < deadline:
                if _response_complete(bytes(got)):
                    break
                r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
                if not r or not _recv_some(s, got):
                    break
        finally:
            s.close()
        return bytes(got), sent


def _recv_some(s, buf):
    """Appends what the socket has to buf; False on EOF or reset."""
    try:
        data = s.recv(65536)
    except (ConnectionResetError, socket.timeout):
        return False
    if not data:
        return False
    buf.extend(data)
    return True


def _response_complete(data):
    """True once data holds a full response (by Content-Length, chunked terminator)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = data[:end].decode("latin-1").lower()
    body = data[end + 4:]
    m = re.search(r"^content-length:\s*(\d+)", head, re.M)
    if m:
        return len(body) >= int(m.group(1))
    if re.search(r"^transfer-encoding:.*chunked", head, re.M):
        return body.endswith(b"0\r\n\r\n")
    return False


# -- Server-Timing / error-body checks shared by the suites --------------------------------

SERVER_TIMING_METRICS = ("parse", "queue", "infer", "total")


def parse_server_timing(value):
    """'parse;dur=0.1, total;dur=0.2' -> {'parse': 0.1, 'total': 0.2}. Raises ValueError
    on an entry without a numeric dur."""
    out = {}
    for entry in value.split(","):
        entry = entry.strip()
        if not entry:
            continue
        parts = [p.strip() for p in entry.split(";")]
        name, params = parts[0], parts[1:]
        dur = None
        for p in params:
            k, _, v = p.partition("=")
            if k.strip().lower() == "dur":
                dur = float(v.strip().strip('"'))
        if dur is None:
            raise ValueError(f"Server-Timing entry {entry!r} has no dur")
        out[name] = dur
    return out


def assert_common_headers(headers, sent_request_id=None):
    """Every response: a valid X-Request-Id (the caller's when it sent a valid one) and a
    Server-Timing header with parse, queue, infer and total durations (ms, finite, >= 0)."""
    rid = headers.get("x-request-id")
    assert rid is not None, f"no X-Request-Id header in {dict(headers)}"
    assert REQUEST_ID_RE.match(rid), f"X-Request-Id {rid!r} is not 1..128 of [A-Za-z0-9._:-]"
    if sent_request_id is not None:
        assert rid == sent_request_id, f"X-Request-Id not echoed: sent {sent_request_id!r}, got {rid!r}"
    st = headers.get("server-timing")
    assert st is not None, f"no Server-Timing header in {dict(headers)}"
    timing = parse_server_timing(st)
    for name in SERVER_TIMING_METRICS:
        assert name in timing, f"Server-Timing {st!r} lacks {name}"
        assert math.isfinite(timing[name]) and timing[name] >= 0, f"Server-Timing {st!r}: bad {name}"
    for name in ("parse", "queue", "infer"):
        # Allow rounding in the printed milliseconds.
        assert timing[name] <= timing["total"] + 0.05, f"Server-Timing {st!r}: {name} > total"
    return rid, timing


def assert_error(resp, status, code, mentions=()):
    """resp = (status, headers, body) from Daemon.request. Checks the status, the JSON
    error shape {"error": {"code", "message"}}, Content-Type, and that the message names
    each string in `mentions` (case-insensitive)."""
    st, headers, body = resp
    assert st == status, f"expected HTTP {status} {code}, got {st}: {body!r}"
    ctype = headers.get("content-type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", \
        f"error Content-Type is {ctype!r}, body {body!r}"
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), \
        f"error body is not {{\"error\": {{...}}}}: {body!r}"
    err = body["error"]
    assert err.get("code") == code, f"expected code {code!r}, got {err.get('code')!r} ({body!r})"
    msg = err.get("message")
    assert isinstance(msg, str) and msg.strip(), f"error message empty: {body!r}"
    for m in mentions:
        assert m.lower() in msg.lower(), f"error message {msg!r} does not mention {m!r}"
    return msg


# -- model repositories ----------------------------------------------------------------

def sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def write_lr_model(repo_dir, name, features, weights, bias, version=1, classes=(0, 1),
                   config=True):
    """Writes a hand-made binary logistic-regression model folder
    <repo>/<name>/config.json + <repo>/<name>/<version>/lr.json in the format of
    docs/lr-format.md (written by hand, not by the exporter, so the suites do not depend
    on it). Returns the artifact path. Its probability for a row x is
    sigmoid(bias + sum(w*x)); see lr_expected()."""
    assert len(features) == len(weights)
    mdir = Path(repo_dir) / name
    vdir = mdir / str(version)
    vdir.mkdir(parents=True, exist_ok=True)
    if config:
        (mdir / "config.json").write_text(json.dumps({"kind": "lr"}))
    art = vdir / "lr.json"
    art.write_text(json.dumps(lr_document(features, weights, bias, classes)))
    return art


def lr_document(features, weights, bias, classes=(0, 1)):
    """The lr.json document for a binary LR model (docs/lr-format.md)."""
    return {
        "format": "modeld-lr",
        "format_version": 1,
        "producer": "tests/e2e/conftest.py (hand-made)",
        "estimator": "LogisticRegression",
        "task": "binary",
        "features": [{"name": f} for f in features],
        "classes": list(classes),
        "coef": [list(map(float, weights))],
        "intercept": [float(bias)],
    }


def lr_expected(weights, bias, row):
    return sigmoid(bias + sum(w * x for w, x in zip(weights, row)))


# The model most suites use: three numeric features, probabilities away from 0 and 1.
TOY = {
    "features": ["age", "income", "score"],
    "weights": [0.05, -0.3, 1.25],
    "bias": -0.5,
}


def write_toy_model(repo_dir, name="toy", version=1):
    return write_lr_model(repo_dir, name, TOY["features"], TOY["weights"], TOY["bias"], version)


def toy_expected(row):
    return lr_expected(TOY["weights"], TOY["bias"], row)


def write_broken_model(repo_dir, name="broken", version=1, content="{ this is not json"):
    """A model folder whose artifact cannot load."""
    mdir = Path(repo_dir) / name
    vdir = mdir / str(version)
    vdir.mkdir(parents=True, exist_ok=True)
    (mdir / "config.json").write_text(json.dumps({"kind": "lr"}))
    art = vdir / "lr.json"
    art.write_text(content)
    return art


@pytest.fixture
def demo_repo(tmp_path):
    """A copy of the bundled demo repository (conf/models) in tmp_path."""
    src = REPO_ROOT / "conf" / "models"
    dst = tmp_path / "models"
    if not src.is_dir() or not any(src.iterdir()):
        pytest.fail(f"bundled demo repository {src} is missing or empty")
    shutil.copytree(src, dst)
    return dst


@pytest.fixture
def toy_repo(tmp_path):
    """A repository holding only the hand-made 'toy' model (version 1)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    write_toy_model(repo)
    return repo


def free_port():
    """A port that was free a moment ago on 127.0.0.1 (for helper servers like
    Prometheus that cannot report an ephemeral port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
