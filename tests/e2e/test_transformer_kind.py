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
