"""Hostile clients on loopback: slow headers and bodies, clients gone mid-body or
mid-response, half-closed sockets, pipelined garbage, oversized headers, bad chunked
encoding, connection floods. Each test keeps a well-behaved client asking for a known
prediction throughout and checks every answer is a 200 with the right value.

Latency bound for the well-behaved client: LATENCY_S = 0.5 s per request. A toy predict
takes well under a millisecond on the loop; the bound is there to catch the loop being
blocked (a hostile connection holding it), not to measure speed, so it is generous for
a 2-core machine shared with other jobs and for ASan builds.

Every socket has a timeout and every wait a deadline: the whole file runs in about 20 s.
"""

import itertools
import json
import re
import socket
import struct
import time

import pytest

from conftest import Daemon, parse_raw_response, toy_expected

LATENCY_S = 0.5
ROW = [41, 2.5, -1.0]


def good_request(d):
    """One well-behaved predict on a fresh connection: must be a 200 with the exact value,
    within LATENCY_S."""
    t = time.monotonic()
    st, _, body = d.predict("toy", [ROW])
    took = time.monotonic() - t
    assert st == 200, body
    assert body["predictions"][0] == pytest.approx(toy_expected(ROW), rel=1e-12)
    assert took < LATENCY_S, f"well-behaved request took {took:.3f} s"
    return took


def trickle_until_cut(sock, pieces, pause, between=None, limit_s=4):
    """Sends pieces one at a time, pause seconds apart (calling between() after each), until
    the server closes the connection: seconds from the first piece to the cut, or None when
    limit_s passed or the pieces ran out first."""
    t0 = time.monotonic()
    sock.settimeout(0.05)
    for piece in pieces:
        if time.monotonic() - t0 > limit_s:
            return None
        try:
            sock.sendall(piece)
            if sock.recv(100) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            pass
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - t0
        if between:
            between()
        time.sleep(pause)
    return None


def inflight(d):
    """Requests in flight, not counting the /metrics request asking."""
    st, _, text = d.request("GET", "/metrics")
    assert st == 200
    return int(re.search(r"^modeld_inflight_requests (\d+)", text, re.M).group(1)) - 1


