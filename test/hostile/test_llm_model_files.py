"""Hostile Hugging Face directories and generation options (`lutc.LLM`, `lutc generate`):
every bad value is one LutcError naming the file or config key, found before anything is
compiled; files that are not regular files (FIFO, /dev/zero, directories, dangling links)
are refused instead of read for ever."""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import sys

import numpy as np
import pytest

from lutc.compiler.llm.llm import LLM
from lutc.compiler.llm.sampling import next_token
from lutc.runtime.errors import LutcError

from test.tiny_llama import tiny_llama
from .conftest import assert_one_line_error, run_lutc

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("hf") / "tiny"
    tiny_llama(intermediate_size=48).save_pretrained(d)
    return d


def copy_with(hf_dir, tmp_path, **config_changes):
    d = tmp_path / "m"
    shutil.copytree(hf_dir, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(config_changes)
    (d / "config.json").write_text(json.dumps(cfg))
    return d


@pytest.mark.parametrize("key, value, message", [
    ("rms_norm_eps", "tiny", "expected a finite number"),
    ("rms_norm_eps", math.nan, "expected a finite number"),
    ("rms_norm_eps", -1e-5, "expected a number > 0"),
    ("rope_theta", 0, "expected a number > 0"),
    ("rope_theta", "big", "expected a finite number"),
    ("tie_word_embeddings", "no", "expected true or false"),
    ("hidden_size", 32.5, "expected an integer"),
    ("num_hidden_layers", 0, "expected an integer >= 1"),
    ("num_attention_heads", -2, "expected an integer >= 1"),
    ("max_position_embeddings", -5, "expected an integer >= 1"),
    ("sliding_window", -3, "expected an integer >= 0"),
    ("partial_rotary_factor", 1.5, "fraction of head_dim"),
    ("partial_rotary_factor", "half", "expected a finite number"),
    ("rope_scaling", "yes please", "expected an object"),
    ("rope_parameters", [1, 2], "expected an object"),
    ("eos_token_id", "</s>", "expected a token id"),
    ("hidden_act", 3, "activation"),
    ("head_dim", 15, "RoPE covers 15 of 15 head dims"),
])
def test_bad_config_value_is_named(hf_dir, tmp_path, key, value, message):
    d = copy_with(hf_dir, tmp_path, **{key: value})
    with pytest.raises(LutcError, match=f"^tiny|^m: ") as err:
        LLM(d, max_context=16, chunk=4, cache_dir=tmp_path / "cache")
    text = str(err.value)
    assert message in text and "\n" not in text, text
    if "RoPE" not in message:
        assert key in text, text
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def _safetensors(path, header: object, body: bytes = b""):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


@pytest.mark.parametrize("header, message", [
    ([1, 2], "header is not a JSON object"),
    ({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0.0, 16]}}, "malformed header"),
    ({"w": {"dtype": "F32", "shape": [-2, -2], "data_offsets": [0, 16]}}, "malformed header"),
    ({"w": {"dtype": "F32", "shape": ["2", "2"], "data_offsets": [0, 16]}}, "malformed header"),
    ({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 1 << 40]}}, "data range"),
])
def test_lying_safetensors_header(hf_dir, tmp_path, header, message):
    d = copy_with(hf_dir, tmp_path)
    _safetensors(d / "model.safetensors", header, bytes(16))
    with pytest.raises(LutcError, match=message):
        LLM(d, max_context=16, chunk=4, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory", "dangling", "empty"])
def test_weights_that_are_not_regular_files(hf_dir, tmp_path, kind):
    d = copy_with(hf_dir, tmp_path)
    st = d / "model.safetensors"
    st.unlink()
    if kind == "fifo":
        os.mkfifo(st)
    elif kind == "dev_zero":
        st.symlink_to("/dev/zero")
    elif kind == "directory":
        st.mkdir()
    elif kind == "dangling":
        st.symlink_to(tmp_path / "nowhere")
    else:
        st.write_bytes(b"")
    proc = run_lutc("generate", d, "-p", "1", "--max-context", "16", timeout=60,
                    env={**os.environ, "LUTC_CACHE": str(tmp_path / "cache")})
    assert_one_line_error(proc, "model.safetensors")


def test_gguf_that_is_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "m.gguf")
    proc = run_lutc("generate", tmp_path / "m.gguf", "-p", "1", timeout=60)
    assert_one_line_error(proc, "m.gguf", "not a regular file")


