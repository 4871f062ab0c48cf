#!/usr/bin/python3
"""Random-weight Llama models for the generation benchmark, in both forms modeld reads.

    /usr/bin/python3 bench/generate/make_model.py OUT_DIR [--shape 15M|110M] [--dtype f32|f16|bf16]
                                                  [--seed 0] [--tokenizer-bin] [--q80]

Writes OUT_DIR/model.bin (llama2.c legacy "version 0" layout: 7 int32 header, float32
arrays, tied classifier) and OUT_DIR/config.json + OUT_DIR/model.safetensors (Hugging Face
LlamaForCausalLM names, q/k rows permuted to the rotate_half convention exactly as
llama2.c's export.py / HF's convert script do, so both files give the same logits).
--dtype applies to the safetensors matrices (model.bin is always float32).
--tokenizer-bin also writes a dummy llama2.c tokenizer.bin ("<i>" strings) so that
llama2.c's run.c can be pointed at model.bin for a side-by-side speed comparison.
--q80 also writes OUT_DIR/model_q80.bin, the same weights in llama2.c's int8 "version 2"
checkpoint that its runq.c reads (the layout runq.c's reader expects):
  256-byte header: u32 magic 0x616b3432 ("ak42"), i32 version 2, 7 i32 (dim, hidden_dim,
  n_layers, n_heads, n_kv_heads, vocab_size, seq_len), u8 shared_classifier, i32 group_size,
  zero padding; then float32 rms_att [L, dim], rms_ffn [L, dim], rms_final [dim]; then each
  quantized tensor as int8 q [n] followed by float32 scales [n / group_size]: the token
  embedding, then per layer wq, wk, wv, wo, w1, w2, w3 (all layers of one before the next),
  then the classifier if not shared. A group's scale is max |w| / 127 and q = round(w /
  scale); group_size is 64, halved until it divides dim (32 for the 15M shape).

Shapes are llama2.c's stories15M (dim 288, 6 layers, 6 heads, hidden 768, vocab 32000,
seq_len 256) and stories110M (dim 768, 12 layers, 12 heads, hidden 2048, seq_len 1024).
Weights are N(0, 0.02^2) (norm gains 1), numpy only, deterministic for a seed.
"""

import argparse
import json
import os
import struct

import numpy as np

SHAPES = {
    "15M": dict(dim=288, hidden=768, layers=6, heads=6, kv_heads=6, vocab=32000, seq_len=256),
    "110M": dict(dim=768, hidden=2048, layers=12, heads=12, kv_heads=12, vocab=32000, seq_len=1024),
}


def permute(w, n_heads):
    """Interleaved (Meta) rows -> HF rotate_half rows, per head."""
    rows, cols = w.shape
    return w.reshape(n_heads, rows // n_heads // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def to_dtype(a, dtype):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "f32":
        return a.tobytes(), "F32"
    if dtype == "f16":
        return a.astype(np.float16).tobytes(), "F16"
    bits = a.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
    return rounded.tobytes(), "BF16"


def write_safetensors(path, tensors, dtype):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, arr in tensors:
        data, tag = to_dtype(arr, dtype)
        header[name] = {"dtype": tag, "shape": list(arr.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def quantize_groups(w, gs):
    """int8 values and float32 scales of w flattened, per group of gs."""
    g = np.ascontiguousarray(w, dtype=np.float32).reshape(-1, gs)
    scale = np.abs(g).max(axis=1) / np.float32(127.0)
    safe = np.where(scale > 0, scale, np.float32(1.0))
    q = np.clip(np.round(g / safe[:, None]), -127, 127).astype(np.int8)
    return q.tobytes(), scale.astype(np.float32).tobytes()


def write_q80(path, s, emb, layers, ones):
    d, hid, L, H, KV, V, T = (s[k] for k in ("dim", "hidden", "layers", "heads", "kv_heads", "vocab", "seq_len"))
    gs = 64
    while d % gs:
        gs //= 2
    header = struct.pack("<Ii7iBi", 0x616B3432, 2, d, hid, L, H, KV, V, T, 1, gs)
    with open(path, "wb") as f:
        f.write(header + b"\0" * (256 - len(header)))
        for _ in range(2 * L + 1):  # rms_att, rms_ffn (per layer), rms_final
            f.write(ones.tobytes())
        for w in [emb] + [l[k] for k in ("wq", "wk", "wv", "wo", "w1", "w2", "w3") for l in layers]:
            q, sc = quantize_groups(w, gs)
            f.write(q)
            f.write(sc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shape", default="15M", choices=sorted(SHAPES))
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer-bin", action="store_true")
    ap.add_argument("--q80", action="store_true")
    a = ap.parse_args()
    s = SHAPES[a.shape]
    d, hid, L, H, KV, V, T = (s[k] for k in ("dim", "hidden", "layers", "heads", "kv_heads", "vocab", "seq_len"))
    hd, kvd = d // H, d // H * KV
    rng = np.random.default_rng(a.seed)
    g = lambda *shape: rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
    emb = g(V, d)
    layers = [dict(wq=g(d, d), wk=g(kvd, d), wv=g(kvd, d), wo=g(d, d), w1=g(hid, d), w2=g(d, hid),
                   w3=g(hid, d)) for _ in range(L)]
    ones = np.ones(d, dtype=np.float32)
    os.makedirs(a.out, exist_ok=True)

    with open(os.path.join(a.out, "model.bin"), "wb") as f:
        f.write(struct.pack("<7i", d, hid, L, H, KV, V, T))
        f.write(emb.tobytes())
        for key in ("rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3"):
            for l in layers:
                f.write(ones.tobytes() if key.startswith("rms") else l[key].tobytes())
        f.write(ones.tobytes())
        freqs = 1.0 / 10000.0 ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
        ang = np.outer(np.arange(T), freqs)
        f.write(np.cos(ang).astype(np.float32).tobytes())
        f.write(np.sin(ang).astype(np.float32).tobytes())

    if a.q80:
        write_q80(os.path.join(a.out, "model_q80.bin"), s, emb, layers, ones)

    tensors = [("model.embed_tokens.weight", emb)]
    for i, l in enumerate(layers):
        p = f"model.layers.{i}."
        tensors += [(p + "input_layernorm.weight", ones),
                    (p + "self_attn.q_proj.weight", permute(l["wq"], H)),
                    (p + "self_attn.k_proj.weight", permute(l["wk"], KV)),
                    (p + "self_attn.v_proj.weight", l["wv"]),
                    (p + "self_attn.o_proj.weight", l["wo"]),
                    (p + "post_attention_layernorm.weight", ones),
                    (p + "mlp.gate_proj.weight", l["w1"]),
                    (p + "mlp.down_proj.weight", l["w2"]),
                    (p + "mlp.up_proj.weight", l["w3"])]
    tensors.append(("model.norm.weight", ones))
    write_safetensors(os.path.join(a.out, "model.safetensors"), tensors, a.dtype)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": d,
              "intermediate_size": hid, "num_hidden_layers": L, "num_attention_heads": H,
              "num_key_value_heads": KV, "max_position_embeddings": T, "vocab_size": V,
              "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True,
              "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2,
              "torch_dtype": {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[a.dtype]}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)

    if a.tokenizer_bin:
        with open(os.path.join(a.out, "tokenizer.bin"), "wb") as f:
            f.write(struct.pack("<i", 16))
            for i in range(V):
                piece = f"<{i}>".encode()
                f.write(struct.pack("<fi", 0.0, len(piece)) + piece)


if __name__ == "__main__":
    main()
