"""The evaluation core (models/eval) against scikit-learn, which computes every expected
value here, in the test, from the same rows: random, heavily tied (scores rounded to two
decimals), weighted (zero weights included) and per-group data, fixed seeds. The C side
runs through tests/eval/eval_driver (built by `make`; $EVAL_DRIVER overrides the path).

    /usr/bin/python3 -m pytest -q tests/eval
"""

import json
import math
import os
import subprocess
import tempfile

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss,
                             f1_score, log_loss, ndcg_score, precision_score, recall_score,
                             roc_auc_score)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.environ.get("EVAL_DRIVER", os.path.join(ROOT, "build/release/tests/eval_driver"))
TOL = 1e-9


def run(task, scores, labels, weights=None, groups=None, n_groups=0, threshold=0.5, n_bins=10,
        k=0, n_classes=1, expect_error=False):
    if not os.path.exists(DRIVER):
        pytest.fail(f"{DRIVER} is missing: run `make build/release/tests/eval_driver`")
    scores = np.asarray(scores, dtype=np.float64).reshape(len(labels), n_classes)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(f"{task} {len(labels)} {n_classes} {int(weights is not None)} "
                f"{int(groups is not None)} {n_groups} {threshold!r} {n_bins} {k}\n")
        for i in range(len(labels)):
            cols = [repr(float(x)) for x in scores[i]] + [repr(float(labels[i]))]
            if weights is not None:
                cols.append(repr(float(weights[i])))
            if groups is not None:
                cols.append(str(int(groups[i])))
            f.write(" ".join(cols) + "\n")
        path = f.name
    try:
        p = subprocess.run([DRIVER, path], capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(path)
    if expect_error:
        assert p.returncode == 1, p.stdout + p.stderr
    else:
        assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def near(got, want, what):
    assert got is not None, f"{what}: C says undefined, sklearn says {want}"
    assert abs(got - want) <= TOL, f"{what}: C {got!r} sklearn {want!r} (diff {got - want:g})"


def binary_data(seed, n=8000, tied=False, weighted=False, pos_rate=0.3):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < pos_rate).astype(np.int64)
    s = 1 / (1 + np.exp(-(rng.normal(0, 1.5, n) + 1.2 * y - 0.8)))
    if tied:
        s = np.round(s, 2)
    w = None
    if weighted:
        w = rng.uniform(0, 3, n)
        w[rng.random(n) < 0.05] = 0.0
        if tied:
            w = np.round(w, 1)
    return s, y, w


CASES = [(seed, tied, weighted) for seed in (1, 2) for tied in (False, True)
         for weighted in (False, True)]


@pytest.mark.parametrize("seed,tied,weighted", CASES)
def test_binary_metrics_match_sklearn(seed, tied, weighted):
    s, y, w = binary_data(seed, tied=tied, weighted=weighted)
    for t in (0.5, 0.35):
        got = run("binary", s, y, w, threshold=t)
        assert got["n_rows"] == len(y)
        assert got["n_pos"] == int(y.sum()) and got["n_neg"] == int((1 - y).sum())
        near(got["roc_auc"], roc_auc_score(y, s), "roc_auc")
        if weighted:
            near(got["roc_auc_weighted"], roc_auc_score(y, s, sample_weight=w), "roc_auc_weighted")
        else:
            assert got["roc_auc_weighted"] is None
        near(got["pr_auc"], average_precision_score(y, s, sample_weight=w), "pr_auc")
        near(got["logloss"], log_loss(y, s, sample_weight=w, labels=[0, 1]), "logloss")
        near(got["brier"], brier_score_loss(y, s, sample_weight=w), "brier")
        pred = (s >= t).astype(np.int64)
        near(got["accuracy"], accuracy_score(y, pred, sample_weight=w), "accuracy")
        near(got["precision"], precision_score(y, pred, sample_weight=w), "precision")
        near(got["recall"], recall_score(y, pred, sample_weight=w), "recall")
        near(got["f1"], f1_score(y, pred, sample_weight=w), "f1")
    check_calibration(got["calibration"], s, y, w, 10)


