"""LightGBM text models through the real daemon: every lgb_* case of the shared golden
fixtures (../shared/fixtures/gbdt, made by LightGBM v4.6.0; see the README there) and of our
own (tests/fixtures/lightgbm, made by the same LightGBM; rows with +-inf left out) is served
from a temporary repository (<name>/1/model.txt, config.json {"kind": "gbdt"}) by one
modeld, and :predict answers (value and margin) are compared row by row with LightGBM's
own outputs: within 1e-6 x max(1, |expected|), and we expect them bit for bit (the
daemon prints doubles that round-trip). Also: rows keyed by feature name, the metadata,
leaf indices, and a corrupt model.txt that must not load."""

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from conftest import REPO_ROOT, Daemon, assert_error

FIXTURES = (REPO_ROOT / ".." / "shared" / "fixtures" / "gbdt").resolve()
# Our own LightGBM-made fixtures (tools/gen_lgb_fixtures.cpp): linear, rf, poisson, ...
OWN = REPO_ROOT / "tests" / "fixtures" / "lightgbm"
CASE_DIRS = {p.name: p for p in sorted(FIXTURES.glob("lgb_*"))} if FIXTURES.is_dir() else {}
CASE_DIRS.update({"own_" + p.name: p for p in sorted(OWN.iterdir()) if (p / "model.txt").exists()})
CASES = sorted(CASE_DIRS)
TOL = 1e-6


def read_csv(path):
    """(header, rows) with empty fields as None (missing) and numbers as floats."""
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        rows = [[float(v) if v != "" else None for v in row] for row in r if row]
    return header, rows


def json_rows(rows, want):
    """Drops the rows JSON cannot carry (+-inf inputs: the own fixtures put rows on every
    split threshold, and LightGBM writes threshold=inf) with their expected outputs."""
    keep = [i for i, r in enumerate(rows) if all(v is None or math.isfinite(v) for v in r)]
    return [rows[i] for i in keep], [want[i] for i in keep]


def close(got, want):
    return abs(got - want) <= TOL * max(1.0, abs(want))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not any(n.startswith("lgb_") for n in CASES):
        pytest.fail(f"no lgb_* fixtures under {FIXTURES} (shared/ must sit beside the repository)")
    repo = tmp_path_factory.mktemp("lgb_repo")
    for name in CASES:
        vdir = repo / name / "1"
        vdir.mkdir(parents=True)
        shutil.copy(CASE_DIRS[name] / "model.txt", vdir / "model.txt")
        (repo / name / "config.json").write_text(json.dumps({"kind": "gbdt"}))
    bad = repo / "lgb_corrupt" / "1"
    bad.mkdir(parents=True)
    text = (FIXTURES / "lgb_binary" / "model.txt").read_text()
    (bad / "model.txt").write_text(text[: text.index("Tree=3") + 200])
    (repo / "lgb_corrupt" / "config.json").write_text(json.dumps({"kind": "gbdt"}))
    # lgb_corrupt never loads, so /readyz stays 503: wait until nothing is loading instead
    with Daemon(repo, wait_ready=False) as d:
        states = d.wait_settled(*CASES, "lgb_corrupt")
        assert all(states[name] == "ready" for name in CASES), states
        yield d


def predict(d, name, rows, output):
    st, _, body = d.predict(name, rows, output=output)
    assert st == 200, f"{name} {output}: HTTP {st}: {body!r}"
    return body["predictions"]


def check_rows(name, what, got, want_rows):
    assert len(got) == len(want_rows)
    exact = 0
    total = 0
    for i, (g, w) in enumerate(zip(got, want_rows)):
        g = g if isinstance(g, list) else [g]
        assert len(g) == len(w), f"{name} {what} row {i}: {len(g)} values, expected {len(w)}"
        for k, (gv, wv) in enumerate(zip(g, w)):
            total += 1
            exact += gv == wv
            assert close(gv, wv), f"{name} {what} row {i}[{k}]: {gv!r} != {wv!r}"
    return exact, total


