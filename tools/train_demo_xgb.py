#!/usr/bin/python3
"""Train the bundled XGBoost demo model and save it into a model repository.

usage: train_demo_xgb.py OUT_REPO        (the bundled demo lives in conf/models)

Fits XGBoost (Debian's python3-xgboost, binary:logistic, 40 rounds of depth 3, one
thread, fixed seed) on scikit-learn's bundled Wisconsin breast-cancer data (569 rows, 30
numeric features; no download) with label 1 = malignant, so the served value is
P(malignant) as for the `breast_cancer` LR demo, and the same feature names
(tools/train_demo.py's sanitised names, stored in the model), so the same named rows work
for both. Writes OUT_REPO/xgb_breast_cancer/config.json and
OUT_REPO/xgb_breast_cancer/1/model.json exactly as Booster.save_model wrote it.
Deterministic: regenerate the committed demo only with this script.
"""

import json
import os
import sys

import xgboost as xgb
from sklearn.datasets import load_breast_cancer

from train_demo import sanitize  # same feature names as the LR demo

NAME = "xgb_breast_cancer"


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    data = load_breast_cancer()
    names = [sanitize(n) for n in data.feature_names]
    y = (data.target == 0).astype(float)  # sklearn: 0 = malignant
    dtrain = xgb.DMatrix(data.data, y, feature_names=names)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.2, "nthread": 1,
              "seed": 0}
    bst = xgb.train(params, dtrain, 40)
    model_dir = os.path.join(argv[1], NAME)
    os.makedirs(os.path.join(model_dir, "1"), exist_ok=True)
    bst.save_model(os.path.join(model_dir, "1", "model.json"))
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        f.write(json.dumps({"kind": "gbdt"}) + "\n")
    acc = ((bst.predict(dtrain) > 0.5) == (y > 0.5)).mean()
    print(f"{model_dir}: xgboost {xgb.__version__}, {len(names)} features, training "
          f"accuracy {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
