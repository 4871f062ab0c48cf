"""Model kind "transformer" in a repository: version folders holding a Hugging Face model
(config.json + model.safetensors) or a llama2.c model.bin load through the registry like the
tabular kinds, describe themselves as task "generation", and the tabular endpoints refuse
them with a clear 400 instead of scoring. (Generation itself is tested at the C API level in
tests/unit/test_transformer.c against the fixtures' PyTorch references.)"""

import json
import shutil
from pathlib import Path

from conftest import Daemon

FIX = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "transformer"


def make_repo(root):
    gpt2 = root / "tiny_gpt2"
    (gpt2 / "1").mkdir(parents=True)
    (gpt2 / "config.json").write_text(json.dumps({"kind": "transformer"}))
    for f in ("config.json", "model.safetensors"):
        shutil.copy(FIX / "tiny_gpt2" / f, gpt2 / "1" / f)
    llama = root / "tiny_llama_bin"
    (llama / "1").mkdir(parents=True)
    shutil.copy(FIX / "tiny_llama" / "model.bin", llama / "1" / "model.bin")  # kind detected
    return root


def test_transformer_versions_load_and_tabular_routes_refuse(tmp_path):
    with Daemon(make_repo(tmp_path / "repo")) as d:
        for name in ("tiny_gpt2", "tiny_llama_bin"):
            status, _, body = d.request("GET", f"/v1/models/{name}")
            assert status == 200, body
            assert body["kind"] == "transformer"
            assert body["state"] == "ready"
            assert body["task"] == "generation"
            assert body["inputs"] == [] and body["outputs"] == []
            status, _, body = d.predict(name, [[1.0, 2.0]])
            assert status == 400, body
            assert body["error"]["code"] == "invalid_argument"
            assert f"model '{name}' (kind transformer) does not score rows" in body["error"]["message"]
        status, _, body = d.request("GET", "/v1/models")
        assert status == 200
        kinds = {m["name"]: m["kind"] for m in body["models"]}
        assert kinds["tiny_gpt2"] == "transformer"


def threads_by_name(pid):
    """{thread name: [nice value, ...]} of a process, from /proc."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        nice = int(stat.rsplit(")", 1)[1].split()[16])  # field 19 of stat(5)
        out.setdefault(name, []).append(nice)
    return out


def test_generation_threads_do_not_inherit_the_loaders_low_priority(tmp_path):
    """Loads run at nice 10 so they take only what serving leaves. A model's generation
    threads start with its first request, on the event loop, and so run at the daemon's own
    priority: made during the load they would inherit nice 10 for good (an unprivileged
    process cannot raise it again)."""
    with Daemon(make_repo(tmp_path / "repo"), config={"generate_threads": 2}) as d:
        before = threads_by_name(d.proc.pid)
        assert "modeld-gen" not in before, before
        # nice 10, or the test's own nice value if that is already lower (unprivileged)
        assert before.get("modeld-load") and len(set(before["modeld-load"])) == 1, before
        assert before["modeld-load"][0] >= 10, before
        status, _, body = d.request("POST", "/v1/models/tiny_llama_bin:generate",
                                    {"prompt": [1, 2, 3], "max_tokens": 2})
        assert status == 200, body
        assert len(body["token_ids"]) == 2
        after = threads_by_name(d.proc.pid)
        own = after["modeld-worker"][0]
        # one engine (and one matmul helper) per model that has generated: tiny_llama_bin
        assert after.get("modeld-gen") == [own], after
        assert after.get("modeld-team") == [own], after
