"""lutc's torch importer agrees with torch-mlir's importer + upstream MLIR lowering + LLVM JIT."""

from __future__ import annotations

import copy

import pytest
import torch

from lutc.compiler.frontends.torch_importer import import_exported_program
from lutc.compiler.interp.interpret import run_module

from .conftest import max_abs

pytest.importorskip("torch_mlir")


def test_tiny_llama_matches_torch_mlir_jit(llama_program):
    from .torch_mlir_jit import jit_torch_mlir

    model, ep, ids = llama_program
    # torch-mlir wants every buffer in the state dict, and cannot bufferize the cumsum of
    # transformers' packed-sequence check: give it persistent buffers and an all-ones mask
    # (same logits)
    model = copy.deepcopy(model)
    for module in model.modules():
        module._non_persistent_buffers_set.clear()
    mask = torch.ones_like(ids)
    oracle = jit_torch_mlir(model, (ids, mask))([ids.numpy(), mask.numpy()], 3)
    im = import_exported_program(ep)
    ours = run_module(im.module, im.weights, [ids.numpy()])[0]
    assert oracle.shape == ours.shape == (1, 16, 1000)
    assert max_abs(ours, oracle) <= 1e-4
