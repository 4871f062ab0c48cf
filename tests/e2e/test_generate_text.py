"""Text generation end to end: the tiny_llama fixture's weights (vocabulary 512) with a
SentencePiece BPE tokenizer trained here by python3-sentencepiece (vocabulary 512, ChatML
pieces) and exported by tools/sp_to_hf_tokenizer.py. The weights are random, so the text is
gibberish, but every id and every byte is checked against sentencepiece's own encode and
decode: text prompts, stop strings, streamed text, the OpenAI routes (plain HTTP here; the
official client in test_openai_client.py), the Open Inference Protocol text model, and
invalid UTF-8."""

import json
import shutil
import subprocess

import pytest
import sentencepiece as spm

from conftest import REPO_ROOT, Daemon, assert_error

FIXTURES = (REPO_ROOT / ".." / "shared" / "fixtures" / "transformer").resolve()
CORPUS = REPO_ROOT / "tests" / "fixtures" / "tokenizer" / "corpus.txt"
PROMPT = "In the beginning God created the heaven and the earth."


@pytest.fixture(scope="module")
def sp_and_repo(tmp_path_factory):
    work = tmp_path_factory.mktemp("sp")
    # The corpus's ASCII lines: a vocabulary of 512 (as the weights) cannot cover its
    # CJK and emoji as characters; those still encode through byte fallback.
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    (work / "train.txt").write_text("\n".join(l for l in lines if l.isascii()))
    spm.SentencePieceTrainer.train(
        input=str(work / "train.txt"), model_prefix=str(work / "sp"), model_type="bpe", vocab_size=512,
        byte_fallback=True, character_coverage=1.0, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=True, unk_id=0,
        bos_id=1, eos_id=2, pad_id=-1, user_defined_symbols=["<|im_start|>", "<|im_end|>"],
        minloglevel=2, num_threads=1)
    repo = tmp_path_factory.mktemp("text_repo")
    v = repo / "tiny_chat" / "1"
    v.mkdir(parents=True)
    subprocess.run(["/usr/bin/python3", str(REPO_ROOT / "tools" / "sp_to_hf_tokenizer.py"),
                    "--chat-template", "chatml", str(work / "sp.model"), str(v)], check=True)
    (v / "tokenizer.bin").unlink()  # tokenizer.json is the one under test here
    for f in ("config.json", "model.safetensors"):
        shutil.copy(FIXTURES / "tiny_llama" / f, v / f)
    # The same model with the chat template chosen by the repository's config.json.
    shutil.copytree(v, repo / "tiny_l2" / "1")
    (repo / "tiny_l2" / "config.json").write_text(json.dumps({"chat_template": "llama2"}))
    return spm.SentencePieceProcessor(model_file=str(work / "sp.model")), repo


@pytest.fixture(scope="module")
def sp(sp_and_repo):
    return sp_and_repo[0]


@pytest.fixture(scope="module")
def daemon(sp_and_repo):
    with Daemon(sp_and_repo[1]) as d:
        yield d


def generate(d, body):
    return d.request("POST", "/v1/models/tiny_chat:generate", body)


def sse(d, path, body):
    c = d.connection(timeout=30)
    c.request("POST", path, json.dumps(dict(body, stream=True)), {"Content-Type": "application/json"})
    resp = c.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "text/event-stream"
    events = [b[len("data: "):] for b in resp.read().decode().split("\n\n") if b.strip()]
    c.close()
    return events


def test_text_prompt_is_encoded_like_sentencepiece(daemon, sp):
    ids = [1] + sp.encode(PROMPT)  # add_bos_token: true in the exported config
    st, _, by_text = generate(daemon, {"prompt": PROMPT, "max_tokens": 16, "ignore_eos": True})
    st2, _, by_ids = generate(daemon, {"prompt": ids, "max_tokens": 16, "ignore_eos": True})
    assert st == st2 == 200
    assert by_text["usage"]["prompt_tokens"] == len(ids)
    assert by_text["token_ids"] == by_ids["token_ids"]
    assert by_text["text"] == sp.decode(by_text["token_ids"])


