""":score-auc and :rank through the real daemon (issue 5).

Every expected metric is computed here by scikit-learn (or, for MAP@k and GAUC, which
sklearn has no function for, by their documented formulas over sklearn's roc_auc_score)
from the same rows; :rank is checked against a stable sort of :predict's own outputs.
One daemon serves the whole module (the demo models, a multiclass LR and a copy of the
LR demo with negative_sampling_rate)."""

import json
import math
import shutil
import socket
import time

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss,
                             f1_score, log_loss, ndcg_score, precision_score, recall_score,
                             roc_auc_score)

from conftest import REPO_ROOT, Daemon, assert_error, write_lr_model

TOL = 1e-9
BODY_LIMIT = 4 << 20
NS_RATE = 0.1


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    for name in ("breast_cancer", "xgb_breast_cancer", "lgb_binary"):
        shutil.copytree(REPO_ROOT / "conf" / "models" / name, repo / name)
    ns = repo / "bc_sampled"
    shutil.copytree(REPO_ROOT / "conf" / "models" / "breast_cancer", ns)
    (ns / "config.json").write_text(json.dumps({"kind": "lr", "negative_sampling_rate": NS_RATE}))
    mc = repo / "mc" / "1"
    mc.mkdir(parents=True)
    (repo / "mc" / "config.json").write_text('{"kind": "lr"}')
    (mc / "lr.json").write_text(json.dumps({
        "format": "modeld-lr", "format_version": 1, "estimator": "LogisticRegression",
        "task": "multiclass", "multi_class": "multinomial", "classes": ["a", "b", "c"],
        "features": [{"name": f"f{i}"} for i in range(4)],
        "coef": [[0.5, -1.25, 3.0, 0.1], [0.1, 0.2, 0.3, -0.4], [-0.6, 1.05, -3.3, 0.2]],
        "intercept": [0.25, -0.5, 0.25]}))
    with Daemon(repo, config={"max_eval_body_bytes": BODY_LIMIT, "workers": 2, "max_eval_rows": 60000,
                              "max_rank_candidates": 400, "max_rank_queries": 3}) as daemon:
        yield daemon


def near(got, want, what):
    assert got is not None, f"{what}: modeld says undefined, sklearn says {want}"
    assert abs(got - want) <= TOL, f"{what}: modeld {got!r} sklearn {want!r}"


def post(d, path, body, ctype="application/json"):
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    return d.request("POST", path, body, headers={"Content-Type": ctype})


# -- bodies in the three formats ------------------------------------------------------------

def as_json(scores, labels, weights=None, groups=None, extra=None, key="scores"):
    body = {key: [list(map(float, s)) if np.ndim(s) else float(s) for s in scores] if key == "scores" else scores,
            "labels": [float(y) for y in labels]}
    if weights is not None:
        body["weights"] = [float(w) for w in weights]
    if groups is not None:
        body["groups"] = [int(g) for g in groups]
    body.update(extra or {})
    return json.dumps(body)


def as_ndjson(scores, labels, weights=None, groups=None, key="score"):
    out = []
    for i in range(len(labels)):
        row = {key: scores[i] if key == "features" else (list(map(float, scores[i])) if np.ndim(scores[i]) else float(scores[i])),
               "label": float(labels[i])}
        if weights is not None:
            row["weight"] = float(weights[i])
        if groups is not None:
            row["group"] = f"q{int(groups[i])}"
        out.append(json.dumps(row))
    return "\n".join(out) + "\n"


def as_csv(scores, labels, weights=None, groups=None):
    width = np.ndim(scores[0])
    cols = ["score"] if width == 0 else [f"score_{j}" for j in range(len(scores[0]))]
    head = cols + ["label"] + (["weight"] if weights is not None else []) + (["group"] if groups is not None else [])
    lines = [",".join(head)]
    for i in range(len(labels)):
        s = [repr(float(scores[i]))] if width == 0 else [repr(float(v)) for v in scores[i]]
        row = s + [repr(float(labels[i]))]
        if weights is not None:
            row.append(repr(float(weights[i])))
        if groups is not None:
            row.append(f'"q{int(groups[i])}"')
        lines.append(",".join(row))
    return "\n".join(lines) + "\n"


