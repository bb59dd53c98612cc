"""GGUF files through the whole compiler: every supported weight type with its exact codes
(Q4_1, Q4_K, Q8_0, Q4_0, F16, BF16, Q6_K; TQ2_0/TQ1_0 ternary), logits equal to the
dequantized float model's (transformers loading the same file), lossless pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lutc.compiler.llm.llm import LLM  # noqa: E402
from lutc.runtime.errors import LutcError  # noqa: E402

from ..frontends.test_gguf_reader import llama_tensors, write_gguf  # noqa: E402

TERNARY = {"attn_q": T.TQ2_0, "attn_k": T.TQ1_0, "attn_v": T.TQ2_0, "attn_output": T.TQ1_0,
           "ffn_gate": T.TQ2_0, "ffn_up": T.TQ1_0, "ffn_down": T.TQ2_0}


def reference(path):
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32)
    return model.eval()


@pytest.mark.parametrize("kind", ["mixed", "ternary"])
def test_gguf_logits_equal_dequantized_model(tmp_path, kind):
    path = write_gguf(tmp_path / f"tiny-{kind}.gguf", "llama",
                      llama_tensors("llama", np.random.default_rng(5),
                                    TERNARY if kind == "ternary" else None))
    llm = LLM(path, lossless=True, max_context=64, chunk=8, cache_dir=tmp_path / "cache")
    ref = reference(path)
    ids = np.random.default_rng(6).integers(0, llm.config.vocab_size, size=19)
    with torch.no_grad():
        want = ref(torch.tensor(ids)[None]).logits[0].numpy()
    got = llm.logits(ids)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    # greedy decode through the KV cache, token for token
    with torch.no_grad():
        want_ids = ref.generate(torch.tensor(ids)[None], max_new_tokens=12, do_sample=False,
                                eos_token_id=None, pad_token_id=0)[0, len(ids):].tolist()
    assert llm.generate(list(ids), max_new_tokens=12).token_ids[:len(want_ids)] == want_ids


def test_gguf_text_prompt_uses_its_tokenizer_and_template(tmp_path):
    path = write_gguf(tmp_path / "tiny.gguf", "llama",
                      llama_tensors("llama", np.random.default_rng(7)))
    llm = LLM(path, max_context=64, chunk=8, cache_dir=tmp_path / "cache")
    ids = llm.encode("hello the", chat=True)
    assert ids[0] == llm.tokenizer.token_to_id("<|im_start|>")
    st = llm.generate("hello the", chat=True, max_new_tokens=4)
    assert st.n_prompt == len(ids) and 1 <= st.n_generated <= 4


@pytest.mark.parametrize("damage", ["truncated", "not_gguf", "unknown_arch"])
def test_bad_gguf_is_one_line_in_the_cli(tmp_path, damage):
    import os
    import subprocess
    import sys

    path = write_gguf(tmp_path / "m.gguf", "llama" if damage != "unknown_arch" else "mamba9",
                      llama_tensors("llama", np.random.default_rng(8)))
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "not_gguf":
        path.write_bytes(b"GGUX" + data[4:])
    proc = subprocess.run([sys.executable, "-m", "lutc.compiler.driver", "generate", str(path),
                           "-p", "hi", "-n", "2"], capture_output=True, text=True,
                          env={**os.environ, "LUTC_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lutc: error:") and "m.gguf" in lines[0]
    assert "Traceback" not in proc.stderr


def test_broken_tokenizer_metadata_is_named(tmp_path):
    """Token ids still run; a text prompt's error says which tokenizer key is wrong."""
    path = write_gguf(tmp_path / "m.gguf", "llama", llama_tensors("llama", np.random.default_rng(9)),
                      tokenizer=False, metadata={"tokenizer.ggml.model": ("str", "gpt2")})
    llm = LLM(path, max_context=16, chunk=4, cache_dir=tmp_path / "cache")
    assert llm.generate([1, 2], max_new_tokens=1).n_generated == 1
    from lutc.runtime.errors import LutcError

    with pytest.raises(LutcError, match="no tokenizer .*tokenizer.ggml.tokens.*pass token ids"):
        llm.generate("hello", max_new_tokens=1)


