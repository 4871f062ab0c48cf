"""Byte-level BPE (GPT-2) against gpt2_ref.py, a Python reference of the GPT-2 algorithm
(Python's regex module for the pre-tokenizer, bytes_to_unicode, encoder.py's merge loop)
on merges that gpt2_ref's trainer learns from tests/fixtures/tokenizer/corpus.txt.

The tokenizer.json is written in the three shapes Hugging Face uses (merges as "a b" or
as pairs; the regex inside ByteLevel or as a Split step before it) and all must give the
reference's ids for the same strings: the corpus, tricky cases (contractions, runs of
spaces, CJK, emoji, combining marks) and random text.
"""

import json
import os
import random
import unicodedata

import pytest

import gpt2_ref
from tok_common import (ADD_BOS, ALLOW_SPECIAL, EPROTO, SKIP_SPECIAL, TRICKY, CORPUS, Driver,
                      TokError, check_speed, corpus_lines)

N_MERGES = 400


@pytest.fixture(scope="module")
def ref():
    text = open(CORPUS, encoding="utf-8").read()
    vocab, merges = gpt2_ref.train(text, N_MERGES)
    return gpt2_ref.Encoder(vocab, merges), vocab, merges


@pytest.fixture(scope="module", params=["plain", "pairs", "split"])
def drv(request, ref, tmp_path_factory):
    enc, vocab, merges = ref
    folder = tmp_path_factory.mktemp("gpt2")
    (folder / "tokenizer.json").write_text(gpt2_ref.tokenizer_json(
        vocab, merges, len(vocab), merges_as_pairs=request.param == "pairs",
        split_pattern=request.param == "split"), encoding="utf-8")
    d = Driver(str(folder))
    yield d
    d.close()


def random_text(rng, n):
    """Random strings of assigned code points (the C tables and the regex module may be
    at different Unicode versions only for characters unassigned in Python's), weighted
    towards what real text has."""
    text = open(CORPUS, encoding="utf-8").read()
    pool = list(set(text)) + list(" \t\n'") * 6 + ["'s", "'ll", "'re", "  ", "\r\n"]
    out = []
    for _ in range(n):
        k = rng.random()
        if k < 0.4:
            i = rng.randrange(len(text))
            out.append(text[i:i + rng.randrange(1, 100)])
        elif k < 0.8:
            out.append("".join(rng.choice(pool) for _ in range(rng.randrange(1, 30))))
        else:
            s = []
            while len(s) < rng.randrange(1, 20):
                c = chr(rng.choice([rng.randrange(0x20, 0x250), rng.randrange(0x250, 0x3000),
                                    rng.randrange(0x3000, 0x10000), rng.randrange(0x10000, 0x20000)]))
                if unicodedata.category(c) not in ("Cn", "Cs", "Co"):
                    s.append(c)
            out.append("".join(s))
    return out


def strings():
    rng = random.Random(11)
    return corpus_lines() + TRICKY + random_text(rng, 1000) + [open(CORPUS, encoding="utf-8").read()]


def test_info(drv, ref):
    _, vocab, _ = ref
    i = drv.info()
    assert i["kind"] == "byte_bpe" and i["vocab"] == len(vocab) + 1
    assert i["bos"] == len(vocab) and i["eos"] == [len(vocab)] and not i["add_bos"]


def test_encode_matches_reference(drv, ref):
    enc, _, _ = ref
    bad = []
    for s in strings():
        want, got = enc.encode(s), drv.encode(s)
        if got != want:
            bad.append((s, got, want))
    assert not bad, f"{len(bad)} mismatches, first: {bad[:3]}"


def test_pretokenizer_cases(drv, ref):
    """The regex's corners, each against the reference (and a few spelled out)."""
    enc, _, _ = ref
    cases = ["a  b", "a   b", "a \n b", " \n", "\n\n\na", "x\t\ty", "end   ", "'s's", "'S",
             "it''s", " 's", "a'll", "1 2  3", " 123abc", "abc123", "!!a", " !!", "a!! b",
             "\u00a0a", "a\u00a0 b", "\u3000\u3000x", "e\u0301e\u0301", "٣٤٥", "Ⅻ ½",
             "\u2028x", "a\u0085b", "\x1c\x1d\x1e\x1f", "\u200b"]
    for s in cases:
        assert drv.encode(s) == enc.encode(s), s
    # spelled out: before a word, a run of spaces gives its last space to the word
    assert gpt2_ref.words("a   b") == ["a", "\u0120\u0120", "\u0120b"]
    got = drv.encode("a   b")
    ends, at = set(), 0
    for i in got:
        at += len(drv.decode([i]))
        ends.add(at)
    assert {1, 3, 5} <= ends, got  # tokens end where the words "a", "  ", " b" end


def test_decode_and_round_trip(drv, ref):
    enc, _, _ = ref
    for s in strings():
        ids = drv.encode(s)
        assert drv.decode(ids) == s.encode("utf-8"), s
        assert drv.encode(drv.decode(ids).decode("utf-8")) == ids


def test_decode_random_ids_like_reference(drv, ref):
    """Arbitrary ids: bytes that do not form characters become U+FFFD per maximal
    ill-formed subpart, as Python's errors="replace" (and Rust's from_utf8_lossy) do."""
    enc, vocab, _ = ref
    rng = random.Random(2)
    for _ in range(800):
        ids = [rng.randrange(len(vocab)) if rng.random() < 0.5 else rng.randrange(128, 256)
               for _ in range(rng.randrange(1, 10))]
        assert drv.decode(ids) == enc.decode(ids).encode("utf-8"), ids
        chunks = drv.stream(ids)
        for c in chunks:
            c.decode("utf-8")
        assert b"".join(chunks) == drv.decode(ids), ids


def test_special_token(drv, ref):
    enc, vocab, _ = ref
    eot = len(vocab)
    s = "Hello<|endoftext|> world"
    # plain text unless allowed
    assert drv.encode(s) == enc.encode(s)
    assert drv.encode(s, ALLOW_SPECIAL) == enc.encode(s, {gpt2_ref.EOT: eot})
    assert eot in drv.encode(s, ALLOW_SPECIAL) and eot not in drv.encode(s)
    assert drv.encode("hi", ADD_BOS) == [eot] + enc.encode("hi")
    ids = drv.encode(s, ALLOW_SPECIAL)
    assert drv.decode(ids) == s.encode()
    assert drv.decode(ids, SKIP_SPECIAL) == b"Hello world"
    assert drv.find(gpt2_ref.EOT) == eot


def test_stream_no_strip(drv, ref):
    """Byte-level BPE keeps every space, at the start too."""
    ids = drv.encode(" leading space")
    assert b"".join(drv.stream(ids)) == b" leading space"
    ids = drv.encode("😀")
    chunks = drv.stream(ids)
    assert b"".join(chunks) == "😀".encode() and all(c in (b"", "😀".encode()) for c in chunks)


def test_invalid_utf8(drv):
    for data, off in ((b"ab\xff", 2), (b"\xc3(", 0), (b"ok \xed\xb0\x80", 3)):
        with pytest.raises(TokError) as e:
            drv.encode(data)
        assert e.value.code == -EPROTO and f"at byte {off}:" in e.value.msg


def test_encode_speed(drv, tmp_path):
    check_speed(drv, tmp_path)