def check_calibration(bins, s, y, w, n_bins):
    assert len(bins) == n_bins
    edges = np.linspace(0, 1, n_bins + 1)
    assert [b["lo"] for b in bins] == list(edges[:-1])
    assert [b["hi"] for b in bins] == list(edges[1:])
    ids = np.searchsorted(edges[1:-1], s)
    assert [b["count"] for b in bins] == list(np.bincount(ids, minlength=n_bins))
    full = [b for b in bins if b["count"]]
    if w is None:
        prob_true, prob_pred = calibration_curve(y, s, n_bins=n_bins)
        for b, pt, pp in zip(full, prob_true, prob_pred):
            near(b["pos_rate"], pt, "calibration pos_rate")
            near(b["mean_score"], pp, "calibration mean_score")
        assert len(full) == len(prob_true)
    else:  # calibration_curve has no weights: the weighted means by numpy
        for i, b in enumerate(bins):
            m = ids == i
            if w[m].sum() > 0:
                near(b["mean_score"], np.average(s[m], weights=w[m]), "weighted mean_score")
                near(b["pos_rate"], np.average(y[m], weights=w[m]), "weighted pos_rate")


@pytest.mark.parametrize("n_bins", [1, 3, 7, 20])
def test_calibration_bins_as_calibration_curve(n_bins):
    s, y, _ = binary_data(5, n=3000, tied=True)
    s[:5] = [0.0, 1.0, 0.5, 0.2, 0.1]  # exact edges fall in the lower bin, as searchsorted
    check_calibration(run("binary", s, y, n_bins=n_bins)["calibration"], s, y, None, n_bins)


def group_data(seed, n_groups=150, tied=True, weighted=False):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 60, n_groups)
    sizes[rng.random(n_groups) < 0.05] = 0  # some interned groups end up with no row
    g = np.repeat(np.arange(n_groups), sizes)
    rng.shuffle(g)
    n = len(g)
    bias = rng.normal(0, 1, n_groups)[g]
    y = (rng.random(n) < 1 / (1 + np.exp(-bias))).astype(np.int64)
    s = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + y + bias)))
    if tied:
        s = np.round(s, 2)
    w = rng.uniform(0, 2, n) if weighted else None
    return s, y, w, g, n_groups


@pytest.mark.parametrize("seed,weighted", [(3, False), (4, True), (5, False)])
def test_gauc_matches_per_group_sklearn(seed, weighted):
    s, y, w, g, n_groups = group_data(seed, weighted=weighted, tied=seed != 5)
    got = run("binary", s, y, w, groups=g, n_groups=n_groups)
    num = den = 0.0
    used = skipped = empty = 0
    for q in range(n_groups):
        m = g == q
        if not m.any():
            empty += 1
            continue
        if len(np.unique(y[m])) < 2:
            skipped += 1
            continue
        size = w[m].sum() if weighted else m.sum()
        num += size * roc_auc_score(y[m], s[m], sample_weight=None if w is None else w[m])
        den += size
        used += 1
    assert (got["gauc_groups"], got["gauc_groups_skipped"], got["gauc_groups_empty"]) == \
        (used, skipped, empty)
    near(got["gauc"], num / den, "gauc")
    near(got["roc_auc"], roc_auc_score(y, s), "roc_auc with groups")


def map_at_k(s, y, k):
    """MAP@k as models/eval/metrics.h defines it, written out plainly."""
    total, queries = 0.0, 0
    for ss, yy in zip(s, y):
        order = sorted(range(len(ss)), key=lambda i: -ss[i])  # stable: ties in input order
        rel = sum(1 for v in yy if v > 0)
        if rel == 0:
            continue
        top = order if not k else order[:k]
        hits, ap = 0, 0.0
        for rank, i in enumerate(top, start=1):
            if yy[i] > 0:
                hits += 1
                ap += hits / rank
        total += ap / (min(k, rel) if k else rel)
        queries += 1
    return total / queries if queries else None


def ranking_data(seed, n_queries=150, decimals=1):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 40, n_queries)
    qs, ys, ss = [], [], []
    for q, m in enumerate(sizes):
        rel = rng.integers(0, 5, m).astype(np.float64)
        if rng.random() < 0.1:
            rel[:] = 0  # all irrelevant: ndcg_score gives 0, MAP skips it
        qs.append(np.full(m, q))
        ys.append(rel)
        ss.append(np.round(rel * 0.3 + rng.normal(0, 1, m), decimals))
    return ss, ys, qs


