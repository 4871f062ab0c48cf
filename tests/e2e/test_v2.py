"""Open Inference Protocol (KServe V2) REST conformance, against the real daemon.

Each test cites the section of the protocol it checks: "OIP <section>" is the Open
Inference Protocol's REST document (KServe's "Open Inference Protocol (V2 Inference
Protocol)", HTTP/REST part); "binary extension" is Triton's Binary Tensor Data Extension;
"statistics extension" is Triton's Statistics Extension; "repository extension" is the
Model Repository Extension."""

import json
import math
import struct
import time

import pytest

from conftest import (TOY, Daemon, run_modeld, toy_expected, write_broken_model,
                      write_toy_model)

HL = "Inference-Header-Content-Length"


def infer(d, body, model="toy", version=None, headers=None):
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version is not None else "") + "/infer"
    return d.request("POST", path, body, headers=headers)


def v2_error(resp, status, *mentions):
    """OIP "... Response JSON Error Object": {"error": "<message>"} with an error status."""
    st, h, body = resp
    assert st == status, f"expected {status}, got {st}: {body!r}"
    assert h.get("content-type", "").startswith("application/json"), h
    assert isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], str), body
    assert body["error"].strip(), body
    for m in mentions:
        assert m.lower() in body["error"].lower(), f"{body['error']!r} does not mention {m!r}"
    return body["error"]


def matrix_input(rows, datatype="FP64", name="input", nested=False):
    data = rows if nested else [v for r in rows for v in r]
    return {"name": name, "shape": [len(rows), len(rows[0])], "datatype": datatype, "data": data}


def margin(row):
    return TOY["bias"] + sum(w * x for w, x in zip(TOY["weights"], row))


ROWS = [[1.0, 2.0, 3.0], [40.0, 0.5, -1.25], [0.0, 0.0, 0.0]]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    write_toy_model(repo)
    with Daemon(repo) as d:
        yield d


# -- server and model metadata, health ---------------------------------------------------

def test_server_metadata(toy):
    """OIP "Server Metadata": name, version, extensions."""
    st, h, body = toy.request("GET", "/v2")
    assert st == 200, body
    version = run_modeld(["--version"]).stdout.split()[-1]
    assert body == {"name": "modeld", "version": version,
                    "extensions": ["binary_tensor_data", "statistics", "model_repository"]}


def test_health_live_and_ready(toy):
    """OIP "Health" (Server Live, Server Ready): 200 = true, empty body."""
    for path in ("/v2/health/live", "/v2/health/ready"):
        st, _h, body = toy.request("GET", path)
        assert (st, body) == (200, ""), (path, st, body)


def test_not_ready_is_4xx(tmp_path):
    """OIP "Health": a 4xx status means false (Server Ready, Model Ready); agrees with /readyz."""
    write_toy_model(tmp_path)
    write_broken_model(tmp_path)
    with Daemon(tmp_path, wait_ready=False) as d:
        # both settled (under TSan toy can still be loading when broken has failed)
        d.wait_settled("broken", "toy")
        assert d.request("GET", "/readyz")[0] == 503
        assert d.request("GET", "/v2/health/live")[0] == 200
        assert d.request("GET", "/v2/health/ready")[:3:2] == (400, "")
        assert d.request("GET", "/v2/models/toy/ready")[:3:2] == (200, "")
        assert d.request("GET", "/v2/models/broken/ready")[:3:2] == (400, "")
        v2_error(d.request("GET", "/v2/models/broken"), 400, "broken")
        v2_error(infer(d, {"inputs": [matrix_input(ROWS)]}, model="broken"), 503, "broken")


def test_model_metadata(toy):
    """OIP "Model Metadata": name, versions, platform, inputs and outputs with datatype and shape."""
    want = {"name": "toy", "versions": ["1"], "platform": "modeld_lr",
            "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 3]}],
            "outputs": [{"name": "value", "datatype": "FP64", "shape": [-1]},
                        {"name": "margin", "datatype": "FP64", "shape": [-1]}]}
    for path in ("/v2/models/toy", "/v2/models/toy/versions/1"):
        st, _h, body = toy.request("GET", path)
        assert (st, body) == (200, want), path


