"""Tiny Llama through torch.export to C: a prefill of 16 tokens and one decode step at position
16, both on transformers' static KV cache (32 positions), as f32 and lutc-quantized.

The cache buffers the programs update in place become extra inputs and outputs of the compiled
function (torch_importer's docstring has the order); the tests thread them from call to call.
References are torch eager with the dequantized weights substituted. The lossless pipeline
(float tables) matches them to float rounding; the default one (int8 tables) is compared with
the lossless output.
"""

from __future__ import annotations

import numpy as np
import pytest

from lutc.compiler.frontends.torch_importer import import_exported_program

from ..frontends.ir_contract import check_contract
from ..frontends.torch_models import SEQ
from .conftest import DEFAULT, LOSSLESS, nmse, rel_max_abs, report
from .llama_static_cache import (
    decode_inputs,
    dequantized,
    eager_reference,
    export,
    prefill_inputs,
    state_buffers,
    static_cache_llama,
    zero_state,
)

FORMATS = [None, "w4g32", "w2g64", "ternary"]
PATH = "torch.export"


@pytest.fixture(scope="session")
def llama():
    """(eager model, prefill program, decode program, mutated buffers in signature order)."""
    model = static_cache_llama()
    prefill = export(model, *prefill_inputs())
    decode = export(model, *decode_inputs())
    buffers = state_buffers(decode)
    assert buffers == state_buffers(prefill)
    return model, prefill, decode, buffers


@pytest.fixture(scope="session")
def references(llama):
    model, _, _, buffers = llama
    cache = {}

    def get(fmt):
        if fmt not in cache:
            cache[fmt] = eager_reference(dequantized(model, fmt), buffers)
        return cache[fmt]

    return get


def _label(fmt) -> str:
    return fmt or "f32"


def _job(llama, which: str, fmt, pipeline) -> tuple:
    """The Compiler job of one program; f32 has no LUT ops, so one pipeline."""
    _, prefill, decode, _ = llama
    name = "lossless" if pipeline == LOSSLESS or fmt is None else "default"
    return (f"llama_{which}_{_label(fmt)}_{name}", prefill if which == "prefill" else decode,
            fmt, LOSSLESS if fmt is None else pipeline)


def _program(compiled, llama, which: str, fmt, pipeline):
    return compiled(*_job(llama, which, fmt, pipeline))


def _pipelines(fmt) -> list[tuple]:
    return [LOSSLESS] if fmt is None else [LOSSLESS, DEFAULT]


def _step(model, ids, positions, state):
    logits, *new_state = model(ids, positions, *state)
    return logits, new_state


def _state_error(state, ref_state) -> float:
    """Float buffers: relative max-abs error; integer ones must match exactly."""
    worst = 0.0
    for got, want in zip(state, ref_state):
        if np.issubdtype(want.dtype, np.integer):
            np.testing.assert_array_equal(got, want)
        else:
            worst = max(worst, rel_max_abs(got, want))
    return worst


def test_signature_threads_the_cache(compiled, llama):
    """inputs: ids, positions, then the state; outputs: logits, then the same state."""
    _, _, decode_program, buffers = llama
    check_contract(import_exported_program(decode_program).module)
    model, _ = _program(compiled, llama, "decode", None, LOSSLESS)
    names = ["cumulative_length_0", "cumulative_length_1", "cache.k.0", "cache.v.0",
             "cache.k.1", "cache.v.1"]
    assert buffers == ["cumulative_length_0", "cumulative_length_1", "key_cache_0",
                       "value_cache_0", "key_cache_1", "value_cache_1"]
    assert [s["name"] for s in model.inputs] == ["input_ids", "cache_position", *names]
    assert [s["name"] for s in model.outputs][1:] == names
    assert [s["shape"] for s in model.inputs[4:]] == [[1, 2, 32, 64]] * 4
    assert [s["shape"] for s in model.outputs[3:]] == [[1, 2, 32, 64]] * 4


