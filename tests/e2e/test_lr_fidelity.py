"""Fidelity of the "lr" kind through the real daemon: models are trained here with
scikit-learn (small synthetic data, fixed seeds), exported with
tools/export_sklearn_lr.py into a temporary repository, served by one modeld, and every
:predict answer is compared with scikit-learn's predict_proba / decision_function.
Also: the exporter's refusals (exit code 2 + a message) and the bundled demo model."""

import contextlib
import importlib.util
import io
import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (MinMaxScaler, OneHotEncoder, PolynomialFeatures,
                                   StandardScaler)
from sklearn.svm import LinearSVC

from conftest import REPO_ROOT, Daemon, assert_error

EXPORTER = REPO_ROOT / "tools" / "export_sklearn_lr.py"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
TOL = 1e-6

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)


def _load_exporter():
    spec = importlib.util.spec_from_file_location("export_sklearn_lr", EXPORTER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


EXPORTER_MOD = _load_exporter()


def export(model, out_dir, feature_names=None, tmp=None, subprocess_=False):
    """Pickles model and runs the exporter on the pickle, returning a CompletedProcess.
    By default its main() runs in this process (each interpreter start costs a second of
    scikit-learn imports); subprocess_=True runs the real command line."""
    tmp = Path(tmp or out_dir)
    tmp.mkdir(parents=True, exist_ok=True)
    pkl = tmp / "model.pkl"
    with open(pkl, "wb") as f:
        pickle.dump(model, f)
    args = [str(pkl), str(out_dir)]
    if feature_names is not None:
        args += ["--feature-names", ",".join(feature_names)]
    if subprocess_:
        return subprocess.run([PYTHON, str(EXPORTER)] + args, capture_output=True, text=True,
                              timeout=120)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = EXPORTER_MOD.main(args)
    return subprocess.CompletedProcess(args, rc, "", err.getvalue())


def as_matrix(rows):
    """Request rows (None = missing) -> the array scikit-learn gets (np.nan = missing)."""
    mixed = any(isinstance(v, str) for r in rows for v in r)
    out = np.empty((len(rows), len(rows[0])), dtype=object if mixed else np.float64)
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            out[i, j] = np.nan if v is None else v
    return out


# -- cases ----------------------------------------------------------------------------------

def _numeric(seed, n=160, d=4):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * [1.0, 10.0, 100.0, 0.1][:d] + [0.0, 5.0, -50.0, 1.0][:d]
    z = X[:, 0] + X[:, 1] / 10 - (X[:, 3] - 1) * 5 + rng.randn(n) * 0.5
    y2 = (z > 0.3).astype(int)
    y3 = np.digitize(z, [-0.7, 0.9])
    return rng, X, y2, y3


def _rows(X, k=25):
    return [[float(v) for v in r] for r in X[:k]]


def build_cases():
    cases = {}
    rng, X, y2, y3 = _numeric(0)
    rows = _rows(X)
    names4 = ["alpha", "beta", "gamma", "delta"]

    def add(name, model, rows_, names=None, expect_missing_error=None):
        cases[name] = {"model": model, "rows": rows_, "names": names,
                       "expect_missing_error": expect_missing_error}

    add("binary", LogisticRegression().fit(X, y2), rows, names4)
    add("binary_multinomial", LogisticRegression(multi_class="multinomial").fit(X, y2), rows, names4)
    add("multinomial", LogisticRegression(max_iter=1000).fit(X, y3), rows, names4)
    add("ovr", LogisticRegression(multi_class="ovr", max_iter=1000).fit(X, y3), rows, names4)
    add("string_classes", LogisticRegression(max_iter=1000).fit(X, np.array(["lo", "mid", "hi"])[y3]),
        rows, names4)
    add("svc_binary", make_pipeline(StandardScaler(), LinearSVC(random_state=0)).fit(X, y2), rows, names4)
    add("svc_multi", make_pipeline(StandardScaler(), LinearSVC(random_state=0)).fit(X, y3), rows, names4)
    add("standard", make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y3), rows, names4)
    add("standard_nomean", make_pipeline(StandardScaler(with_mean=False),
                                         LogisticRegression()).fit(X, y2), rows, names4)
    add("minmax", make_pipeline(MinMaxScaler(feature_range=(-1, 2)),
                                LogisticRegression()).fit(X, y3), rows, names4)
    # default names f0..f3
    add("unnamed", make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y2), rows, None)

    # SimpleImputer(mean) on numeric data with missing values
    Xn = X.copy()
    Xn[rng.rand(*Xn.shape) < 0.2] = np.nan
    rows_n = [[None if np.isnan(v) else float(v) for v in r] for r in Xn[:25]]
    rows_n[0] = [None, None, None, None]
    add("impute_mean", make_pipeline(SimpleImputer(), StandardScaler(),
                                     LogisticRegression()).fit(Xn, y3), rows_n, names4)

    # categorical strings: one-hot with unknowns, imputers (constant, most_frequent),
    # ColumnTransformer with passthrough remainder
    colors = np.array(["red", "green", "blue"], dtype=object)
    shapes = np.array(["circle", "square", "star", "hex"], dtype=object)
    n = len(X)
    Xc = np.empty((n, 5), dtype=object)
    Xc[:, 0] = X[:, 0]
    Xc[:, 1] = colors[rng.randint(0, 3, n)]
    Xc[:, 2] = X[:, 1]
    Xc[:, 3] = shapes[rng.randint(0, 4, n)]
    Xc[:, 4] = X[:, 3]
    for col in (0, 1, 3):
        Xc[rng.rand(n) < 0.15, col] = np.nan
    ycat = (np.where(Xc[:, 1] == "red", 1.0, 0.0) + X[:, 0] + rng.randn(n) * 0.3 > 0.5).astype(int)
    yc3 = np.digitize(np.where(Xc[:, 3] == "star", 1.5, 0.0) + X[:, 0] + rng.randn(n) * 0.3, [-0.5, 0.8])
    names5 = ["age", "color", "income", "shape", "ratio"]
    test_c = [[None if (not isinstance(v, str) and np.isnan(v)) else (v if isinstance(v, str) else float(v))
               for v in r] for r in Xc[:25]]
    test_c[0][1] = "purple"     # unknown category -> all zeros (handle_unknown='ignore')
    test_c[1][3] = "triangle"   # unknown after imputer
    test_c[2][1] = None         # imputed with 'missing' (not a training category)
    test_c[3][3] = None         # imputed with the most frequent shape
    test_c[4][0] = None         # imputed median
    ct = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), [0, 2]),
        ("color", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                OneHotEncoder(handle_unknown="ignore")), [1]),
        ("shape", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                OneHotEncoder(handle_unknown="ignore")), [3]),
    ], remainder="passthrough")
    add("column_transformer", make_pipeline(ct, LogisticRegression(max_iter=2000)).fit(Xc, yc3),
        test_c, names5)

    # OneHotEncoder alone in a ColumnTransformer, numeric scaled, one column dropped, and a
    # StandardScaler after the transformer (scaling the one-hot columns too)
    Xd = Xc.copy()
    Xd[:, 0] = X[:, 0]
    Xd[:, 1] = colors[rng.randint(0, 3, n)]
    test_d = [[v if isinstance(v, str) else float(v) for v in r] for r in Xd[:25]]
    for r in test_d:
        r[3] = None  # dropped column: modeld declares it numeric; send null
    test_d[0][1] = "purple"
    ct2 = ColumnTransformer([
        ("color", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [1]),
        ("num", StandardScaler(), [0, 2]),
        ("gone", "drop", [3]),
    ], remainder="passthrough")
    add("onehot_scaled", make_pipeline(ct2, StandardScaler(), LogisticRegression(max_iter=2000))
        .fit(Xd, ycat), test_d, names5)

    # handle_unknown='error' on a LinearSVC (multiclass decision function)
    ct3 = ColumnTransformer([("color", OneHotEncoder(handle_unknown="error"), [1])],
                            remainder=StandardScaler())
    add("svc_onehot_error", make_pipeline(ct3, LinearSVC(random_state=0)).fit(Xd[:, :3], yc3),
        [r[:3] for r in test_d[1:25]], ["age", "color", "income"])

    # A model fitted on a DataFrame carries feature_names_in_; pandas may be missing here,
    # so set the attribute as DataFrame fitting would.
    named = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y2)
    named.steps[0][1].feature_names_in_ = np.array(["w", "x", "y", "z"], dtype=object)
    add("fitted_names", named, rows, None)
    cases["fitted_names"]["served_names"] = ["w", "x", "y", "z"]
    return cases


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    cases = build_cases()
    repo = tmp_path_factory.mktemp("lr_repo")
    work = tmp_path_factory.mktemp("lr_pkl")
    for name, c in cases.items():
        cp = export(c["model"], repo / name / "1", c["names"], tmp=work / name)
        assert cp.returncode == 0, f"export of {name} failed: {cp.stderr}"
        (repo / name / "config.json").write_text(json.dumps({"kind": "lr"}))
        with open(repo / name / "1" / "lr.json") as f:
            c["doc"] = json.load(f)
        c["served_names"] = c.get("served_names") or c["names"] or [
            f"f{i}" for i in range(len(c["rows"][0]))]
    with Daemon(repo) as d:
        yield d, cases


