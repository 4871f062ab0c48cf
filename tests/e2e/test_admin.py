"""Admin API: load / unload / reload (native and KServe repository extension), bearer-token
auth, and a request that straddles a reload finishing on the version it started with."""
import json
import socket
import time

import pytest

from conftest import Daemon, lr_document, parse_raw_response, sigmoid, write_toy_model

TOKEN = "test-admin-token-0123456789abcdef"
FEATURES = ["a", "b", "c"]
ROW = [1.0, -2.0, 0.5]


def version_doc(k):
    return lr_document(FEATURES, [0.5, 0.25, -1.0], k / 10.0)


def expected(k):
    return sigmoid(k / 10.0 + 0.5 * ROW[0] + 0.25 * ROW[1] - 1.0 * ROW[2])


def write_version(repo, k, ready=True):
    vdir = repo / "m" / str(k)
    vdir.mkdir(parents=True)
    (vdir / "lr.json").write_text(json.dumps(version_doc(k)))
    if ready:
        (vdir / "READY").write_text("")


@pytest.fixture
def token_config(tmp_path):
    tok = tmp_path / "token"
    tok.write_text(TOKEN + "\n")
    # Notifications off, polling slow: only admin calls change what serves.
    return {"admin_token_file": str(tok), "repository_poll_ms": 0, "repository_settle_ms": 60000}


def admin(d, path, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return d.request("POST", path, None, headers)


def test_admin_refused_without_a_configured_token(toy_repo):
    with Daemon(toy_repo) as d:
        st, _, body = admin(d, "/v1/models/toy:unload")
        assert st == 403 and body["error"]["code"] == "forbidden"
        assert "admin_token_file" in body["error"]["message"]
        st, _, _ = d.predict("toy", [[1, 2, 3]])
        assert st == 200


def test_admin_loopback_allowed_when_configured(toy_repo):
    with Daemon(toy_repo, config={"admin_allow_unauthenticated_loopback": True}) as d:
        st, _, body = admin(d, "/v1/models/toy:unload", token=None)
        assert st == 200 and body["state"] == "unloaded"


def test_admin_auth_and_lifecycle(tmp_path, token_config):
    repo = tmp_path / "repo"
    write_version(repo, 1)
    with Daemon(repo, config=token_config) as d:
        st, headers, body = admin(d, "/v1/models/m:unload", token=None)
        assert st == 401 and body["error"]["code"] == "unauthorized"
        assert headers["WWW-Authenticate"] == "Bearer"
        st, _, body = admin(d, "/v1/models/m:unload", token="wrong-token-wrong-token")
        assert st == 403 and body["error"]["code"] == "forbidden"
        st, _, _ = d.predict("m", [ROW])
        assert st == 200, "a refused admin call changed nothing"

        st, _, body = admin(d, "/v1/models/m:unload")
        assert (st, body["state"]) == (200, "unloaded")
        st, _, body = d.predict("m", [ROW])
        assert st == 503 and "unloaded" in body["error"]["message"]
        st, _, body = d.request("GET", "/readyz")
        assert st == 200, "an unloaded model does not make the server unready"

        st, _, body = admin(d, "/v2/repository/models/m/load")
        assert (st, body["state"], body["version"]) == (200, "ready", 1)
        st, _, body = d.predict("m", [ROW])
        assert st == 200 and body["predictions"][0] == pytest.approx(expected(1), rel=1e-12)

        # A new version appears; with notifications off it serves once :load asks.
        write_version(repo, 2, ready=False)
        st, _, body = admin(d, "/v1/models/m:load")
        assert (st, body["version"]) == (200, 2)
        st, _, body = d.predict("m", [ROW])
        assert body["model"]["version"] == 2
        assert body["predictions"][0] == pytest.approx(expected(2), rel=1e-12)

        # A corrupt newer version: :load reports it, version 2 keeps serving.
        (repo / "m" / "3").mkdir()
        (repo / "m" / "3" / "lr.json").write_text("{ not json")
        st, _, body = admin(d, "/v1/models/m:reload")
        assert st == 200 and body["version"] == 2 and "JSON" in body["last_error"]
        st, _, body = d.predict("m", [ROW])
        assert st == 200 and body["model"]["version"] == 2

        st, _, body = admin(d, "/v2/repository/index")
        assert st == 200 and body == [{"name": "m", "version": "2", "state": "READY",
                                       "reason": body[0]["reason"]}]
        st, _, body = admin(d, "/v1/models/nope:load")
        assert st == 404 and body["error"]["code"] == "model_not_found"
        st, _, text = d.request("GET", "/metrics")
        assert 'modeld_model_load_total{model="m",result="error"} 1' in text
        assert 'modeld_model_version{model="m"} 2' in text
        d.stop()
        assert TOKEN not in d.stderr_text(), "the admin token must never be logged"


def test_request_straddling_a_reload_finishes_on_its_version(tmp_path, token_config):
    """The model is chosen when the request's headers arrive; a reload while its body is
    still uploading does not change what answers it."""
    repo = tmp_path / "repo"
    write_version(repo, 1)
    body = json.dumps({"instances": [ROW] * 2000}).encode()
    head = (b"POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
    with Daemon(repo, config=token_config) as d:
        s = socket.create_connection((d.host, d.port), timeout=10)
        s.sendall(head + body[: len(body) // 2])
        time.sleep(0.1)
        write_version(repo, 2)
        st, _, rb = admin(d, "/v1/models/m:load")
        assert rb["version"] == 2
        s.sendall(body[len(body) // 2:])
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        st, _, rb = parse_raw_response(data)
        assert st == 200
        assert rb["model"]["version"] == 1
        assert rb["predictions"][0] == pytest.approx(expected(1), rel=1e-12)
        st, _, rb = d.predict("m", [ROW])
        assert rb["model"]["version"] == 2


def test_warmup_rows_gate_publication(tmp_path, token_config):
    """config.json warmup_instances are scored before a version is published: rows the
    model cannot score keep the version from serving, and the error says why."""
    repo = tmp_path / "repo"
    write_version(repo, 1)
    (repo / "m" / "config.json").write_text(json.dumps({"warmup_instances": [[1, 2]]}))
    with Daemon(repo, config=token_config, wait_ready=False) as d:
        st, _, body = admin(d, "/v1/models/m:load")
        assert st == 400 and body["error"]["code"] == "load_failed"
        assert "warm-up" in body["error"]["message"] and "3 features" in body["error"]["message"]
        (repo / "m" / "config.json").write_text(json.dumps({"warmup_instances": [[1, 2, 3], [0, 0, 1]]}))
        st, _, body = admin(d, "/v1/models/m:reload")
        assert st == 200 and body["state"] == "ready", body
        st, _, body = d.predict("m", [ROW])
        assert st == 200
