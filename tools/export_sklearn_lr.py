#!/usr/bin/python3
"""Export a fitted scikit-learn linear classifier to modeld's lr.json (docs/lr-format.md).

usage: export_sklearn_lr.py [--feature-names a,b,c] IN.pkl OUT_DIR

IN.pkl holds a pickled, fitted LogisticRegression or LinearSVC, alone or as the last step
of a Pipeline whose other steps are StandardScaler, MinMaxScaler, SimpleImputer,
OneHotEncoder, ColumnTransformer (of those, or of Pipelines of those) or 'passthrough'.
Writes OUT_DIR/lr.json atomically (temp file + rename, so a serving modeld never reads a
half-written file). Every float is written with repr(), so float64 values round-trip.

Anything the artifact cannot represent exactly is refused with a message on stderr and
exit code 2 (also for unreadable input); 0 means written.

Only unpickle files you trust: unpickling runs code.
"""

import argparse
import json
import math
import numbers
import os
import pickle
import sys
import tempfile

import numpy as np
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC

FORMAT_VERSION = 1


class Refused(Exception):
    """The model cannot be exported exactly; the message says why."""


def _floats(values, what):
    """A list of Python floats from an array-like, refusing NaN and infinities."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    out = [float(v) for v in arr]
    for i, v in enumerate(out):
        if not math.isfinite(v):
            raise Refused(f"{what}[{i}] is {v!r}; modeld only stores finite numbers")
    return out


def _is_nan(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isnan(v)


class Converter:
    """Walks the preprocessing steps, writing their JSON and tracking what each column of
    the intermediate vector is (a "lane"): ("raw", col) an input column not yet known to be
    numeric or categorical, ("num", col), ("cat", col), or ("hot", col, k), the one-hot
    output for category k of input column col. That tells which inputs are categorical,
    their categories, and whether every step sees the kind of column it can handle."""

    def __init__(self, n_features, feature_names):
        self.n_features = n_features
        self.names = feature_names
        self.kind = {}        # input column -> "num" | "cat"
        self.categories = {}  # input column -> list of category strings

    def col_name(self, col):
        return f"'{self.names[col]}' (column {col})"

    def mark(self, col, kind, where):
        prev = self.kind.get(col)
        if prev is not None and prev != kind:
            raise Refused(f"{where}: input {self.col_name(col)} is used both as a numeric and as "
                          f"a categorical column")
        self.kind[col] = kind

    # -- dispatch ------------------------------------------------------------------------

    def step(self, est, lanes, where):
        if est is None or (isinstance(est, str) and est == "passthrough"):
            return {"type": "passthrough"}, list(lanes)
        if isinstance(est, str) and est == "drop":
            return {"type": "drop"}, []
        if type(est) is Pipeline:
            return self.pipeline(est.steps, lanes, where)
        if type(est) is ColumnTransformer:
            return self.column_transformer(est, lanes, where)
        if type(est) is StandardScaler:
            return self.standard_scaler(est, lanes, where)
        if type(est) is MinMaxScaler:
            return self.min_max_scaler(est, lanes, where)
        if type(est) is SimpleImputer:
            return self.simple_imputer(est, lanes, where)
        if type(est) is OneHotEncoder:
            return self.one_hot_encoder(est, lanes, where)
        raise Refused(f"{where}: {type(est).__name__} is not supported (supported steps: "
                      f"StandardScaler, MinMaxScaler, SimpleImputer, OneHotEncoder, "
                      f"ColumnTransformer, Pipeline, 'passthrough')")

    def pipeline(self, steps, lanes, where):
        out = []
        for name, est in steps:
            js, lanes = self.step(est, lanes, f"{where}/{name}")
            out.append(js)
        return {"type": "pipeline", "steps": out}, lanes

    # -- steps ---------------------------------------------------------------------------

    def numeric_lanes(self, lanes, where, what):
        out = []
        for lane in lanes:
            if lane[0] == "cat":
                raise Refused(f"{where}: {what} applied to categorical input "
                              f"{self.col_name(lane[1])}")
            if lane[0] == "raw":
                self.mark(lane[1], "num", where)
                lane = ("num", lane[1])
            out.append(lane)
        return out

    def check_width(self, est, lanes, where):
        n = getattr(est, "n_features_in_", None)
        if n is not None and n != len(lanes):
            raise Refused(f"{where}: fitted on {n} columns but receives {len(lanes)}")

    def standard_scaler(self, est, lanes, where):
        self.check_width(est, lanes, where)
        lanes = self.numeric_lanes(lanes, where, "StandardScaler")
        mean = _floats(est.mean_, f"{where}.mean_") if est.with_mean else None
        scale = _floats(est.scale_, f"{where}.scale_") if est.with_std else None
        for arr in (mean, scale):
            if arr is not None and len(arr) != len(lanes):
                raise Refused(f"{where}: parameters for {len(arr)} columns, input has {len(lanes)}")
        if scale is not None and any(s == 0.0 for s in scale):
            raise Refused(f"{where}: scale_ contains 0")
        return {"type": "standard_scaler", "mean": mean, "scale": scale}, lanes

    def min_max_scaler(self, est, lanes, where):
        if est.clip:
            raise Refused(f"{where}: MinMaxScaler(clip=True) is not supported")
        self.check_width(est, lanes, where)
        lanes = self.numeric_lanes(lanes, where, "MinMaxScaler")
        scale = _floats(est.scale_, f"{where}.scale_")
        mn = _floats(est.min_, f"{where}.min_")
        if len(scale) != len(lanes) or len(mn) != len(lanes):
            raise Refused(f"{where}: parameters for {len(scale)} columns, input has {len(lanes)}")
        if any(s == 0.0 for s in scale):
            raise Refused(f"{where}: scale_ contains 0")
        return {"type": "min_max_scaler", "scale": scale, "min": mn}, lanes

    def simple_imputer(self, est, lanes, where):
        if est.add_indicator:
            raise Refused(f"{where}: SimpleImputer(add_indicator=True) is not supported")
        if not _is_nan(est.missing_values):
            raise Refused(f"{where}: SimpleImputer(missing_values={est.missing_values!r}) is not "
                          f"supported; only missing_values=np.nan (JSON null / absent key)")
        self.check_width(est, lanes, where)
        stats = list(est.statistics_)
        if len(stats) != len(lanes):
            raise Refused(f"{where}: statistics_ for {len(stats)} columns, input has {len(lanes)}")
        fill, out = [], []
        for i, (lane, v) in enumerate(zip(lanes, stats)):
            if isinstance(v, (str, np.str_)):
                if lane[0] not in ("raw", "cat"):
                    raise Refused(f"{where}: string fill value {str(v)!r} for numeric column {i}")
                self.mark(lane[1], "cat", where)
                fill.append(str(v))
                out.append(("cat", lane[1]))
            elif isinstance(v, (numbers.Real, np.number)) and not isinstance(v, (bool, np.bool_)):
                if _is_nan(v):
                    raise Refused(f"{where}: statistics_[{i}] is NaN (a column that was all "
                                  f"missing in training, which SimpleImputer drops); not supported")
                if lane[0] == "cat":
                    raise Refused(f"{where}: numeric fill value for categorical input "
                                  f"{self.col_name(lane[1])}")
                fill.append(_floats([v], f"{where}.statistics_")[0])
                if lane[0] == "raw":
                    self.mark(lane[1], "num", where)
                    lane = ("num", lane[1])
                out.append(lane)
            else:
                raise Refused(f"{where}: statistics_[{i}] = {v!r} is neither a string nor a number")
        return {"type": "simple_imputer", "fill": fill}, out

    def one_hot_encoder(self, est, lanes, where):
        if est.drop is not None or getattr(est, "drop_idx_", None) is not None:
            raise Refused(f"{where}: OneHotEncoder(drop={est.drop!r}) is not supported")
        if est.handle_unknown not in ("ignore", "error"):
            raise Refused(f"{where}: OneHotEncoder(handle_unknown={est.handle_unknown!r}) is not "
                          f"supported; use 'ignore' or 'error'")
        if getattr(est, "_infrequent_enabled", False) or est.min_frequency is not None \
                or est.max_categories is not None:
            raise Refused(f"{where}: infrequent categories (min_frequency / max_categories) are "
                          f"not supported")
        self.check_width(est, lanes, where)
        if len(est.categories_) != len(lanes):
            raise Refused(f"{where}: categories_ for {len(est.categories_)} columns, input has "
                          f"{len(lanes)}")
        out = []
        for lane, cats in zip(lanes, est.categories_):
            if lane[0] not in ("raw", "cat"):
                raise Refused(f"{where}: OneHotEncoder applied to a numeric or already encoded "
                              f"column (input {self.col_name(lane[1])})")
            col = lane[1]
            cats = list(cats)
            bad = [c for c in cats if not isinstance(c, (str, np.str_))]
            if bad:
                raise Refused(f"{where}: categories of input {self.col_name(col)} are not all "
                              f"strings ({bad[0]!r}); modeld one-hot encodes string categories "
                              f"only (missing values must be imputed first)")
            cats = [str(c) for c in cats]
            if not cats:
                raise Refused(f"{where}: input {self.col_name(col)} has no categories")
            if len(set(cats)) != len(cats):
                raise Refused(f"{where}: duplicate categories for input {self.col_name(col)}")
            if any(c == "" or "\0" in c for c in cats):
                raise Refused(f"{where}: empty category or NUL in a category of input "
                              f"{self.col_name(col)}")
            prev = self.categories.get(col)
            if prev is not None and prev != cats:
                raise Refused(f"{where}: input {self.col_name(col)} is one-hot encoded twice "
                              f"with different categories")
            self.mark(col, "cat", where)
            self.categories[col] = cats
            out += [("hot", col, k) for k in range(len(cats))]
        return {"type": "one_hot_encoder", "handle_unknown": est.handle_unknown}, out

    def column_indices(self, ct, name, columns, n_in, where):
        """The input positions a ColumnTransformer entry selects."""
        idx = getattr(ct, "_transformer_to_input_indices", {}).get(name)
        if idx is not None:
            return [int(i) for i in idx]
        # Older/newer scikit-learn without that private map: resolve what we can.
        names = getattr(ct, "feature_names_in_", None)
        cols = columns
        if isinstance(cols, (str, numbers.Integral)):
            cols = [cols]
        if isinstance(cols, slice):
            return list(range(n_in))[cols]
        cols = list(cols)
        if cols and all(isinstance(c, (bool, np.bool_)) for c in cols):
            return [i for i, c in enumerate(cols) if c]
        out = []
        for c in cols:
            if isinstance(c, (str, np.str_)):
                if names is None or str(c) not in list(names):
                    raise Refused(f"{where}: column {c!r} cannot be resolved to a position")
                out.append(list(names).index(str(c)))
            elif isinstance(c, numbers.Integral):
                out.append(int(c) % n_in if int(c) < 0 else int(c))
            else:
                raise Refused(f"{where}: column selector {c!r} is not supported")
        return out

    def column_transformer(self, ct, lanes, where):
        if ct.transformer_weights:
            raise Refused(f"{where}: ColumnTransformer(transformer_weights=...) is not supported")
        self.check_width(ct, lanes, where)
        entries, out_lanes = [], []
        remainder = "drop"
        fitted = list(ct.transformers_)
        has_remainder = len(fitted) == len(ct.transformers) + 1
        for i, (name, trans, columns) in enumerate(fitted):
            idx = self.column_indices(ct, name, columns, len(lanes), f"{where}/{name}")
            for j in idx:
                if not 0 <= j < len(lanes):
                    raise Refused(f"{where}/{name}: column {j} out of range")
            if has_remainder and i == len(fitted) - 1:
                if isinstance(trans, str) and trans == "passthrough":
                    remainder = "passthrough"
                    used = {j for e in entries for j in e["columns"]}
                    if sorted(set(range(len(lanes))) - used) != sorted(idx):
                        raise Refused(f"{where}: remainder columns {idx} are not the unselected "
                                      f"ones")
                    out_lanes += [lanes[j] for j in idx]
                    continue
                if isinstance(trans, str) and trans == "drop":
                    continue
            if len(idx) == 0:
                continue  # sklearn skips empty selections
            js, sub = self.step(trans, [lanes[j] for j in idx], f"{where}/{name}")
            entries.append({"name": str(name), "columns": idx, "step": js})
            out_lanes += sub
        return {"type": "column_transformer", "transformers": entries,
                "remainder": remainder}, out_lanes


def class_labels(classes):
    out = []
    for c in classes:
        if isinstance(c, (bool, np.bool_)):
            out.append(bool(c))
        elif isinstance(c, (numbers.Integral, np.integer)):
            out.append(int(c))
        elif isinstance(c, (numbers.Real, np.floating)):
            out.append(_floats([c], "classes_")[0])
        elif isinstance(c, (str, np.str_)):
            if str(c) == "" or "\0" in str(c):
                raise Refused(f"class label {str(c)!r} is empty or contains NUL")
            out.append(str(c))
        else:
            raise Refused(f"class label {c!r} of type {type(c).__name__} is not supported")
    return out


def split_estimator(model):
    """(preprocessing steps [(name, est)], final estimator)."""
    if type(model) is Pipeline:
        steps = [(n, e) for n, e in model.steps]
        name, final = steps[-1]
        return steps[:-1], final
    return [], model


def export(model, feature_names=None):
    """The lr.json document (a dict) for a fitted model; raises Refused."""
    steps, final = split_estimator(model)
    if isinstance(final, LogisticRegression):
        estimator = "LogisticRegression"
    elif type(final) is LinearSVC:
        estimator = "LinearSVC"
    else:
        raise Refused(f"final estimator {type(final).__name__} is not supported (expected "
                      f"LogisticRegression or LinearSVC)")
    if not hasattr(final, "coef_"):
        raise Refused(f"{estimator} is not fitted")

    n_in = getattr(model, "n_features_in_", None)
    fitted_names = getattr(model, "feature_names_in_", None)
    if n_in is None:
        raise Refused("cannot tell the number of input features (n_features_in_ missing)")
    if fitted_names is not None:
        fitted_names = [str(n) for n in fitted_names]
    if feature_names is not None:
        if len(feature_names) != n_in:
            raise Refused(f"--feature-names gives {len(feature_names)} names, the model takes "
                          f"{n_in} features")
        if fitted_names is not None and fitted_names != feature_names:
            raise Refused(f"--feature-names {feature_names} differ from the names the model was "
                          f"fitted with {fitted_names}")
        names = feature_names
    elif fitted_names is not None:
        names = fitted_names
    else:
        names = [f"f{i}" for i in range(n_in)]
    if len(set(names)) != len(names):
        raise Refused(f"feature names are not unique: {names}")
    if any(n == "" or "\0" in n for n in names):
        raise Refused("feature names must be non-empty and must not contain NUL")

    conv = Converter(n_in, names)
    lanes = [("raw", c) for c in range(n_in)]
    preprocess = None
    if steps:
        preprocess, lanes = conv.pipeline(steps, lanes, "pipeline")

    classes = class_labels(final.classes_)
    coef = final.coef_
    if hasattr(coef, "toarray"):
        coef = coef.toarray()
    coef = np.asarray(coef, dtype=np.float64)
    n_rows = 1 if len(classes) == 2 else len(classes)
    if len(classes) < 2:
        raise Refused("fewer than 2 classes")
    if coef.ndim != 2 or coef.shape[0] != n_rows:
        raise Refused(f"coef_ has shape {coef.shape}, expected ({n_rows}, n) for {len(classes)} "
                      f"classes")
    if coef.shape[1] != len(lanes):
        raise Refused(f"coef_ has {coef.shape[1]} columns but preprocessing yields {len(lanes)}")
    intercept = np.broadcast_to(np.asarray(final.intercept_, dtype=np.float64), (n_rows,))

    doc = {
        "format": "modeld-lr",
        "format_version": FORMAT_VERSION,
        "producer": f"tools/export_sklearn_lr.py, scikit-learn {sklearn.__version__}",
        "estimator": estimator,
    }
    if estimator == "LogisticRegression":
        ovr = final.multi_class in ("ovr", "warn") or (
            final.multi_class == "auto"
            and (len(classes) <= 2 or final.solver in ("liblinear", "newton-cholesky")))
        doc["task"] = "binary" if len(classes) == 2 else "multiclass"
        doc["multi_class"] = "ovr" if ovr else "multinomial"
    else:
        doc["task"] = "decision"
    doc["classes"] = classes
    features = []
    for c, name in enumerate(names):
        f = {"name": name}
        if conv.kind.get(c) == "cat":
            if c not in conv.categories:
                raise Refused(f"input {conv.col_name(c)} is imputed with strings but never "
                              f"one-hot encoded")
            f["categories"] = conv.categories[c]
        features.append(f)
    doc["features"] = features
    if preprocess is not None:
        doc["preprocess"] = preprocess
    doc["coef"] = [_floats(row, f"coef_[{i}]") for i, row in enumerate(coef)]
    doc["intercept"] = _floats(intercept, "intercept_")
    return doc


def dumps(doc):
    """JSON text with one top-level member per line; floats as repr()."""
    lines = [f" {json.dumps(k)}: {json.dumps(v, allow_nan=False, ensure_ascii=False)}"
             for k, v in doc.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_atomic(path, text):
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".lr.json.", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", metavar="IN.pkl", help="pickled fitted estimator or pipeline")
    ap.add_argument("out_dir", metavar="OUT_DIR", help="version folder to write lr.json into")
    ap.add_argument("--feature-names", help="comma-separated input feature names (default: the "
                    "names the model was fitted with, else f0..fN-1)")
    args = ap.parse_args(argv)
    prog = os.path.basename(sys.argv[0])
    names = None
    if args.feature_names is not None:
        names = [n.strip() for n in args.feature_names.split(",")]
    try:
        try:
            with open(args.model, "rb") as f:
                model = pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
            raise Refused(f"cannot read {args.model}: {e}")
        doc = export(model, names)
        text = dumps(doc)
        os.makedirs(args.out_dir, exist_ok=True)
        write_atomic(os.path.join(args.out_dir, "lr.json"), text)
    except Refused as e:
        print(f"{prog}: refused: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
