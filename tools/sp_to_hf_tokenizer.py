#!/usr/bin/python3
"""Export a SentencePiece BPE model as the tokenizer files modeld (and Hugging Face) read.

usage: sp_to_hf_tokenizer.py [--chat-template chatml|llama2] [--no-bos] SPM_MODEL OUT_DIR

Writes into OUT_DIR (created if missing):
  tokenizer.json         Hugging Face `tokenizers` file in the form HF saves for Llama
                         models: model.type BPE with byte_fallback, vocab {piece: id},
                         merges by rank, a normalizer that prepends "\u2581" and turns
                         spaces into "\u2581", a ByteFallback/Fuse/Strip decoder and the
                         control pieces (<unk>, <s>, </s>) as special added tokens.
  tokenizer_config.json  add_bos_token / add_eos_token, bos/eos/unk token strings,
                         added_tokens_decoder and, with --chat-template, a ChatML or
                         Llama-2 [INST] Jinja template.
  tokenizer.bin          the llama2.c tokenizer: int32 max_token_length, then per id
                         float32 score, int32 byte length, the piece's bytes with
                         "\u2581" written as " " (bos/eos written as "\\n<s>\\n" and
                         "\\n</s>\\n" like llama2.c's tokenizer.py).
All integers and floats little-endian. Output is deterministic (same model, same bytes).

The model must be a BPE model (model_type=bpe) trained the way Llama's was, since the
exported normalizer does no more than that: normalization_rule_name=identity,
remove_extra_whitespaces=False, add_dummy_prefix=True (byte_fallback=True strongly
recommended, otherwise characters outside the vocabulary become <unk>). For example:

    spm.SentencePieceTrainer.train(input="corpus.txt", model_prefix="tok",
        model_type="bpe", vocab_size=1000, byte_fallback=True, character_coverage=1.0,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1)

A model trained otherwise is refused with the option that differs. --chat-template chatml
needs the pieces <|im_start|> and <|im_end|> (train with
user_defined_symbols=["<|im_start|>", "<|im_end|>"]); user-defined pieces are exported as
added tokens (special false, normalized true) and, like SentencePiece, matched whole
anywhere in the text.

Merges: SentencePiece BPE merges the adjacent pair whose joined piece has the highest
score; tokenizer.json lists merges by rank instead. Every split of every multi-character
piece into two vocabulary pieces becomes a merge, ordered by the joined piece's score
(highest first), ties by the ids of the two halves (what Hugging Face's own converter
does), so merging by rank reproduces SentencePiece's choices.

Needs python3-sentencepiece and python3-protobuf (Debian).
"""

import argparse
import json
import os
import struct
import sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

SPACE = "\u2581"

CHAT_TEMPLATES = {
    # ChatML as Qwen / many fine-tunes write it.
    "chatml": (
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    ),
    # Llama-2 chat, as in Meta's tokenizer_config.json (system prompt folded into the
    # first user turn).
    "llama2": (
        "{% if messages[0]['role'] == 'system' %}"
        "{% set loop_messages = messages[1:] %}"
        "{% set system_message = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}"
        "{% else %}{% set loop_messages = messages %}{% set system_message = '' %}{% endif %}"
        "{% for message in loop_messages %}"
        "{% if loop.index0 == 0 %}{% set content = system_message + message['content'] %}"
        "{% else %}{% set content = message['content'] %}{% endif %}"
        "{% if message['role'] == 'user' %}"
        "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}"
        "{{ ' ' + content.strip() + ' ' + eos_token }}"
        "{% endif %}{% endfor %}"
    ),
}


def fail(msg):
    sys.stderr.write(f"sp_to_hf_tokenizer: {msg}\n")
    sys.exit(1)


def check_model(proto):
    t, n = proto.trainer_spec, proto.normalizer_spec
    if t.model_type != sp_pb2.TrainerSpec.BPE:
        fail("model_type must be bpe (unigram models need a different tokenizer)")
    if n.name not in ("identity",) or n.precompiled_charsmap:
        fail(f"normalization_rule_name is {n.name!r}: train with normalization_rule_name=identity")
    if n.remove_extra_whitespaces:
        fail("train with remove_extra_whitespaces=False (the exported normalizer keeps spaces)")
    if not n.add_dummy_prefix:
        fail("train with add_dummy_prefix=True (Llama-style tokenizers prepend \u2581)")
    if not n.escape_whitespaces:
        fail("train with escape_whitespaces=True (spaces must become \u2581)")
    if t.treat_whitespace_as_suffix:
        fail("treat_whitespace_as_suffix is not supported")


