#!/usr/bin/python3
"""Generates modeld's own XGBoost golden fixtures (tests/fixtures/gbdt/) with Debian's
python3-xgboost, for what ../shared/fixtures/gbdt does not cover: every objective of issue 3,
dart, UBJSON, categorical splits, non-default base scores, feature names, pruned trees, and
hard inputs (exactly at split thresholds and their float32 / float64 neighbours, +-1e30,
+-3.4e38, denormals, 50% NaN rows, bad category codes). XGBoost refuses infinite inputs
(and doubles that overflow float32), so there are none.

    /usr/bin/python3 tools/gen_xgb_fixtures.py [out_dir]     (default tests/fixtures/gbdt)

Each case folder holds what the shared fixtures hold (README of ../shared/fixtures/gbdt):
model.json and/or model.ubj exactly as Booster.save_model wrote them, input.csv (header =
feature names, empty field = NaN, shortest round-trip decimals), expected_margin.csv
(predict(output_margin=True)), expected_pred.csv (predict()), expected_leaf.csv
(predict(pred_leaf=True)) and meta.json (library version and parameters). Every expected
file comes from a fresh Booster loaded from the saved file; when a case saves both formats
the two loaded boosters must agree, else the script fails. Deterministic: fixed seeds,
nthread=1. The output is small (tens of KB per case) and committed.
"""

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import xgboost as xgb

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "tests/fixtures/gbdt"
N_TRAIN = 400
N_RANDOM = 40


def fmt_in(v):
    v = float(v)
    if math.isnan(v):
        return ""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def write_csv(path, header, rows, fmt):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(fmt(v) for v in r) + "\n")


def thresholds(booster):
    """(feature, threshold) of every numeric split, from the JSON model."""
    gb = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]
    model = gb["model"] if "model" in gb else gb["gbtree"]["model"]
    out = []
    for t in model["trees"]:
        st = t.get("split_type", [0] * len(t["left_children"]))
        for i, l in enumerate(t["left_children"]):
            if l != -1 and st[i] == 0:
                out.append((t["split_indices"][i], t["split_conditions"][i]))
    return out