def expected(case, output):
    model = case["model"]
    X = as_matrix(case["rows"])
    final = model[-1] if isinstance(model, Pipeline) else model
    if output == "margin" or isinstance(final, LinearSVC):
        return np.asarray(model.decision_function(X), dtype=np.float64)
    proba = model.predict_proba(X)
    return proba[:, 1] if proba.shape[1] == 2 else proba


def predict(d, name, instances, output=None):
    extra = {"output": output} if output else {}
    st, _, body = d.predict(name, instances, **extra)
    assert st == 200, f"{name}: HTTP {st}: {body}"
    return np.asarray(body["predictions"], dtype=np.float64)


def named_instances(case):
    """Object instances; None values become absent keys (the other spelling of missing)."""
    out = []
    for r in case["rows"]:
        out.append({k: v for k, v in zip(case["served_names"], r) if v is not None})
    return out


CASES = ["binary", "binary_multinomial", "multinomial", "ovr", "string_classes", "svc_binary",
         "svc_multi", "standard", "standard_nomean", "minmax", "unnamed", "impute_mean",
         "column_transformer", "onehot_scaled", "svc_onehot_error", "fitted_names"]


@pytest.mark.parametrize("name", CASES)
def test_value_matches_sklearn(served, name):
    d, cases = served
    case = cases[name]
    want = expected(case, "value")
    got = predict(d, name, case["rows"])
    assert got.shape == want.shape, (got.shape, want.shape)
    assert np.max(np.abs(got - want)) <= TOL, (name, got, want)


