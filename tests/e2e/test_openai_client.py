"""The official `openai` npm package (installed from the npm registry by this test, pinned
to a version that runs on Debian's Node.js) drives /v1/models, /v1/completions and
/v1/chat/completions, streaming and not, against the demo model (conf/models/kjv_llama).
What the client receives must equal modeld's own :generate answer for the same prompt
(greedy), and a bad model name must come back as the client's API error."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import REPO_ROOT, Daemon

OPENAI_VERSION = "4.95.0"  # openai 5+ wants Node >= 20/22; Debian 12 has 18
NPM_DIR = REPO_ROOT / "build" / "npm-openai"
DEMO = REPO_ROOT / "conf" / "models" / "kjv_llama"
PROMPT = "And God said, Let there be light"


@pytest.fixture(scope="module")
def client_dir():
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed (make deps installs them)"
    pkg = NPM_DIR / "node_modules" / "openai" / "package.json"
    if not pkg.exists() or json.loads(pkg.read_text())["version"] != OPENAI_VERSION:
        NPM_DIR.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(NPM_DIR),
                            f"openai@{OPENAI_VERSION}"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"npm install openai failed:\n{r.stderr[-2000:]}"
    # An ES module resolves packages next to itself.
    shutil.copy(REPO_ROOT / "tests" / "e2e" / "openai" / "client.mjs", NPM_DIR / "client.mjs")
    return NPM_DIR


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    assert DEMO.is_dir(), f"{DEMO} is missing"
    repo = tmp_path_factory.mktemp("demo")
    shutil.copytree(DEMO, repo / "kjv_llama")
    with Daemon(repo) as d:
        yield d


def test_official_client(client_dir, daemon):
    r = subprocess.run(["node", str(client_dir / "client.mjs"), f"http://{daemon.host}:{daemon.port}/v1",
                        "kjv_llama", PROMPT], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout)
    assert got["models"] == ["kjv_llama"]

    st, _, native = daemon.request("POST", "/v1/models/kjv_llama:generate",
                                   {"prompt": PROMPT, "max_tokens": 24, "temperature": 0})
    assert st == 200
    c = got["completion"]
    assert c["text"] == native["text"] and c["text"].strip()
    assert c["finish_reason"] == native["finish_reason"]
    assert c["usage"]["prompt_tokens"] == native["usage"]["prompt_tokens"]
    assert c["usage"]["completion_tokens"] == native["usage"]["completion_tokens"]
    assert got["completion_stream"] == {"text": c["text"], "finish_reason": c["finish_reason"]}

    chat = got["chat"]
    assert chat["role"] == "assistant" and chat["content"].strip()
    assert chat["finish_reason"] in ("stop", "length")
    s = got["chat_stream"]
    assert s["content"] == chat["content"] and s["role"] == "assistant"
    assert s["finish_reason"] == chat["finish_reason"] and s["usage"] == chat["usage"]

    assert got["error"]["status"] == 404 and "no-such-model" in got["error"]["message"]
