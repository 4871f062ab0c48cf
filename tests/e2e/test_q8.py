"""The per-model setting "weights": "q8_0" through the real daemon: a transformer
configured so loads with its matmul weights quantized (its metadata says so and counts the
bytes), serves :generate, and picks the same first tokens as the fixtures' float64
references; a bad value is refused naming the key while the other models serve. (The
numerics are tested in tests/unit/test_q8.c.)"""

import json
import shutil

from conftest import REPO_ROOT, Daemon

FIXTURES = (REPO_ROOT / ".." / "shared" / "fixtures" / "transformer").resolve()


def make_repo(root):
    for name, fixture, files, weights in (
        ("llama_q8", "tiny_llama", ["config.json", "model.safetensors"], "q8_0"),
        ("llama_bin_q8", "tiny_llama", ["model.bin"], "q8_0"),
        ("gpt2_q8", "tiny_gpt2", ["config.json", "model.safetensors"], "q8_0"),
        ("llama_stored", "tiny_llama", ["config.json", "model.safetensors"], "stored"),
        ("llama_bad", "tiny_llama", ["config.json", "model.safetensors"], "int4"),
    ):
        v = root / name / "1"
        v.mkdir(parents=True)
        (root / name / "config.json").write_text(json.dumps({"kind": "transformer", "weights": weights}))
        for f in files:
            shutil.copy(FIXTURES / fixture / f, v / f)
    return root


def test_q8_model_serves_generate(tmp_path):
    served = (("llama_q8", "tiny_llama"), ("llama_bin_q8", "tiny_llama"),
              ("gpt2_q8", "tiny_gpt2"), ("llama_stored", "tiny_llama"))
    with Daemon(make_repo(tmp_path / "repo"),
                config={"ready_models": ",".join(name for name, _ in served)}) as d:
        for name, fixture in served:
            st, _, meta = d.request("GET", f"/v1/models/{name}")
            assert st == 200 and meta["state"] == "ready", meta
            g = meta["generation"]
            q8 = name != "llama_stored"
            assert g["weights"] == ("q8_0" if q8 else "stored"), g
            assert (g["quantized_bytes"] > 0) == q8, g
            assert g["weight_bytes_per_token"] > 0
            ref = json.loads((FIXTURES / fixture / "reference.json").read_text())
            for case in ref["cases"]:
                st, _, body = d.request("POST", f"/v1/models/{name}:generate",
                                        {"prompt": case["ids"], "max_tokens": 4, "temperature": 0,
                                         "ignore_eos": True})
                assert st == 200, body
                assert len(body["token_ids"]) == 4 and body["finish_reason"] == "length", body
                # the first pick is the last-position argmax, which q8_0 keeps on every case
                assert body["token_ids"][0] == case["greedy_continuation"][0], (name, body)
                if not q8:
                    assert body["token_ids"] == case["greedy_continuation"][:4]
        # the quantized copy is about a quarter of the F32 matrices it replaces
        sizes = {n: d.request("GET", f"/v1/models/{n}")[2]["generation"] for n in ("llama_q8", "llama_stored")}
        assert sizes["llama_q8"]["weight_bytes_per_token"] < sizes["llama_stored"]["weight_bytes_per_token"] / 2


def test_bad_weights_value_names_the_key(tmp_path):
    with Daemon(make_repo(tmp_path / "repo"), config={"ready_models": "llama_q8"}) as d:
        d.wait_settled("llama_bad")
        st, _, meta = d.request("GET", "/v1/models/llama_bad")
        assert st == 200, meta
        assert meta["state"] == "failed", meta
        assert "weights" in meta["last_error"] and "q8_0" in meta["last_error"], meta
        st, _, body = d.request("POST", "/v1/models/llama_q8:generate", {"prompt": [1, 2, 3], "max_tokens": 2})
        assert st == 200, body