def all_forms(path, d, scores, labels, weights=None, groups=None, query=""):
    """The same rows as JSON, NDJSON and CSV; returns the three answers."""
    out = []
    for body, ctype in ((as_json(scores, labels, weights, groups), "application/json"),
                        (as_ndjson(scores, labels, weights, groups), "application/x-ndjson"),
                        (as_csv(scores, labels, weights, groups), "text/csv")):
        st, _, ans = post(d, path + query, body, ctype)
        assert st == 200, (ctype, ans)
        out.append(ans)
    return out


# -- expected values -----------------------------------------------------------------------

def gauc(s, y, w, g):
    num = den = 0.0
    for q in np.unique(g):
        m = g == q
        if len(np.unique(y[m])) < 2:
            continue
        size = w[m].sum() if w is not None else m.sum()
        num += size * roc_auc_score(y[m], s[m], sample_weight=None if w is None else w[m])
        den += size
    return num / den


def ndcg_mean(s, y, g, k):
    vals = []
    for q in np.unique(g):
        m = g == q
        vals.append(ndcg_score([y[m]], [s[m]], k=k or None) if m.sum() > 1 else 1.0)
    return float(np.mean(vals))


def map_at_k(s, y, g, k):
    aps = []
    for q in np.unique(g):
        m = np.flatnonzero(g == q)
        order = sorted(range(len(m)), key=lambda i: -s[m[i]])  # stable: ties in input order
        rel = [y[m[i]] > 0 for i in order]
        R = sum(rel)
        if R == 0:
            continue
        n = len(rel) if not k else min(k, len(rel))
        hits = ap = 0.0
        for i in range(n):
            if rel[i]:
                hits += 1
                ap += hits / (i + 1)
        aps.append(ap / (min(k, R) if k else R))
    return float(np.mean(aps))


def check_binary(ans, s, y, w, g, t, k=0):
    m = ans["metrics"]
    assert ans["rows"] == len(y) and ans["positives"] == int(y.sum())
    near(m["roc_auc"], roc_auc_score(y, s), "roc_auc")
    if w is not None:
        near(m["roc_auc_weighted"], roc_auc_score(y, s, sample_weight=w), "roc_auc_weighted")
    else:
        assert m["roc_auc_weighted"] is None and ans["reasons"]["roc_auc_weighted"]
    near(m["pr_auc"], average_precision_score(y, s, sample_weight=w), "pr_auc")
    near(m["logloss"], log_loss(y, s, sample_weight=w, labels=[0, 1]), "logloss")
    near(m["brier"], brier_score_loss(y, s, sample_weight=w), "brier")
    pred = (s >= t).astype(int)
    near(m["accuracy"], accuracy_score(y, pred, sample_weight=w), "accuracy")
    near(m["precision"], precision_score(y, pred, sample_weight=w), "precision")
    near(m["recall"], recall_score(y, pred, sample_weight=w), "recall")
    near(m["f1"], f1_score(y, pred, sample_weight=w), "f1")
    edges = np.linspace(0, 1, 11)
    assert [b["count"] for b in ans["calibration"]] == list(np.bincount(np.searchsorted(edges[1:-1], s), minlength=10))
    if g is not None:
        near(m["gauc"], gauc(s, y, w, g), "gauc")
        near(m["ndcg"], ndcg_mean(s, y, g, k), "ndcg")
        near(m["map"], map_at_k(s, y, g, k), "map")
    else:
        assert m["gauc"] is None and "group" in ans["reasons"]["gauc"]