@pytest.mark.parametrize("name", CASES)
def test_margin_matches_lightgbm(served, name):
    _, rows = read_csv(CASE_DIRS[name] / "input.csv")
    _, want = read_csv(CASE_DIRS[name] / "expected_margin.csv")
    rows, want = json_rows(rows, want)
    exact, total = check_rows(name, "margin", predict(served, name, rows, "margin"), want)
    assert exact == total, f"{name}: {total - exact} of {total} margins not bit-exact"


@pytest.mark.parametrize("name", CASES)
def test_value_matches_lightgbm(served, name):
    pred = CASE_DIRS[name] / "expected_pred.csv"
    _, rows = read_csv(CASE_DIRS[name] / "input.csv")
    if not pred.exists():
        # ranking: the prediction is the raw score
        _, want = read_csv(CASE_DIRS[name] / "expected_margin.csv")
    else:
        _, want = read_csv(pred)
    rows, want = json_rows(rows, want)
    exact, total = check_rows(name, "value", predict(served, name, rows, "value"), want)
    assert exact == total, f"{name}: {total - exact} of {total} predictions not bit-exact"


@pytest.mark.parametrize("name", CASES)
def test_named_rows_agree(served, name):
    header, rows = read_csv(CASE_DIRS[name] / "input.csv")
    rows, _ = json_rows(rows, rows)
    rows = rows[:40]
    named = [{h: v for h, v in zip(header, row) if v is not None} for row in rows]
    assert predict(served, name, named, "margin") == predict(served, name, rows, "margin")


def test_metadata(served):
    st, _, body = served.request("GET", "/v1/models/lgb_multi")
    assert st == 200, body
    assert body["kind"] == "gbdt"
    assert body["task"] == "multiclass"
    assert [i["name"] for i in body["inputs"]] == [f"f{i}" for i in range(10)]
    st, _, body = served.request("GET", "/v1/models/lgb_cat")
    assert st == 200, body
    assert body["task"] == "binary"
    assert [i["name"] for i in body["inputs"]][:4] == ["cat0", "f1", "f2", "cat3"]


def test_leaf_indices(served):
    """output=leaf: one LightGBM leaf index per tree, each within the tree's num_leaves."""
    text = (FIXTURES / "lgb_binary" / "model.txt").read_text()
    leaves = [int(l.split("=")[1]) for l in text.splitlines() if l.startswith("num_leaves=")]
    _, rows = read_csv(FIXTURES / "lgb_binary" / "input.csv")
    got = predict(served, "lgb_binary", rows[:5], "leaf")
    for row in got:
        assert len(row) == len(leaves)
        assert all(0 <= v < n and v == int(v) for v, n in zip(row, leaves))


def test_corrupt_model_is_reported(served):
    st, _, body = served.request("GET", "/v1/models/lgb_corrupt")
    assert st == 200, body
    assert body["state"] == "failed"
    err = json.dumps(body.get("last_error"))
    assert "tree 3" in err and "leaf_value" in err, err
    assert_error(served.predict("lgb_corrupt", [[0.0] * 20]), 503, "model_not_ready")


def test_demo_repository_model(demo_repo):
    """conf/models/lgb_binary (a copy of the lgb_binary fixture) serves LightGBM's answers."""
    art = demo_repo / "lgb_binary" / "1" / "model.txt"
    assert art.read_bytes() == (FIXTURES / "lgb_binary" / "model.txt").read_bytes()
    _, rows = read_csv(FIXTURES / "lgb_binary" / "input.csv")
    _, want = read_csv(FIXTURES / "lgb_binary" / "expected_pred.csv")
    with Daemon(demo_repo) as d:
        st, _, meta = d.request("GET", "/v1/models/lgb_binary")
        assert st == 200 and meta["kind"] == "gbdt" and meta["task"] == "binary", meta
        exact, total = check_rows("lgb_binary", "value", predict(d, "lgb_binary", rows[:50], "value"),
                                  want[:50])
        assert exact == total