@pytest.mark.parametrize("fmt", FORMATS, ids=_label)
def test_prefill(compiled, llama, references, fmt):
    ref = references(fmt)
    compiled.prefetch([_job(llama, "prefill", fmt, p) for p in _pipelines(fmt)])
    model, secs = _program(compiled, llama, "prefill", fmt, LOSSLESS)
    logits, state = _step(model, *prefill_inputs(), zero_state(model.inputs[2:]))
    err, cache_err = rel_max_abs(logits, ref.prefill_logits), _state_error(state,
                                                                           ref.prefill_state)
    report("tiny Llama prefill 16", fmt, PATH, "lossless",
           f"rel {err:.1e} logits, {cache_err:.1e} cache vs eager", secs)
    assert err <= 1e-4 and cache_err <= 1e-4
    if fmt is None:
        return
    fast, secs = _program(compiled, llama, "prefill", fmt, DEFAULT)
    fast_logits, _ = _step(fast, *prefill_inputs(), zero_state(fast.inputs[2:]))
    e = nmse(fast_logits, logits)
    report("tiny Llama prefill 16", fmt, PATH, "default",
           f"NMSE {e:.1e} vs lossless (rel {rel_max_abs(fast_logits, ref.prefill_logits):.1e} "
           "vs eager)", secs)
    assert e <= 2e-4  # issue 10: default vs lossless logits NMSE


@pytest.mark.parametrize("fmt", FORMATS, ids=_label)
def test_decode_step_on_the_prefilled_cache(compiled, llama, references, fmt):
    """Position 16 of a 32-long cache that the compiled prefill filled."""
    ref = references(fmt)
    compiled.prefetch([_job(llama, which, fmt, p) for which in ("prefill", "decode")
                       for p in _pipelines(fmt)])
    results = {}
    for pipeline in _pipelines(fmt):
        prefill, _ = _program(compiled, llama, "prefill", fmt, pipeline)
        _, state = _step(prefill, *prefill_inputs(), zero_state(prefill.inputs[2:]))
        decode, secs = _program(compiled, llama, "decode", fmt, pipeline)
        results[pipeline] = _step(decode, *decode_inputs(), state) + (secs,)
    logits, state, secs = results[LOSSLESS]
    err, cache_err = rel_max_abs(logits, ref.decode_logits), _state_error(state,
                                                                          ref.decode_state)
    report("tiny Llama decode @16", fmt, PATH, "lossless",
           f"rel {err:.1e} logits, {cache_err:.1e} cache vs eager", secs)
    assert logits.shape == (1, 1, 1000)
    assert err <= 1e-4 and cache_err <= 1e-4
    if fmt is None:
        return
    fast_logits, _, secs = results[DEFAULT]
    e = nmse(fast_logits, logits)
    report("tiny Llama decode @16", fmt, PATH, "default",
           f"NMSE {e:.1e} vs lossless (rel {rel_max_abs(fast_logits, ref.decode_logits):.1e} "
           "vs eager)", secs)
    assert e <= 2e-4  # issue 10: default vs lossless logits NMSE


@pytest.mark.parametrize("fmt", [None, "w2g64"], ids=_label)
def test_decode_token_by_token_builds_the_prefill_cache(compiled, llama, fmt):
    """The decode program run on the prompt one token at a time (cache_position is a run-time
    value) leaves the cache the prefill program writes, with the same logits per position."""
    compiled.prefetch([_job(llama, which, fmt, LOSSLESS) for which in ("prefill", "decode")])
    prefill, _ = _program(compiled, llama, "prefill", fmt, LOSSLESS)
    decode, _ = _program(compiled, llama, "decode", fmt, LOSSLESS)
    ids, positions = prefill_inputs()
    want_logits, want_state = _step(prefill, ids, positions, zero_state(prefill.inputs[2:]))
    state = zero_state(decode.inputs[2:])
    for t in range(SEQ):
        logits, state = _step(decode, ids[:, t:t + 1], positions[t:t + 1], state)
        assert rel_max_abs(logits[0, 0], want_logits[0, t]) <= 1e-4, t
    assert _state_error(state, want_state) <= 1e-5
