""":generate through the real daemon on the tiny transformer fixtures (../shared/fixtures/
transformer, references computed by PyTorch in float64; see the README there). These
folders have no tokenizer, so prompts are token ids: greedy continuations must equal the
references for every folder (safetensors F32/BF16/F16, GPT-2, and llama2.c model.bin), as
one JSON answer and as Server-Sent Events; log-probabilities must match the reference
logits; 32 concurrent streams get what each gets alone; a dropped stream frees its
sequence; limits and bad input are refused clearly."""

import http.client
import json
import math
import shutil
import socket
import struct
import threading
import time

import numpy as np
import pytest

from conftest import REPO_ROOT, Daemon, assert_error

FIXTURES = (REPO_ROOT / ".." / "shared" / "fixtures" / "transformer").resolve()
FOLDERS = {
    "tiny_llama": ("tiny_llama", ["config.json", "model.safetensors"]),
    "tiny_llama_c": ("tiny_llama", ["model.bin"]),
    "tiny_llama_bf16": ("tiny_llama_bf16", ["config.json", "model.safetensors"]),
    "tiny_gpt2": ("tiny_gpt2", ["config.json", "model.safetensors"]),
    "tiny_gpt2_fp16": ("tiny_gpt2_fp16", ["config.json", "model.safetensors"]),
}


def reference(fixture):
    return json.loads((FIXTURES / fixture / "reference.json").read_text())


