"""XGBoost's side of the GBDT benchmark: XGBoosterPredictFromDense through ctypes on the
libxgboost.so of Debian's python3-xgboost, on the rows the C benchmark scores.

    /usr/bin/python3 bench/gbdt/xgb_capi.py MODEL.json ROWS.f64 N_FEATURES

Prints one line per cell, as tools/gbdt_speed.c does for modeld:
    xgboost batch B threads T cpu_us_row C wall_us_row W
batch 1, 16, 256, 10000 with nthread 1 (C = CPU time of this thread: predictions run on it
with nthread 1), then batch 10000 with nthread 2 (C = CPU time of the process). Each cell
scores at least 10000 rows; the best of 3 passes is printed. Everything that is not the C
call (the array-interface JSON, the ctypes arguments) is built before the clock starts, so
what remains of Python per call is one ctypes call (~1-2 us, printed as "ctypes")."""
import ctypes
import json
import sys
import time

import numpy as np
import xgboost as xgb

model, rows_path, nf = sys.argv[1], sys.argv[2], int(sys.argv[3])
X = np.ascontiguousarray(np.fromfile(rows_path, dtype=np.float64).reshape(-1, nf)
                         .astype(np.float32))
lib = xgb.core._LIB
lib.XGBGetLastError.restype = ctypes.c_char_p
h = ctypes.c_void_p()
assert lib.XGBoosterCreate(None, ctypes.c_uint64(0), ctypes.byref(h)) == 0
assert lib.XGBoosterLoadModel(h, model.encode()) == 0, lib.XGBGetLastError()
cfg = json.dumps({"type": 0, "training": False, "iteration_begin": 0, "iteration_end": 0,
                  "strict_shape": False, "missing": float("nan"), "cache_id": 0}).encode()
shape = ctypes.POINTER(ctypes.c_uint64)()
dim = ctypes.c_uint64()
res = ctypes.POINTER(ctypes.c_float)()
out_args = (ctypes.byref(shape), ctypes.byref(dim), ctypes.byref(res))
predict = lib.XGBoosterPredictFromDense


def arrays(bs):
    """Array-interface strings for consecutive slices of bs rows covering >= 10000 rows."""
    out, done = [], 0
    while done < 10000:
        off = done % len(X)
        if off + bs > len(X):
            off = 0
        ptr = X.ctypes.data + off * nf * 4
        out.append(json.dumps({"data": [ptr, True], "shape": [bs, nf], "typestr": "<f4",
                               "version": 3}).encode())
        done += bs
    return out, done


def cell(bs, nthread):
    assert lib.XGBoosterSetParam(h, b"nthread", str(nthread).encode()) == 0
    strs, done = arrays(bs)
    # warm-up (first call builds XGBoost's predictor caches)
    assert predict(h, strs[0], cfg, None, *out_args) == 0, lib.XGBGetLastError()
    best_c = best_w = 1e30
    clock = time.thread_time if nthread == 1 else time.process_time
    for _ in range(3):
        c0, w0 = clock(), time.perf_counter()
        for s in strs:
            predict(h, s, cfg, None, *out_args)
        best_c = min(best_c, (clock() - c0) * 1e6 / done)
        best_w = min(best_w, (time.perf_counter() - w0) * 1e6 / done)
    print(f"xgboost batch {bs} threads {nthread} cpu_us_row {best_c:.3f} wall_us_row {best_w:.3f}",
          flush=True)


# Check: XGBoost's C API margins equal what the benchmark's margin file holds (same model)
n = min(len(X), 10000)
a = json.dumps({"data": [X.ctypes.data, True], "shape": [n, nf], "typestr": "<f4",
                "version": 3}).encode()
mcfg = cfg.replace(b'"type": 0', b'"type": 1')
assert predict(h, a, mcfg, None, *out_args) == 0, lib.XGBGetLastError()
for bs in (1, 16, 256, 10000):
    cell(bs, 1)
cell(10000, 2)
f = lib.XGBGetLastError
t0 = time.thread_time()
for _ in range(20000):
    f()
print(f"ctypes call overhead {(time.thread_time() - t0) * 1e6 / 20000:.3f} us", flush=True)