def hard_rows(rng, booster, n_features, base_rows, cat_cols=()):
    """Rows that sit exactly on thresholds and on their neighbours, extremes and NaN."""
    rows = []
    ths = thresholds(booster)
    pick = [ths[i] for i in rng.choice(len(ths), size=min(len(ths), 12), replace=False)] if ths else []
    for f, t in pick:
        t32 = np.float32(t)
        for v in (float(t32),
                  float(np.nextafter(t32, np.float32(np.inf))),
                  float(np.nextafter(t32, np.float32(-np.inf))),
                  float(np.nextafter(np.float64(t32), np.inf)),   # rounds back to t in float32
                  float(np.nextafter(np.float64(t32), -np.inf))):
            r = base_rows[rng.integers(len(base_rows))].copy()
            r[f] = v
            rows.append(r)
    for v in (1e30, -1e30, 3.4e38, -3.4e38, 0.0, -0.0, 5e-324, 1e-40):
        r = base_rows[rng.integers(len(base_rows))].copy()
        cols = [c for c in range(n_features) if c not in cat_cols]
        for c in rng.choice(cols, size=max(1, len(cols) // 2), replace=False):
            r[c] = v
        rows.append(r)
    for _ in range(8):  # half missing
        r = base_rows[rng.integers(len(base_rows))].copy()
        r[rng.choice(n_features, size=n_features // 2, replace=False)] = np.nan
        rows.append(r)
    rows.append(np.full(n_features, np.nan))
    return rows


def make_data(rng, n, n_features):
    X = rng.normal(size=(n, n_features)) * 2.0
    X = np.round(X, 3)  # ties on the same values make exact-threshold rows common
    return X


def save_case(name, params, booster_fn, X_test, feature_names, formats, meta_extra, dm_kwargs=None):
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    for f in d.iterdir():
        f.unlink()
    bst = booster_fn()
    results = []
    for fmt in formats:
        path = d / f"model.{fmt}"
        bst.save_model(str(path))
        fresh = xgb.Booster(model_file=str(path))
        fresh.set_param({"nthread": 1})
        dm = xgb.DMatrix(X_test, missing=np.nan, feature_names=feature_names, **(dm_kwargs or {}))
        margin = fresh.predict(dm, output_margin=True)
        pred = fresh.predict(dm)
        leaf = fresh.predict(dm, pred_leaf=True)
        results.append((margin, pred, leaf))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b, equal_nan=True), f"{name}: json and ubj predictions differ"
    margin, pred, leaf = results[0]
    k = margin.shape[1] if margin.ndim == 2 else 1
    margin = margin.reshape(len(X_test), k)
    mh = ["margin"] if k == 1 else [f"margin_{i}" for i in range(k)]
    pk = pred.shape[1] if pred.ndim == 2 else 1
    pred = pred.reshape(len(X_test), pk)
    ph = ["pred"] if pk == 1 else [f"prob_{i}" for i in range(pk)]
    leaf = leaf.reshape(len(X_test), -1)
    header = feature_names or [f"f{i}" for i in range(X_test.shape[1])]
    write_csv(d / "input.csv", header, X_test, fmt_in)
    write_csv(d / "expected_margin.csv", mh, margin, lambda v: "%.17g" % float(v))
    write_csv(d / "expected_pred.csv", ph, pred, lambda v: "%.17g" % float(v))
    write_csv(d / "expected_leaf.csv", [f"tree_{i}" for i in range(leaf.shape[1])], leaf,
              lambda v: "%d" % int(v))
    meta = {"library": "xgboost", "library_version": xgb.__version__, "params": params,
            "model_files": [f"model.{f}" for f in formats], "num_rows": len(X_test),
            "generator": "tools/gen_xgb_fixtures.py"}
    meta.update(meta_extra)
    with open(d / "meta.json", "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{name}: {len(X_test)} rows, {leaf.shape[1]} trees, {', '.join(formats)}")


def case(name, objective, rounds=8, n_features=6, extra=None, formats=("json",),
         label="binary", feature_names=None, groups=False, num_class=0, seed=0, meta=None):
    rng = np.random.default_rng(seed)
    X = make_data(rng, N_TRAIN, n_features)
    w = rng.normal(size=n_features)
    z = X @ w
    if label == "binary":
        y = (z + rng.normal(size=N_TRAIN) > 0).astype(float)
    elif label == "prob":
        y = 1 / (1 + np.exp(-z))
    elif label == "count":
        y = rng.poisson(np.exp(0.3 * z).clip(0, 50)).astype(float)
    elif label == "multi":
        y = (np.digitize(z, np.quantile(z, np.linspace(0, 1, num_class + 1)[1:-1]))).astype(float)
    elif label == "relevance":
        y = np.digitize(z, np.quantile(z, [0.5, 0.8, 0.95])).astype(float)
    else:
        y = z + rng.normal(size=N_TRAIN)
    X[rng.random(X.shape) < 0.1] = np.nan
    params = {"objective": objective, "max_depth": 3, "eta": 0.3, "nthread": 1, "seed": seed}
    if num_class:
        params["num_class"] = num_class
    params.update(extra or {})
    dtrain = xgb.DMatrix(X, y, missing=np.nan, feature_names=feature_names)
    if groups:
        dtrain.set_group([20] * (N_TRAIN // 20))

    def train():
        return xgb.train(params, dtrain, rounds)

    bst = train()
    X_test = list(make_data(rng, N_RANDOM, n_features))
    X_test += hard_rows(rng, bst, n_features, np.array(X_test))
    save_case(name, params, train, np.array(X_test), feature_names, formats, meta or {})


def categorical_case(name, onehot, formats):
    rng = np.random.default_rng(7)
    n_features = 4
    X = make_data(rng, N_TRAIN, n_features)
    X[:, 0] = rng.integers(0, 9, size=N_TRAIN)   # categorical, 9 levels
    X[:, 2] = rng.integers(0, 40, size=N_TRAIN)  # categorical, 40 levels (2 bitset words)
    eff0 = rng.normal(size=9)
    eff2 = rng.normal(size=40)
    z = eff0[X[:, 0].astype(int)] + eff2[X[:, 2].astype(int)] + X[:, 1]
    y = (z + 0.3 * rng.normal(size=N_TRAIN) > 0).astype(float)
    X[rng.random(X.shape) < 0.05] = np.nan
    ft = ["c", "q", "c", "q"]
    params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "nthread": 1,
              "tree_method": "hist", "max_cat_to_onehot": 64 if onehot else 1, "seed": 7}
    dtrain = xgb.DMatrix(X, y, missing=np.nan, feature_types=ft, enable_categorical=True)

    def train():
        return xgb.train(params, dtrain, 10)

    X_test = list(make_data(rng, N_RANDOM, n_features))
    for r in X_test:
        r[0] = rng.integers(0, 9)
        r[2] = rng.integers(0, 40)
    base = np.array(X_test)
    for v in (9, 12, 39, 40, 63, 64, 100, 1e30, -1, -0.5, -1e30, 2.7, 0.999, np.nan, 0, 31,
              32, 33, 16777216, 16777217):
        for c in (0, 2):
            r = base[rng.integers(len(base))].copy()
            r[c] = v
            X_test.append(r)
    save_case(name, params, train, np.array(X_test), None, formats,
              {"notes": "features 0 (9 levels) and 2 (40 levels) categorical; "
                        + ("one-hot splits" if onehot else "partition splits")},
              dm_kwargs={"feature_types": ft, "enable_categorical": True})


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    case("logitraw", "binary:logitraw", formats=("json", "ubj"))
    case("logistic_base03_names", "binary:logistic", extra={"base_score": 0.3},
         feature_names=["age", "income", "score", "debt ratio", "x_5", "ünï"])
    case("reg_logistic", "reg:logistic", label="prob")
    case("pseudohuber", "reg:pseudohubererror", label="reg", extra={"base_score": 1.5})
    case("poisson", "count:poisson", label="count", formats=("json", "ubj"))
    case("softmax", "multi:softmax", label="multi", num_class=4, formats=("json", "ubj"))
    case("softprob_parallel", "multi:softprob", label="multi", num_class=3,
         extra={"num_parallel_tree": 2, "subsample": 0.8})
    case("rank_ndcg", "rank:ndcg", label="relevance", groups=True)
    case("rank_map", "rank:map", label="relevance", groups=True)
    case("rank_pairwise_ubj", "rank:pairwise", label="relevance", groups=True, formats=("ubj",))
    case("dart", "binary:logistic", rounds=12,
         extra={"booster": "dart", "rate_drop": 0.3, "skip_drop": 0.0, "seed": 3},
         formats=("json", "ubj"), meta={"notes": "dart: leaves weighted by weight_drop"})
    case("squarederror_pruned", "reg:squarederror", label="reg", rounds=6,
         extra={"max_depth": 6, "gamma": 20.0, "tree_method": "exact", "base_score": -3.25},
         formats=("json", "ubj"), meta={"notes": "gamma prunes grown nodes (num_deleted > 0)"})
    categorical_case("categorical", onehot=False, formats=("json", "ubj"))
    categorical_case("categorical_onehot", onehot=True, formats=("json",))


if __name__ == "__main__":
    main()
