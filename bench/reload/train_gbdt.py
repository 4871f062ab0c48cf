#!/usr/bin/python3
"""Train a large XGBoost binary:logistic model on synthetic data for the reload benchmark.

    /usr/bin/python3 bench/reload/train_gbdt.py OUT_DIR [--target-mb 30] [--features 32]

Writes OUT_DIR/model.json (XGBoost JSON, Booster.save_model) and OUT_DIR/row.json (one
instance as a JSON list, for :predict). The size is reached by growing deep, unpruned trees
(max_depth 10, no regularisation, noisy labels so every split has something to fit), in
chunks sized from the bytes per tree of the previous chunk, until the JSON reaches the
target. Fixed seed; about a minute of CPU on two cores (8000 rows).
"""
import argparse, json, os, sys, time

import numpy as np
import xgboost as xgb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--target-mb", type=float, default=30.0)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--rows", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    t_start = time.monotonic()
    rng = np.random.default_rng(6)
    X = rng.normal(size=(a.rows, a.features))
    logit = X[:, 0] - 0.5 * X[:, 1] * X[:, 2] + np.sin(X[:, 3]) + 0.3 * X[:, 4:].sum(axis=1) / 4
    y = (rng.random(a.rows) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    dtrain = xgb.DMatrix(X, label=y)
    params = {
        "objective": "binary:logistic", "tree_method": "hist", "max_depth": 10,
        "eta": 0.05, "lambda": 0.0, "min_child_weight": 0.0, "gamma": 0.0,
        "subsample": 0.8, "nthread": a.threads, "seed": 6, "max_bin": 64,
    }
    path = os.path.join(a.out_dir, "model.json")
    os.makedirs(a.out_dir, exist_ok=True)

    # Grow in chunks until the JSON reaches the target: later trees are smaller than the
    # first ones (the noise gets fitted), so the next chunk is sized from the last one.
    target = a.target_mb * 1e6
    bst, size, chunk = None, 0, 40
    while size < target:
        before = bst.num_boosted_rounds() if bst else 0
        bst = xgb.train(params, dtrain, num_boost_round=chunk, xgb_model=bst)
        new_size = len(bst.save_raw(raw_format="json"))
        per_tree = (new_size - size) / (bst.num_boosted_rounds() - before)
        size = new_size
        chunk = max(5, min(200, int((target - size) / per_tree) + 1))
    bst.save_model(path)
    size = os.path.getsize(path)
    with open(os.path.join(a.out_dir, "row.json"), "w") as f:
        json.dump([round(float(v), 6) for v in X[0]], f)
    print(json.dumps({"path": path, "bytes": size, "trees": bst.num_boosted_rounds(),
                      "features": a.features, "rows": a.rows,
                      "train_s": round(time.monotonic() - t_start, 1)}))


if __name__ == "__main__":
    sys.exit(main())