@pytest.mark.parametrize("name", CASES)
def test_margin_matches_decision_function(served, name):
    d, cases = served
    case = cases[name]
    want = expected(case, "margin")
    got = predict(d, name, case["rows"], output="margin")
    assert got.shape == want.shape, (got.shape, want.shape)
    assert np.max(np.abs(got - want)) <= TOL, (name, got, want)


@pytest.mark.parametrize("name", CASES)
def test_named_and_positional_agree(served, name):
    d, cases = served
    case = cases[name]
    for output in (None, "margin"):
        pos = predict(d, name, case["rows"], output)
        obj = predict(d, name, named_instances(case), output)
        assert np.array_equal(pos, obj), (name, output, pos, obj)


def test_columnar_inputs_agree(served):
    d, cases = served
    case = cases["column_transformer"]
    cols = {n: [r[i] for r in case["rows"]] for i, n in enumerate(case["served_names"])}
    st, _, body = d.request("POST", "/v1/models/column_transformer:predict", {"inputs": cols})
    assert st == 200, body
    got = np.asarray(body["outputs"], dtype=np.float64)
    assert np.max(np.abs(got - expected(case, "value"))) <= TOL


def test_metadata_reflects_artifact(served):
    d, cases = served
    st, _, body = d.request("GET", "/v1/models/column_transformer")
    assert st == 200, body
    assert body["kind"] == "lr" and body["task"] == "multiclass"
    inputs = {i["name"]: i for i in body["inputs"]}
    assert list(inputs) == ["age", "color", "income", "shape", "ratio"]
    assert inputs["age"]["type"] == "number"
    assert inputs["color"]["type"] == "category"
    ct = cases["column_transformer"]["model"][0]
    for name in ("color", "shape"):
        want = [str(c) for c in ct.named_transformers_[name][-1].categories_[0]]
        assert inputs[name]["categories"] == want
    st, _, body = d.request("GET", "/v1/models/unnamed")
    assert [i["name"] for i in body["inputs"]] == ["f0", "f1", "f2", "f3"]
    st, _, body = d.request("GET", "/v1/models/fitted_names")
    assert [i["name"] for i in body["inputs"]] == ["w", "x", "y", "z"]
    st, _, body = d.request("GET", "/v1/models/svc_multi")
    assert body["task"] == "decision"