def binary_rows(seed, n=3000, tied=False, weighted=False, grouped=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    s = 1 / (1 + np.exp(-(rng.normal(0, 1.5, n) + 1.2 * y - 0.8)))
    if tied:
        s = np.round(s, 2)
    w = rng.uniform(0, 3, n) if weighted else None
    g = rng.integers(0, 60, n) if grouped else None
    return s, y, w, g


@pytest.mark.parametrize("case", ["random", "tied", "weighted", "grouped", "tied_weighted_grouped"])
def test_precomputed_binary_matches_sklearn_in_every_format(d, case):
    s, y, w, g = binary_rows(7, tied="tied" in case, weighted="weighted" in case, grouped="grouped" in case)
    answers = all_forms("/v1/score-auc", d, s, y, w, g, query="?threshold=0.35&k=5")
    for ans in answers:
        check_binary(ans, s, y, w, g, 0.35, k=5)
    assert answers[0]["metrics"] == answers[1]["metrics"] == answers[2]["metrics"]


def test_ranking_task_graded_labels(d):
    rng = np.random.default_rng(3)
    n = 2000
    g = np.repeat(np.arange(200), 10)
    y = rng.integers(0, 4, n).astype(float)
    s = np.round(rng.random(n) + 0.2 * y, 1)  # heavy ties
    for k in (0, 3):
        for ans in all_forms("/v1/score-auc", d, s, y, None, g, query=f"?task=ranking&k={k}"):
            assert ans["task"] == "ranking"
            near(ans["metrics"]["ndcg"], ndcg_mean(s, y, g, k), f"ndcg@{k}")
            near(ans["metrics"]["map"], map_at_k(s, y, g, k), f"map@{k}")


def test_multiclass_precomputed(d):
    rng = np.random.default_rng(5)
    z = rng.normal(size=(1500, 3))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = rng.integers(0, 3, 1500)
    w = rng.uniform(0, 2, 1500)
    for weights in (None, w):
        for ans in all_forms("/v1/score-auc", d, p, y, weights):
            m = ans["metrics"]
            assert ans["task"] == "multiclass" and ans["n_classes"] == 3
            near(m["roc_auc_ovr_macro"], roc_auc_score(y, p, multi_class="ovr", average="macro", sample_weight=weights), "macro")
            near(m["roc_auc_ovr_weighted"], roc_auc_score(y, p, multi_class="ovr", average="weighted", sample_weight=weights), "weighted")
            near(m["logloss"], log_loss(y, p, sample_weight=weights), "logloss")


# -- with a model --------------------------------------------------------------------------

def bc_data():
    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    return data.data, data.target, names


@pytest.mark.parametrize("model", ["breast_cancer", "xgb_breast_cancer"])
def test_model_scores_match_sklearn_on_predict(d, model):
    X, target, names = bc_data()
    meta = d.request("GET", f"/v1/models/{model}")[2]
    names = [f["name"] for f in meta["inputs"]]
    y = (target == 0).astype(int)  # malignant is the positive class the model serves
    st, _, pred = d.predict(model, X.tolist())
    assert st == 200
    p = np.array(pred["predictions"])
    g = np.arange(len(y)) % 7
    # The LR demo knows its class labels, so labels may be given as them.
    labels = ["malignant" if v else "benign" for v in y] if meta.get("classes") == ["benign", "malignant"] else y.tolist()
    bodies = [
        (json.dumps({"instances": X.tolist(), "labels": labels,
                     "groups": g.tolist()}), "application/json"),
        ("".join(json.dumps({"features": dict(zip(names, r)), "label": int(v), "group": int(q)}) + "\n"
                 for r, v, q in zip(X.tolist(), y, g)), "application/x-ndjson"),
        (",".join(names + ["label", "group"]) + "\n" +
         "".join(",".join(map(repr, r)) + f",{v},{q}\n" for r, v, q in zip(X.tolist(), y, g)), "text/csv"),
    ]
    for body, ctype in bodies:
        st, _, ans = post(d, f"/v1/models/{model}/versions/1:score-auc", body, ctype)
        assert st == 200, ans
        assert ans["model"] == {"name": model, "version": 1}
        check_binary(ans, p, y, None, g, 0.5)


def test_multiclass_model(d):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(400, 4))
    y = rng.integers(0, 3, 400)
    P = np.array(d.predict("mc", X.tolist())[2]["predictions"])
    st, _, ans = post(d, "/v1/models/mc:score-auc",
                      {"instances": X.tolist(), "labels": [["a", "b", "c"][v] for v in y]})
    assert st == 200, ans
    near(ans["metrics"]["roc_auc_ovr_macro"], roc_auc_score(y, P, multi_class="ovr"), "macro")
    near(ans["metrics"]["logloss"], log_loss(y, P), "logloss")
    assert [c["class"] for c in ans["classes"]] == ["a", "b", "c"]


