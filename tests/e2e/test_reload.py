"""Hot reload under continuous load: 50 new versions each of an LR and of a GBDT model
(XGBoost JSON and LightGBM text in turn), published by rename, with a READY marker,
half-written then completed, through a symlink and by renaming an old version folder to a
new number, interleaved with corrupt and truncated artifacts, deletions and renames out,
while clients keep predicting on several connections. No request may fail, every answer
names a version that was published valid, and its predictions are that version's.

Every version's predictions differ from every other's by far more than the tolerance
(except a renumbered folder, which answers with the content it was renamed from), so an
answer labelled with the wrong version is caught."""
import json
import math
import os
import re
import shutil
import threading
import time

import pytest

from conftest import REPO_ROOT, Daemon, lr_document, sigmoid

GBDT_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "gbdt"
FEATURES = ["a", "b", "c"]
ROW = [1.0, -2.0, 0.5]
# Settle long enough that the half-written publish (20 ms between its two writes) is never
# taken for complete, short enough to keep the test quick.
CONFIG = {"repository_poll_ms": 200, "repository_settle_ms": 400}
N_VALID = 50           # valid versions published per model
DEADLINE_S = 15        # for any one version to serve or fail


def logit(p):
    return math.log(p / (1.0 - p))


def fixture_row(kind):
    """The first row of a fixture's input.csv (None for missing) and its expected margin."""
    d = GBDT_FIXTURES / f"{kind}_binary"
    first = (d / "input.csv").read_text().splitlines()[1]
    row = [float(x) if x else None for x in first.split(",")]
    margin = float((d / "expected_margin.csv").read_text().splitlines()[1])
    return row, margin


# ---- the two models' versions -------------------------------------------------------------

class LR:
    """Content k predicts sigmoid(k / 10 + w.x) for ROW."""
    name = "lr"
    body = {"instances": [ROW]}

    def artifacts(self, k):
        return {"lr.json": json.dumps(lr_document(FEATURES, [0.5, 0.25, -1.0], k / 10.0))}

    def corrupt(self, k):
        return {"lr.json": '{"format": "modeld-lr", "coef": [[1, 2'}

    def check(self, k, preds):
        want = sigmoid(k / 10.0 + 0.5 * ROW[0] + 0.25 * ROW[1] - 1.0 * ROW[2])
        if abs(preds[0] - want) > 1e-12:
            return f"prediction {preds[0]} is not content {k}'s {want}"
        return None