def test_missing_value_without_imputer_is_400(served):
    d, _ = served
    resp = d.predict("standard", [[1.0, None, 3.0, 4.0]])
    assert_error(resp, 400, "invalid_argument", mentions=["beta", "missing"])
    resp = d.predict("binary", [{"alpha": 1.0, "beta": 2.0, "gamma": 3.0}])
    assert_error(resp, 400, "invalid_argument", mentions=["delta"])


def test_unknown_category_with_handle_unknown_error_is_400(served):
    d, _ = served
    resp = d.predict("svc_onehot_error", [[1.0, "purple", 2.0]])
    assert_error(resp, 400, "invalid_argument", mentions=["color", "unknown category"])
    # a null category has no imputer in that model either
    resp = d.predict("svc_onehot_error", [[1.0, None, 2.0]])
    assert_error(resp, 400, "invalid_argument", mentions=["color"])


# -- the bundled demo -------------------------------------------------------------------------

def test_demo_model_matches_sklearn():
    """conf/models/breast_cancer is what tools/train_demo.py makes: refit the same pipeline
    here and compare every row of the data set."""
    data = load_breast_cancer()
    y = data.target_names[data.target]
    model = Pipeline([("scale", StandardScaler()),
                      ("lr", LogisticRegression(max_iter=1000))]).fit(data.data, y)
    repo = REPO_ROOT / "conf" / "models"
    with Daemon(repo) as d:
        rows = [[float(v) for v in r] for r in data.data]
        got = predict(d, "breast_cancer", rows)
        want = model.predict_proba(data.data)[:, 1]
        assert np.max(np.abs(got - want)) <= TOL
        st, _, meta = d.request("GET", "/v1/models/breast_cancer")
        assert st == 200
        assert meta["classes"] == ["benign", "malignant"]
        assert meta["inputs"][7]["name"] == "mean_concave_points"


# -- exporter refusals ------------------------------------------------------------------------

def _refusal_models():
    rng = np.random.RandomState(3)
    X = rng.randn(60, 3)
    y = (X[:, 0] > 0).astype(int)
    Xs = np.empty((60, 2), dtype=object)
    Xs[:, 0] = X[:, 0]
    Xs[:, 1] = np.array(["a", "b", "c"], dtype=object)[rng.randint(0, 3, 60)]
    Xi = np.array([[1, 0], [2, 1], [3, 2]] * 20)
    Xnan = X.copy()
    Xnan[:, 2] = np.nan
    Xmiss = np.where(rng.rand(60, 3) < 0.2, np.nan, X)
    ohe = lambda **kw: make_pipeline(ColumnTransformer([("c", OneHotEncoder(**kw), [1])],
                                                       remainder="passthrough"),
                                     LogisticRegression())
    return [
        ("ohe_drop", ohe(drop="first").fit(Xs, y), "drop="),
        ("ohe_infrequent", ohe(handle_unknown="infrequent_if_exist").fit(Xs, y),
         "handle_unknown='infrequent_if_exist'"),
        ("ohe_min_frequency", ohe(handle_unknown="ignore", min_frequency=5).fit(Xs, y),
         "infrequent"),
        ("ohe_numeric_categories",
         make_pipeline(OneHotEncoder(), LogisticRegression()).fit(Xi, y), "not all strings"),
        ("minmax_clip", make_pipeline(MinMaxScaler(clip=True), LogisticRegression()).fit(X, y),
         "clip=True"),
        ("imputer_indicator",
         make_pipeline(SimpleImputer(add_indicator=True), LogisticRegression()).fit(Xmiss, y),
         "add_indicator"),
        ("imputer_missing_values",
         make_pipeline(SimpleImputer(missing_values=-1.0), LogisticRegression()).fit(X, y),
         "missing_values"),
        ("imputer_dropped_column",
         make_pipeline(SimpleImputer(), LogisticRegression()).fit(Xnan, y), "statistics_"),
        ("unsupported_step",
         make_pipeline(PolynomialFeatures(), LogisticRegression()).fit(X, y),
         "PolynomialFeatures is not supported"),
        ("unsupported_estimator", SGDClassifier(random_state=0).fit(X, y),
         "SGDClassifier is not supported"),
        ("transformer_weights",
         make_pipeline(ColumnTransformer([("s", StandardScaler(), [0])], remainder="passthrough",
                                         transformer_weights={"s": 2.0}),
                       LogisticRegression()).fit(X, y), "transformer_weights"),
        ("bare_column_transformer",
         ColumnTransformer([("s", StandardScaler(), [0])]).fit(X), "ColumnTransformer is not supported"),
    ]


