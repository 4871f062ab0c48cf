"""The bad-input table (docs/api.md "Errors"): every bad request gets the documented status
and code, a JSON error whose message names the problem, X-Request-Id and Server-Timing,
and the daemon keeps serving a correct 200 predict afterwards."""

import json
import re
import time

import pytest

from conftest import (Daemon, REQUEST_ID_RE, assert_common_headers, assert_error,
                      parse_raw_response, toy_expected, write_toy_model)

MAX_BODY = 256 * 1024
MAX_DEPTH = 32
MAX_URL = 2048
CONFIG = {"max_body_bytes": MAX_BODY, "max_json_depth": MAX_DEPTH, "max_url_bytes": MAX_URL}

PREDICT = "/v1/models/toy:predict"
GOOD_ROWS = [[30, 2.0, 0.5], [45, 1.0, -1.0], [0, 0, 0]]
GOOD_BODY = json.dumps({"instances": GOOD_ROWS}).encode()
JSON_CT = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    write_toy_model(repo)
    with Daemon(repo, config=CONFIG) as d:
        yield d


def assert_still_serves(d):
    """A normal predict after the bad case: 200 with the right probabilities."""
    st, h, body = d.request("POST", PREDICT, GOOD_BODY, JSON_CT)
    assert st == 200, f"daemon no longer serves a good predict: {st} {body!r}"
    preds = body["predictions"]
    assert len(preds) == len(GOOD_ROWS)
    for got, row in zip(preds, GOOD_ROWS):
        assert got == pytest.approx(toy_expected(row), abs=1e-6), (row, got)
    assert body["model"]["name"] == "toy"
    assert str(body["model"]["version"]) == "1"
    assert_common_headers(h)


def nested(depth):
    return b'{"instances": ' + b"[" * depth + b"1" + b"]" * depth + b"}"


def msg_matches(pattern):
    """A message check: the message must match this regex (case-insensitive)."""
    rx = re.compile(pattern, re.I)

    def check(msg, _body):
        assert rx.search(msg), f"error message {msg!r} does not match /{pattern}/"
    return check


def msg_has_position(msg, body):
    """invalid_json: the message carries the byte position of the error (0- or 1-based)."""
    want = body.index(b"oops")
    nums = [int(n) for n in re.findall(r"\d+", msg)]
    assert any(abs(n - want) <= 1 for n in nums), \
        f"invalid_json message {msg!r} has no byte position near {want}"