@pytest.mark.parametrize("seed,decimals", [(6, 1), (7, 0), (8, 6)])
@pytest.mark.parametrize("k", [0, 1, 3, 5, 10])
def test_ndcg_and_map_per_query(seed, decimals, k):
    ss, ys, qs = ranking_data(seed, decimals=decimals)
    # rows of all queries interleaved: the C side must regroup them
    s, y, g = np.concatenate(ss), np.concatenate(ys), np.concatenate(qs)
    perm = np.random.default_rng(seed).permutation(len(s))
    inv = np.argsort(perm, kind="stable")
    got = run("ranking", s[perm], y[perm], groups=g[perm], n_groups=len(ss), k=k)
    want = np.mean([ndcg_score([yy], [sq], k=k or None) for sq, yy in zip(ss, ys)])
    near(got["ndcg"], want, f"ndcg@{k}")
    assert got["n_queries"] == len(ss)
    assert got["ndcg_all_irrelevant"] == sum(1 for yy in ys if not yy.any())
    # MAP's ties keep input order: the reference sees each query's rows in the order
    # they were sent
    order = [np.sort(inv[g == q]) for q in range(len(ss))]
    want_map = map_at_k([s[perm][o] for o in order], [y[perm][o] for o in order], k)
    near(got["map"], want_map, f"map@{k}")
    assert got["map_queries_skipped"] == sum(1 for yy in ys if not yy.any())


def multiclass_data(seed, n=4000, C=4, tied=False, weighted=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    if tied:  # multiples of 1/20 summing to 1 exactly: heavy ties, valid probabilities
        logits = rng.normal(0, 1, (n, C)) + 1.5 * np.eye(C)[y]
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        P = np.array([rng.multinomial(20, row) for row in p]) / 20.0
    else:
        logits = rng.normal(0, 1, (n, C)) + 1.0 * np.eye(C)[y]
        P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    w = rng.uniform(0, 2, n) if weighted else None
    return P, y, w


@pytest.mark.parametrize("seed,tied,weighted", [(9, False, False), (10, True, False),
                                                (11, False, True), (12, True, True)])
def test_multiclass_matches_sklearn(seed, tied, weighted):
    C = 4
    P, y, w = multiclass_data(seed, C=C, tied=tied, weighted=weighted)
    got = run("multiclass", P, y, w, n_classes=C)
    for avg in ("macro", "weighted"):
        near(got[f"auc_{avg}"], roc_auc_score(y, P, multi_class="ovr", average=avg,
                                              sample_weight=w), f"auc_{avg}")
    for c in range(C):
        near(got["class_auc"][c], roc_auc_score(y == c, P[:, c], sample_weight=w),
             f"class {c} auc")
    near(got["logloss"], log_loss(y, P, sample_weight=w, labels=list(range(C))), "logloss")


def test_extreme_probabilities_clip_as_log_loss():
    y = np.array([0, 1, 1, 0, 1, 0])
    s = np.array([0.0, 1.0, 0.0, 1.0, 1e-300, 1 - 1e-17])
    near(run("binary", s, y)["logloss"], log_loss(y, s), "clipped logloss")
    P = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    yc = np.array([0, 0, 2])
    near(run("multiclass", P, yc, n_classes=3)["logloss"], log_loss(yc, P, labels=[0, 1, 2]),
         "clipped multiclass logloss")


def test_undefined_and_rejected_through_the_driver():
    got = run("binary", [0.2, 0.3, 0.3], [1, 1, 1])
    assert got["roc_auc"] is None and "one class" in got["roc_auc_reason"]
    near(got["pr_auc"], average_precision_score([1, 1, 1], [0.2, 0.3, 0.3]), "pr_auc all positive")
    near(got["logloss"], log_loss([1, 1, 1], [0.2, 0.3, 0.3], labels=[0, 1]), "logloss one class")
    bad = run("binary", [0.2, float("nan"), 0.3], [1, 0, 1], expect_error=True)
    assert "scores[1]" in bad["message"]
    margins = run("binary", [-2.0, 3.0, 0.5, 1.5], [0, 1, 0, 1])
    near(margins["roc_auc"], roc_auc_score([0, 1, 0, 1], [-2.0, 3.0, 0.5, 1.5]), "auc on margins")
    assert margins["logloss"] is None and margins["brier"] is None
