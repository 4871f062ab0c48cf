"""SentencePiece-style BPE (tokenizer.json as Hugging Face saves it for Llama, and
llama2.c's tokenizer.bin) against python3-sentencepiece itself.

The setup trains a BPE model with byte fallback on tests/fixtures/tokenizer/corpus.txt,
exports it with tools/sp_to_hf_tokenizer.py and checks that modeld encodes every string
to exactly sentencepiece's ids and decodes ids to exactly sentencepiece's text, through
both files. character_coverage < 1 leaves rare characters out of the vocabulary, so byte
fallback is exercised by corpus characters as well as by unseen ones.
"""

import os
import random
import subprocess

import pytest
import sentencepiece as spm

from tok_common import (ALLOW_SPECIAL, ADD_BOS, EPROTO, ERANGE, PYTHON, ROOT, SKIP_SPECIAL,
                      TRICKY, Driver, TokError, check_speed, corpus_lines, CORPUS)

USER_SYMBOLS = ["<|im_start|>", "<|im_end|>"]


def train(folder, vocab_size, coverage, whitespace_pieces=False):
    spm.SentencePieceTrainer.train(
        allow_whitespace_only_pieces=whitespace_pieces,
        input=CORPUS, model_prefix=os.path.join(folder, "sp"), model_type="bpe",
        vocab_size=vocab_size, byte_fallback=True, character_coverage=coverage,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        user_defined_symbols=USER_SYMBOLS, minloglevel=2, num_threads=1)
    model = os.path.join(folder, "sp.model")
    subprocess.run([PYTHON, os.path.join(ROOT, "tools/sp_to_hf_tokenizer.py"),
                    "--chat-template", "chatml", model, folder], check=True)
    return spm.SentencePieceProcessor(model_file=model)


# v1000 also learns pieces of several spaces ("\u2581\u2581\u2581"), as Llama's
# vocabulary has them (allow_whitespace_only_pieces).
@pytest.fixture(scope="module", params=[(800, 0.98), (1000, 1.0, True)], ids=["v800", "v1000"])
def setup(request, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("sp"))
    sp = train(folder, *request.param)
    if len(request.param) > 2:
        assert any(sp.id_to_piece(i).startswith("\u2581\u2581") for i in range(sp.get_piece_size()))
    hf, llama2c = Driver(folder), Driver(folder, "--bin")
    yield sp, hf, llama2c
    hf.close()
    llama2c.close()


def random_strings(n, seed):
    """Substrings of the corpus, and strings mixing corpus characters, ASCII and code
    points from all over Unicode (none of them unassigned or surrogates)."""
    rng = random.Random(seed)
    text = open(CORPUS, encoding="utf-8").read()
    pool = list(set(text)) + list(" \t\n  ") * 5
    extra = [chr(c) for c in (0x41, 0x20AC, 0x4E2D, 0x1F600, 0x0301, 0x10348, 0x1D11E,
                              0xAC00, 0x05D0, 0x0E01, 0x2603, 0xFFFD, 0x7F, 0x0, 0x1F)]
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            i = rng.randrange(len(text))
            out.append(text[i:i + rng.randrange(1, 120)])
        else:
            out.append("".join(rng.choice(pool if rng.random() < 0.85 else extra)
                               for _ in range(rng.randrange(1, 40))))
    return out


def all_strings():
    return corpus_lines() + TRICKY + random_strings(1000, 7) + [open(CORPUS, encoding="utf-8").read()]


def bin_comparable(s):
    """tokenizer.bin has no added tokens (sentencepiece matches its user-defined symbols
    whole; run.c could only build them by merging), and it spells the space marker as " "
    (sentencepiece reads a literal \u2581 in the text as a space; run.c, whose vocabulary
    no longer has the character, encodes its bytes)."""
    return not any(u in s for u in USER_SYMBOLS) and "\u2581" not in s


def test_info(setup):
    sp, hf, llama2c = setup
    i = hf.info()
    assert i["kind"] == "sp_bpe" and i["vocab"] == sp.get_piece_size()
    assert i["bos"] == sp.bos_id() and i["eos"] == [sp.eos_id()] and i["add_bos"]
    assert i["chat"] == 1  # ChatML
    j = llama2c.info()
    assert j["kind"] == "llama2c" and j["vocab"] == sp.get_piece_size()
    assert j["bos"] == 1 and j["eos"] == [2]
    assert hf.find("<|im_end|>") == sp.piece_to_id("<|im_end|>")