# id, method, path, body (bytes or None), extra headers, status, code(s), mentions, extra check
CASES = [
    # -- malformed JSON / media type -----------------------------------------------------
    ("malformed_json", "POST", PREDICT, b'{"instances": [[1, 2, 3]], oops}', JSON_CT,
     400, "invalid_json", (), msg_has_position),
    ("truncated_json", "POST", PREDICT, b'{"instances": [[1, 2', JSON_CT,
     400, "invalid_json", (), None),
    ("empty_body", "POST", PREDICT, b"", JSON_CT, 400, "invalid_json", (), None),
    ("trailing_garbage", "POST", PREDICT, GOOD_BODY + b" xyz", JSON_CT,
     400, "invalid_json", (), None),
    ("content_type_text_plain", "POST", PREDICT, GOOD_BODY, {"Content-Type": "text/plain"},
     415, "unsupported_media_type", (), msg_matches(r"content.?type|text/plain|application/json")),
    ("content_type_form", "POST", PREDICT, GOOD_BODY,
     {"Content-Type": "application/x-www-form-urlencoded"},
     415, "unsupported_media_type", (), msg_matches(r"content.?type|x-www-form|application/json")),
    ("content_type_missing", "POST", PREDICT, GOOD_BODY, {},
     415, "unsupported_media_type", (), msg_matches(r"content.?type|application/json")),
    # -- nesting ---------------------------------------------------------------------------
    ("nesting_over_bound", "POST", PREDICT, nested(MAX_DEPTH + 10), JSON_CT,
     400, "json_too_deep", (), msg_matches(r"dep|nest")),
    ("nesting_100000", "POST", PREDICT, nested(100000), JSON_CT,
     400, "json_too_deep", (), msg_matches(r"dep|nest")),
    # -- shape and values --------------------------------------------------------------------
    ("feature_count_short", "POST", PREDICT, {"instances": [[1, 2, 3], [1, 2]]}, None,
     400, "invalid_argument", ("instances[1]",), None),
    ("feature_count_long", "POST", PREDICT, {"instances": [[1, 2, 3, 4]]}, None,
     400, "invalid_argument", ("instances[0]",), None),
    ("unknown_feature_name", "POST", PREDICT,
     {"instances": [{"age": 1, "income": 2, "score": 3}, {"age": 1, "bogus": 2}]}, None,
     400, "invalid_argument", ("instances[1]", "bogus"), None),
    ("string_for_number_positional", "POST", PREDICT, {"instances": [[1, 2, 3], [1, "x", 3]]},
     None, 400, "invalid_argument", ("instances[1]",), None),
    ("string_for_number_named", "POST", PREDICT,
     {"instances": [{"age": "old", "income": 2, "score": 3}]}, None,
     400, "invalid_argument", ("instances[0].age",), None),
    ("bool_for_number", "POST", PREDICT, {"instances": [[True, 2, 3]]}, None,
     400, "invalid_argument", ("instances[0]",), None),
    ("number_overflows_to_inf", "POST", PREDICT, b'{"instances": [[1, 2, 3], [1e999, 2, 3]]}',
     JSON_CT, 400, "invalid_argument", ("instances[1]",), None),
    ("negative_overflow", "POST", PREDICT, b'{"instances": [[1, -1e999, 3]]}',
     JSON_CT, 400, "invalid_argument", ("instances[0]",), None),
    # NaN/Infinity are not JSON (RFC 8259), yet docs/api.md lists NaN under
    # invalid_argument: either code is acceptable, a 200 or a 5xx is not.
    ("nan_literal", "POST", PREDICT, b'{"instances": [[NaN, 2, 3]]}', JSON_CT,
     400, ("invalid_json", "invalid_argument"), (), None),
    ("infinity_literal", "POST", PREDICT, b'{"instances": [[1, Infinity, 3]]}', JSON_CT,
     400, ("invalid_json", "invalid_argument"), (), None),
    ("minus_infinity_literal", "POST", PREDICT, b'{"instances": [[1, 2, -Infinity]]}', JSON_CT,
     400, ("invalid_json", "invalid_argument"), (), None),
    ("empty_instances", "POST", PREDICT, {"instances": []}, None,
     400, "invalid_argument", ("instances",), None),
    ("instances_object", "POST", PREDICT, {"instances": {"age": 1, "income": 2, "score": 3}},
     None, 400, "invalid_argument", ("instances",), None),
    ("instances_number", "POST", PREDICT, {"instances": 5}, None,
     400, "invalid_argument", ("instances",), None),
    ("instances_missing", "POST", PREDICT, {"rows": [[1, 2, 3]]}, None,
     400, "invalid_argument", ("instances",), None),
    ("body_not_object", "POST", PREDICT, [[1, 2, 3]], None, 400, "invalid_argument", (), None),
    ("row_not_list", "POST", PREDICT, {"instances": [[1, 2, 3], 7]}, None,
     400, "invalid_argument", ("instances[1]",), None),
    ("bad_output_kind", "POST", PREDICT, {"instances": [[1, 2, 3]], "output": "bogus"}, None,
     400, "invalid_argument", ("output",), None),
    # -- unknown model / version ---------------------------------------------------------------
    ("unknown_model_predict", "POST", "/v1/models/nosuchmodel:predict", GOOD_BODY, JSON_CT,
     404, "model_not_found", ("nosuchmodel",), None),
    ("unknown_model_get", "GET", "/v1/models/nosuchmodel", None, None,
     404, "model_not_found", ("nosuchmodel",), None),
    ("unknown_version_predict", "POST", "/v1/models/toy/versions/99:predict", GOOD_BODY, JSON_CT,
     404, "version_not_found", ("99",), None),
    ("unknown_version_get", "GET", "/v1/models/toy/versions/99", None, None,
     404, "version_not_found", ("99",), None),
    # -- routing ----------------------------------------------------------------------------
    ("unknown_path", "GET", "/nope", None, None, 404, "not_found", (), None),
    ("unknown_root", "GET", "/", None, None, 404, "not_found", (), None),
    ("unknown_verb", "POST", "/v1/models/toy:explode", GOOD_BODY, JSON_CT,
     404, "not_found", (), None),
    ("unknown_v1_path", "POST", "/v1/nothing", GOOD_BODY, JSON_CT, 404, "not_found", (), None),
    # -- limits on the request line and headers ----------------------------------------------
    ("url_over_limit_query", "GET", "/healthz?pad=" + "a" * (MAX_URL + 100), None, None,
     414, "uri_too_long", (), msg_matches(r"ur[il]|long|bytes")),
    ("url_over_limit_model", "POST", "/v1/models/" + "m" * (MAX_URL + 100) + ":predict",
     GOOD_BODY, JSON_CT, 414, "uri_too_long", (), msg_matches(r"ur[il]|long|bytes")),
    ("request_id_space", "GET", "/healthz", None, {"X-Request-Id": "has space"},
     400, "invalid_request_id", (), msg_matches(r"request.?id")),
    ("request_id_slash", "POST", PREDICT, GOOD_BODY, {**JSON_CT, "X-Request-Id": "bad/slash"},
     400, "invalid_request_id", (), msg_matches(r"request.?id")),
    ("request_id_129", "GET", "/healthz", None, {"X-Request-Id": "r" * 129},
     400, "invalid_request_id", (), msg_matches(r"request.?id")),
    ("request_id_empty", "GET", "/healthz", None, {"X-Request-Id": ""},
     400, "invalid_request_id", (), msg_matches(r"request.?id")),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(daemon, case):
    _id, method, path, body, headers, status, code, mentions, check = case
    resp = daemon.request(method, path, body, headers)
    st, h, rbody = resp
    codes = code if isinstance(code, tuple) else (code,)
    got_code = rbody.get("error", {}).get("code") if isinstance(rbody, dict) else None
    assert_error(resp, status, got_code if got_code in codes else codes[0], mentions)
    if check:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        check(rbody["error"]["message"], raw)
    rid, _ = assert_common_headers(h)
    sent_rid = (headers or {}).get("X-Request-Id")
    if sent_rid is not None:
        # The invalid id is not echoed; a generated one replaces it.
        assert rid != sent_rid
    assert_still_serves(daemon)


@pytest.mark.parametrize("method,path,allowed", [
    ("GET", PREDICT, "POST"),
    ("PUT", PREDICT, "POST"),
    ("DELETE", "/healthz", "GET"),
    ("POST", "/readyz", "GET"),
    ("POST", "/metrics", "GET"),
    ("POST", "/v1/models", "GET"),
    ("DELETE", "/v1/models/toy", "GET"),
])
def test_wrong_method(daemon, method, path, allowed):
    body = GOOD_BODY if method in ("POST", "PUT") else None
    resp = daemon.request(method, path, body, JSON_CT if body else None)
    assert_error(resp, 405, "method_not_allowed")
    allow = resp[1].get("allow")
    assert allow is not None, f"405 without an Allow header: {dict(resp[1])}"
    methods = {m.strip().upper() for m in allow.split(",")}
    assert allowed in methods, f"Allow {allow!r} lacks {allowed}"
    assert method not in methods, f"Allow {allow!r} lists the refused method {method}"
    assert_common_headers(resp[1])
    assert_still_serves(daemon)


def _head(path, extra):
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{extra}\r\n").encode()


def _parse(daemon, data):
    assert data, "no response at all (connection closed without a status)"
    return parse_raw_response(data)


def test_body_over_limit_rejected_before_upload(daemon):
    """Content-Length over max_body_bytes: 413 arrives although not one body byte was sent."""
    head = _head(PREDICT, f"Content-Length: {MAX_BODY * 40}\r\n")
    t0 = time.monotonic()
    data, _ = daemon.raw_exchange(head, chunks=(), timeout=5.0)
    assert data, (f"no answer within {time.monotonic() - t0:.1f}s to a Content-Length over the "
                  f"limit with the body withheld: the daemon waits for the upload instead of "
                  f"answering 413 first")
    resp = _parse(daemon, data)
    assert_error(resp, 413, "body_too_large", ())
    msg = resp[2]["error"]["message"]
    assert re.search(r"body|bytes|large|limit", msg, re.I), msg
    assert_common_headers(resp[1])
    assert_still_serves(daemon)


def test_body_over_limit_announced_and_sent(daemon):
    """Content-Length one byte over the limit, body sent: 413."""
    body = GOOD_BODY + b" " * (MAX_BODY + 1 - len(GOOD_BODY))
    assert len(body) == MAX_BODY + 1
    resp = daemon.request("POST", PREDICT, body, JSON_CT)
    assert_error(resp, 413, "body_too_large")
    assert_common_headers(resp[1])
    assert_still_serves(daemon)


def test_body_exactly_at_limit_is_served(daemon):
    body = GOOD_BODY + b" " * (MAX_BODY - len(GOOD_BODY))
    assert len(body) == MAX_BODY
    st, h, rb = daemon.request("POST", PREDICT, body, JSON_CT)
    assert st == 200, f"a body of exactly max_body_bytes ({MAX_BODY}) was refused: {st} {rb!r}"
    assert rb["predictions"][0] == pytest.approx(toy_expected(GOOD_ROWS[0]), abs=1e-6)


def _chunked(payload, size=16384):
    for i in range(0, len(payload), size):
        part = payload[i:i + size]
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


def test_chunked_body_over_limit(daemon):
    """No Content-Length: the daemon counts while receiving and answers 413."""
    payload = GOOD_BODY + b" " * (MAX_BODY * 3)
    data, sent = daemon.raw_exchange(_head(PREDICT, "Transfer-Encoding: chunked\r\n"),
                                     _chunked(payload), timeout=10.0)
    resp = _parse(daemon, data)
    assert_error(resp, 413, "body_too_large")
    assert_common_headers(resp[1])
    assert_still_serves(daemon)


def test_chunked_body_within_limit_is_served(daemon):
    data, _ = daemon.raw_exchange(_head(PREDICT, "Transfer-Encoding: chunked\r\n"),
                                  _chunked(GOOD_BODY, size=7), timeout=10.0,
                                  stop_sending_on_reply=False)
    st, h, body = _parse(daemon, data)
    assert st == 200, f"chunked predict within the limit: {st} {body!r}"
    assert body["predictions"][1] == pytest.approx(toy_expected(GOOD_ROWS[1]), abs=1e-6)
    assert_common_headers(h)


def test_content_type_with_charset_is_json(daemon):
    st, h, body = daemon.request("POST", PREDICT, GOOD_BODY,
                                 {"Content-Type": "application/json; charset=utf-8"})
    assert st == 200, f"application/json; charset=utf-8 refused: {st} {body!r}"
    assert body["predictions"][2] == pytest.approx(toy_expected(GOOD_ROWS[2]), abs=1e-6)


def test_huge_request_line_does_not_hurt(daemon):
    """A URL far past any buffer: 414 and the daemon serves on (the HTTP library may
    answer this one itself, so only the status is required)."""
    st, _h, _b = daemon.request("GET", "/healthz?pad=" + "a" * 200_000)
    assert st == 414, f"200 KB URL: expected 414, got {st}"
    assert_still_serves(daemon)


# -- X-Request-Id and Server-Timing ----------------------------------------------------------

@pytest.mark.parametrize("rid", ["abc-123._:XYZ", "r" * 128, "7"], ids=["mixed", "len128", "len1"])
@pytest.mark.parametrize("method,path,body,status", [
    ("POST", PREDICT, GOOD_BODY, 200),
    ("GET", "/healthz", None, 200),
    ("POST", "/v1/models/nosuchmodel:predict", GOOD_BODY, 404),
    ("POST", PREDICT, b"{", 400),
], ids=["predict200", "healthz200", "model404", "json400"])
def test_request_id_echoed(daemon, rid, method, path, body, status):
    headers = {"X-Request-Id": rid}
    if body is not None:
        headers.update(JSON_CT)
    st, h, _ = daemon.request(method, path, body, headers)
    assert st == status
    assert_common_headers(h, sent_request_id=rid)


def test_request_id_generated_when_absent(daemon):
    ids = []
    for i in range(20):
        path, body = [(PREDICT, GOOD_BODY), ("/healthz", None), ("/nope", None)][i % 3]
        st, h, _ = daemon.request("POST" if body else "GET", path, body, JSON_CT if body else None)
        rid, _ = assert_common_headers(h)
        ids.append(rid)
    assert len(set(ids)) == len(ids), f"generated X-Request-Ids repeat: {ids}"


def test_server_timing_everywhere(daemon):
    """Every endpoint, success or error, carries Server-Timing with the four durations."""
    reqs = [("GET", "/healthz", None), ("GET", "/readyz", None), ("GET", "/metrics", None),
            ("GET", "/v1/models", None), ("GET", "/v1/models/toy", None),
            ("POST", PREDICT, GOOD_BODY), ("GET", PREDICT, None), ("GET", "/nope", None),
            ("POST", PREDICT, b"[[["), ("POST", "/v1/models/zz:predict", GOOD_BODY)]
    for method, path, body in reqs:
        st, h, _ = daemon.request(method, path, body, JSON_CT if body else None)
        try:
            assert_common_headers(h)
        except AssertionError as e:
            raise AssertionError(f"{method} {path} -> {st}: {e}") from None


def test_server_timing_measures_a_big_predict(daemon):
    rows = [[i % 90, (i % 7) * 0.5, (i % 13) - 6.0] for i in range(5000)]
    st, h, body = daemon.request("POST", PREDICT, {"instances": rows})
    assert st == 200, body
    assert len(body["predictions"]) == 5000
    assert body["predictions"][4999] == pytest.approx(toy_expected(rows[4999]), abs=1e-6)
    _, timing = assert_common_headers(h)
    # Parsing ~100 KB of JSON takes measurable time; a header of zeros is not a measurement.
    assert timing["parse"] > 0, h["server-timing"]
    assert timing["total"] > 0, h["server-timing"]
    assert REQUEST_ID_RE.match(h["x-request-id"])