def test_tensor_errors_name_the_file_and_its_gguf_tensor(tmp_path):
    """An error about a tensor names the GGUF file and the tensor's name in it (next to the
    Hugging Face name the compiler uses)."""
    from lutc.runtime.errors import LutcError

    tensors = llama_tensors("llama", np.random.default_rng(8))
    norm = tensors["blk.1.ffn_norm.weight"][0].copy()
    norm[3] = np.nan
    tensors["blk.1.ffn_norm.weight"] = (norm, T.F32)
    path = write_gguf(tmp_path / "nan.gguf", "llama", tensors)
    with pytest.raises(LutcError) as info:
        LLM(path, max_context=64, chunk=8, cache_dir=tmp_path / "cache")
    assert str(info.value) == ("nan.gguf: tensor 'blk.1.ffn_norm.weight' "
                               "(model.layers.1.post_attention_layernorm.weight) has non-finite "
                               "values (NaN or infinity)")


def test_weights_format_says_what_it_quantized(tmp_path):
    """--weights on a GGUF quantizes only its float linear weights (here ffn_gate F16 and
    ffn_up BF16 of both layers) and says so in one line; with none float, it says that."""
    lines = []
    path = write_gguf(tmp_path / "mixed.gguf", "llama", llama_tensors("llama", np.random.default_rng(9)))
    LLM(path, weights="w4g32", max_context=64, chunk=8, cache_dir=tmp_path / "cache", out=lines.append)
    summary = [line for line in lines if "w4g32" in line]
    assert len(summary) == 1 and summary[0].startswith("quantized 4 linear layers to w4g32: "
                                                       "relative weight error 0.0"), lines
    lines.clear()
    path = write_gguf(tmp_path / "q.gguf", "llama", llama_tensors(
        "llama", np.random.default_rng(9), {"ffn_gate": T.Q4_1, "ffn_up": T.Q8_0}))
    LLM(path, weights="w4g32", max_context=64, chunk=8, cache_dir=tmp_path / "cache", out=lines.append)
    assert "--weights w4g32: no float linear weights to quantize (the model's own low-bit " \
           "formats are kept)" in lines, lines


def test_prompt_longer_than_max_context_is_refused_before_the_compile(tmp_path):
    """`lutc generate` tokenizes its prompt in LLM's preflight, before the compile: a prompt
    that cannot fit is one line within the time it takes to read the model, and nothing is
    compiled; a prompt that fits goes on to the compile."""
    import os
    import subprocess
    import sys

    path = write_gguf(tmp_path / "tiny.gguf", "llama",
                      llama_tensors("llama", np.random.default_rng(7)))
    seen = []

    def preflight(llm):
        seen.append(llm.max_context)
        llm.prompt_ids("hello the hello the hello the hello the", chat=True)

    with pytest.raises(LutcError, match="more than max_context"):
        LLM(path, max_context=4, cache_dir=tmp_path / "cache", preflight=preflight)
    assert seen == [4] and not list((tmp_path / "cache").glob("*/model.json"))
    env = {**os.environ, "LUTC_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "lutc.compiler.driver", "generate", str(path),
                           "-p", "hello the hello the hello the", "--chat", "--max-context", "4"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
    assert "more than max_context (4)" in proc.stderr, proc.stderr
    assert not list((tmp_path / "cache").glob("*/model.json"))
    llm = LLM(path, max_context=64, chunk=8, cache_dir=tmp_path / "cache",
              preflight=lambda llm: llm.prompt_ids("hello the"))
    assert not llm.cached and llm.generate("hello the", max_new_tokens=2).n_generated >= 1
