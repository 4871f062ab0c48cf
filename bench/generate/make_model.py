#!/usr/bin/python3
"""Random-weight Llama models for the generation benchmark, in both forms modeld reads.

    /usr/bin/python3 bench/generate/make_model.py OUT_DIR [--shape 15M|110M] [--dtype f32|f16|bf16]
                                                  [--seed 0] [--tokenizer-bin]

Writes OUT_DIR/model.bin (llama2.c legacy "version 0" layout: 7 int32 header, float32
arrays, tied classifier) and OUT_DIR/config.json + OUT_DIR/model.safetensors (Hugging Face
LlamaForCausalLM names, q/k rows permuted to the rotate_half convention exactly as
llama2.c's export.py / HF's convert script do, so both files give the same logits).
--dtype applies to the safetensors matrices (model.bin is always float32).
--tokenizer-bin also writes a dummy llama2.c tokenizer.bin ("<i>" strings) so that
llama2.c's run.c can be pointed at model.bin for a side-by-side speed comparison.

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shape", default="15M", choices=sorted(SHAPES))
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer-bin", action="store_true")
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
