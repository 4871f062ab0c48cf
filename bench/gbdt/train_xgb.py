"""Trains the issue-3 benchmark model with Debian's python3-xgboost and writes the rows.

    /usr/bin/python3 bench/gbdt/train_xgb.py OUT_DIR

OUT_DIR/model.json   binary:logistic, 1000 trees, max_depth 8, 100 features, trained on
                     200k synthetic rows (hist, 2 threads; 25 min on the loaded 2-vCPU VM)
OUT_DIR/rows.f64     10000 test rows (row-major float64; the values are float32 values, so
                     modeld, which casts XGBoost inputs to float, and XGBoost's float32 C API
                     input see the same numbers)
OUT_DIR/margin.f64   XGBoost's margins for those rows (Booster.predict output_margin), which
                     the C benchmark checks bit for bit before timing

The model is generated, never committed; bench/gbdt/run.sh caches OUT_DIR."""
import os
import sys
import time

import numpy as np
import xgboost as xgb

out = sys.argv[1]
rng = np.random.default_rng(3)
n, d = 200_000, 100
X = rng.normal(size=(n, d)).astype(np.float32)
w = rng.normal(size=d)
z = X @ w * 0.3 + np.sin(X[:, 0] * 2) + X[:, 1] * X[:, 2]
y = (z + rng.normal(size=n) > 0).astype(np.float32)
t = time.time()
b = xgb.train({"objective": "binary:logistic", "max_depth": 8, "eta": 0.1,
               "tree_method": "hist", "nthread": 2, "seed": 1},
              xgb.DMatrix(X, y), 1000)
print(f"trained in {time.time() - t:.0f} s", flush=True)
Xt = rng.normal(size=(10000, d)).astype(np.float32)
m = b.predict(xgb.DMatrix(Xt, nthread=1), output_margin=True)
Xt.astype(np.float64).tofile(os.path.join(out, "rows.f64"))
m.astype(np.float64).tofile(os.path.join(out, "margin.f64"))
# the name's extension picks XGBoost's format: write "*.json", then rename into place
b.save_model(os.path.join(out, "tmp-model.json"))
os.rename(os.path.join(out, "tmp-model.json"), os.path.join(out, "model.json"))
