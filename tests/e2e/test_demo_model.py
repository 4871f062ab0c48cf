"""The bundled demo transformer (conf/models/kjv_llama, trained by tools/train_demo_llama.py)
against the reference its training script computed with PyTorch from the same F16 weights
(tests/fixtures/kjv_llama_reference.json): prompt ids (python3-sentencepiece), greedy
continuations, their text, and the first step's log-probabilities."""

import json
import math
import shutil

import pytest

from conftest import REPO_ROOT, Daemon

DEMO = REPO_ROOT / "conf" / "models" / "kjv_llama"
REFERENCE = REPO_ROOT / "tests" / "fixtures" / "kjv_llama_reference.json"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    repo = tmp_path_factory.mktemp("demo")
    shutil.copytree(DEMO, repo / "kjv_llama")
    with Daemon(repo) as d:
        yield d


REF = json.loads(REFERENCE.read_text())


@pytest.mark.parametrize("case", REF["prompts"], ids=lambda c: c["prompt"][:20])
def test_greedy_equals_pytorch(daemon, case):
    n = len(case["greedy_ids"])
    st, _, body = daemon.request("POST", "/v1/models/kjv_llama:generate", {
        "prompt": case["prompt"], "max_tokens": n, "temperature": 0, "ignore_eos": True, "logprobs": 5})
    assert st == 200, body
    assert body["usage"]["prompt_tokens"] == len(case["prompt_ids"])
    assert body["token_ids"] == case["greedy_ids"]
    assert body["text"] == case["greedy_text"]
    top = case["last_logits_top20"]
    first = body["logprobs"][0]
    assert [t["token_id"] for t in first["top"]] == top["ids"][:5]
    for t, v in zip(first["top"], top["values"][:5]):
        assert math.isclose(t["logprob"], v - case["last_logsumexp"], abs_tol=2e-3)
    # The same prompt as ids gives the same continuation.
    st, _, by_ids = daemon.request("POST", "/v1/models/kjv_llama:generate", {
        "prompt": case["prompt_ids"], "max_tokens": n, "temperature": 0, "ignore_eos": True})
    assert by_ids["token_ids"] == case["greedy_ids"]
