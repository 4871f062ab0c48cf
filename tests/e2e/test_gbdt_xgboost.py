"""XGBoost models through the real daemon: every XGBoost golden case
(../shared/fixtures/gbdt/xgb_* and tests/fixtures/gbdt/*, made by XGBoost 1.7.4) is copied
into a temporary repository, served by one modeld, and each :predict answer (value,
margin, leaf) is compared row by row with what XGBoost returned, within
1e-6 x max(1, |expected|). Also: rows keyed by the feature names stored in the model,
the metadata XGBoost models report, and a corrupt artifact that fails alone."""

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from conftest import REPO_ROOT, Daemon, assert_error

SHARED = REPO_ROOT.parent / "shared" / "fixtures" / "gbdt"
OWN = REPO_ROOT / "tests" / "fixtures" / "gbdt"
TOL = 1e-6


def read_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], [[float(v) if v != "" else math.nan for v in r] for r in rows[1:]]


def cases():
    """(model name, case dir, artifact file name) for every XGBoost case and format."""
    out = []
    for base, prefix in ((SHARED, "xgb_"), (OWN, "")):
        if not base.is_dir():
            continue
        for d in sorted(base.iterdir()):
            if not d.name.startswith(prefix) or not (d / "input.csv").exists():
                continue
            for art in ("model.json", "model.ubj"):
                if (d / art).exists():
                    out.append((f"{d.name}_{art.split('.')[1]}", d, art))
    return out


CASES = cases()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    if not any(c[1].parent == SHARED for c in CASES):
        pytest.fail(f"no XGBoost fixtures under {SHARED} (is ../shared beside the repo?)")
    repo = tmp_path_factory.mktemp("repo")
    for name, d, art in CASES:
        (repo / name / "1").mkdir(parents=True)
        shutil.copy(d / art, repo / name / "1" / art)
    # a corrupt artifact: fails to load, the others serve
    (repo / "broken" / "1").mkdir(parents=True)
    (repo / "broken" / "1" / "model.json").write_text('{"learner": {"objective": {"name": "x"}}')
    with Daemon(repo, wait_ready=False) as d:
        # /readyz stays 503 while "broken" has failed: wait until nothing is loading
        d.wait_settled(*(name for name, _, _ in CASES), "broken")
        yield d


def rows_json(rows):
    return [[None if math.isnan(v) else v for v in r] for r in rows]


def compare(name, what, got, want):
    assert len(got) == len(want), f"{name} {what}: {len(got)} rows, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        g = g if isinstance(g, list) else [g]
        assert len(g) == len(w), f"{name} {what} row {i}: {g} vs {w}"
        for k, (a, b) in enumerate(zip(g, w)):
            assert abs(a - b) <= TOL * max(1.0, abs(b)), \
                f"{name} {what} row {i} col {k}: got {a!r}, expected {b!r}"


def predict_ok(daemon, name, rows, **extra):
    st, _, body = daemon.predict(name, rows, **extra)
    assert st == 200, f"{name}: HTTP {st}: {body!r}"
    return body["predictions"]


@pytest.mark.parametrize("name,case_dir,artifact", CASES, ids=[c[0] for c in CASES])
def test_fixture_over_http(daemon, name, case_dir, artifact):
    _, rows = read_csv(case_dir / "input.csv")
    inst = rows_json(rows)
    _, want = read_csv(case_dir / "expected_margin.csv")
    compare(name, "margin", predict_ok(daemon, name, inst, output="margin"), want)
    if (case_dir / "expected_pred.csv").exists():
        _, want = read_csv(case_dir / "expected_pred.csv")
        compare(name, "value", predict_ok(daemon, name, inst), want)
    if (case_dir / "expected_leaf.csv").exists():
        _, want = read_csv(case_dir / "expected_leaf.csv")
        compare(name, "leaf", predict_ok(daemon, name, inst, output="leaf"), want)


def test_rows_by_feature_name(daemon):
    name = "logistic_base03_names_json"
    d = OWN / "logistic_base03_names"
    header, rows = read_csv(d / "input.csv")
    assert header[3] == "debt ratio" and header[5] == "ünï"
    # objects keyed by the names stored in the model; NaN = absent key
    inst = [{h: v for h, v in zip(header, r) if not math.isnan(v)} for r in rows]
    _, want = read_csv(d / "expected_pred.csv")
    compare(name, "value by name", predict_ok(daemon, name, inst), want)


def test_metadata(daemon):
    st, _, body = daemon.request("GET", "/v1/models/xgb_multi_json")
    assert st == 200, body
    assert body["kind"] == "gbdt" and body["task"] == "multiclass"
    assert body["classes"] == ["0", "1", "2"]
    assert [i["name"] for i in body["inputs"]] == [f"f{i}" for i in range(10)]
    st, _, body = daemon.request("GET", "/v1/models/logistic_base03_names_json")
    assert st == 200, body
    assert body["task"] == "binary"
    assert [i["name"] for i in body["inputs"]][:4] == ["age", "income", "score", "debt ratio"]


def test_softmax_value_is_class_id(daemon):
    d = OWN / "softmax"
    _, rows = read_csv(d / "input.csv")
    got = predict_ok(daemon, "softmax_ubj", rows_json(rows[:5]))
    assert all(isinstance(v, (int, float)) and v in (0, 1, 2, 3) for v in got), got


def test_broken_artifact_fails_alone(daemon):
    st, _, body = daemon.request("GET", "/v1/models/broken")
    assert st == 200, body
    assert body["state"] == "failed"
    assert "model.json" in (body.get("last_error") or ""), body
    assert_error(daemon.predict("broken", [[0]]), 503, "model_not_ready")
    # wrong width is the caller's fault
    assert_error(daemon.predict("xgb_binary_json", [[0, 1]]), 400, "invalid_argument")


def test_bundled_xgboost_demo(demo_repo):
    """conf/models/xgb_breast_cancer (tools/train_demo_xgb.py) serves what XGBoost itself
    predicts from the shipped file, by position and by the feature names in the model."""
    import numpy as np
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    art = demo_repo / "xgb_breast_cancer" / "1" / "model.json"
    bst = xgb.Booster(model_file=str(art))
    data = load_breast_cancer()
    want = bst.predict(xgb.DMatrix(data.data, feature_names=bst.feature_names)).tolist()
    margin = bst.predict(xgb.DMatrix(data.data, feature_names=bst.feature_names),
                         output_margin=True).tolist()
    with Daemon(demo_repo) as d:
        st, _, meta = d.request("GET", "/v1/models/xgb_breast_cancer")
        assert st == 200, meta
        assert meta["kind"] == "gbdt" and meta["task"] == "binary", meta
        names = [i["name"] for i in meta["inputs"]]
        assert names == bst.feature_names
        rows = data.data.tolist()
        compare("xgb_breast_cancer", "value", predict_ok(d, "xgb_breast_cancer", rows),
                [[w] for w in want])
        compare("xgb_breast_cancer", "margin",
                predict_ok(d, "xgb_breast_cancer", rows, output="margin"), [[m] for m in margin])
        named = [dict(zip(names, r)) for r in rows[:20]]
        compare("xgb_breast_cancer", "value by name", predict_ok(d, "xgb_breast_cancer", named),
                [[w] for w in want[:20]])
        # the LR demo takes the very same named rows
        st, _, body = d.predict("breast_cancer", named)
        assert st == 200, body
