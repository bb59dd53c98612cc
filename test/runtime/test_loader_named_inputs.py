"""CompiledModel takes inputs by name, like onnxruntime's run(None, {name: array})."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lutc.compiler.llm.llm import LLM  # noqa: E402
from lutc.runtime.errors import LutcError  # noqa: E402

from test.tiny_llama import tiny_llama  # noqa: E402


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    return LLM(tiny_llama(), max_context=16, chunk=4,
               cache_dir=tmp_path_factory.mktemp("c"))


def feed(llm):
    return {"tokens": np.array([1, 2, 3, 0]), "positions": np.arange(4),
            "rows": np.array([3]), "kv_cache": np.zeros_like(llm.kv_cache),
            "logit_rows": np.array([3]), "logit_index": np.arange(4)}


def test_by_position_dict_keywords_and_run_agree(llm):
    model = llm.model
    f = feed(llm)
    (a,) = model(f["tokens"], f["positions"], f["rows"], np.zeros_like(llm.kv_cache),
                 f["logit_rows"], f["logit_index"])
    (b,) = model(f)
    (c,) = model(**{**f, "kv_cache": np.zeros_like(llm.kv_cache)})
    (d,) = model.run(["logits"], {**f, "kv_cache": np.zeros_like(llm.kv_cache)})
    for other in (b, c, d):
        np.testing.assert_array_equal(a[:3], other[:3])


def test_bad_names_are_user_errors(llm):
    f = feed(llm)
    with pytest.raises(LutcError, match="no input named 'token_ids'"):
        llm.model({**f, "token_ids": f.pop("tokens")})
    f = feed(llm)
    del f["rows"]
    with pytest.raises(LutcError, match="missing input"):
        llm.model(f)
    with pytest.raises(LutcError, match="either in order or by name"):
        llm.model(feed(llm)["tokens"], rows=np.array([1]))
    with pytest.raises(LutcError, match="no output named"):
        llm.model.run(["probs"], feed(llm))


def test_run_into_reuses_output_arrays(llm):
    """run_into writes the outputs into the caller's arrays (what LLM's decode loop reuses
    every step) and gives what a plain call gives, call after call."""
    model = llm.model
    args = lambda f: (f["tokens"], f["positions"], f["rows"], f["kv_cache"],  # noqa: E731
                      f["logit_rows"], f["logit_index"])
    (ref,) = model(*args(feed(llm)))
    out = [np.full(spec["shape"], np.nan, spec["dtype"]) for spec in model.outputs]
    for _ in range(2):
        got = model.run_into(out, *args(feed(llm)))
        assert got[0] is out[0]
        np.testing.assert_array_equal(out[0][:3], ref[:3])


def test_run_into_rejects_wrong_outputs(llm):
    model = llm.model
    f = feed(llm)
    args = (f["tokens"], f["positions"], f["rows"], f["kv_cache"], f["logit_rows"],
            f["logit_index"])
    shape, dtype = model.outputs[0]["shape"], model.outputs[0]["dtype"]
    bad = [[], [np.empty(shape, np.float64)], [np.empty([shape[0] + 1, *shape[1:]], dtype)],
           [np.empty(shape[::-1], dtype).T], [np.empty(shape, dtype)] * 2]
    for outputs in bad:
        with pytest.raises(LutcError, match="output|outputs"):
            model.run_into(outputs, *args)
    alias = f["kv_cache"].reshape(-1)[:int(np.prod(shape))].reshape(shape)
    if alias.dtype == np.dtype(dtype):
        with pytest.raises(LutcError, match="overlaps an input"):
            model.run_into([alias], *args)


def test_decode_steps_reuse_one_logits_buffer(llm):
    """LLM keeps one output buffer for every forward step; logits it returns are copies, so a
    later step does not change an earlier step's result."""
    llm.kv_cache[...] = 0
    first = llm._forward(np.array([1, 2, 3]), 0, last_only=True)
    keep = first.copy()
    buf = llm._logits[0]
    llm._forward(np.array([4]), 3, last_only=True)
    assert llm._logits[0] is buf
    np.testing.assert_array_equal(first, keep)


def test_bind_into_follows_the_arrays_in_place(llm):
    """A bound call runs on the current contents of the arrays it was bound to (rewritten in
    place between calls) and gives what run_into gives on the same inputs."""
    model = llm.model
    f = feed(llm)
    names = ("tokens", "positions", "rows", "kv_cache", "logit_rows", "logit_index")
    out = [np.full(spec["shape"], np.nan, spec["dtype"]) for spec in model.outputs]
    call = model.bind_into(out, *(f[n] for n in names))
    for tokens in ([1, 2, 3, 0], [5, 6, 7, 0]):
        f["tokens"][:] = tokens
        f["kv_cache"][...] = 0
        call()
        g = {**feed(llm), "tokens": np.array(tokens)}
        (ref,) = model(*(g[n] for n in names))
        np.testing.assert_array_equal(out[0][:3], ref[:3])


def test_bind_into_refuses_what_it_cannot_follow(llm):
    """Inputs it would have to convert (a copy would not see the caller's writes), wrong
    outputs and outputs overlapping an input are user errors, as in run_into."""
    model = llm.model
    f = feed(llm)
    names = ("tokens", "positions", "rows", "kv_cache", "logit_rows", "logit_index")
    out = [np.empty(spec["shape"], spec["dtype"]) for spec in model.outputs]
    with pytest.raises(LutcError, match="C-contiguous input arrays"):
        model.bind_into(out, *(f[n] if n != "tokens" else f[n].astype(np.int32) for n in names))
    with pytest.raises(LutcError, match="C-contiguous input arrays"):
        model.bind_into(out, *(f[n] if n != "positions" else np.arange(8)[::2] for n in names))
    with pytest.raises(LutcError, match="output"):
        model.bind_into([np.empty(1, np.float32)], *(f[n] for n in names))
    with pytest.raises(LutcError, match="takes 6 inputs"):
        model.bind_into(out, *(f[n] for n in names[:-1]))
    shape, dtype = model.outputs[0]["shape"], model.outputs[0]["dtype"]
    alias = f["kv_cache"].reshape(-1)[:int(np.prod(shape))].reshape(shape)
    if alias.dtype == np.dtype(dtype):
        with pytest.raises(LutcError, match="overlaps an input"):
            model.bind_into([alias], *(f[n] for n in names))


def test_decode_step_is_the_chunked_call(llm):
    """LLM's bound decode step gives bitwise the logits of the general path (run_into with
    the same padded chunk) and writes the same KV cache."""
    llm.kv_cache[...] = 0
    llm._forward(np.array([1, 2, 3]), 0)
    cache = llm.kv_cache.copy()
    fast = llm._forward(np.array([4]), 3, last_only=True)  # the bound step
    after_fast = llm.kv_cache.copy()
    llm.kv_cache[...] = cache
    slow = llm._forward(np.array([4]), 3)  # run_into, every row's logits (one row)
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(after_fast, llm.kv_cache)
    view = llm._decode_step(5, 4)
    assert np.shares_memory(view, llm._logits[0]) and view.shape == (llm.config.vocab_size,)
