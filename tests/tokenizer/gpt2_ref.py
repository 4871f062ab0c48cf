"""A reference byte-level BPE written from the GPT-2 algorithm (OpenAI's encoder.py:
bytes_to_unicode, the pre-tokenizer regex, merges by rank) for test_byte_bpe.py, plus a
small trainer that learns merges from a text and a writer for the tokenizer.json that
Hugging Face saves for GPT-2. Written for the tests; shares nothing with modeld's C code.
"""

import json
from collections import Counter

import regex

PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
PAT = regex.compile(PATTERN)
EOT = "<|endoftext|>"


def bytes_to_unicode():
    """Byte -> printable character: the printable Latin-1 bytes stand for themselves,
    the rest are shifted to 256 upwards, in byte order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + \
        list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()
U2B = {v: k for k, v in B2U.items()}


def words(text):
    """Pre-tokenized words, each as its byte-mapped string."""
    return ["".join(B2U[b] for b in w.encode("utf-8")) for w in PAT.findall(text)]


def train(text, n_merges):
    """Greedy BPE: repeatedly merge the most frequent adjacent pair (ties: the pair that
    sorts first), counting within words."""
    counts = Counter(words(text))
    seqs = {w: list(w) for w in counts}
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, c in counts.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[a, b] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for w in seqs:
            s, out, i = seqs[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    vocab = {}
    for b in range(256):
        vocab[B2U[b]] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    return vocab, merges


class Encoder:
    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.inv = {i: t for t, i in vocab.items()}

    def bpe(self, word):
        """encoder.py's loop: merge every occurrence of the lowest-ranked pair, repeat."""
        parts = list(word)
        while len(parts) > 1:
            pairs = set(zip(parts, parts[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    out.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        return parts

    def encode(self, text, special=None):
        """special: {text: id} cut out of the text first (added tokens)."""
        if special:
            alt = "|".join(regex.escape(s) for s in sorted(special, key=len, reverse=True))
            ids, pos = [], 0
            for m in regex.finditer(alt, text):
                ids += self.encode(text[pos:m.start()])
                ids.append(special[m.group()])
                pos = m.end()
            return ids + self.encode(text[pos:])
        return [self.vocab[p] for w in words(text) for p in self.bpe(w)]

    def decode(self, ids, added=None):
        data = b"".join(added[i].encode() if added and i in added
                        else bytes(U2B[c] for c in self.inv[i]) for i in ids)
        return data.decode("utf-8", errors="replace")


def tokenizer_json(vocab, merges, eot_id, merges_as_pairs=False, split_pattern=False):
    """What Hugging Face's GPT-2 tokenizer.json holds (optionally in the newer merges
    form, or with the regex as a separate Split step as newer exports do)."""
    pre = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
           "use_regex": True}
    if split_pattern:
        pre = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Isolated",
             "invert": False},
            dict(pre, use_regex=False)]}
    v = dict(vocab)
    v[EOT] = eot_id
    return json.dumps({
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": eot_id, "content": EOT, "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": True,
                          "special": True}],
        "normalizer": None,
        "pre_tokenizer": pre,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True,
                           "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": v,
                  "merges": [[a, b] if merges_as_pairs else f"{a} {b}" for a, b in merges]},
    }, ensure_ascii=False)
