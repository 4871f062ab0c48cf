#!/usr/bin/python3
"""Writes the seed corpus of tests/fuzz/fuzz_tokenizer.c into tests/fuzz/corpus/tokenizer/:
small tokenizers of every shape the loaders accept, each prefixed with the target's mode
byte (0 tokenizer.json [+ "\\0\\0" + tokenizer_config.json], 1 tokenizer.bin).

    /usr/bin/python3 tests/tokenizer/make_fuzz_seeds.py

Byte-level ones come from gpt2_ref's trainer, SentencePiece ones from python3-sentencepiece
+ tools/sp_to_hf_tokenizer.py, on the first lines of tests/fixtures/tokenizer/corpus.txt.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import gpt2_ref  # noqa: E402
import sentencepiece as spm  # noqa: E402

OUT = os.path.join(ROOT, "tests/fuzz/corpus/tokenizer")


def put(name, mode, *parts):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([mode]) + b"\0\0".join(parts))


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(ROOT, "tests/fixtures/tokenizer/corpus.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    text = "\n".join(lines[:12])

    vocab, merges = gpt2_ref.train(text, 60)
    tj = gpt2_ref.tokenizer_json(vocab, merges, len(vocab))
    put("gpt2.json", 0, tj.encode())
    cfg = {"add_bos_token": False, "eos_token": "<|endoftext|>",
           "added_tokens_decoder": {str(len(vocab) + 1): {"content": "<|im_end|>", "special": True},
                                    str(len(vocab) + 2): {"content": "hello", "special": False,
                                                          "lstrip": True, "rstrip": True}},
           "chat_template": "{{ '<|im_start|>' }}"}
    put("gpt2_config.json", 0, tj.encode(), json.dumps(cfg).encode())
    put("gpt2_split_pairs.json", 0,
        gpt2_ref.tokenizer_json(vocab, merges, len(vocab), merges_as_pairs=True,
                                split_pattern=True).encode())

    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "in.txt"), "w", encoding="utf-8") as f:
            f.write(text)
        spm.SentencePieceTrainer.train(
            input=os.path.join(d, "in.txt"), model_prefix=os.path.join(d, "sp"),
            model_type="bpe", vocab_size=420, byte_fallback=True, character_coverage=1.0,
            normalization_rule_name="identity", remove_extra_whitespaces=False,
            user_defined_symbols=["<|im_start|>", "<|im_end|>"], minloglevel=2, num_threads=1)
        subprocess.run([sys.executable, os.path.join(ROOT, "tools/sp_to_hf_tokenizer.py"),
                        "--chat-template", "chatml", os.path.join(d, "sp.model"), d], check=True)
        with open(os.path.join(d, "tokenizer.json"), "rb") as f:
            sj = f.read()
        with open(os.path.join(d, "tokenizer_config.json"), "rb") as f:
            sc = f.read()
        with open(os.path.join(d, "tokenizer.bin"), "rb") as f:
            sb = f.read()
    put("sp.json", 0, sj, sc)
    put("sp.bin", 1, sb)
    # the newer Hugging Face shape: Metaspace pre-tokenizer, no normalizer
    m = json.loads(sj)
    m["normalizer"] = None
    m["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581",
                          "prepend_scheme": "first", "split": False}
    m["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                    "split": False}
    m["model"]["merges"] = [x.split(" ") for x in m["model"]["merges"]]
    put("sp_metaspace.json", 0, json.dumps(m, ensure_ascii=False).encode())
    put("truncated.bin", 1, sb[:len(sb) // 2 + 3])


if __name__ == "__main__":
    main()