class GBDT:
    """Content k is the xgb_binary fixture (k even) or the lgb_binary fixture (k odd) with
    its margin moved by shift(k) for every row: XGBoost through base_score (the margin
    starts at logit(base_score)), LightGBM by adding shift(k) to every leaf of its first
    tree (each row ends in exactly one of them). Both fixtures take 20 features; every
    request scores the first row of each fixture's input, and the row whose margin the
    fixture records must come out exactly; the other row must sit at one fixed margin
    (learned from the first answer) plus shift(k)."""
    name = "gbdt"

    def __init__(self):
        xgb = json.loads((GBDT_FIXTURES / "xgb_binary" / "model.json").read_text())
        assert xgb["learner"]["learner_model_param"]["base_score"] == "5E-1"  # margin starts at 0
        self.xgb = xgb
        self.lgb = (GBDT_FIXTURES / "lgb_binary" / "model.txt").read_text()
        self.rows, self.margins = zip(fixture_row("xgb"), fixture_row("lgb"))
        self.body = {"instances": list(self.rows)}
        self.other = {}  # format -> margin of the row its fixture does not record
        self.lock = threading.Lock()

    @staticmethod
    def shift(k):
        return 0.02 * k - 0.5

    @staticmethod
    def fmt(k):
        return 0 if k % 2 == 0 else 1  # 0: XGBoost JSON, 1: LightGBM text

    def artifacts(self, k):
        s = self.shift(k)
        if self.fmt(k) == 0:
            doc = json.loads(json.dumps(self.xgb))
            doc["learner"]["learner_model_param"]["base_score"] = repr(sigmoid(s))
            return {"model.json": json.dumps(doc)}
        lines, in_tree0 = [], False
        for line in self.lgb.splitlines():
            if line.startswith("tree_sizes="):
                continue  # the tree blocks change length; the line is optional
            if line.startswith("Tree="):
                in_tree0 = line == "Tree=0"
            if in_tree0 and line.startswith("leaf_value="):
                vals = [float(x) + s for x in line[len("leaf_value="):].split()]
                line = "leaf_value=" + " ".join(repr(v) for v in vals)
            lines.append(line)
        return {"model.txt": "\n".join(lines) + "\n"}

    def corrupt(self, k):
        """Truncated artifacts: XGBoost JSON cut in half; LightGBM text cut right before
        a tree block (still a well-formed prefix: only its missing trees and "end of trees"
        line tell), or right after a leaf_value line's first number."""
        text = next(iter(self.artifacts(k).values()))
        if self.fmt(k) == 0:
            return {"model.json": text[: len(text) // 2]}
        if k % 4 == 1:
            return {"model.txt": text[: text.index("\nTree=25\n") + 1]}
        i = text.index("leaf_value=", len(text) // 2)
        return {"model.txt": text[: text.index(" ", i)]}

    def check(self, k, preds):
        f, s = self.fmt(k), self.shift(k)
        # XGBoost sums in float: about 1e-6 of margin; LightGBM in double.
        tol = 2e-6 if f == 0 else 1e-9
        want = sigmoid(self.margins[f] + s)
        if abs(preds[f] - want) > tol:
            return f"prediction {preds[f]} for row {f} is not content {k}'s {want}"
        other = logit(preds[1 - f]) - s
        with self.lock:
            ref = self.other.setdefault(f, other)
        if abs(other - ref) > (2e-5 if f == 0 else 1e-9):
            return f"row {1 - f}: margin {other} + shift is not the {ref} of content {k}'s format"
        return None


# ---- publishing ---------------------------------------------------------------------------

def write_files(folder, files):
    folder.mkdir()
    for n, text in files.items():
        (folder / n).write_text(text)


class Publisher:
    """Publishes one model's versions; `valid` maps each version number published valid to
    the content it holds (the clients read it)."""

    OPS = ("rename", "ready", "half", "symlink", "renumber", "rename", "corrupt")

    def __init__(self, repo, model):
        self.repo, self.model = repo, model
        self.dir = repo / model.name
        self.stage = repo / f".stage-{model.name}"
        self.targets = repo / f".targets-{model.name}"  # symlink targets, inside the repository
        self.dir.mkdir()
        self.stage.mkdir()
        self.targets.mkdir()
        write_files(self.dir / "1", model.artifacts(1))
        self.valid = {1: 1}
        self.next = 2
        self.content = 2
        self.retired = []   # hidden folders that were versions, for renumbering
        self.corrupt = 0
        self.history = [1]

    def publish(self, op):
        """Performs op with the next version number; returns (version, True if it must
        serve, False if it must fail to load)."""
        v, k = self.next, self.content
        self.next += 1
        path = self.dir / str(v)
        if op == "renumber" and not self.retired:
            op = "rename"
        if op == "corrupt":
            self.corrupt += 1
            files = self.model.corrupt(k)
            if v % 2:  # renamed in whole: loads (and fails) at once
                write_files(self.stage / str(v), files)
                os.rename(self.stage / str(v), path)
            else:
                write_files(path, files)
                (path / "READY").write_text("")
            return v, False
        if op == "renumber":  # an old version folder renamed to a new number
            old_v, old = self.retired.pop()
            self.valid[v] = self.valid[old_v]
            os.rename(old, path)
            return v, True
        self.content += 1
        self.valid[v] = k  # before the files appear: a client may see it at once
        files = self.model.artifacts(k)
        if op == "rename":
            write_files(self.stage / str(v), files)
            os.rename(self.stage / str(v), path)
        elif op == "ready":
            write_files(path, files)
            (path / "READY").write_text("")
        elif op == "half":  # the stability check must wait for the second half
            path.mkdir()
            (n, text), = files.items()
            with open(path / n, "w") as f:
                f.write(text[: len(text) // 2])
                f.flush()
                time.sleep(0.02)
                f.write(text[len(text) // 2:])
        elif op == "symlink":
            target = self.targets / str(v)
            write_files(target, files)
            os.symlink(target, self.dir / f".link-{v}")
            os.rename(self.dir / f".link-{v}", path)
        else:
            raise AssertionError(op)
        return v, True

    def remove_failed(self, v):
        path = self.dir / str(v)
        if v % 3:
            shutil.rmtree(path)
        else:
            os.rename(path, self.dir / f".failed-{v}")  # renamed out of sight

    def served(self, v):
        """v serves now: versions two back go, by deletion or by renaming them out."""
        self.history.append(v)
        if len(self.history) < 3:
            return
        old = self.history.pop(0)
        path = self.dir / str(old)
        if path.is_symlink():
            path.unlink()
        elif old % 2:
            hidden = self.dir / f".retired-{old}"
            os.rename(path, hidden)
            self.retired.append((old, hidden))
        else:
            shutil.rmtree(path)


class Client(threading.Thread):
    def __init__(self, d, model, valid):
        super().__init__(daemon=True)
        self.d, self.model, self.valid = d, model, valid
        self.stop = threading.Event()
        self.ok, self.failures, self.versions = 0, [], set()

    def run(self):
        conn = self.d.connection(timeout=10)
        path = f"/v1/models/{self.model.name}:predict"
        while not self.stop.is_set():
            try:
                st, _, rb = self.d.request("POST", path, self.model.body, conn=conn)
            except Exception as e:  # noqa: BLE001 - any transport failure is a failed request
                self.failures.append(f"transport: {e!r}")
                conn = self.d.connection(timeout=10)
                continue
            if st != 200:
                self.failures.append(f"HTTP {st}: {rb}")
                continue
            v = rb["model"]["version"]
            if v not in self.valid:
                self.failures.append(f"{self.model.name} answered by version {v}, never published valid")
                continue
            problem = self.model.check(self.valid[v], rb["predictions"])
            if problem:
                self.failures.append(f"{self.model.name} version {v}: {problem}")
                continue
            self.ok += 1
            self.versions.add(v)


def load_errors(d, name):
    st, _, text = d.request("GET", "/metrics")
    assert st == 200
    m = re.search(r'^modeld_model_load_total\{model="%s",result="error"\} (\d+)$' % name, text, re.M)
    return int(m.group(1)) if m else 0


def test_reload_under_load_loses_nothing(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    pubs = [Publisher(repo, LR()), Publisher(repo, GBDT())]
    t_start = time.monotonic()
    with Daemon(repo, config=CONFIG) as d:
        clients = [Client(d, p.model, p.valid) for p in pubs for _ in range(2)]
        for c in clients:
            c.start()
        time.sleep(0.3)

        def wait(p, v, must_serve):
            end = time.monotonic() + DEADLINE_S
            while time.monotonic() < end:
                if must_serve:
                    st, _, rb = d.request("GET", f"/v1/models/{p.model.name}")
                    if st == 200 and rb["version"] == v:
                        return
                elif load_errors(d, p.model.name) >= p.corrupt:  # more: checked at the end
                    return
                time.sleep(0.02)
            pytest.fail(f"{p.model.name} version {v} did not {'serve' if must_serve else 'fail'} "
                        f"within {DEADLINE_S}s")

        step = 0
        while any(len(p.valid) <= N_VALID for p in pubs):
            # Both models change at once; the GBDT schedule runs one op behind the LR one.
            published = []
            for i, p in enumerate(pubs):
                if len(p.valid) <= N_VALID:
                    published.append((p,) + p.publish(Publisher.OPS[(step + i) % len(Publisher.OPS)]))
            for p, v, must_serve in published:
                wait(p, v, must_serve)
                if must_serve:
                    p.served(v)
                else:
                    p.remove_failed(v)
            step += 1

        time.sleep(0.3)
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(10)
        st, _, text = d.request("GET", "/metrics")
    elapsed = time.monotonic() - t_start

    failures = [f for c in clients for f in c.failures]
    assert not failures, f"{len(failures)} failed requests, e.g. {failures[:3]}"
    assert all(c.ok > 50 for c in clients), [c.ok for c in clients]
    for p in pubs:
        assert len(p.valid) == N_VALID + 1 and p.corrupt >= 7
        served = set().union(*(c.versions for c in clients if c.model is p.model))
        assert len(served) >= N_VALID // 2, f"{p.model.name}: only versions {sorted(served)} answered"
        # Exactly the corrupt artifacts failed: no half-written file was ever loaded.
        assert f'modeld_model_load_total{{model="{p.model.name}",result="error"}} {p.corrupt}\n' in text
        assert f'modeld_model_version{{model="{p.model.name}"}} {max(p.valid)}\n' in text
    # Both LightGBM and XGBoost versions answered.
    assert set(pubs[1].model.other) == {0, 1}
    assert elapsed < 90, f"took {elapsed:.0f}s"


# ---- the settle wait applies to folders written in place, not to folders renamed in -------

def test_renamed_folder_loads_without_waiting_to_settle(tmp_path):
    """A version folder renamed or symlinked into place arrived complete and loads at once;
    one written in place, or renamed in and then written to, waits repository_settle_ms."""
    settle_s = 4.0
    repo = tmp_path / "repo"
    m = repo / "m"
    stage = repo / ".stage"
    stage.mkdir(parents=True)
    m.mkdir()
    write_files(m / "1", LR().artifacts(1))
    with Daemon(repo, config={"repository_poll_ms": 0, "repository_settle_ms": int(settle_s * 1000)}) as d:
        def version():
            st, _, rb = d.request("GET", "/v1/models/m")
            assert st == 200
            return rb["version"]

        def time_to_serve(v):
            t0 = time.monotonic()
            while version() != v:
                assert time.monotonic() - t0 < 3 * settle_s, f"version {v} never served"
                time.sleep(0.01)
            return time.monotonic() - t0

        # Written in place, complete, no READY: waits for the settle time.
        t_written = time.monotonic()
        write_files(m / "2", LR().artifacts(2))
        time.sleep(1.0)
        assert version() == 1, "a folder written in place loaded before settling"
        time_to_serve(2)
        assert time.monotonic() - t_written >= settle_s - 0.2

        # Renamed in whole: at once (well under the settle time).
        write_files(stage / "3", LR().artifacts(3))
        os.rename(stage / "3", m / "3")
        took = time_to_serve(3)
        assert took < settle_s / 2, f"renamed folder took {took:.2f}s"

        # Symlinked in whole: at once too.
        write_files(repo / ".target-4", LR().artifacts(4))
        os.symlink(repo / ".target-4", m / "4")
        took = time_to_serve(4)
        assert took < settle_s / 2, f"symlinked folder took {took:.2f}s"

        # Renamed in while its file is still being written: the write after the rename
        # makes it wait for the settle time like any folder written in place. The second
        # half follows the rename at once (well before the 100 ms debounce ends), and its
        # mtime is set 50 ms past the rename so that the test does not depend on the
        # filesystem's timestamp tick.
        text = next(iter(LR().artifacts(5).values()))
        (stage / "5").mkdir()
        with open(stage / "5" / "lr.json", "w") as f:
            f.write(text[: len(text) // 2])
            f.flush()
            os.rename(stage / "5", m / "5")
            f.write(text[len(text) // 2:])
        renamed_ns = os.stat(m / "5").st_ctime_ns
        os.utime(m / "5" / "lr.json", ns=(renamed_ns + 50_000_000, renamed_ns + 50_000_000))
        t_done = time.monotonic()
        time.sleep(1.0)
        assert version() == 4, "a folder written to after its rename loaded before settling"
        time_to_serve(5)
        assert time.monotonic() - t_done >= settle_s - 0.2
        assert load_errors(d, "m") == 0, "a half-written file was loaded"