def test_encode_matches_sentencepiece(setup):
    sp, hf, llama2c = setup
    bad = []
    for s in all_strings():
        want = sp.encode(s)
        if hf.encode(s) != want:
            bad.append(("tokenizer.json", s, hf.encode(s), want))
        if bin_comparable(s) and llama2c.encode(s) != want:
            bad.append(("tokenizer.bin", s, llama2c.encode(s), want))
    assert not bad, f"{len(bad)} mismatches, first: {bad[:3]}"


def test_user_symbols_and_bos(setup):
    sp, hf, _ = setup
    s = "<|im_start|>user\nhi there<|im_end|>\n"
    assert hf.encode(s) == sp.encode(s)
    assert sp.piece_to_id("<|im_start|>") in hf.encode(s)
    assert hf.encode("hello", ADD_BOS) == [sp.bos_id()] + sp.encode("hello")
    assert hf.encode("", ADD_BOS) == [sp.bos_id()]
    assert hf.encode("") == []


def test_special_tokens_only_when_allowed(setup):
    sp, hf, llama2c = setup
    # tokenizer.bin's control pieces work the same way (spelled <s>, </s>)
    assert llama2c.encode("a</s>b", ALLOW_SPECIAL) == hf.encode("a</s>b", ALLOW_SPECIAL)
    assert llama2c.encode("a</s>b") == sp.encode("a</s>b")
    # without the flag "<s>" is text, exactly as sentencepiece reads it
    assert hf.encode("a</s>b") == sp.encode("a</s>b")
    # with it, the special token is cut out and each side is a text of its own (the
    # legacy Llama behaviour: each side gets the \u2581 prefix)
    got = hf.encode("a</s>b", ALLOW_SPECIAL)
    assert got == sp.encode("a") + [sp.eos_id()] + sp.encode("b")
    assert hf.encode("<s>", ALLOW_SPECIAL) == [sp.bos_id()]


def test_decode_matches_sentencepiece(setup):
    sp, hf, llama2c = setup
    for s in all_strings():
        ids = sp.encode(s)
        for d in (hf, llama2c):
            got = d.decode(ids, SKIP_SPECIAL)
            assert got == sp.decode(ids).encode("utf-8"), (s, ids)
            if "\u2581" not in s:  # sentencepiece itself gives a literal \u2581 back as " "
                assert got.decode("utf-8") == s  # the round trip
            assert d.encode(got.decode("utf-8")) == ids or (d is llama2c and not bin_comparable(s))


def test_decode_random_ids_matches_sentencepiece(setup):
    """Arbitrary id sequences: byte pieces that do not form characters print U+FFFD per
    byte, as sentencepiece prints them; controls print nothing when skipped."""
    sp, hf, llama2c = setup
    rng = random.Random(3)
    n = sp.get_piece_size()
    byte_ids = [i for i in range(n) if sp.is_byte(i)]
    for _ in range(800):
        ids = [rng.choice(byte_ids) if rng.random() < 0.5 else rng.randrange(1, n)
               for _ in range(rng.randrange(1, 12))]
        want = sp.decode(ids).encode("utf-8")
        assert hf.decode(ids, SKIP_SPECIAL) == want, ids
        assert llama2c.decode(ids, SKIP_SPECIAL) == want, ids
        # utf-8 lead bytes followed by a continuation that belongs to them
        seq = [sp.piece_to_id("<0x%02X>" % b) for b in "€".encode()[:rng.randrange(1, 3)]]
        ids = seq + ids
        assert hf.decode(ids, SKIP_SPECIAL) == sp.decode(ids).encode("utf-8"), ids


