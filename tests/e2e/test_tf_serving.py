"""TF Serving compatibility of the native API: the row ("instances") and columnar
("inputs") request forms answered as "predictions" / "outputs", signature_name, and
GET /v1/models/{m} with TF Serving's model_version_status."""

import pytest

from conftest import Daemon, assert_error, toy_expected, write_broken_model, write_toy_model

ROWS = [[1.0, 2.0, 3.0], [40.0, 0.5, -1.25]]


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    write_toy_model(repo)
    write_toy_model(repo, version=2)
    write_broken_model(repo)
    with Daemon(repo, wait_ready=False) as daemon:
        daemon.wait_settled("toy", "broken")
        yield daemon


def test_row_and_columnar_forms(d):
    want = [toy_expected(r) for r in ROWS]
    st, _h, rows = d.request("POST", "/v1/models/toy:predict", {"instances": ROWS})
    assert st == 200 and set(rows) == {"predictions", "model"}, rows
    assert rows["predictions"] == pytest.approx(want, rel=1e-12)
    st, _h, row_inputs = d.request("POST", "/v1/models/toy:predict", {"inputs": ROWS})
    assert st == 200 and row_inputs["outputs"] == rows["predictions"], row_inputs
    cols = {"age": [1.0, 40.0], "income": [2.0, 0.5], "score": [3.0, -1.25]}
    st, _h, columnar = d.request("POST", "/v1/models/toy:predict", {"inputs": cols})
    assert st == 200 and set(columnar) == {"outputs", "model"}, columnar
    assert columnar["outputs"] == rows["predictions"]


def test_signature_name(d):
    st, _h, body = d.request("POST", "/v1/models/toy:predict",
                             {"signature_name": "serving_default", "instances": ROWS})
    assert st == 200 and body["predictions"] == pytest.approx([toy_expected(r) for r in ROWS], rel=1e-12)
    assert_error(d.request("POST", "/v1/models/toy:predict", {"signature_name": "classify", "instances": ROWS}),
                 400, "invalid_argument", ["signature_name", "classify"])


def test_model_version_status(d):
    st, _h, body = d.request("GET", "/v1/models/toy")
    assert st == 200, body
    ok = {"error_code": "OK", "error_message": ""}
    # the default version policy serves the latest version only
    assert body["model_version_status"] == [{"version": "2", "state": "AVAILABLE", "status": ok}], body
    st, _h, one = d.request("GET", "/v1/models/toy/versions/2")
    assert one["model_version_status"] == [{"version": "2", "state": "AVAILABLE", "status": ok}]
    st, _h, broken = d.request("GET", "/v1/models/broken")
    [v] = broken["model_version_status"]
    assert v["version"] == "1" and v["state"] == "END" and v["status"]["error_code"] == "UNKNOWN"
    assert v["status"]["error_message"] and v["status"]["error_message"] == broken["versions"][0]["error"]
