#!/usr/bin/python3
"""Train the bundled demo model and export it into a model repository.

usage: train_demo.py OUT_REPO        (the bundled demo lives in conf/models)

Fits Pipeline(StandardScaler, LogisticRegression) on scikit-learn's bundled Wisconsin
breast-cancer data (569 rows, 30 numeric features; no download), labels "benign" /
"malignant" so the served probability is P(malignant), and writes
OUT_REPO/breast_cancer/config.json and OUT_REPO/breast_cancer/1/lr.json via
tools/export_sklearn_lr.py. The result is deterministic: regenerate the committed demo
only with this script.
"""

import json
import os
import pickle
import re
import subprocess
import sys
import tempfile

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "breast_cancer"


def sanitize(name):
    """'mean concave points' -> 'mean_concave_points' ([a-z0-9_] only)."""
    s = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not s:
        raise ValueError(f"feature name {name!r} sanitizes to nothing")
    return s


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    repo = argv[1]
    data = load_breast_cancer()
    names = [sanitize(n) for n in data.feature_names]
    assert len(set(names)) == len(names), names
    y = data.target_names[data.target]  # 'malignant' / 'benign' strings
    model = Pipeline([
        ("scale", StandardScaler()),
        ("lr", LogisticRegression(max_iter=1000)),
    ]).fit(data.data, y)

    model_dir = os.path.join(repo, NAME)
    os.makedirs(model_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pkl = os.path.join(tmp, "model.pkl")
        with open(pkl, "wb") as f:
            pickle.dump(model, f)
        rc = subprocess.call([sys.executable, os.path.join(HERE, "export_sklearn_lr.py"),
                              "--feature-names", ",".join(names), pkl,
                              os.path.join(model_dir, "1")])
    if rc != 0:
        return rc
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        f.write(json.dumps({"kind": "lr"}) + "\n")
    acc = model.score(data.data, y)
    print(f"{model_dir}: {len(names)} features, classes {list(model.classes_)}, "
          f"training accuracy {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