def test_stop_string_cuts_the_text(daemon, sp):
    st, _, full = generate(daemon, {"prompt": PROMPT, "max_tokens": 24, "ignore_eos": True})
    text = full["text"]
    stop = text[len(text) // 2: len(text) // 2 + 3]
    assert stop.strip(), f"pick another slice of {text!r}"
    st, _, cut = generate(daemon, {"prompt": PROMPT, "max_tokens": 24, "ignore_eos": True, "stop": [stop, "\x01never"]})
    assert st == 200
    assert cut["finish_reason"] == "stop"
    assert cut["text"] == text[: text.index(stop)]
    assert len(cut["token_ids"]) < 24


def test_streamed_text_equals_the_answer(daemon):
    body = {"prompt": PROMPT, "max_tokens": 20, "ignore_eos": True}
    whole = generate(daemon, body)[2]
    events = [json.loads(e) for e in sse(daemon, "/v1/models/tiny_chat:generate", body)]
    assert "".join(e.get("text", "") for e in events[:-1]) == whole["text"]
    assert [t for e in events[:-1] for t in e["token_ids"]] == whole["token_ids"]


def test_invalid_utf8_prompt_is_400(daemon):
    body = b'{"prompt": "ok \xff\xfe bad", "max_tokens": 2}'
    resp = daemon.request("POST", "/v1/models/tiny_chat:generate", body, headers={"Content-Type": "application/json"})
    assert_error(resp, 400, "invalid_argument", ["UTF-8", "byte 3"])


def test_completions_shape(daemon, sp):
    body = {"model": "tiny_chat", "prompt": PROMPT, "max_tokens": 12, "temperature": 0, "ignore_eos": True, "logprobs": 2}
    st, _, c = daemon.request("POST", "/v1/completions", body)
    assert st == 200, c
    assert c["object"] == "text_completion" and c["model"] == "tiny_chat" and c["id"].startswith("cmpl-")
    choice = c["choices"][0]
    assert choice["finish_reason"] == "length" and choice["index"] == 0
    assert c["usage"] == {"prompt_tokens": 1 + len(sp.encode(PROMPT)), "completion_tokens": 12, "total_tokens": 13 + len(sp.encode(PROMPT))}
    native = generate(daemon, {"prompt": PROMPT, "max_tokens": 12, "ignore_eos": True})[2]
    assert choice["text"] == native["text"]
    lp = choice["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == 12
    assert all(len(t) <= 2 for t in lp["top_logprobs"])
    # streamed: text chunks, a final finish_reason, usage when asked, then [DONE]
    events = sse(daemon, "/v1/completions", dict(body, logprobs=None, stream_options={"include_usage": True}))
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 12
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert "".join(ch["choices"][0]["text"] for ch in chunks[:-1]) == native["text"]


def test_chat_uses_the_chatml_template(daemon, sp):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who begat Enos?"}]
    rendered = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWho begat Enos?<|im_end|>\n<|im_start|>assistant\n"
    body = {"model": "tiny_chat", "messages": msgs, "max_tokens": 10, "temperature": 0}
    st, _, c = daemon.request("POST", "/v1/chat/completions", body)
    assert st == 200, c
    assert c["object"] == "chat.completion" and c["id"].startswith("chatcmpl-")
    assert c["usage"]["prompt_tokens"] == 1 + len(sp.encode(rendered))
    msg = c["choices"][0]["message"]
    assert msg["role"] == "assistant"
    native = generate(daemon, {"prompt": [1] + sp.encode(rendered), "max_tokens": 10, "stop_token_ids": [sp.piece_to_id("<|im_end|>")]})[2]
    assert msg["content"] == native["text"]
    events = sse(daemon, "/v1/chat/completions", body)
    chunks = [json.loads(e) for e in events[:-1]]
    assert events[-1] == "[DONE]"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(ch["object"] == "chat.completion.chunk" for ch in chunks)
    assert "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks) == msg["content"]


def test_v2_text_model(daemon):
    st, _, meta = daemon.request("GET", "/v2/models/tiny_chat")
    assert st == 200
    assert meta["inputs"] == [{"name": "text_input", "datatype": "BYTES", "shape": [1]}]
    assert meta["outputs"] == [{"name": "text_output", "datatype": "BYTES", "shape": [1]}]
    req = {"id": "q1", "inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1], "data": [PROMPT]}],
           "parameters": {"max_tokens": 8, "ignore_eos": True}}
    st, _, out = daemon.request("POST", "/v2/models/tiny_chat/infer", req)
    assert st == 200, out
    native = generate(daemon, {"prompt": PROMPT, "max_tokens": 8, "ignore_eos": True})[2]
    assert out["id"] == "q1" and out["model_name"] == "tiny_chat" and out["model_version"] == "1"
    assert out["outputs"] == [{"name": "text_output", "datatype": "BYTES", "shape": [1], "data": [native["text"]]}]
    assert out["parameters"]["completion_tokens"] == 8
    bad = dict(req, inputs=[dict(req["inputs"][0], datatype="FP32")])
    st, _, err = daemon.request("POST", "/v2/models/tiny_chat/infer", bad)
    assert st == 400 and "BYTES" in err["error"]


@pytest.mark.parametrize("path,body,mentions", [
    ("/v1/completions", {"prompt": "x"}, ["model"]),
    ("/v1/completions", {"model": "nope", "prompt": "x"}, ["nope"]),
    ("/v1/completions", {"model": "tiny_chat", "prompt": "x", "n": 2}, ["n"]),
    ("/v1/completions", {"model": "tiny_chat", "prompt": "x", "echo": True}, ["echo"]),
    ("/v1/completions", {"model": "tiny_chat", "prompt": "x", "frobnicate": 1}, ["frobnicate"]),
    ("/v1/chat/completions", {"model": "tiny_chat", "messages": []}, ["messages"]),
    ("/v1/chat/completions", {"model": "tiny_chat", "messages": [{"role": "robot", "content": "x"}]}, ["role"]),
    ("/v1/chat/completions", {"model": "tiny_chat", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}, ["top_logprobs"]),
])
def test_openai_bad_requests(daemon, path, body, mentions):
    st, _, err = daemon.request("POST", path, body)
    assert st in (400, 404), err
    assert all(m in err["error"]["message"] for m in mentions), err


def test_chat_template_from_model_config(daemon):
    st, _, meta = daemon.request("GET", "/v1/models/tiny_l2")
    assert meta["generation"]["chat_template"] == "llama2"
    st, _, meta = daemon.request("GET", "/v1/models/tiny_chat")
    assert meta["generation"]["chat_template"] == "chatml"
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " Who begat Enos? "}]
    st, _, c = daemon.request("POST", "/v1/chat/completions", {"model": "tiny_l2", "messages": msgs, "max_tokens": 4,
                                                               "temperature": 0})
    assert st == 200, c
    # Llama-2's template: BOS, [INST], the <<SYS>> block, the stripped user text, [/INST].
    rendered = "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWho begat Enos? [/INST]"
    st, _, native = daemon.request("POST", "/v1/models/tiny_l2:generate", {"prompt": rendered, "max_tokens": 4,
                                                                           "temperature": 0})
    assert c["usage"]["prompt_tokens"] == native["usage"]["prompt_tokens"]
    assert c["choices"][0]["message"]["content"] == native["text"]
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    st, _, err = daemon.request("POST", "/v1/chat/completions", {"model": "tiny_l2", "messages": bad})
    assert st == 400 and "alternating" in err["error"]["message"]