def predict_head(length, extra=""):
    return (f"POST /v1/models/toy:predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


def closed_by_server(s, deadline_s):
    """Waits until the server closes s (EOF or reset); returns the seconds it took, or None
    if it was still open at the deadline. Whatever the server sent is ignored."""
    t = time.monotonic()
    s.settimeout(0.1)
    while time.monotonic() - t < deadline_s:
        try:
            if s.recv(65536) == b"":
                return time.monotonic() - t
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t
    return None


def read_response(s, deadline_s=10.0):
    data = b""
    s.settimeout(deadline_s)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
        head, sep, rest = data.partition(b"\r\n\r\n")
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if sep and m and len(rest) >= int(m.group(1)):
            break
    return data


def test_client_closing_mid_body_is_noticed(toy_repo):
    """The bug: headers, most of a body, and the FIN in one burst. MHD's edge-triggered
    read took the short read as 'drained' and never saw the FIN: the request stayed in
    flight until the idle timeout (60 s) and SIGTERM waited the whole drain timeout."""
    body = json.dumps({"instances": [ROW] * 60000}).encode()   # ~1 MB
    with Daemon(toy_repo, config={"drain_timeout_ms": 10000}) as d:
        for _ in range(8):
            s = socket.create_connection((d.host, d.port), timeout=5)
            s.sendall(predict_head(len(body) + 100) + body)    # 100 bytes short
            s.close()
        deadline = time.monotonic() + 3
        while inflight(d) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert inflight(d) == 0, "requests whose client left mid-body are still in flight"
        good_request(d)
        t = time.monotonic()
        d.stop()
        assert time.monotonic() - t < 2.0, "shutdown waited for requests whose client had left"
        assert "client_closed_mid_body" in d.stderr_text()


def test_half_closed_client_still_gets_its_answer(toy_repo):
    """A client that sends the whole request and then shuts its write side (a FIN in the
    same burst) is not 'gone': it waits for the answer. Small (loop) and large (worker)."""
    with Daemon(toy_repo, config={"inline_max_values": 100}) as d:
        for n in (1, 50000):
            body = json.dumps({"instances": [ROW] * n}).encode()
            s = socket.create_connection((d.host, d.port), timeout=10)
            s.sendall(predict_head(len(body), "Connection: close\r\n") + body)
            s.shutdown(socket.SHUT_WR)
            st, _, rb = parse_raw_response(read_response(s))
            s.close()
            assert st == 200, (n, st, rb)
            assert len(rb["predictions"]) == n
            assert rb["predictions"][-1] == pytest.approx(toy_expected(ROW), rel=1e-12)
        # a streamed body (:score-auc reads it in steps on the workers) half-closed too
        n = 20000
        auc = json.dumps({"scores": [0.25 + 0.5 * (i % 2) for i in range(n)],
                          "labels": [i % 2 for i in range(n)]}).encode()
        s = socket.create_connection((d.host, d.port), timeout=10)
        s.sendall(f"POST /v1/models/toy:score-auc HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  f"Connection: close\r\nContent-Length: {len(auc)}\r\n\r\n".encode() + auc)
        s.shutdown(socket.SHUT_WR)
        st, _, rb = parse_raw_response(read_response(s))
        s.close()
        assert st == 200, rb
        assert rb["metrics"]["roc_auc"] == 1.0
        assert inflight(d) == 0


def test_slowloris_headers_are_cut(toy_repo):
    """A header trickled a byte at a time is cut after header_timeout_s, while an idle
    keep-alive connection (no bytes) is left to connection_timeout_s and still serves."""
    with Daemon(toy_repo, config={"header_timeout_s": 1}) as d:
        idle = socket.create_connection((d.host, d.port), timeout=5)
        slow = socket.create_connection((d.host, d.port), timeout=5)
        slow.sendall(b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: t\r\n")
        cut_after = trickle_until_cut(slow, itertools.repeat(b"X"), 0.1, between=lambda: good_request(d))
        slow.close()
        assert cut_after is not None, "a header trickled for 4 s was not cut (header_timeout_s = 1)"
        # 1 s of header time, checked every 0.25 s; more than 0.9 s: the clock ran
        assert 0.9 < cut_after < 2.5, cut_after
        # the idle connection was not cut by the header clock: it still serves
        body = json.dumps({"instances": [ROW]}).encode()
        idle.sendall(predict_head(len(body)) + body)
        st, _, rb = parse_raw_response(read_response(idle))
        idle.close()
        assert st == 200 and rb["predictions"][0] == pytest.approx(toy_expected(ROW), rel=1e-12)
        assert "header_timeout" in d.stderr_text()


def test_slowloris_body_is_cut_and_a_steady_one_is_not(toy_repo):
    """body_timeout_s = 1 and body_min_rate = 2000 B/s: 10 bytes every 0.1 s (100 B/s) is
    cut after about 1 s; a 6000-byte body sent at ~4000 B/s over 1.5 s is not."""
    cfg = {"body_timeout_s": 1, "body_min_rate": 2000}
    body = json.dumps({"instances": [ROW] * 300}).encode()
    assert len(body) > 5000
    with Daemon(toy_repo, config=cfg) as d:
        slow = socket.create_connection((d.host, d.port), timeout=5)
        slow.sendall(predict_head(len(body)))
        cut_after = trickle_until_cut(slow, (body[i:i + 10] for i in range(0, len(body), 10)), 0.05)
        slow.close()
        assert cut_after is not None, "a body trickled at 100 B/s was not cut"
        assert 0.9 < cut_after < 2.5, cut_after
        good_request(d)
        # steady: 400 bytes every 0.1 s
        s = socket.create_connection((d.host, d.port), timeout=5)
        s.sendall(predict_head(len(body)))
        for i in range(0, len(body), 400):
            s.sendall(body[i:i + 400])
            time.sleep(0.1)
        st, _, rb = parse_raw_response(read_response(s))
        s.close()
        assert st == 200 and len(rb["predictions"]) == 300
        assert inflight(d) == 0


def test_per_ip_connection_limit(toy_repo):
    with Daemon(toy_repo, config={"max_connections_per_ip": 6}) as d:
        time.sleep(0.3)   # the harness's /readyz connection must be gone: it counts too
        held = [socket.create_connection((d.host, d.port), timeout=5) for _ in range(6)]
        try:
            time.sleep(0.2)   # let the daemon accept them
            for s in held:    # all six kept
                s.settimeout(0.05)
                with pytest.raises(socket.timeout):
                    s.recv(1)
            extra = socket.create_connection((d.host, d.port), timeout=5)
            took = closed_by_server(extra, 2.0)
            extra.close()
            assert took is not None, "a 7th connection from one address was kept (limit 6)"
        finally:
            for s in held[:1]:
                s.close()
        time.sleep(0.2)
        good_request(d)   # the freed slot serves
        for s in held[1:]:
            s.close()


@pytest.mark.parametrize("limit", [200, 1000])
def test_idle_connections_up_to_the_maximum(toy_repo, limit):
    """limit - 1 idle connections held open: a well-behaved client still gets its 200s in
    time (each one closes and frees its slot for the next). With the last slot taken too,
    a further connection waits unanswered in the backlog, and is served as soon as one
    idle connection goes."""
    cfg = {"max_connections": limit, "max_connections_per_ip": 0}
    body = json.dumps({"instances": [ROW]}).encode()
    with Daemon(toy_repo, config=cfg) as d:
        held = []
        try:
            for _ in range(limit - 1):
                held.append(socket.create_connection((d.host, d.port), timeout=5))
            time.sleep(0.3)
            times = [good_request(d) for _ in range(20)]
            assert max(times) < LATENCY_S
            held.append(socket.create_connection((d.host, d.port), timeout=5))
            time.sleep(0.2)
            extra = socket.create_connection((d.host, d.port), timeout=5)
            extra.sendall(predict_head(len(body)) + body)
            assert read_response(extra, 1.0) == b"", "a connection over max_connections was served"
            held.pop().close()
            st, _, rb = parse_raw_response(read_response(extra, 3.0))
            extra.close()
            assert st == 200 and rb["predictions"][0] == pytest.approx(toy_expected(ROW), rel=1e-12)
        finally:
            for s in held:
                s.close()
        time.sleep(0.3)
        good_request(d)


def test_pipelined_garbage_after_a_good_request(toy_repo):
    """A good request followed on the same connection by bytes that are not HTTP: the good
    one is answered right, the garbage gets a 400 or a close, and the daemon serves on."""
    body = json.dumps({"instances": [ROW]}).encode()
    # Garbage MHD keeps waiting on (it took no new bytes, so the header clock does not
    # start) is bounded like an idle connection: connection_timeout_s.
    with Daemon(toy_repo, config={"header_timeout_s": 1, "connection_timeout_s": 2}) as d:
        for garbage in (b"\x00\xff\x13GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\r\n" * 50 + b"X" * 3000):
            s = socket.create_connection((d.host, d.port), timeout=5)
            s.sendall(predict_head(len(body)) + body + garbage)
            first = read_response(s)
            st, _, rb = parse_raw_response(first)
            assert st == 200 and rb["predictions"][0] == pytest.approx(toy_expected(ROW), rel=1e-12)
            # then a 4xx (505 for the unknown version), or nothing; either way the connection is closed within
            # connection_timeout_s (2 s, checked by MHD every second)
            rest, t0 = b"", time.monotonic()
            s.settimeout(0.1)
            closed = False
            while time.monotonic() - t0 < 4.0 and not closed:
                try:
                    chunk = s.recv(65536)
                    closed = chunk == b""
                    rest += chunk
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed = True
            s.close()
            assert closed, f"garbage {garbage[:12]!r} left the connection open for 4 s"
            # (MHD may answer "HTTP/9.9" with 505 HTTP Version Not Supported, which is right)
            assert rest == b"" or rest.startswith(b"HTTP/1.1 4") or rest.startswith(b"HTTP/1.1 505"), rest[:80]
            good_request(d)


def test_oversized_headers_and_bad_chunked_encoding(toy_repo):
    with Daemon(toy_repo, config={"max_header_bytes": 8192}) as d:
        s = socket.create_connection((d.host, d.port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        got = read_response(s, 3.0)
        s.close()
        assert got == b"" or got.startswith(b"HTTP/1.1 431") or got.startswith(b"HTTP/1.1 413"), got[:80]
        good_request(d)
        for chunked in (b"zz\r\n{}\r\n0\r\n\r\n", b"5\r\n{}\r\n0\r\n\r\n", b"ffffffffffffffffff\r\n{",
                        b"-1\r\n\r\n"):
            s = socket.create_connection((d.host, d.port), timeout=5)
            s.sendall(b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
            s.shutdown(socket.SHUT_WR)
            got = read_response(s, 3.0)
            s.close()
            assert got == b"" or re.match(rb"HTTP/1.1 4\d\d", got), (chunked, got[:80])
            good_request(d)
        assert inflight(d) == 0


def test_client_gone_mid_response(toy_repo):
    """Large answers (a 2 MB predict) whose client reads a few bytes and resets: the daemon
    completes them, frees them, and serves on."""
    body = json.dumps({"instances": [ROW] * 100000}).encode()
    with Daemon(toy_repo) as d:
        for _ in range(5):
            s = socket.create_connection((d.host, d.port), timeout=10)
            s.sendall(predict_head(len(body)) + body)
            s.recv(100)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            good_request(d)
        deadline = time.monotonic() + 3
        while inflight(d) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert inflight(d) == 0


def test_queued_job_past_request_timeout_gets_504(toy_repo):
    """One worker kept busy by a large :score-auc (sorting 1.5 M scores) while predicts that
    must run on a worker arrive: with request_timeout_ms = 30 they are not run but answered
    504 timeout. Tried a few times (the overlap depends on scheduling); afterwards the
    daemon serves normally."""
    n = 1500000
    auc = json.dumps({"scores": [((i * 7919) % 1000) / 1000 for i in range(n)],
                      "labels": [i % 2 for i in range(n)]}).encode()
    pbody = json.dumps({"instances": [ROW] * 50}).encode()
    cfg = {"workers": 1, "inline_max_values": 0, "request_timeout_ms": 30}
    seen = []
    with Daemon(toy_repo, config=cfg) as d:
        for _ in range(4):
            a = socket.create_connection((d.host, d.port), timeout=20)
            a.sendall(f"POST /v1/models/toy:score-auc HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(auc)}\r\n\r\n".encode() + auc)
            socks = []
            for _ in range(6):
                p = socket.create_connection((d.host, d.port), timeout=20)
                p.sendall(predict_head(len(pbody)) + pbody)
                socks.append(p)
                time.sleep(0.01)
            for p in socks:
                seen.append(parse_raw_response(read_response(p, 20)))
                p.close()
            st, _, rb = parse_raw_response(read_response(a, 20))
            a.close()
            assert st == 200, rb
            if any(x[0] == 504 for x in seen):
                break
        assert {x[0] for x in seen} <= {200, 504}, [x[0] for x in seen]
        timed_out = [x for x in seen if x[0] == 504]
        assert timed_out, "no predict queued behind a busy worker passed request_timeout_ms = 30"
        for _, _, rb in timed_out:
            assert rb["error"]["code"] == "timeout"
            assert "request_timeout_ms" in rb["error"]["message"]
        for st, _, rb in seen:
            if st == 200:
                assert rb["predictions"][0] == pytest.approx(toy_expected(ROW), rel=1e-12)
        # nothing waits now: a deferred predict runs
        st, _, rb = d.predict("toy", [ROW] * 50)
        assert st == 200 and rb["predictions"][49] == pytest.approx(toy_expected(ROW), rel=1e-12)


def _lr_doc(bias):
    from conftest import lr_document, TOY
    return json.dumps(lr_document(TOY["features"], TOY["weights"], bias))


def test_symlinks_outside_the_repository_are_refused(tmp_path):
    """A version folder or an artifact that resolves outside the repository does not load
    (unless allow_symlinks_outside); the Kubernetes layout, symlinks inside it, does."""
    from conftest import lr_expected, TOY
    repo = tmp_path / "repo"
    outside = tmp_path / "outside"
    (outside / "v1").mkdir(parents=True)
    (outside / "v1" / "lr.json").write_text(_lr_doc(0.5))
    (outside / "lr.json").write_text(_lr_doc(0.5))
    # "dirlink": its version folder is a symlink to a folder outside
    (repo / "dirlink").mkdir(parents=True)
    (repo / "dirlink" / "1").symlink_to(outside / "v1")
    # "filelink": a real version folder whose artifact is a symlink to a file outside
    (repo / "filelink" / "1").mkdir(parents=True)
    (repo / "filelink" / "1" / "lr.json").symlink_to(outside / "lr.json")
    # "k8s": ..2024_01/1/lr.json, ..data -> ..2024_01, 1 -> ..data/1 (all inside)
    (repo / "k8s" / "..2024_01" / "1").mkdir(parents=True)
    (repo / "k8s" / "..2024_01" / "1" / "lr.json").write_text(_lr_doc(-1.0))
    (repo / "k8s" / "..data").symlink_to("..2024_01")
    (repo / "k8s" / "1").symlink_to("..data/1")
    with Daemon(repo, config={"ready_models": "k8s"}) as d:
        st, _, rb = d.predict("k8s", [ROW])
        assert st == 200 and rb["predictions"][0] == pytest.approx(
            lr_expected(TOY["weights"], -1.0, ROW), rel=1e-12)
        for name in ("dirlink", "filelink"):
            d.wait_settled(name)  # ready_models names only k8s
            st, _, rb = d.predict(name, [ROW])
            assert st == 503, (name, st, rb)
            assert "outside the repository" in rb["error"]["message"], rb
            assert "allow_symlinks_outside" in rb["error"]["message"]
    with Daemon(repo, config={"allow_symlinks_outside": True}) as d:
        for name in ("dirlink", "filelink"):
            st, _, rb = d.predict(name, [ROW])
            assert st == 200 and rb["predictions"][0] == pytest.approx(
                lr_expected(TOY["weights"], 0.5, ROW), rel=1e-12)


def test_admin_token_is_never_logged(toy_repo, tmp_path):
    """Admin calls with the right token, a wrong one and a malformed header, at debug level
    and in both log formats: the token's text appears nowhere in the daemon's output."""
    token = "s3cret-admin-token-9f8e7d6c5b4a"
    tok = tmp_path / "token"
    tok.write_text(token + "\n")
    for fmt in ("text", "json"):
        cfg = {"admin_token_file": str(tok), "log_level": "debug", "log_format": fmt}
        with Daemon(toy_repo, config=cfg) as d:
            st, _, _ = d.request("POST", "/v1/models/toy:reload", {},
                                 headers={"Authorization": f"Bearer {token}"})
            assert st == 200
            st, _, _ = d.request("POST", "/v1/models/toy:reload", {},
                                 headers={"Authorization": f"Bearer {token}x"})
            assert st == 403
            st, _, _ = d.request("POST", "/v1/models/toy:reload", {},
                                 headers={"Authorization": token})
            assert st == 401
            good_request(d)
            d.stop()
            out = d.stderr_text() + d.stdout_text()
            assert "reload" in out          # the calls were logged...
            assert token not in out         # ...without the token
            assert token[:12] not in out


def test_model_names_from_outside_are_validated(toy_repo):
    """Names in URLs and in OpenAI bodies: '..', hidden names, over 64 characters and
    characters outside [A-Za-z0-9._-] never reach the registry."""
    with Daemon(toy_repo) as d:
        for path in ("/v1/models/..:predict", "/v1/models/.toy:predict", "/v1/models/" + "a" * 65 + ":predict",
                     "/v1/models/to%2Fy:predict"):
            st, _, rb = d.request("POST", path, {"instances": [ROW]})
            assert st == 404, (path, st)
        for name in ("../toy", "", "a" * 65, "to y", ".."):
            st, _, rb = d.request("POST", "/v1/completions", {"model": name, "prompt": "x"})
            assert st == 400, (name, st, rb)
            assert "[A-Za-z0-9._-]" in rb["error"]["message"] or "required" in rb["error"]["message"]
        good_request(d)
