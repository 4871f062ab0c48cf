"""Hot reload under continuous load: new versions published by rename, with a READY marker,
half-written, corrupt, deleted, swapped through symlinks — while clients keep predicting.
No request may fail, every answer names a version that was published valid, and its
prediction is that version's."""
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, Daemon, lr_document, sigmoid

FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "gbdt" / "xgb_binary"
FEATURES = ["a", "b", "c"]
ROW = [1.0, -2.0, 0.5]
CONFIG = {"repository_poll_ms": 200, "repository_settle_ms": 100}


def lr_version_doc(k):
    """Version k predicts sigmoid(k / 10 + ...): the answer identifies the version."""
    return lr_document(FEATURES, [0.5, 0.25, -1.0], k / 10.0)


def lr_expected(k):
    return sigmoid(k / 10.0 + 0.5 * ROW[0] + 0.25 * ROW[1] - 1.0 * ROW[2])


def publish_by_rename(model_dir, k, text, name="lr.json"):
    tmp = model_dir.parent / f".tmp-{model_dir.name}-{k}"
    tmp.mkdir()
    (tmp / name).write_text(text)
    os.rename(tmp, model_dir / str(k))


class Client(threading.Thread):
    def __init__(self, d, model, body, check):
        super().__init__(daemon=True)
        self.d, self.model, self.body, self.check = d, model, body, check
        self.stop = threading.Event()
        self.ok, self.failures, self.versions = 0, [], set()

    def run(self):
        conn = self.d.connection(timeout=10)
        while not self.stop.is_set():
            try:
                st, _, rb = self.d.request("POST", f"/v1/models/{self.model}:predict", self.body, conn=conn)
            except Exception as e:  # noqa: BLE001 - any transport failure is a failed request
                self.failures.append(f"transport: {e!r}")
                conn = self.d.connection(timeout=10)
                continue
            if st != 200:
                self.failures.append(f"HTTP {st}: {rb}")
                continue
            problem = self.check(rb)
            if problem:
                self.failures.append(problem)
            else:
                self.ok += 1
                self.versions.add(rb["model"]["version"])


def test_reload_under_load_loses_nothing(tmp_path):
    repo = tmp_path / "repo"
    lr_dir = repo / "lr"
    gb_dir = repo / "gbdt"
    lr_dir.mkdir(parents=True)
    gb_dir.mkdir(parents=True)
    (lr_dir / "1").mkdir()
    (lr_dir / "1" / "lr.json").write_text(json.dumps(lr_version_doc(1)))
    gbdt_text = (FIXTURES / "model.json").read_text()
    (gb_dir / "1").mkdir()
    (gb_dir / "1" / "model.json").write_text(gbdt_text)
    # for symlink swaps: a hidden folder inside the repository (the Kubernetes "..data"
    # layout); targets outside it are refused unless allow_symlinks_outside
    targets = repo / ".targets"
    targets.mkdir()
    header, first = (FIXTURES / "input.csv").read_text().splitlines()[:2]
    gb_row = [float(x) if x else None for x in first.split(",")]
    gb_want = float((FIXTURES / "expected_pred.csv").read_text().splitlines()[1])

    valid_lr = {1}
    valid_gb = {1}

    def check_lr(rb):
        v = rb["model"]["version"]
        if v not in valid_lr:
            return f"lr answered by version {v}, never published valid"
        if abs(rb["predictions"][0] - lr_expected(v)) > 1e-12:
            return f"lr version {v}: prediction {rb['predictions'][0]} is not that version's"
        return None

    def check_gb(rb):
        v = rb["model"]["version"]
        if v not in valid_gb:
            return f"gbdt answered by version {v}, never published valid"
        if abs(rb["predictions"][0] - gb_want) > 1e-6:
            return f"gbdt version {v}: prediction {rb['predictions'][0]} != {gb_want}"
        return None

    with Daemon(repo, config=CONFIG) as d:
        clients = [Client(d, "lr", {"instances": [ROW]}, check_lr) for _ in range(3)]
        clients.append(Client(d, "gbdt", {"instances": [gb_row]}, check_gb))
        for c in clients:
            c.start()
        time.sleep(0.3)

        def wait_serving(model, k, deadline_s=10):
            end = time.time() + deadline_s
            while time.time() < end:
                st, _, rb = d.request("GET", f"/v1/models/{model}")
                if st == 200 and rb["version"] == k:
                    return
                time.sleep(0.02)
            pytest.fail(f"{model} version {k} not serving after {deadline_s}s: {rb}")

        for k in range(2, 52):
            way = k % 5
            if way == 0:    # rename into place
                valid_lr.add(k)
                publish_by_rename(lr_dir, k, json.dumps(lr_version_doc(k)))
            elif way == 1:  # written in place with a READY marker last
                valid_lr.add(k)
                (lr_dir / str(k)).mkdir()
                (lr_dir / str(k) / "lr.json").write_text(json.dumps(lr_version_doc(k)))
                (lr_dir / str(k) / "READY").write_text("")
            elif way == 2:  # half-written, completed a little later (stability check)
                valid_lr.add(k)
                (lr_dir / str(k)).mkdir()
                text = json.dumps(lr_version_doc(k))
                with open(lr_dir / str(k) / "lr.json", "w") as f:
                    f.write(text[: len(text) // 2])
                    f.flush()
                    time.sleep(0.03)
                    f.write(text[len(text) // 2:])
            elif way == 3:  # a symlink swapped atomically to a complete folder
                valid_lr.add(k)
                target = targets / f"v{k}"
                target.mkdir()
                (target / "lr.json").write_text(json.dumps(lr_version_doc(k)))
                tmp_link = lr_dir / f".link-{k}"
                os.symlink(target, tmp_link)
                os.rename(tmp_link, lr_dir / str(k))
            else:           # corrupt: must never serve; the previous version keeps serving
                (lr_dir / str(k)).mkdir()
                (lr_dir / str(k) / "lr.json").write_text('{"format": "modeld-lr", "coef": [[1, 2')
                (lr_dir / str(k) / "READY").write_text("")
                time.sleep(0.3)
                shutil.rmtree(lr_dir / str(k))  # deleted again
                continue
            wait_serving("lr", k)
            # GBDT: a new version of the same forest every other round; old ones deleted.
            if k % 2 == 0:
                valid_gb.add(k)
                publish_by_rename(gb_dir, k, gbdt_text, name="model.json")
                wait_serving("gbdt", k)
            # Old versions go away (the policy serves the latest; folders are removed too).
            old = lr_dir / str(k - 3)
            if old.is_symlink():
                old.unlink()
            elif old.is_dir():
                shutil.rmtree(old)

        time.sleep(0.3)
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(10)
        st, _, text = d.request("GET", "/metrics")

    failures = [f for c in clients for f in c.failures]
    assert not failures, f"{len(failures)} failed requests, e.g. {failures[:3]}"
    assert all(c.ok > 20 for c in clients), [c.ok for c in clients]
    served_lr = set().union(*(c.versions for c in clients[:3]))
    assert len(served_lr) >= 20, f"only versions {sorted(served_lr)} answered"
    assert 'modeld_model_load_total{model="lr",result="error"}' in text
    assert 'modeld_model_version{model="lr"} 51' in text