def test_model_metadata_errors(toy):
    """OIP "Model Metadata Response JSON Error Object"; unknown model and version."""
    v2_error(toy.request("GET", "/v2/models/nope"), 404, "nope")
    v2_error(toy.request("GET", "/v2/models/toy/versions/7"), 404, "version 7")
    v2_error(toy.request("GET", "/v2/models/nope/ready"), 404, "nope")


def test_model_ready(toy):
    """OIP "Model Ready", with and without a version."""
    assert toy.request("GET", "/v2/models/toy/ready")[:3:2] == (200, "")
    assert toy.request("GET", "/v2/models/toy/versions/1/ready")[:3:2] == (200, "")


# -- inference, JSON ---------------------------------------------------------------------

def test_infer_json(toy):
    """OIP "Inference Request JSON Object" / "Inference Response JSON Object": id echoed,
    every output when none is requested, row-major data, equal to :predict."""
    st, h, body = infer(toy, {"id": "req-42", "inputs": [matrix_input(ROWS)]})
    assert st == 200, body
    assert h["content-type"].startswith("application/json")
    pred = toy.predict("toy", ROWS)[2]["predictions"]
    assert body["model_name"] == "toy" and body["model_version"] == "1" and body["id"] == "req-42"
    assert [o["name"] for o in body["outputs"]] == ["value", "margin"]
    value, marg = body["outputs"]
    assert value == {"name": "value", "datatype": "FP64", "shape": [3], "data": pred}
    assert value["data"] == pytest.approx([toy_expected(r) for r in ROWS], rel=1e-12)
    assert marg["shape"] == [3] and marg["data"] == pytest.approx([margin(r) for r in ROWS], rel=1e-12)


def test_infer_without_id_has_no_id(toy):
    """OIP "Inference Response JSON Object": id only when the request had one."""
    st, _h, body = infer(toy, {"inputs": [matrix_input(ROWS[:1])]})
    assert st == 200 and "id" not in body, body


def test_infer_nested_data_and_version(toy):
    """OIP "Tensor Data": nested row-major data equals flat data; versioned path."""
    flat = infer(toy, {"inputs": [matrix_input(ROWS)]})[2]
    nested = infer(toy, {"inputs": [matrix_input(ROWS, nested=True)]}, version=1)[2]
    assert flat["outputs"] == nested["outputs"]


def test_infer_per_feature_inputs(toy):
    """Tabular models also take one input per feature, by name ([rows] or [rows, 1])."""
    cols = list(zip(*ROWS))
    body = {"inputs": [{"name": f, "shape": [3] if i != 1 else [3, 1], "datatype": "FP64", "data": list(c)}
                       for i, (f, c) in enumerate(zip(TOY["features"], cols))][::-1]}
    st, _h, out = infer(toy, body)
    assert st == 200, out
    assert out["outputs"] == infer(toy, {"inputs": [matrix_input(ROWS)]})[2]["outputs"]


def test_infer_datatypes(toy):
    """OIP "Tensor Data Types": BOOL, INT32, INT64, FP32 convert as their type reads."""
    def value(inp):
        st, _h, b = infer(toy, {"inputs": [inp], "outputs": [{"name": "value"}]})
        assert st == 200, b
        return b["outputs"][0]["data"][0]
    assert value(matrix_input([[True, False, True]], "BOOL")) == pytest.approx(toy_expected([1, 0, 1]), rel=1e-12)
    assert value(matrix_input([[3, -2, 7]], "INT32")) == pytest.approx(toy_expected([3, -2, 7]), rel=1e-12)
    assert value(matrix_input([[3, -2, 7]], "INT64")) == pytest.approx(toy_expected([3, -2, 7]), rel=1e-12)
    f32 = struct.unpack("<f", struct.pack("<f", 0.1))[0]  # 0.1 rounded to float
    assert value(matrix_input([[0.1, 0.1, 0.1]], "FP32")) == pytest.approx(toy_expected([f32] * 3), rel=1e-15)
    assert value(matrix_input([[0.1, 0.1, 0.1]], "FP32")) != value(matrix_input([[0.1, 0.1, 0.1]], "FP64"))