def test_large_streamed_body_in_steps(d):
    """About 3 MiB of NDJSON (several parsing steps on the worker), sent chunked too."""
    s, y, w, g = binary_rows(11, n=40000, weighted=True, grouped=True)
    body = as_ndjson(s, y, w, g)
    assert 2 << 20 < len(body) < BODY_LIMIT
    st, _, a = post(d, "/v1/score-auc", body, "application/x-ndjson")
    assert st == 200, a
    check_binary(a, s, y, w, g, 0.5)
    conn = d.connection()
    try:
        pieces = (body[i:i + 70001].encode() for i in range(0, len(body), 70001))
        conn.request("POST", "/v1/score-auc", body=pieces, headers={"Content-Type": "application/x-ndjson"},
                     encode_chunked=True)
        r = conn.getresponse()
        b = json.loads(r.read())
    finally:
        conn.close()
    assert r.status == 200 and b["metrics"] == a["metrics"]


# -- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("body,ctype,status,code,mentions", [
    ({"scores": [0.1, 0.2], "labels": [0, 2]}, "application/json", 400, "invalid_argument", ["label"]),
    ({"scores": [0.1, 0.2], "labels": [0]}, "application/json", 400, "invalid_argument", ["length mismatch", "1 labels", "2 scores"]),
    ({"scores": [0.1, 0.2], "labels": [0, 1], "weights": [1]}, "application/json", 400, "invalid_argument", ["weights"]),
    ({"scores": [], "labels": []}, "application/json", 400, "invalid_argument", ["empty"]),
    ("", "application/x-ndjson", 400, "invalid_argument", ["empty"]),
    ({"scores": [0.1, 0.2], "labels": [0, 1], "weights": [1, -2]}, "application/json", 400, "invalid_argument", ["weight"]),
    ("score,label\n0.1,0\nnan,1\n", "text/csv", 400, "invalid_argument", ["line 3", "score"]),
    ("score,label\n0.1,0\n0.2,1,7\n0.3\n", "text/csv", 400, "invalid_argument", ["line 3", "fields"]),
    ('{"score":0.1,"label":0}\n{"score":0.2,"label":1\n', "application/x-ndjson", 400, "invalid_json", ["line 2"]),
    ('{"score":0.1,"label":0}\n{"score":0.2}\n', "application/x-ndjson", 400, "invalid_argument", ["line 2", "label"]),
    ('{"scores": [0.1, 0.2], "labels": [0, 1]', "application/json", 400, "invalid_json", ["end of body"]),
    ({"scores": [0.1], "labels": [1], "bogus": 1}, "application/json", 400, "invalid_argument", ["bogus"]),
    ("x", "text/plain", 415, "unsupported_media_type", ["text/plain"]),
])
def test_bad_input(d, body, ctype, status, code, mentions):
    assert_error(post(d, "/v1/score-auc", body, ctype), status, code, mentions)


def test_all_one_class_gives_null_with_reason_and_the_rest(d):
    st, _, ans = post(d, "/v1/score-auc", {"scores": [0.1, 0.7, 0.4], "labels": [1, 1, 1]})
    assert st == 200
    assert ans["metrics"]["roc_auc"] is None and "class" in ans["reasons"]["roc_auc"]
    near(ans["metrics"]["brier"], brier_score_loss([1, 1, 1], [0.1, 0.7, 0.4]), "brier")


def test_model_route_errors(d):
    assert_error(post(d, "/v1/models/nope:score-auc", {"scores": [0.5], "labels": [1]}), 404, "model_not_found", ["nope"])
    assert_error(post(d, "/v1/models/breast_cancer:score-auc", {"instances": [[1, 2]], "labels": [1]}),
                 400, "invalid_argument", ["instances[0]", "30"])
    assert_error(post(d, "/v1/models/breast_cancer:score-auc", "mean_radius,label,bogus\n1,0,2\n", "text/csv"),
                 400, "invalid_argument", ["bogus"])
    assert_error(post(d, "/v1/score-auc", {"instances": [[1]], "labels": [1]}), 400, "invalid_argument", ["no model"])


