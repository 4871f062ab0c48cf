"""Shared by the tokenizer tests, imported by name (not a conftest.py: tests/e2e's
conftest owns that module name in a combined pytest run). The C side runs in
tests/tokenizer/tok_driver (built by `make`; $TOK_DRIVER overrides the path), one
long-lived process per tokenizer folder, driven line by line (see the protocol at the top
of tok_driver.c)."""

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.environ.get("TOK_DRIVER", os.path.join(ROOT, "build/release/tests/tok_driver"))
CORPUS = os.path.join(ROOT, "tests/fixtures/tokenizer/corpus.txt")
PYTHON = "/usr/bin/python3"

ADD_BOS, ALLOW_SPECIAL, SKIP_SPECIAL = 1, 2, 4
EPROTO, ERANGE, EBADMSG = 71, 34, 74


class Driver:
    """One tok_driver process on one tokenizer folder."""

    def __init__(self, folder, *extra):
        if not os.path.exists(DRIVER):
            pytest.fail(f"{DRIVER} is missing: run `make build/release/tests/tok_driver`")
        self.folder, self.extra = folder, extra
        self.p = subprocess.Popen([DRIVER, folder, *extra], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

    def _ask(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        assert out, f"tok_driver died (exit {self.p.wait()}) on: {line[:200]}"
        return out.rstrip("\n")

    def encode(self, text, flags=0):
        data = text.encode("utf-8") if isinstance(text, str) else text
        r = self._ask(f"e {flags} {data.hex() or '-'}")
        if r.startswith("err "):
            code, msg = r[4:].split(" ", 1)
            raise TokError(int(code), msg)
        return [int(x) for x in r.split()[1:]]

    def decode(self, ids, flags=0):
        r = self._ask(f"d {flags} " + " ".join(map(str, ids)))
        if r.startswith("err "):
            code, msg = r[4:].split(" ", 1)
            raise TokError(int(code), msg)
        h = r[3:]
        return b"" if h == "-" else bytes.fromhex(h)

    def stream(self, ids, prev=-1, flags=0):
        r = self._ask(f"s {prev} {flags} " + " ".join(map(str, ids)))
        assert r.startswith("ok "), r
        return [b"" if c == "-" else bytes.fromhex(c) for c in r[3:].split(",")]

    def info(self):
        f = self._ask("i").split()
        return {"kind": f[1], "vocab": int(f[2]), "bos": int(f[3]), "add_bos": f[4] == "1",
                "chat": int(f[5]), "eos": [int(x) for x in f[6:]]}

    def find(self, s):
        return int(self._ask("f " + s.encode().hex()).split()[1])

    def bench(self, text_path, repeat=5):
        """(bytes, tokens, best milliseconds) for encoding the file's text."""
        p = subprocess.run([DRIVER, self.folder, "--bench", text_path, str(repeat)],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        n_bytes, n_tokens, ms = p.stdout.split()
        return int(n_bytes), int(n_tokens), float(ms)

    def close(self):
        self.p.stdin.close()
        rc = self.p.wait(timeout=30)
        assert rc == 0, f"tok_driver exit {rc}"


class TokError(Exception):
    def __init__(self, code, msg):
        super().__init__(f"{code} {msg}")
        self.code, self.msg = code, msg


def load_error(folder, *extra):
    """Runs the driver on a folder that must fail to load: (code, message)."""
    p = subprocess.run([DRIVER, folder, *extra], input="", capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.startswith("loaderr "), p.stdout
    code, msg = p.stdout[8:].strip().split(" ", 1)
    return int(code), msg


def check_speed(drv, tmp_path):
    """Encoding 100 kB takes milliseconds, and 800 kB well under a second: a merge loop
    that rescans the text (as run.c's does) needs seconds already for 100k symbols. The
    bounds are loose because the machine is shared (the best of several runs counts).
    The 8x text must give exactly 8x the tokens (the corpus ends with a newline, so the
    copies do not interact)."""
    with open(CORPUS, encoding="utf-8") as f:
        corpus = f.read()
    small, big = tmp_path / "100k.txt", tmp_path / "800k.txt"
    text = (corpus * (100_000 // len(corpus.encode()) + 1))
    small.write_text(text, encoding="utf-8")
    big.write_text(text * 8, encoding="utf-8")
    n1, t1, ms1 = drv.bench(str(small), 10)
    n8, t8, ms8 = drv.bench(str(big), 2)
    assert n1 >= 100_000 and n8 == 8 * n1 and t8 == 8 * t1
    print(f"encode {n1} bytes -> {t1} tokens: {ms1:.2f} ms; {n8} bytes: {ms8:.2f} ms")
    assert ms1 < 100, f"100 kB took {ms1} ms"
    assert ms8 < 1000, f"800 kB took {ms8} ms"


def corpus_lines():
    with open(CORPUS, encoding="utf-8") as f:
        return [line for line in f.read().split("\n") if line]


# Strings every tokenizer must get right: spaces at the ends and in runs, tabs and
# newlines, contractions, digits, CJK, emoji (ZWJ sequences, flags, skin tones),
# combining marks, characters no training text had, and empty input.
TRICKY = [
    "", " ", "  ", "   ", "\n", "\n\n", "\t", " \t \n ", "a", " a", "a ", "  a  ", "a  b",
    "a\nb", "a \n b", "hello world", "Hello, World!", "  leading", "trailing  ",
    "multiple     spaces   here", "tabs\tand\nnewlines\r\n", "line1\n\nline3\n",
    "I'm sure they're here; we'll see, you've won, he'd go, it's done, isn't it",
    "'s 't 're 've 'm 'll 'd", "THE'S", "don''t", "12345 67890 3.14159 1e-5 0x1F",
    "1,000,000", "$19.99 €5 £3 ¥1200", "你好，世界！", "東京は日本の首都です",
    "안녕하세요", "😀😃😄", "👨‍👩‍👧‍👦", "🇫🇷🇯🇵", "👍🏻👍🏿", "e\u0301 a\u0308 n\u0303",
    "Z\u0324\u0354\u0345a\u0334", "ﬁ ﬂ ½ ¹²³", "\u200b\u00ad\ufeff", "\u3000full\u3000width",
    "Ωmega ∑ ∫ ≈ ≠ ∞", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕥𝕖𝕩𝕥", "ꙮ ꙮ", "\u0000nul\u0000", "\x7f\x01\x1f",
    "<s>", "</s>", "<unk>", "<0x41>", "▁", "▁▁a", "a▁b", "a▁ b", "x ▁▁ ▁y", "▁ ▁", "ab" * 50, " " * 40, "x" * 300,
]