def test_infer_requested_outputs(toy):
    """OIP "Request Output": only the outputs asked for, in that order."""
    st, _h, body = infer(toy, {"inputs": [matrix_input(ROWS)], "outputs": [{"name": "margin"}]})
    assert st == 200 and [o["name"] for o in body["outputs"]] == ["margin"], body
    body = infer(toy, {"inputs": [matrix_input(ROWS)], "outputs": [{"name": "margin"}, {"name": "value"}],
                       "parameters": {"unrelated": 1}})[2]
    assert [o["name"] for o in body["outputs"]] == ["margin", "value"]


@pytest.mark.parametrize("body,mentions", [
    ({"inputs": [dict(matrix_input(ROWS), datatype="FP16")]}, ["FP16", "datatype"]),
    ({"inputs": [dict(matrix_input(ROWS), datatype="STRING")]}, ["STRING"]),
    ({"inputs": [dict(matrix_input(ROWS), shape=[3, 2])]}, ["shape", "3"]),
    ({"inputs": [dict(matrix_input(ROWS), shape=[2, 3])]}, ["shape holds 6", "data has 9"]),
    ({"inputs": [dict(matrix_input(ROWS, nested=True), data=[[1, 2, 3], [4, 5], [6, 7, 8]])]},
     ["does not match shape"]),
    ({"inputs": [matrix_input(ROWS)], "outputs": [{"name": "proba"}]}, ["unknown output 'proba'", "value", "margin"]),
    ({"inputs": [matrix_input(ROWS)], "outputs": [{"name": "value"}, {"name": "value"}]}, ["twice"]),
    ({"inputs": [dict(matrix_input(ROWS), name="dense_input")]}, ["unknown input 'dense_input'"]),
    ({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64"}]}, ["neither"]),
    ({"inputs": [matrix_input([[1.5, 2, 3]], "INT32")]}, ["INT32"]),
    ({"inputs": [matrix_input([[1, 2, 3e10]], "INT32")]}, ["INT32"]),
    ({"inputs": [matrix_input([["a", 2, 3]], "FP64")]}, ["a string", "FP64"]),
    ({"inputs": [matrix_input([["a", "b", "c"]], "BYTES")]}, ["BYTES", "numeric"]),
    ({"inputs": []}, ["inputs"]),
    ({"id": 7, "inputs": [matrix_input(ROWS)]}, ["id"]),
    ({"inputs": [{"name": "age", "shape": [2], "datatype": "FP64", "data": [1, 2]},
                 {"name": "score", "shape": [3], "datatype": "FP64", "data": [1, 2, 3]}]}, ["rows"]),
])
def test_infer_errors(toy, body, mentions):
    """OIP "Inference Response JSON Error Object": 400 with a message naming the problem
    (bad datatype, shape/data mismatch, unknown output, unknown input...)."""
    v2_error(infer(toy, body), 400, *mentions)
    assert toy.request("GET", "/v2/health/live")[0] == 200


def test_infer_malformed_and_media_type(toy):
    """OIP "Inference Response JSON Error Object" for malformed JSON; a body that is
    neither JSON nor binary-framed is refused (415)."""
    v2_error(infer(toy, b'{"inputs": [', headers={"Content-Type": "application/json"}), 400, "malformed JSON")
    v2_error(infer(toy, b"inputs=1", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415,
             "Content-Type")
    v2_error(infer(toy, {"inputs": [matrix_input(ROWS)]}, model="nope"), 404, "nope")
    v2_error(infer(toy, {"inputs": [matrix_input(ROWS)]}, version=9), 404, "version 9")


def test_v2_error_shape_on_every_v2_path(toy):
    """OIP errors are {"error": "..."} on every /v2 route, the repository extension's too;
    the native API keeps {"error": {"code", "message"}}."""
    v2_error(toy.request("GET", "/v2/nothing"), 404, "no route")
    v2_error(toy.request("POST", "/v2"), 405, "not allowed")
    v2_error(toy.request("POST", "/v2/repository/index"), 403, "admin")
    v2_error(toy.request("POST", "/v2/repository/models/toy/unload"), 403, "admin")
    native = toy.request("GET", "/v1/models/nope")[2]
    assert native["error"]["code"] == "model_not_found"


def test_repository_extension_errors_with_admin(tmp_path):
    """Repository extension: unknown model on load in the OIP error shape; index lists models."""
    write_toy_model(tmp_path)
    with Daemon(tmp_path, config={"admin_allow_unauthenticated_loopback": True}) as d:
        st, _h, body = d.request("POST", "/v2/repository/index")
        assert st == 200 and [(m["name"], m["state"]) for m in body] == [("toy", "READY")], body
        v2_error(d.request("POST", "/v2/repository/models/ghost/load"), 404, "ghost")


# -- binary tensor data extension --------------------------------------------------------

def binary_request(header, blobs):
    head = json.dumps(header).encode()
    return head + b"".join(blobs), {HL: str(len(head)), "Content-Type": "application/octet-stream"}


def split_binary(headers, body):
    """(JSON header, {output name: raw bytes}) of a binary-extension response."""
    n = int(headers[HL])
    meta = json.loads(body[:n])
    blobs, off = {}, n
    for o in meta["outputs"]:
        size = o.get("parameters", {}).get("binary_data_size")
        if size is not None:
            blobs[o["name"]] = body[off:off + size]
            off += size
    assert off == len(body), (off, len(body))
    return meta, blobs


def test_binary_input_and_output(toy):
    """Binary extension: binary_data_size input, binary_data output, the header and framing."""
    raw = struct.pack("<9d", *[v for r in ROWS for v in r])
    body, hdrs = binary_request({"id": "b1", "inputs": [{"name": "input", "shape": [3, 3], "datatype": "FP64",
                                                          "parameters": {"binary_data_size": len(raw)}}],
                                 "outputs": [{"name": "value", "parameters": {"binary_data": True}},
                                             {"name": "margin"}]}, [raw])
    st, h, resp = toy.request("POST", "/v2/models/toy/infer", body, headers=hdrs, raw=True)
    assert st == 200, resp
    assert h["content-type"] == "application/octet-stream"
    meta, blobs = split_binary(h, resp)
    assert meta["id"] == "b1"
    assert meta["outputs"][0] == {"name": "value", "datatype": "FP64", "shape": [3],
                                  "parameters": {"binary_data_size": 24}}
    assert list(struct.unpack("<3d", blobs["value"])) == toy.predict("toy", ROWS)[2]["predictions"]
    assert meta["outputs"][1]["data"] == pytest.approx([margin(r) for r in ROWS], rel=1e-12)


def test_binary_data_output_parameter(toy):
    """Binary extension: request parameter binary_data_output makes every output binary;
    an output's own binary_data false overrides it. Integer inputs travel binary too."""
    for dt, fmt in (("INT32", "<3i"), ("INT64", "<3q"), ("FP32", "<3f")):
        raw = struct.pack(fmt, 3, -2, 7)
        body, hdrs = binary_request({"parameters": {"binary_data_output": True},
                                     "inputs": [{"name": "input", "shape": [1, 3], "datatype": dt,
                                                 "parameters": {"binary_data_size": len(raw)}}],
                                     "outputs": [{"name": "value"},
                                                 {"name": "margin", "parameters": {"binary_data": False}}]},
                                    [raw])
        st, h, resp = toy.request("POST", "/v2/models/toy/infer", body, headers=hdrs, raw=True)
        assert st == 200, resp
        meta, blobs = split_binary(h, resp)
        assert set(blobs) == {"value"}, dt
        assert struct.unpack("<d", blobs["value"])[0] == pytest.approx(toy_expected([3, -2, 7]), rel=1e-12)
        assert meta["outputs"][1]["data"] == [pytest.approx(margin([3, -2, 7]), rel=1e-12)]


@pytest.mark.parametrize("case,mentions", [
    ("size_mismatch", ["binary_data_size", "needs 72"]),
    ("too_few_bytes", ["exceeds"]),
    ("extra_bytes", ["8 bytes of binary data"]),
    ("bytes_type", ["not supported for BYTES"]),
    ("header_too_long", [HL]),
    ("header_not_number", [HL]),
    ("both", ["both"]),
])
def test_binary_errors(toy, case, mentions):
    """Binary extension errors: sizes that do not add up, a bad header, BYTES binary."""
    raw = struct.pack("<9d", *[v for r in ROWS for v in r])
    inp = {"name": "input", "shape": [3, 3], "datatype": "FP64", "parameters": {"binary_data_size": 72}}
    blobs = [raw]
    if case == "size_mismatch":
        inp["parameters"]["binary_data_size"] = 64
    elif case == "too_few_bytes":
        blobs = [raw[:-8]]
    elif case == "extra_bytes":
        blobs = [raw + b"\0" * 8]
    elif case == "bytes_type":
        inp["datatype"] = "BYTES"
    elif case == "both":
        inp["data"] = [1] * 9
    body, hdrs = binary_request({"inputs": [inp]}, blobs)
    if case == "header_too_long":
        hdrs[HL] = str(len(body) + 1)
    elif case == "header_not_number":
        hdrs[HL] = "12abc"
    v2_error(toy.request("POST", "/v2/models/toy/infer", body, headers=hdrs), 400, *mentions)


# -- the 1 000 x 100 FP32 batch through a GBDT model -------------------------------------

@pytest.fixture(scope="module")
def gbdt(tmp_path_factory):
    import numpy as np
    import xgboost as xgb
    rng = np.random.default_rng(7)
    x = rng.normal(size=(1000, 100)).astype(np.float32)
    x[rng.random(x.shape) < 0.02] = np.nan  # some missing values
    y = (np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1]) - np.nan_to_num(x[:, 2]) > 0).astype(np.float32)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "nthread": 1},
                        xgb.DMatrix(x, label=y), num_boost_round=30)
    repo = tmp_path_factory.mktemp("gbdt")
    (repo / "gb" / "1").mkdir(parents=True)
    booster.save_model(str(repo / "gb" / "1" / "model.json"))
    expected = booster.predict(xgb.DMatrix(x))
    with Daemon(repo) as d:
        yield d, x, expected