def write_random_llama2c(path, dim=288, hidden=768, layers=6, heads=6, vocab=32000, seq_len=1024):
    """A random-weight model of llama2.c's stories15M shape: slow enough (tens of ms per
    token here) to catch a stream in the middle."""
    rng = np.random.default_rng(7)
    head_dim = dim // heads
    sizes = [vocab * dim, layers * dim, layers * dim * dim * 4, layers * dim,
             layers * hidden * dim * 3, dim, seq_len * head_dim]
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", dim, hidden, layers, heads, heads, vocab, seq_len))
        for n in sizes:
            f.write((rng.standard_normal(n, dtype=np.float32) * 0.05).tobytes())


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    if not FIXTURES.is_dir():
        pytest.fail(f"no transformer fixtures under {FIXTURES} (shared/ must sit beside the repository)")
    repo = tmp_path_factory.mktemp("gen_repo")
    for name, (fixture, files) in FOLDERS.items():
        v = repo / name / "1"
        v.mkdir(parents=True)
        for f in files:
            shutil.copy(FIXTURES / fixture / f, v / f)
    # A truncated weights file: refused at load, the daemon keeps serving the others.
    bad = repo / "truncated" / "1"
    bad.mkdir(parents=True)
    shutil.copy(FIXTURES / "tiny_llama" / "config.json", bad / "config.json")
    data = (FIXTURES / "tiny_llama" / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    lr = REPO_ROOT / "conf" / "models" / "breast_cancer"
    shutil.copytree(lr, repo / "breast_cancer")
    return repo


@pytest.fixture(scope="module")
def daemon(repo):
    with Daemon(repo, config={"ready_models": "tiny_llama,tiny_gpt2"}) as d:
        d.wait_settled(*FOLDERS, "truncated", "breast_cancer")  # "truncated" fails to load
        yield d


@pytest.fixture(scope="module")
def slow_repo(tmp_path_factory):
    """A model slow enough to catch its streams in the middle (make valgrind leaves these
    tests out: loading 30 MB of weights under valgrind outlasts the harness's deadlines)."""
    repo = tmp_path_factory.mktemp("slow_repo")
    big = repo / "random15m" / "1"
    big.mkdir(parents=True)
    write_random_llama2c(big / "model.bin")
    return repo


def generate(d, model, body, **kw):
    return d.request("POST", f"/v1/models/{model}:generate", body, **kw)


def read_sse(resp):
    """Parses a text/event-stream response into the JSON of each data: event."""
    events = []
    for block in resp.read().decode().split("\n\n"):
        block = block.strip()
        if not block:
            continue
        assert block.startswith("data: "), block
        events.append(json.loads(block[len("data: "):]))
    return events


def stream(d, model, body, conn=None):
    c = conn or d.connection(timeout=30)
    c.request("POST", f"/v1/models/{model}:generate", json.dumps(dict(body, stream=True)),
              {"Content-Type": "application/json"})
    resp = c.getresponse()
    assert resp.status == 200, resp.read()
    assert resp.getheader("Content-Type") == "text/event-stream"
    events = read_sse(resp)
    c.close()
    return events


@pytest.mark.parametrize("model", sorted(FOLDERS))
def test_greedy_equals_reference(daemon, model):
    ref = reference(FOLDERS[model][0])
    for case in ref["cases"]:
        st, _, body = generate(daemon, model, {"prompt": case["ids"], "max_tokens": 20, "ignore_eos": True})
        assert st == 200, body
        assert body["token_ids"] == case["greedy_continuation"], (model, case["length"])
        assert body["finish_reason"] == "length"
        assert body["usage"] == {"prompt_tokens": case["length"], "completion_tokens": 20}
        assert body["model"] == {"name": model, "version": 1}
        assert "text" not in body  # no tokenizer in these folders
        t = body["timings"]
        assert t["prompt_ms"] > 0 and t["per_token_ms"] > 0 and t["tokens_per_second"] > 0


def test_stream_equals_reference(daemon):
    case = reference("tiny_gpt2")["cases"][2]
    events = stream(daemon, "tiny_gpt2", {"prompt": case["ids"], "max_tokens": 20, "ignore_eos": True})
    ids = [t for e in events[:-1] for t in e["token_ids"]]
    assert ids == case["greedy_continuation"]
    last = events[-1]
    assert last["finish_reason"] == "length"
    assert last["usage"] == {"prompt_tokens": case["length"], "completion_tokens": 20}
    assert last["model"] == {"name": "tiny_gpt2", "version": 1}


def test_logprobs_match_reference_logits(daemon):
    case = reference("tiny_llama")["cases"][1]
    logits = np.array(case["last_logits"], dtype=np.float64)
    logp = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
    st, _, body = generate(daemon, "tiny_llama", {"prompt": case["ids"], "max_tokens": 1, "logprobs": 5})
    assert st == 200, body
    first = body["logprobs"][0]
    order = np.argsort(-logp, kind="stable")[:5]
    assert first["token_id"] == case["greedy_continuation"][0] == order[0]
    assert abs(first["logprob"] - logp[first["token_id"]]) < 1e-3
    assert [t["token_id"] for t in first["top"]] == list(order)
    for t in first["top"]:
        assert abs(t["logprob"] - logp[t["token_id"]]) < 1e-3


def test_stop_token_ids(daemon):
    case = reference("tiny_llama")["cases"][2]
    stop = case["greedy_continuation"][5]
    cut = case["greedy_continuation"].index(stop)
    st, _, body = generate(daemon, "tiny_llama",
                           {"prompt": case["ids"], "max_tokens": 20, "stop_token_ids": [stop]})
    assert st == 200, body
    assert body["token_ids"] == case["greedy_continuation"][:cut]
    assert body["finish_reason"] == "stop"


def test_seeded_sampling_is_reproducible(daemon):
    body = {"prompt": [1, 20, 30], "max_tokens": 30, "temperature": 1.0, "top_p": 0.9, "seed": 1234}
    runs = [generate(daemon, "tiny_llama", body)[2]["token_ids"] for _ in range(2)]
    other = generate(daemon, "tiny_llama", dict(body, seed=99))[2]["token_ids"]
    assert runs[0] == runs[1]
    assert other != runs[0]


def test_32_concurrent_streams_match_alone(daemon):
    prompts = [[511, (7 * i) % 500, (13 * i + 5) % 500] for i in range(32)]
    alone = [generate(daemon, "tiny_gpt2", {"prompt": p, "max_tokens": 24, "ignore_eos": True})[2]["token_ids"]
             for p in prompts]
    got = [None] * 32
    errors = []

    def run(i):
        try:
            events = stream(daemon, "tiny_gpt2", {"prompt": prompts[i], "max_tokens": 24, "ignore_eos": True})
            got[i] = [t for e in events[:-1] for t in e["token_ids"]]
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert got == alone


def metric(d, name, labels):
    st, _, text = d.request("GET", "/metrics")
    assert st == 200
    want = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


def test_slow_dropped_stream_frees_its_sequence(slow_repo):
    with Daemon(slow_repo) as d:
        check_dropped_stream(d)


def check_dropped_stream(daemon):
    before = metric(daemon, "modeld_generate_tokens_total", {"model": "random15m", "kind": "completion"}) or 0
    s = socket.create_connection((daemon.host, daemon.port), timeout=10)
    body = json.dumps({"prompt": [1, 2, 3], "max_tokens": 250, "ignore_eos": True, "stream": True}).encode()
    s.sendall(b"POST /v1/models/random15m:generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while b"data: " not in got:
        got += s.recv(4096)
    s.close()  # mid-stream
    deadline = time.monotonic() + 10
    while metric(daemon, "modeld_generate_active_sequences", {"model": "random15m"}) != 0:
        assert time.monotonic() < deadline, "the dropped stream's sequence was not freed"
        time.sleep(0.02)
    done = metric(daemon, "modeld_generate_tokens_total", {"model": "random15m", "kind": "completion"}) - before
    assert 1 <= done < 250, f"{done} tokens: the sequence ran on after the client left"


def test_metrics_count_tokens(daemon):
    before = metric(daemon, "modeld_generate_tokens_total", {"model": "tiny_llama_c", "kind": "completion"}) or 0
    prompt_before = metric(daemon, "modeld_generate_tokens_total", {"model": "tiny_llama_c", "kind": "prompt"}) or 0
    st, _, body = generate(daemon, "tiny_llama_c", {"prompt": [1, 2, 3, 4], "max_tokens": 7})
    assert st == 200
    n = len(body["token_ids"])
    assert metric(daemon, "modeld_generate_tokens_total", {"model": "tiny_llama_c", "kind": "completion"}) == before + n
    assert metric(daemon, "modeld_generate_tokens_total", {"model": "tiny_llama_c", "kind": "prompt"}) == prompt_before + 4
    assert metric(daemon, "modeld_generate_time_to_first_token_seconds_count", {"model": "tiny_llama_c"}) >= 1


@pytest.mark.parametrize("body,code,mentions", [
    ({"prompt": list(range(1, 130)), "max_tokens": 1}, "context_length_exceeded", ["129", "128"]),
    ({"prompt": [1, 2], "max_tokens": 127}, "context_length_exceeded", ["context"]),
    ({"prompt": [1, 2], "max_tokens": -1}, "invalid_argument", ["max_tokens"]),
    ({"prompt": [1, 2], "max_tokens": 10**7}, "limit_exceeded", ["max_tokens", "4096"]),
    ({"prompt": [1, 2], "temperature": -0.5}, "invalid_argument", ["temperature"]),
    ({"prompt": [1, 2], "top_p": 0}, "invalid_argument", ["top_p"]),
    ({"prompt": [1, 2], "top_p": 1.5}, "invalid_argument", ["top_p"]),
    ({"prompt": [1, 2], "min_p": 2}, "invalid_argument", ["min_p"]),
    ({"prompt": [1, 2], "logprobs": 50}, "invalid_argument", ["logprobs"]),
    ({"prompt": [1, 2], "bogus": 1}, "unknown_field", ["bogus"]),
    ({"prompt": [1, 512]}, "invalid_argument", ["prompt[1]", "vocabulary"]),
    ({"prompt": [1, 2.5]}, "invalid_argument", ["prompt[1]"]),
    ({"prompt": []}, "invalid_argument", ["prompt"]),
    ({"prompt": "text"}, "invalid_argument", ["tokenizer"]),
    ({"max_tokens": 3}, "invalid_argument", ["prompt"]),
    ({"prompt": [1, 2], "stop": "x"}, "invalid_argument", ["tokenizer"]),
    ({"prompt": [1, 2], "stop_token_ids": [1] * 17}, "invalid_argument", ["stop_token_ids"]),
    ({"prompt": [1, 2], "stream": "yes"}, "invalid_argument", ["stream"]),
])
def test_bad_requests(daemon, body, code, mentions):
    assert_error(generate(daemon, "tiny_llama", body), 400, code, mentions)


def test_wrong_kind_and_bad_file(daemon):
    assert_error(generate(daemon, "breast_cancer", {"prompt": [1]}), 400, "invalid_argument", [":predict"])
    assert_error(daemon.predict("tiny_llama", [[1.0]]), 400, "invalid_argument", ["transformer"])
    st, _, body = daemon.request("GET", "/v1/models/truncated")
    assert st == 200 and "model.safetensors" in json.dumps(body)
    assert_error(generate(daemon, "truncated", {"prompt": [1]}), 503, "model_not_ready", ["truncated"])
    st, _, body = daemon.request("POST", "/v1/models/tiny_llama:generate", "{", headers={"Content-Type": "application/json"})
    assert st == 400


def test_slow_too_many_sequences_is_429(slow_repo):
    with Daemon(slow_repo, config={"max_sequences": 1}) as d:
        c = d.connection(timeout=30)
        c.request("POST", "/v1/models/random15m:generate",
                  json.dumps({"prompt": [1], "max_tokens": 250, "ignore_eos": True, "stream": True}),
                  {"Content-Type": "application/json"})
        resp = c.getresponse()
        assert resp.status == 200
        resp.readline()  # the first event is out: the sequence is running
        st, headers, body = generate(d, "random15m", {"prompt": [1], "max_tokens": 5})
        assert_error((st, headers, body), 429, "too_many_sequences", ["1 sequences"])
        assert headers.get("Retry-After") == "1"
        c.close()


def test_metadata_and_openai_model_list(daemon):
    st, _, body = daemon.request("GET", "/v1/models/tiny_llama")
    assert st == 200
    assert body["kind"] == "transformer" and body["task"] == "generation"
    g = body["generation"]
    assert g["architecture"] == "llama" and g["format"] == "safetensors" and g["dtype"] == "F32"
    assert g["vocab_size"] == 512 and g["context"] == 128
    assert g["tokenizer"] is None and g["chat_template"] == "plain"
    st, _, body = daemon.request("GET", "/v1/models/tiny_gpt2_fp16")
    assert body["generation"]["architecture"] == "gpt2" and body["generation"]["dtype"] == "F16"
    st, _, body = daemon.request("GET", "/v1/models/tiny_llama_c")
    assert body["generation"]["format"] == "llama2.c"
    st, _, body = daemon.request("GET", "/v1/models")
    assert body["object"] == "list"
    ids = {m["id"]: m for m in body["data"]}
    assert set(FOLDERS) <= set(ids)
    assert all(m["object"] == "model" and m["owned_by"] == "modeld" for m in body["data"])
    assert ids["tiny_llama"]["created"] > 1.7e9


@pytest.mark.parametrize("drain_ms,tokens", [(10000, 40), (50, 250)])
def test_slow_sigterm_during_stream(slow_repo, drain_ms, tokens):
    """SIGTERM with a stream running: a long enough drain lets it finish; a short one cuts
    it — either way the daemon exits 0, cleanly (and sanitizer-clean under make asan)."""
    import signal
    d = Daemon(slow_repo, config={"drain_timeout_ms": drain_ms}).start()
    try:
        c = d.connection(timeout=30)
        c.request("POST", "/v1/models/random15m:generate",
                  json.dumps({"prompt": [1], "max_tokens": tokens, "ignore_eos": True, "stream": True}),
                  {"Content-Type": "application/json"})
        resp = c.getresponse()
        assert resp.status == 200
        assert resp.readline().startswith(b"data: ")
        d.send_signal(signal.SIGTERM)
        try:
            data = resp.read()
            complete = True
        except http.client.IncompleteRead as e:
            data, complete = e.partial, False
        blocks = [b for b in data.decode().split("\n\n") if b.strip()]
        if drain_ms == 10000:
            last = json.loads(blocks[-1][len("data: "):])
            assert complete and last["finish_reason"] == "length" and last["usage"]["completion_tokens"] == tokens
        else:
            # Past the drain deadline the connection is closed where it stands.
            assert not complete or '"finish_reason":"length"' not in blocks[-1]
        c.close()
        assert d.wait_exit() == 0
    finally:
        if d.proc.poll() is None:  # a failed assertion above: do not leave it running
            d._kill()
        d.cleanup()


def test_slow_stream_straddles_a_reload(slow_repo, tmp_path):
    """A stream that runs while a new version is published finishes on the version it
    started with; the next request gets the new one; the old version's engine is freed
    once the stream ends (its memory goes with it)."""
    repo = tmp_path / "repo"
    shutil.copytree(slow_repo, repo)
    with Daemon(repo, config={"repository_settle_ms": 100, "repository_poll_ms": 200}) as d:
        c = d.connection(timeout=60)
        c.request("POST", "/v1/models/random15m:generate",
                  json.dumps({"prompt": [1], "max_tokens": 1000, "ignore_eos": True, "stream": True}),
                  {"Content-Type": "application/json"})
        resp = c.getresponse()
        assert resp.status == 200
        assert resp.readline().startswith(b"data: ")
        shutil.copytree(repo / "random15m" / "1", repo / "random15m" / ".2.tmp")
        (repo / "random15m" / ".2.tmp").rename(repo / "random15m" / "2")
        deadline = time.monotonic() + 20
        while d.request("GET", "/v1/models/random15m")[2].get("version") != 2:
            assert time.monotonic() < deadline, "version 2 never served"
            time.sleep(0.05)
        # The stream is still running: it straddles the swap.
        assert metric(d, "modeld_generate_active_sequences", {"model": "random15m"}) == 1
        st, _, now = generate(d, "random15m", {"prompt": [1], "max_tokens": 2})
        assert st == 200 and now["model"]["version"] == 2
        events = [json.loads(b[len("data: "):]) for b in resp.read().decode().split("\n\n") if b.strip()]
        c.close()
        assert events[-1]["model"] == {"name": "random15m", "version": 1}
        assert events[-1]["usage"]["completion_tokens"] == 1000
