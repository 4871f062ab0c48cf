"""The header deadline on keep-alive connections after answered requests.

The HTTP layer counts the bytes each request took on the wire (the header MHD parsed plus
a Content-Length body) instead of asking the kernel after every request; these tests pin
that count down: a count too high would never start the header clock for a slow header
that follows a request (the connection would live to connection_timeout_s), a count too
low would cut idle keep-alive connections after header_timeout_s.
"""

import json
import socket
import time

import pytest

from conftest import Daemon, parse_raw_response, toy_expected

ROW = [41, 2.5, -1.0]
SLOW_HEAD = b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: t\r\n"


def predict_request(extra=""):
    body = json.dumps({"instances": [ROW]}).encode()
    return (f"POST /v1/models/toy:predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def read_responses(s, n, deadline_s=10.0):
    """n complete responses (each with a Content-Length) from s."""
    data, out = b"", []
    s.settimeout(deadline_s)
    end = time.monotonic() + deadline_s
    while len(out) < n and time.monotonic() < end:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        while True:
            head, sep, rest = data.partition(b"\r\n\r\n")
            if not sep:
                break
            length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if not length or len(rest) < length[0]:
                break
            out.append(head + sep + rest[:length[0]])
            data = rest[length[0]:]
    assert len(out) == n, f"got {len(out)} of {n} responses"
    return out


def assert_prediction(raw):
    st, _, body = parse_raw_response(raw)
    assert st == 200, body
    assert body["predictions"][0] == pytest.approx(toy_expected(ROW), rel=1e-12)


def seconds_until_closed(s, deadline_s):
    t0 = time.monotonic()
    s.settimeout(0.05)
    while time.monotonic() - t0 < deadline_s:
        try:
            if s.recv(65536) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            pass
        except ConnectionResetError:
            return time.monotonic() - t0
    return None


@pytest.mark.parametrize("pipelined", [1, 3])
def test_slow_header_after_answered_requests_is_cut(toy_repo, pipelined):
    """After 1 (or 3 pipelined) answered predicts, half a header then nothing: cut after
    header_timeout_s (1 s, checked every 0.25 s), long before connection_timeout_s (30 s)."""
    with Daemon(toy_repo, config={"header_timeout_s": 1, "connection_timeout_s": 30}) as d:
        s = socket.create_connection((d.host, d.port), timeout=5)
        s.sendall(predict_request() * pipelined)
        for raw in read_responses(s, pipelined):
            assert_prediction(raw)
        s.sendall(SLOW_HEAD)
        took = seconds_until_closed(s, 5.0)
        s.close()
        assert took is not None, "a header stalled for 5 s after a request was not cut"
        assert 0.9 < took < 2.5, took
        assert "header_timeout" in d.stderr_text()


def test_idle_keepalive_connection_outlives_the_header_deadline(toy_repo):
    """Answered requests (with and without a body), then silence for 2.5 header deadlines:
    the connection is not cut and serves again."""
    with Daemon(toy_repo, config={"header_timeout_s": 1, "connection_timeout_s": 30}) as d:
        s = socket.create_connection((d.host, d.port), timeout=5)
        s.sendall(predict_request() + b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" + predict_request())
        raws = read_responses(s, 3)
        assert_prediction(raws[0])
        assert parse_raw_response(raws[1])[0] == 200
        assert_prediction(raws[2])
        time.sleep(2.5)
        s.sendall(predict_request())
        assert_prediction(read_responses(s, 1)[0])
        s.close()
        assert "header_timeout" not in d.stderr_text()