def test_binary_and_json_paths_agree_on_gbdt_batch(gbdt):
    """Binary extension vs JSON (OIP "Tensor Data") on a 1 000 x 100 FP32 batch through an
    XGBoost model: identical outputs, equal to :predict's and to XGBoost's own."""
    import numpy as np
    d, x, expected = gbdt
    rows = [[None if math.isnan(v) else float(v) for v in r] for r in x.tolist()]
    st, _h, pred = d.request("POST", "/v1/models/gb:predict", {"instances": rows})
    assert st == 200, pred
    st, _h, js = infer(d, {"inputs": [{"name": "input", "shape": [1000, 100], "datatype": "FP32",
                                       "data": [v for r in rows for v in r]}],
                           "outputs": [{"name": "value"}]}, model="gb")
    assert st == 200, js
    raw = x.astype("<f4").tobytes()
    body, hdrs = binary_request({"inputs": [{"name": "input", "shape": [1000, 100], "datatype": "FP32",
                                             "parameters": {"binary_data_size": len(raw)}}],
                                 "outputs": [{"name": "value", "parameters": {"binary_data": True}}]}, [raw])
    st, h, resp = d.request("POST", "/v2/models/gb/infer", body, headers=hdrs, raw=True)
    assert st == 200, resp
    meta, blobs = split_binary(h, resp)
    assert meta["outputs"][0]["shape"] == [1000]
    binary = np.frombuffer(blobs["value"], dtype="<f8").tolist()
    assert js["outputs"][0]["shape"] == [1000]
    assert binary == js["outputs"][0]["data"] == pred["predictions"]
    assert np.allclose(binary, expected, rtol=1e-6, atol=1e-7)


