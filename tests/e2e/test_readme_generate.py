"""README.md's "Generating text" section, run as written against the bundled demo
repository (what `make run` serves; only localhost:8080 is replaced by the test daemon's
address). Each `# ` line after a command is its output, where `...` stands for text that
varies (ids, timings, times): the pieces between must appear in that order."""

import subprocess

from conftest import Daemon
from test_readme_v2 import readme_commands


def matches(expected, got):
    pieces = expected.split("...")
    if not got.startswith(pieces[0]):
        return False
    at = len(pieces[0])
    for p in pieces[1:]:
        at = got.find(p, at)
        if at < 0:
            return False
        at += len(p)
    return pieces[-1] == "" or got.endswith(pieces[-1])


def test_readme_generation_section_runs_verbatim(demo_repo, tmp_path):
    cmds = readme_commands("## Generating text")
    assert len(cmds) >= 5
    with Daemon(demo_repo) as d:
        for cmd, expected in cmds:
            run = cmd.replace("localhost:8080", f"127.0.0.1:{d.port}")
            cp = subprocess.run(["bash", "-c", "set -o pipefail; " + run], cwd=tmp_path, capture_output=True,
                                text=True, timeout=30)
            assert cp.returncode == 0, f"{cmd}\n-> exit {cp.returncode}: {cp.stderr}"
            got = " ".join(line.rstrip("\r") for line in cp.stdout.splitlines() if line.strip())
            for e in expected:
                assert matches(e, got), f"{cmd}\nREADME says:\n{e}\ngot:\n{got}"