def build(sp, proto, add_bos, chat_template):
    n = sp.get_piece_size()
    pieces = [sp.id_to_piece(i) for i in range(n)]
    if len(set(pieces)) != n:
        fail("duplicate pieces in the model")
    vocab = {p: i for i, p in enumerate(pieces)}
    # A piece takes part in merges only if it is ordinary text (not <unk>, <s>, a byte
    # piece or an unused slot) - SentencePiece never builds those by merging.
    normal = [not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i) or sp.is_unused(i)
                   or proto.pieces[i].type == sp_pb2.ModelProto.SentencePiece.USER_DEFINED)
              for i in range(n)]
    merges = []
    order = sorted(range(n), key=lambda i: -sp.get_score(i))  # stable: ties keep id order
    for i in order:
        p = pieces[i]
        if not normal[i] or len(p) < 2:
            continue
        local = []
        for k in range(1, len(p)):
            left, right = p[:k], p[k:]
            if left in vocab and right in vocab and normal[vocab[left]] and normal[vocab[right]]:
                local.append((vocab[left], vocab[right], left, right))
        local.sort()
        merges.extend((left, right) for _, _, left, right in local)

    unk_id, bos_id, eos_id = sp.unk_id(), sp.bos_id(), sp.eos_id()
    # Control pieces (<unk>, <s>, </s>) are special tokens that cut the text before
    # normalization; user-defined pieces are matched, as SentencePiece matches them, in
    # the normalized text ("normalized": true), so "<|im_start|>user" keeps the one
    # "\u2581" prefix of the whole text.
    added = []
    for i in range(n):
        typ = proto.pieces[i].type
        if sp.is_control(i) or sp.is_unknown(i):
            special = True
        elif typ == sp_pb2.ModelProto.SentencePiece.USER_DEFINED:
            special = False
        else:
            continue
        added.append({"id": i, "content": pieces[i], "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": not special, "special": special})

    bos = pieces[bos_id] if bos_id >= 0 else None
    eos = pieces[eos_id] if eos_id >= 0 else None
    unk = pieces[unk_id] if unk_id >= 0 else None
    single = [{"Sequence": {"id": "A", "type_id": 0}}]
    pair = [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}]
    special_tokens = {}
    if add_bos and bos is not None:
        single.insert(0, {"SpecialToken": {"id": bos, "type_id": 0}})
        pair.insert(0, {"SpecialToken": {"id": bos, "type_id": 0}})
        pair.insert(2, {"SpecialToken": {"id": bos, "type_id": 1}})
        special_tokens[bos] = {"id": bos, "ids": [bos_id], "tokens": [bos]}

    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SPACE},
            {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
        ]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing", "single": single, "pair": pair,
                           "special_tokens": special_tokens},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ]},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": unk,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [f"{a} {b}" for a, b in merges],
        },
    }
    if any(" " in a or " " in b for a, b in merges):
        fail("a merge half contains a plain space; the 'a b' merge form cannot hold it")

    config = {
        "add_bos_token": bool(add_bos and bos is not None),
        "add_eos_token": False,
        "added_tokens_decoder": {str(t["id"]): {k: v for k, v in t.items() if k != "id"}
                                 for t in added},
        "bos_token": bos,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "legacy": True,
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": None,
        "sp_model_kwargs": {},
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": unk,
    }
    if chat_template:
        config["chat_template"] = CHAT_TEMPLATES[chat_template]

    # llama2.c tokenizer.bin
    entries = []
    for i in range(n):
        t = pieces[i]
        if i == bos_id:
            t = "\n<s>\n"
        elif i == eos_id:
            t = "\n</s>\n"
        b = t.replace(SPACE, " ").encode("utf-8")
        entries.append((sp.get_score(i), b))
    max_len = max(len(b) for _, b in entries)
    blob = bytearray(struct.pack("<i", max_len))
    for score, b in entries:
        blob += struct.pack("<fi", score, len(b)) + b
    return tokenizer, config, bytes(blob)


def write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="SentencePiece .model file (BPE)")
    ap.add_argument("out_dir")
    ap.add_argument("--chat-template", choices=sorted(CHAT_TEMPLATES),
                    help="add this chat_template to tokenizer_config.json")
    ap.add_argument("--no-bos", action="store_true", help="add_bos_token false")
    args = ap.parse_args(argv[1:])

    sp = spm.SentencePieceProcessor()
    try:
        sp.Load(args.model)
        proto = sp_pb2.ModelProto()
        with open(args.model, "rb") as f:
            proto.ParseFromString(f.read())
    except (OSError, RuntimeError, ValueError) as e:
        fail(f"cannot load {args.model}: {e}")
    check_model(proto)
    if args.chat_template == "chatml":
        for t in ("<|im_start|>", "<|im_end|>"):
            if sp.piece_to_id(t) == sp.unk_id() and t != "<unk>":
                fail(f"--chat-template chatml: the model has no piece {t} "
                     "(train with user_defined_symbols)")
    tokenizer, config, blob = build(sp, proto, not args.no_bos, args.chat_template)
    os.makedirs(args.out_dir, exist_ok=True)
    write(os.path.join(args.out_dir, "tokenizer.json"),
          (json.dumps(tokenizer, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    write(os.path.join(args.out_dir, "tokenizer_config.json"),
          (json.dumps(config, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    write(os.path.join(args.out_dir, "tokenizer.bin"), blob)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