def test_leaf_output_binary_and_json(gbdt):
    """Binary extension for INT64 outputs: the leaf indices, equal to :predict's "leaf"."""
    import numpy as np
    d, x, _ = gbdt
    rows = x[:50]
    raw = rows.astype("<f4").tobytes()
    body, hdrs = binary_request({"inputs": [{"name": "input", "shape": [50, 100], "datatype": "FP32",
                                             "parameters": {"binary_data_size": len(raw)}}],
                                 "outputs": [{"name": "leaf", "parameters": {"binary_data": True}},
                                             {"name": "margin"}]}, [raw])
    st, h, resp = d.request("POST", "/v2/models/gb/infer", body, headers=hdrs, raw=True)
    assert st == 200, resp
    meta, blobs = split_binary(h, resp)
    assert meta["outputs"][0]["datatype"] == "INT64" and meta["outputs"][0]["shape"] == [50, 30]
    leaves = np.frombuffer(blobs["leaf"], dtype="<i8").reshape(50, 30).tolist()
    plain = [[None if math.isnan(v) else float(v) for v in r] for r in rows.tolist()]
    pred = d.request("POST", "/v1/models/gb:predict", {"instances": plain, "output": "leaf"})[2]["predictions"]
    assert leaves == pred
    js = infer(d, {"inputs": [{"name": "input", "shape": [50, 100], "datatype": "FP32",
                               "data": plain}], "outputs": [{"name": "leaf"}]}, model="gb")[2]
    assert js["outputs"][0]["data"] == [v for r in leaves for v in r]


