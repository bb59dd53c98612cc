"""Programs that update buffers in place, imported functionally and run as C: each mutated
buffer is an extra input and its new value an extra output, threaded by the caller.

A small static-cache writer stands in for a decoder: k/v caches [layers, batch, heads, max_len,
dim] written at `cache_position` through each in-place form torch.export functionalizes
differently (index_copy_, index_put_ via advanced indexing, copy_ into a static slice).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from lutc.runtime.errors import LutcError
from lutc.compiler.frontends.torch_importer import import_exported_program, state_names

from ..frontends.ir_contract import check_contract
from .conftest import rel_max_abs

LAYERS, HEADS, MAX_LEN, DIM = 2, 2, 8, 4


class CacheWriter(torch.nn.Module):
    def __init__(self, how: str):
        super().__init__()
        torch.manual_seed(0)
        self.how = how
        self.proj = torch.nn.Linear(DIM, 2 * HEADS * DIM)
        self.register_buffer("k_cache", torch.zeros(LAYERS, 1, HEADS, MAX_LEN, DIM))
        self.register_buffer("v_cache", torch.zeros(LAYERS, 1, HEADS, MAX_LEN, DIM))
        self.register_buffer("seen", torch.zeros((), dtype=torch.int64))
        self.register_buffer("scale", torch.full((HEADS, 1, 1), 0.5))  # read, never written

    def forward(self, x: torch.Tensor, cache_position: torch.Tensor) -> torch.Tensor:
        seq = x.shape[1]
        kv = self.proj(x).view(1, seq, 2, HEADS, DIM).permute(2, 0, 3, 1, 4)  # [2, 1, H, S, D]
        for layer in range(LAYERS):
            k, v = kv[0] * (layer + 1), kv[1] - layer
            if self.how == "index_copy":
                self.k_cache[layer].index_copy_(2, cache_position, k)
                self.v_cache[layer].index_copy_(2, cache_position, v)
            elif self.how == "index_put":
                self.k_cache[layer, :, :, cache_position] = k
                self.v_cache[layer, :, :, cache_position] = v
            else:  # a static slot: positions 0..seq-1, whatever cache_position says
                self.k_cache[layer, :, :, :seq].copy_(k)
                self.v_cache[layer, :, :, :seq].copy_(v)
        self.seen.add_(seq)
        scores = (self.k_cache * self.v_cache * self.scale).sum(-1)  # [L, 1, H, MAX_LEN]
        return scores.sum(0) + self.seen


def _steps(how: str):
    """Two calls: positions 0..2, then position 3 (the static slot rewrites 0..2)."""
    x1 = torch.randn(1, 3, DIM, generator=torch.Generator().manual_seed(1))
    x2 = torch.randn(1, 1 if how != "slice_copy" else 3, DIM,
                     generator=torch.Generator().manual_seed(2))
    return [(x1, torch.arange(3)), (x2, torch.tensor([3]) if how != "slice_copy"
                                    else torch.arange(3))]


# core ATen turns the index_copy_ into index_put and the view writes into where-masks; with
# no decompositions they stay index_copy + select_scatter. The slot copy is copy + slice_scatter.
CASES = [("index_copy", "core"), ("index_copy", "functional"), ("index_put", "core"),
         ("slice_copy", "core")]


@pytest.mark.parametrize("how,decompositions", CASES, ids=["-".join(c) for c in CASES])
def test_cache_writes_thread_through_c(compiled, how, decompositions):
    eager = CacheWriter(how).eval()
    steps = _steps(how)
    table = None if decompositions == "core" else {}
    programs = [torch.export.export(copy.deepcopy(eager), step).run_decompositions(table)
                for step in steps]
    assert set(programs[0].graph_signature.buffers_to_mutate.values()) == {
        "k_cache", "v_cache", "seen"}
    imported = import_exported_program(programs[0])
    check_contract(imported.module)
    assert [t.name for t in imported.inputs] == ["x", "cache_position", "cache.k", "cache.v",
                                                 "seen"]
    assert [t.name for t in imported.outputs][1:] == ["cache.k", "cache.v", "seen"]
    state = [np.zeros((LAYERS, 1, HEADS, MAX_LEN, DIM), np.float32)] * 2 + [np.array(0)]
    for i, (program, (x, positions)) in enumerate(zip(programs, steps)):
        model, _ = compiled(f"cache_writer_{how}_{decompositions}_{i}", program)
        with torch.no_grad():
            want = eager(x, positions).numpy()
        got, *state = model(x.numpy(), positions.numpy(), *state)
        assert rel_max_abs(got, want) <= 1e-5, i
        assert rel_max_abs(state[0], eager.k_cache.numpy()) <= 1e-6
        assert rel_max_abs(state[1], eager.v_cache.numpy()) <= 1e-6
        assert int(state[2]) == int(eager.seen)


def test_mutating_a_user_input_is_an_error():
    class Bump(torch.nn.Module):
        def forward(self, x):
            x.add_(1.0)
            return x * 2

    ep = torch.export.export(Bump(), (torch.zeros(4),)).run_decompositions()
    with pytest.raises(LutcError, match="mutates its inputs .USER_INPUT_MUTATION of x."):
        import_exported_program(ep)


def test_accumulating_index_put_is_an_error():
    class Accumulate(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("hist", torch.zeros(8))

        def forward(self, idx, v):
            self.hist.index_put_((idx,), v, accumulate=True)
            return self.hist * 1.0

    ep = torch.export.export(Accumulate(), (torch.tensor([1, 1]), torch.ones(2)))
    with pytest.raises(LutcError, match="index_put with accumulate=True is not supported"):
        import_exported_program(ep.run_decompositions())


def test_state_names():
    assert state_names(["key_cache_0", "value_cache_0", "cumulative_length_0"]) == [
        "cache.k.0", "cache.v.0", "cumulative_length_0"]
    assert state_names(["model.k_cache", "model.v_cache"]) == ["cache.k", "cache.v"]
    # one name per buffer: clashes keep the buffer's own (sanitized) name
    assert state_names(["layers.0.attn.k_cache", "layers.1.attn.k_cache"]) == [
        "state.layers.0.attn.k_cache", "state.layers.1.attn.k_cache"]
    assert state_names(["k_cache"], taken={"cache.k"}) == ["state.k_cache"]
