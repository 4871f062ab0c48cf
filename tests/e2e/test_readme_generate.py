"""README.md's "Generating text" section, run as written against the bundled demo
repository (what `make run` serves; only localhost:8080 is replaced by the test daemon's
address). Each `# ` line after a command is its output, where `...` stands for text that
varies (ids, timings, times): the pieces between must appear in that order."""

from test_readme_v2 import run_section


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
    def pieces_in_order(cmd, expected, stdout):
        got = " ".join(line.rstrip("\r") for line in stdout.splitlines() if line.strip())
        for e in expected:
            assert matches(e, got), f"{cmd}\nREADME says:\n{e}\ngot:\n{got}"

    run_section("## Generating text", demo_repo, tmp_path, pieces_in_order, 5)