# -- statistics extension ----------------------------------------------------------------

def metric_total(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labs = dict(kv.split("=", 1) for kv in line[len(name) + 1:line.index("}")].split(","))
        labs = {k: v.strip('"') for k, v in labs.items()}
        if all(labs.get(k) in (w if isinstance(w, tuple) else (w,)) for k, w in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_stats_consistent_with_metrics(tmp_path):
    """Statistics extension: per-version success/fail counts and cumulative durations,
    the same requests /metrics counts."""
    write_toy_model(tmp_path)
    with Daemon(tmp_path) as d:
        for _ in range(3):
            assert d.predict("toy", ROWS)[0] == 200
        for _ in range(2):
            assert infer(d, {"inputs": [matrix_input(ROWS[:2])]})[0] == 200
        for _ in range(4):
            assert infer(d, {"inputs": [dict(matrix_input(ROWS), datatype="FP16")]})[0] == 400
        assert d.request("POST", "/v1/models/toy:predict", {"instances": [[1]]})[0] == 400
        st, _h, stats = d.request("GET", "/v2/models/toy/stats")
        assert st == 200, stats
        st, _h, one = d.request("GET", "/v2/models/toy/versions/1/stats")
        assert st == 200 and one == stats, (one, stats)
        text = d.request("GET", "/metrics")[2]
    [s] = stats["model_stats"]
    assert s["name"] == "toy" and s["version"] == "1"
    inf = s["inference_stats"]
    eps = ("predict", "infer")
    assert inf["success"]["count"] == 5 == metric_total(text, "modeld_requests_total", model="toy",
                                                        endpoint=eps, code="200")
    assert inf["fail"]["count"] == 5 == metric_total(text, "modeld_requests_total", model="toy",
                                                     endpoint=eps, code="400")
    assert s["execution_count"] == 5 == metric_total(text, "modeld_batch_size_count", model="toy")
    assert s["inference_count"] == 3 * 3 + 2 * 2 == metric_total(text, "modeld_batch_size_sum", model="toy")
    dur = metric_total(text, "modeld_request_duration_seconds_sum", model="toy", endpoint=eps)
    assert (inf["success"]["ns"] + inf["fail"]["ns"]) / 1e9 == pytest.approx(dur, rel=1e-5, abs=1e-8)
    infer_s = metric_total(text, "modeld_inference_duration_seconds_sum", model="toy")
    assert inf["compute_infer"]["ns"] / 1e9 == pytest.approx(infer_s, rel=1e-5, abs=1e-8)
    assert inf["compute_infer"]["count"] == 5 and inf["success"]["ns"] > 0
    assert abs(s["last_inference"] / 1e3 - time.time()) < 60


def test_stats_unknown_model(toy):
    """Statistics extension: unknown model or version is an OIP error."""
    v2_error(toy.request("GET", "/v2/models/nope/stats"), 404, "nope")
    v2_error(toy.request("GET", "/v2/models/toy/versions/3/stats"), 404, "version 3")