def test_body_over_limit_is_413_and_daemon_serves_on(d):
    body = as_ndjson(*binary_rows(1, n=100000)[:2])
    assert len(body) > BODY_LIMIT
    # Content-Length over the limit: refused before the upload.
    head = (f"POST /v1/score-auc HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    raw, _ = d.raw_exchange(head, [body[i:i + 65536].encode() for i in range(0, len(body), 65536)])
    assert raw.startswith(b"HTTP/1.1 413") and b"body_too_large" in raw
    # Chunked (no length): refused once the streamed bytes pass the limit.
    head = (b"POST /v1/score-auc HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunks = [b"%x\r\n%s\r\n" % (len(c), c) for c in
              (body[i:i + 65536].encode() for i in range(0, len(body), 65536))] + [b"0\r\n\r\n"]
    raw, _ = d.raw_exchange(head, chunks, stop_sending_on_reply=False)
    assert raw.startswith(b"HTTP/1.1 413") and b"body_too_large" in raw, raw[:300]
    # A client that leaves mid-body: the daemon drops the request and keeps serving.
    s = socket.create_connection((d.host, d.port))
    s.sendall(b"POST /v1/score-auc HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
              b"Content-Length: 3000000\r\n\r\n" + body[:2500000].encode())
    # (A pause before closing: MHD 0.9.75 can miss a FIN that arrives with a burst of body
    # bytes, on every route; the connection then waits for its idle timeout.)
    time.sleep(0.3)
    s.close()
    time.sleep(0.2)
    assert d.request("GET", "/healthz")[0] == 200
    assert post(d, "/v1/score-auc", {"scores": [0.2, 0.8], "labels": [0, 1]})[2]["metrics"]["roc_auc"] == 1.0


# -- rank ----------------------------------------------------------------------------------

def expected_order(scores, top_k=None):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: ties in input order
    return order[:top_k] if top_k else order


@pytest.mark.parametrize("model", ["breast_cancer", "xgb_breast_cancer"])
def test_rank_is_the_sorted_predict(d, model):
    X, _, _ = bc_data()
    names = [f["name"] for f in d.request("GET", f"/v1/models/{model}")[2]["inputs"]]
    rng = np.random.default_rng(2)
    shared = {n: float(X[0, j]) for j, n in enumerate(names[:10])}  # query features
    cands, merged = [], []
    for i in rng.choice(len(X), 300, replace=False):
        c = {n: float(X[i, j]) for j, n in enumerate(names) if j >= 5}  # overlaps the query on 5..9
        cands.append(dict(c, id=f"c{i}"))
        merged.append(dict(shared, **c))
    cands += [dict(cands[3], id="dup_a"), dict(cands[3], id="dup_b")]  # exact ties
    merged += [merged[3], merged[3]]
    p = d.predict(model, merged)[2]["predictions"]
    st, _, ans = post(d, f"/v1/models/{model}:rank", {"query": shared, "candidates": cands})
    assert st == 200, ans
    assert ans["model"]["name"] == model and ans["model"]["version"] == 1
    want = expected_order(p)
    assert [r["id"] for r in ans["results"]] == [cands[i]["id"] for i in want]
    assert [r["score"] for r in ans["results"]] == [p[i] for i in want]
    assert [r["rank"] for r in ans["results"]] == list(range(1, len(p) + 1))
    ids = [r["id"] for r in ans["results"]]
    assert ids.index("c%d" % int(cands[3]["id"][1:])) < ids.index("dup_a") < ids.index("dup_b")
    # top_k, all scores, many queries at once
    st, _, ans = post(d, f"/v1/models/{model}:rank",
                      {"query": shared, "candidates": cands, "top_k": 7, "return_all_scores": True})
    assert [r["id"] for r in ans["results"]] == [cands[i]["id"] for i in expected_order(p, 7)]
    assert ans["all_scores"] == p
    q2 = [dict(merged[i], id=f"m{i}") for i in range(40)]  # no query: full rows
    p2 = d.predict(model, merged[:40])[2]["predictions"]
    st, _, multi = post(d, f"/v1/models/{model}:rank", {"top_k": 5, "queries": [
        {"query": shared, "candidates": cands}, {"candidates": q2, "top_k": 3}]})
    assert st == 200, multi
    assert [r["id"] for r in multi["queries"][0]["results"]] == [cands[i]["id"] for i in expected_order(p, 5)]
    assert [r["id"] for r in multi["queries"][1]["results"]] == [q2[i]["id"] for i in expected_order(p2, 3)]


def test_rank_lightgbm_and_errors(d):
    cands = [{"id": i, "f0": float(i) / 10, "f3": 1.0} for i in range(50)]
    p = d.predict("lgb_binary", [{"f0": c["f0"], "f1": 2.0, "f3": 1.0} for c in cands])[2]["predictions"]
    ans = post(d, "/v1/models/lgb_binary:rank", {"query": {"f1": 2.0, "f3": 5.0}, "candidates": cands})[2]
    assert [r["id"] for r in ans["results"]] == expected_order(p)
    assert_error(post(d, "/v1/models/nope:rank", {"candidates": [{}]}), 404, "model_not_found")
    assert_error(post(d, "/v1/models/lgb_binary:rank", {"candidates": []}), 400, "invalid_argument", ["candidates"])
    assert_error(post(d, "/v1/models/lgb_binary:rank", {"candidates": [{"zz": 1}]}), 400, "invalid_argument", ["zz"])
    assert_error(post(d, "/v1/models/lgb_binary:rank", {"candidates": [{}], "top_k": 0}), 400, "invalid_argument", ["top_k"])
    assert_error(post(d, "/v1/models/mc:rank", {"candidates": [{}]}), 400, "invalid_argument", ["one score"])
    assert_error(post(d, "/v1/models/lgb_binary:rank", '{"candidates": [{"f0": 1}"]}'), 400, "invalid_json")


# -- negative-sampling calibration ---------------------------------------------------------

def test_negative_sampling_calibration(d):
    X, target, _ = bc_data()
    y = (target == 0).astype(int)
    base = np.array(d.predict("breast_cancer", X.tolist())[2]["predictions"])
    cal = np.array(d.predict("bc_sampled", X.tolist())[2]["predictions"])
    want = base / (base + (1 - base) / NS_RATE)
    assert np.max(np.abs(cal - want)) <= 1e-12
    margin_base = d.predict("breast_cancer", X[:5].tolist(), output="margin")[2]["predictions"]
    assert d.predict("bc_sampled", X[:5].tolist(), output="margin")[2]["predictions"] == margin_base
    assert d.request("GET", "/v1/models/bc_sampled")[2]["negative_sampling_rate"] == NS_RATE
    assert d.request("GET", "/v1/models/breast_cancer")[2]["negative_sampling_rate"] is None
    a = [post(d, f"/v1/models/{m}:score-auc", {"instances": X.tolist(), "labels": y.tolist()})[2]
         for m in ("breast_cancer", "bc_sampled")]
    assert a[0]["metrics"]["roc_auc"] == a[1]["metrics"]["roc_auc"]  # AUC is invariant to it
    near(a[1]["metrics"]["roc_auc"], roc_auc_score(y, cal), "roc_auc")
    near(a[1]["metrics"]["logloss"], log_loss(y, cal), "logloss")
    r = post(d, "/v1/models/bc_sampled:rank", {"candidates": [dict(zip(
        [f["name"] for f in d.request("GET", "/v1/models/bc_sampled")[2]["inputs"]], X[i])) for i in range(3)]})[2]
    assert sorted(x["score"] for x in r["results"]) == sorted(cal[:3].tolist())


def test_configured_limits(d):
    rows = "score,label\n" + "0.5,1\n" * 60001
    assert_error(post(d, "/v1/score-auc", rows, "text/csv"), 413, "too_large", ["60000", "max_eval_rows"])
    assert post(d, "/v1/score-auc", "score,label\n" + "0.5,1\n0.25,0\n" * 30000, "text/csv")[0] == 200
    cands = [{"id": i, "f0": i} for i in range(401)]
    assert_error(post(d, "/v1/models/lgb_binary:rank", {"candidates": cands}), 413, "too_large",
                 ["400", "max_rank_candidates"])
    assert post(d, "/v1/models/lgb_binary:rank", {"candidates": cands[:400]})[0] == 200
    q = {"candidates": [{"f0": 1}]}
    assert_error(post(d, "/v1/models/lgb_binary:rank", {"queries": [q] * 4}), 413, "too_large", ["max_rank_queries"])
    assert len(post(d, "/v1/models/lgb_binary:rank", {"queries": [q] * 3})[2]["queries"]) == 3