def test_broken_tokenizer_json(hf_dir, tmp_path):
    d = copy_with(hf_dir, tmp_path)
    (d / "tokenizer.json").write_text("{not json")
    with pytest.raises(LutcError, match="tokenizer.json: not a valid tokenizer.json"):
        LLM(d, max_context=16, chunk=4, cache_dir=tmp_path / "cache")


def test_kv_cache_over_the_byte_cap_fails_before_compiling(hf_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LUTC_MAX_MODEL_BYTES", str(1 << 20))
    with pytest.raises(LutcError, match="KV cache for max_context 100000"):
        LLM(hf_dir, max_context=100000, chunk=4, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_byte_cap_holds_for_a_cached_model(hf_dir, tmp_path, monkeypatch):
    """The cap is not part of the compile-cache key: a model compiled under a larger cap is
    checked again when it is loaded from the cache under a smaller one."""
    llm = LLM(hf_dir, max_context=16, chunk=4, cache_dir=tmp_path / "cache")
    manifest = json.loads((llm.directory / "model.json").read_text())
    need = manifest["weight_bytes"] + manifest["arena_bytes"]
    monkeypatch.setenv("LUTC_MAX_MODEL_BYTES", str(need - 1))
    with pytest.raises(LutcError, match=f"the model needs {need} bytes .* over the limit of {need - 1}"):
        LLM(hf_dir, max_context=16, chunk=4, cache_dir=tmp_path / "cache")
    monkeypatch.setenv("LUTC_MAX_MODEL_BYTES", str(need))
    assert LLM(hf_dir, max_context=16, chunk=4, cache_dir=tmp_path / "cache").cached


@pytest.mark.parametrize("name, value", [
    ("model.layers.0.self_attn.q_proj.weight", np.nan),
    ("model.layers.0.input_layernorm.weight", np.inf),
    ("model.embed_tokens.weight", -np.inf),
])
def test_non_finite_weights_are_named(hf_dir, tmp_path, name, value):
    from safetensors.numpy import load_file, save_file

    d = copy_with(hf_dir, tmp_path)
    tensors = load_file(d / "model.safetensors")
    tensors[name][(0,) * tensors[name].ndim] = value
    save_file(tensors, d / "model.safetensors")
    with pytest.raises(LutcError, match=f"tensor '{name}' has non-finite values"):
        LLM(d, max_context=16, chunk=4, cache_dir=tmp_path / "cache")


def test_unusable_cache_directory(hf_dir, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(LutcError, match="as the compile cache"):
        LLM(hf_dir, max_context=16, chunk=4, cache_dir=tmp_path / "file" / "x")


def test_bad_seed_and_non_finite_logits(hf_dir, tmp_path):
    llm = LLM(hf_dir, max_context=16, chunk=4, cache_dir=tmp_path / "cache")
    with pytest.raises(LutcError, match="seed must be a non-negative integer"):
        llm.generate([1, 2], max_new_tokens=1, temperature=1.0, seed=-1)
    with pytest.raises(LutcError, match="token ids must be integers"):
        llm.logits([1.5])
    with pytest.raises(LutcError, match="outside the vocabulary"):
        llm.logits(np.array([2**63 + 5], np.uint64))
    logits = np.zeros(8, np.float32)
    logits[3] = np.nan
    for temperature in (0.0, 0.8):
        with pytest.raises(LutcError, match="non-finite logits"):
            next_token(logits, temperature, 0, 1.0, np.random.default_rng(0))


def test_unexpected_error_is_one_line(monkeypatch, capsys):
    """The CLI's last line of defence: an exception lutc did not anticipate is one line and
    exit status 2; LUTC_DEBUG=1 lets the traceback through."""
    from lutc.compiler import driver

    monkeypatch.setattr(driver, "_cmd_run", lambda args: {}["a bug"])
    monkeypatch.delenv("LUTC_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        driver.main(["run", "x"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith("lutc: internal error: KeyError: 'a bug'"), err
    monkeypatch.setenv("LUTC_DEBUG", "1")
    with pytest.raises(KeyError):
        driver.main(["run", "x"])


@pytest.mark.parametrize("args, fragment", [
    (["--context", "1"], "argument --context: expected a value >= 2, got 1"),  # the parser
    (["--context", "64", "--max-context", "32"], "--context 64 does not fit --max-context 32"),
])
def test_perplexity_options(hf_dir, tmp_path, args, fragment):
    (tmp_path / "t.txt").write_text("some text")
    proc = run_lutc("perplexity", hf_dir, "--text", tmp_path / "t.txt", *args, timeout=120)
    assert_one_line_error(proc, fragment, prefix="lutc")


@pytest.mark.parametrize("kind", ["directory", "fifo", "missing"])
def test_perplexity_text_that_is_not_a_file(hf_dir, tmp_path, kind):
    text = tmp_path / "t.txt"
    if kind == "directory":
        text.mkdir()
    elif kind == "fifo":
        os.mkfifo(text)
    proc = run_lutc("perplexity", hf_dir, "--text", text, timeout=60)
    assert_one_line_error(proc, "t.txt", "not a regular file" if kind != "missing"
                          else "No such file")


def test_prompt_of_invalid_utf8_bytes(hf_dir):
    """Command-line bytes that are not UTF-8 reach Python as lone surrogates, which the
    tokenizer cannot take: one line naming the prompt."""
    proc = run_lutc("generate", hf_dir, "-p", "ok \udcff\udcfe", "--max-context", "16", timeout=120)
    assert_one_line_error(proc, "the prompt is not valid UTF-8 text (character 3)")


def test_compile_of_a_gguf_points_to_generate(tmp_path):
    (tmp_path / "m.bin").write_bytes(b"GGUF" + bytes(64))
    proc = run_lutc("compile", tmp_path / "m.bin", "-o", tmp_path / "out", timeout=60)
    assert_one_line_error(proc, "GGUF language model", "lutc generate")


def test_generation_says_when_the_context_is_full(hf_dir, tmp_path):
    llm = LLM(hf_dir, max_context=8, chunk=4, cache_dir=tmp_path / "cache")
    st = llm.generate([1, 2, 3], max_new_tokens=50)
    assert st.stop_reason == "max_context" and st.n_prompt + st.n_generated <= 9
    assert llm.generate([1, 2, 3], max_new_tokens=2).stop_reason in ("max_new_tokens", "eos")


def test_api_argument_types(hf_dir, tmp_path):
    """Python callers get a LutcError naming the argument, not an error from deep inside."""
    for kwargs, fragment in ((dict(max_context=1.5), "max_context must be an integer"),
                             (dict(chunk=None), "chunk must be an integer"),
                             (dict(threads="2"), "threads must be an integer"),
                             (dict(weights=3), "weights must be a format string")):
        with pytest.raises(LutcError, match=fragment):
            LLM(hf_dir, cache_dir=tmp_path / "cache", **kwargs)
    llm = LLM(hf_dir, max_context=16, chunk=4, cache_dir=tmp_path / "cache")
    for kwargs, fragment in ((dict(top_k=1.5), "top_k must be a number"),
                             (dict(temperature="hot"), "temperature must be a number"),
                             (dict(max_new_tokens=None), "max_new_tokens must be an integer"),
                             (dict(stop=5), "stop must be"), (dict(stop=[""]), "stop must be")):
        with pytest.raises(LutcError, match=fragment):
            llm.generate([1, 2], **kwargs)
    assert llm.generate([1, 2], max_new_tokens=2, stop="never").stop_reason != "stop"
