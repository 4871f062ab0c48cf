"""README.md's Open Inference Protocol section, run as written against the bundled demo
repository (what `make run` serves), with only localhost:8080 replaced by the test
daemon's address: every command must succeed and print the output the README shows on
the `# ` lines after it."""

import re
import subprocess

from conftest import REPO_ROOT, Daemon


def readme_commands(section):
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index(section)
    end = text.index("\n## ", start + 1)
    cmds = []
    for block in re.findall(r"```sh\n(.*?)```", text[start:end], re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            cmd = lines[i]
            while cmd.endswith("\\"):
                i += 1
                cmd = cmd + "\n" + lines[i]
            i += 1
            # a quoted argument may span lines (the JSON bodies)
            while cmd.count("'") % 2:
                cmd += "\n" + lines[i]
                i += 1
            expected = []
            while i < len(lines) and lines[i].startswith("# "):
                expected.append(lines[i][2:])
                i += 1
            cmds.append((cmd, expected))
    return cmds


def run_section(section, demo_repo, tmp_path, check, min_commands):
    """Runs every command of the README section against a daemon serving the demo
    repository; check(cmd, expected_lines, stdout) judges each output."""
    cmds = readme_commands(section)
    assert len(cmds) >= min_commands
    with Daemon(demo_repo) as d:
        for cmd, expected in cmds:
            run = cmd.replace("localhost:8080", f"127.0.0.1:{d.port}")
            cp = subprocess.run(["bash", "-c", "set -o pipefail; " + run], cwd=tmp_path, capture_output=True,
                                text=True, timeout=30)
            assert cp.returncode == 0, f"{cmd}\n-> exit {cp.returncode}: {cp.stderr}"
            check(cmd, expected, cp.stdout)


def test_readme_v2_section_runs_verbatim(demo_repo, tmp_path):
    def exact(cmd, expected, stdout):
        if expected:
            got = [line.rstrip("\r") for line in stdout.splitlines()]
            assert got == expected, f"{cmd}\nREADME says:\n{expected}\ngot:\n{got}"

    run_section("## Open Inference Protocol (KServe V2)", demo_repo, tmp_path, exact, 10)