def test_stream_equals_decode(setup):
    sp, hf, llama2c = setup
    rng = random.Random(5)
    n = sp.get_piece_size()
    cases = [sp.encode(s) for s in all_strings()[:400]]
    cases += [[rng.randrange(3, n) for _ in range(rng.randrange(1, 20))] for _ in range(300)]
    for ids in cases:
        for d in (hf, llama2c):
            chunks = d.stream(ids, -1, SKIP_SPECIAL)
            assert len(chunks) == len(ids) + 1
            for c in chunks:
                c.decode("utf-8")  # every chunk is whole characters
            assert b"".join(chunks) == d.decode(ids, SKIP_SPECIAL), ids
            # after bos the leading space goes too (llama2.c: "following BOS ... strips")
            assert b"".join(d.stream(ids, sp.bos_id(), SKIP_SPECIAL)) == b"".join(chunks)


def test_stream_holds_partial_characters(setup):
    sp, hf, _ = setup
    emoji = [sp.piece_to_id("<0x%02X>" % b) for b in "😀".encode()]
    chunks = hf.stream(emoji + [sp.piece_to_id("▁the")], 42)
    assert chunks[:3] == [b"", b"", b""] and chunks[3] == "😀".encode()
    assert chunks[4] == b" the"  # mid-text: the space stays
    # a sequence cut short is U+FFFD per byte at the end
    assert hf.stream(emoji[:2])[-1] == "\ufffd\ufffd".encode()


def test_invalid_utf8_refused_with_offset(setup):
    _, hf, llama2c = setup
    cases = [
        (b"abc\xc0\xafdef", 3, "overlong"),        # overlong '/'
        (b"ab\xe0\x80\x80", 2, "overlong"),
        (b"x\xed\xa0\x80y", 1, "surrogate"),       # U+D800
        (b"hello \xe4\xb8", 6, "truncated"),       # cut at the end
        (b"\xe4\xb8hi", 0, "truncated"),
        (b"ok\x80", 2, "continuation"),
        (b"\xf4\x90\x80\x80", 0, "U+10FFFF"),
        (b"\xff", 0, "invalid byte"),
        ("好".encode() * 1000 + b"\xf0\x9f\x98", 3000, "truncated"),
    ]
    for d in (hf, llama2c):
        for data, offset, why in cases:
            with pytest.raises(TokError) as e:
                d.encode(data)
            assert e.value.code == -EPROTO
            assert f"invalid UTF-8 at byte {offset}:" in e.value.msg and why in e.value.msg, \
                (data, e.value.msg)


def test_ids_outside_vocabulary(setup):
    sp, hf, _ = setup
    for bad in ([sp.get_piece_size()], [5, -1], [2 ** 31 - 1]):
        with pytest.raises(TokError) as e:
            hf.decode(bad)
        assert e.value.code == -ERANGE and "outside the vocabulary" in e.value.msg


def test_encode_speed(setup, tmp_path):
    sp, hf, llama2c = setup
    check_speed(hf, tmp_path)
    check_speed(llama2c, tmp_path)


@pytest.mark.parametrize("scheme,split", [("always", False), ("first", True)])
def test_metaspace_form(setup, tmp_path, scheme, split):
    """The same model in the newer Hugging Face shape (no normalizer; a Metaspace
    pre-tokenizer and decoder; merges as pairs) encodes and decodes the same."""
    import json
    sp, hf, _ = setup
    with open(os.path.join(hf.folder, "tokenizer.json"), encoding="utf-8") as f:
        t = json.load(f)
    t["normalizer"] = None
    t["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581",
                          "prepend_scheme": scheme, "split": split}
    t["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme,
                    "split": split}
    t["model"]["merges"] = [m.split(" ") for m in t["model"]["merges"]]
    (tmp_path / "tokenizer.json").write_text(json.dumps(t, ensure_ascii=False), encoding="utf-8")
    d = Driver(str(tmp_path))
    try:
        for s in corpus_lines() + TRICKY + random_strings(300, 17):
            m = "\u2581" + s  # with the prefix marker
            if split and any(a in " \u2581" and b in " \u2581" for a, b in zip(m, m[1:])):
                continue  # Metaspace split cuts runs of spaces apart; sentencepiece does not
            ids = sp.encode(s)
            assert d.encode(s) == ids, s
            assert d.decode(ids, SKIP_SPECIAL) == sp.decode(ids).encode("utf-8")
        if scheme == "first":
            # only the text's start gets the marker, not the text after a special token
            assert d.encode("a</s>b", ALLOW_SPECIAL) == \
                sp.encode("a") + [sp.eos_id(), sp.piece_to_id("b")]
    finally:
        d.close()
