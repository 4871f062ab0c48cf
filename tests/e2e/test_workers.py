"""The worker pool and what the daemon writes about each request: batches too big for the
loop go to workers, a full pool answers 503 with Retry-After, and every request gets one
access-log line (text or JSON) with its id, status, model and timings."""
import json
import os
import signal
import socket
import time

import pytest

from conftest import Daemon, parse_raw_response, parse_server_timing, toy_expected


def raw_predict(body):
    return (b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


def read_all(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_full_pool_answers_429_with_retry_after(toy_repo):
    """One worker, no queue, every batch deferred: requests that arrive together find the
    pool full. The daemon is stopped while they are sent so that they do arrive together."""
    rows = [[i % 50, 1.0, 0.25] for i in range(2000)]
    body = json.dumps({"instances": rows}).encode()
    config = {"workers": 1, "max_queue": 0, "inline_max_values": 0}
    with Daemon(toy_repo, config=config) as d:
        os.kill(d.proc.pid, signal.SIGSTOP)
        socks = []
        try:
            for _ in range(8):
                s = socket.create_connection((d.host, d.port), timeout=20)
                s.sendall(raw_predict(body))
                socks.append(s)
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        answers = []
        for s in socks:
            with s:
                answers.append(parse_raw_response(read_all(s)))
        ok = [a for a in answers if a[0] == 200]
        busy = [a for a in answers if a[0] == 429]
        assert len(ok) + len(busy) == 8, [a[0] for a in answers]
        assert ok, "no request was served"
        assert busy, "8 simultaneous deferred batches on a 1-worker, 0-queue pool: none was refused"
        for st, headers, rb in busy:
            assert headers.get("Retry-After") == "1"
            assert rb["error"]["code"] == "overloaded"
            assert "retry" in rb["error"]["message"].lower()
        for st, headers, rb in ok:
            preds = rb["predictions"]
            assert len(preds) == len(rows)
            assert preds[7] == pytest.approx(toy_expected(rows[7]), rel=1e-12)
        # The pool is free again: the next request is served.
        st, _, rb = d.predict("toy", [[1, 2, 3]])
        assert st == 200 and rb["predictions"][0] == pytest.approx(toy_expected([1, 2, 3]), rel=1e-12)
        st, _, text = d.request("GET", "/metrics")
        assert f'modeld_requests_total{{endpoint="predict",model="toy",code="429"}} {len(busy)}' in text


def test_large_batch_runs_on_a_worker(toy_repo):
    """Above inline_max_values the batch is scored off the loop: it still comes back right,
    and the queue time is measured."""
    rows = [[i, 0.5, -1.0] for i in range(300)]
    with Daemon(toy_repo, config={"inline_max_values": 10}) as d:
        st, headers, rb = d.predict("toy", rows)
        assert st == 200
        assert [round(p, 12) for p in rb["predictions"]] == \
               [round(toy_expected(r), 12) for r in rows]
        timing = parse_server_timing(headers["Server-Timing"])
        assert set(timing) >= {"parse", "queue", "infer", "total"}
        assert timing["total"] >= timing["infer"]
        st, _, text = d.request("GET", "/metrics")
        assert 'modeld_batch_size_bucket{model="toy",le="512"} 1' in text
        assert 'modeld_batch_size_bucket{model="toy",le="256"} 0' in text


def access_lines(stderr, fmt):
    lines = []
    for line in stderr.splitlines():
        if fmt == "json":
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("event") == "access":
                lines.append(rec)
        elif " access " in line:
            lines.append(line)
    return lines


def test_access_log_json(toy_repo):
    with Daemon(toy_repo, args=["--log-format", "json"]) as d:
        st, _, _ = d.request("POST", "/v1/models/toy:predict", {"instances": [[1, 2, 3], [4, 5, 6]]},
                             {"X-Request-Id": "log-test-1"})
        assert st == 200
        d.request("GET", "/v1/models/nope", None, {"X-Request-Id": "log-test-2"})
        d.stop()
        recs = {r["request_id"]: r for r in access_lines(d.stderr_text(), "json")}
    r = recs["log-test-1"]
    assert (r["method"], r["path"], r["status"], r["model"], r["version"]) == \
           ("POST", "/v1/models/toy:predict", 200, "toy", 1)
    assert r["bytes_in"] == len(json.dumps({"instances": [[1, 2, 3], [4, 5, 6]]}))
    assert r["bytes_out"] > 0 and r["level"] == "info" and r["ts"].endswith("Z")
    for k in ("parse_ms", "queue_ms", "infer_ms", "total_ms"):
        assert isinstance(r[k], (int, float)) and r[k] >= 0
    assert r["total_ms"] >= r["infer_ms"]
    r = recs["log-test-2"]
    assert (r["status"], r["path"]) == (404, "/v1/models/nope")
    assert "model" not in r  # unknown names never become log or metric labels


def test_access_log_text_quotes_hostile_paths(toy_repo):
    with Daemon(toy_repo, args=["--log-format", "text"]) as d:
        d.request("GET", '/v1/models/a%22b%0Aforged=1', None, {"X-Request-Id": "log-text-1"})
        d.stop()
        lines = [l for l in access_lines(d.stderr_text(), "text") if "request_id=log-text-1" in l]
    assert len(lines) == 1
    assert "status=404" in lines[0]
    assert "\nforged" not in d.stderr_text()


def test_sighup_is_logged_and_serving_continues(toy_repo):
    with Daemon(toy_repo) as d:
        d.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while "sighup" not in d.stderr_text() and time.time() < deadline:
            time.sleep(0.05)
        assert "sighup" in d.stderr_text()
        st, _, rb = d.predict("toy", [[1, 2, 3]])
        assert st == 200