@pytest.mark.parametrize("case", _refusal_models(), ids=lambda c: c[0])
def test_exporter_refuses(tmp_path, case):
    name, model, needle = case
    cp = export(model, tmp_path / "out", tmp=tmp_path)
    assert cp.returncode == 2, (name, cp.returncode, cp.stdout, cp.stderr)
    assert "refused" in cp.stderr and needle in cp.stderr, cp.stderr
    assert not (tmp_path / "out" / "lr.json").exists()


def test_exporter_refuses_bad_input(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    cp = subprocess.run([PYTHON, str(EXPORTER), str(bad), str(tmp_path / "out")],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 2 and "cannot read" in cp.stderr, cp.stderr
    cp = subprocess.run([PYTHON, str(EXPORTER), str(tmp_path / "absent.pkl"), str(tmp_path / "o")],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 2 and "cannot read" in cp.stderr, cp.stderr

    X = np.random.RandomState(0).randn(30, 3)
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    cp = export(model, tmp_path / "out", feature_names=["a", "b"], tmp=tmp_path, subprocess_=True)
    assert cp.returncode == 2 and "--feature-names gives 2 names" in cp.stderr, cp.stderr
    cp = export(model, tmp_path / "out", feature_names=["a", "a", "b"], tmp=tmp_path)
    assert cp.returncode == 2 and "not unique" in cp.stderr, cp.stderr
    cp = export(model, tmp_path / "out", feature_names=["a", "b", "c"], tmp=tmp_path, subprocess_=True)
    assert cp.returncode == 0, cp.stderr
    doc = json.loads((tmp_path / "out" / "lr.json").read_text())
    assert [f["name"] for f in doc["features"]] == ["a", "b", "c"]
    # floats are written so they read back bit for bit
    assert doc["coef"][0] == [float(v) for v in model.coef_[0]]


def test_dataframe_columns_by_name(tmp_path):
    """A ColumnTransformer fitted on a DataFrame with columns selected by name."""
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(5)
    df = pd.DataFrame({"num": rng.randn(80), "cat": rng.choice(["u", "v"], 80),
                       "other": rng.randn(80)})
    y = (df["num"] + (df["cat"] == "u") > 0.5).astype(int)
    model = make_pipeline(ColumnTransformer([("c", OneHotEncoder(), ["cat"]),
                                             ("n", StandardScaler(), ["num"])],
                                            remainder="passthrough"),
                          LogisticRegression()).fit(df, y)
    repo = tmp_path / "repo"
    cp = export(model, repo / "df" / "1", tmp=tmp_path)
    assert cp.returncode == 0, cp.stderr
    rows = df.head(10)
    with Daemon(repo) as d:
        inst = [{"num": float(r.num), "cat": r.cat, "other": float(r.other)} for r in rows.itertuples()]
        got = predict(d, "df", inst)
        assert np.max(np.abs(got - model.predict_proba(rows)[:, 1])) <= TOL
