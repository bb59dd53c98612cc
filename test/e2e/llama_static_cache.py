"""The tiny Llama with a static KV cache: transformers' export recipe, its exported prefill and
decode programs, and torch eager references with lutc's dequantized weights substituted."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind

from lutc.compiler.frontends.quantize import WeightSpec, quantize

from ..frontends.torch_models import SEQ, tiny_llama, token_ids

MAX_LEN = 32  # the static cache's length; decode runs at position SEQ
NEXT_TOKEN = 7


def static_cache_llama() -> torch.nn.Module:
    """The frontend tests' tiny Llama (same seed and weights) with a static cache enabled."""
    model = tiny_llama()
    model.config.use_cache = True
    model.generation_config.use_cache = True
    model.generation_config.cache_implementation = "static"
    return model


def decoder(model: torch.nn.Module) -> torch.nn.Module:
    """transformers' TorchExportableModuleForDecoderOnlyLM: (input_ids, cache_position) ->
    logits, the cache held in buffers key_cache_i / value_cache_i / cumulative_length_i and
    updated in place (index_copy_ / copy_ / add_)."""
    from transformers.integrations.executorch import TorchExportableModuleForDecoderOnlyLM

    return TorchExportableModuleForDecoderOnlyLM(model, batch_size=1, max_cache_len=MAX_LEN)


def prefill_inputs() -> tuple[np.ndarray, np.ndarray]:
    return token_ids().numpy(), np.arange(SEQ, dtype=np.int64)


def decode_inputs() -> tuple[np.ndarray, np.ndarray]:
    return np.array([[NEXT_TOKEN]], np.int64), np.array([SEQ], np.int64)


def export(model: torch.nn.Module, ids: np.ndarray, positions: np.ndarray) -> ExportedProgram:
    """The recipe's own (strict) export, then core ATen: the cache buffers are mutated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = decoder(model).export(input_ids=torch.from_numpy(ids),
                                   cache_position=torch.from_numpy(positions))
        return ep.run_decompositions()


def state_buffers(ep: ExportedProgram) -> list[str]:
    """The mutated buffers in the order lutc appends them to inputs and outputs."""
    sig = ep.graph_signature
    mutated = set(sig.buffers_to_mutate.values())
    return [s.target for s in sig.input_specs if s.kind == InputKind.BUFFER and s.target in mutated]


def dequantized(model: torch.nn.Module, fmt: str | None) -> torch.nn.Module:
    """A copy whose linear weights are what lutc computes with for `fmt` (None: float)."""
    model = copy.deepcopy(model)
    if fmt is None:
        return model
    spec = WeightSpec.parse(fmt)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                deq = quantize(module.weight.numpy(), spec).dequantize()
                module.weight.copy_(torch.from_numpy(deq))
    return model


@dataclass
class Reference:
    """Eager logits and cache state after the prefill and after one decode step."""

    prefill_logits: np.ndarray
    prefill_state: list[np.ndarray]
    decode_logits: np.ndarray
    decode_state: list[np.ndarray]


def eager_reference(model: torch.nn.Module, buffers: list[str]) -> Reference:
    wrapper = decoder(model).model  # the recipe's outer forward drops cache_position (5.x)

    def step(ids, positions):
        with torch.no_grad():
            logits = wrapper(input_ids=torch.from_numpy(ids),
                             cache_position=torch.from_numpy(positions))
        state = [getattr(wrapper, b).detach().clone().numpy() for b in buffers]
        return logits.numpy(), state

    p_logits, p_state = step(*prefill_inputs())
    d_logits, d_state = step(*decode_inputs())
    return Reference(p_logits, p_state, d_logits, d_state)


def zero_state(specs: list[dict]) -> list[np.ndarray]:
    return [np.zeros(s["shape"], s["dtype"]) for s in specs]


class ExplicitCache(torch.nn.Module):
    """The recipe with its KV cache as explicit inputs and outputs: (input_ids, cache_position,
    *caches) -> (logits, *new caches). torch.onnx keeps no buffer mutations (the cache would
    be a constant), so this is how the same decoder reaches ONNX; the update is ScatterND."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.recipe = decoder(model).model
        self.names = [n for n, _ in self.recipe.named_buffers() if "_cache_" in n]

    def forward(self, input_ids, cache_position, *caches):
        for name, value in zip(self.names, caches):
            getattr(self.recipe, name).copy_(value)
        logits = self.recipe(input_ids=input_ids, cache_position=cache_position)
        return (logits, *[getattr(self.recipe, name).clone() for name in self.names])


def export_onnx_decode(model: torch.nn.Module, path) -> list[str]:
    """The decode step of `ExplicitCache(model)` as ONNX at `path`; returns the cache names."""
    wrapper = ExplicitCache(model).eval()
    ids, positions = decode_inputs()
    caches = [torch.zeros_like(getattr(wrapper.recipe, n)) for n in wrapper.names]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        ep = torch.export.export(wrapper, (torch.from_numpy(ids), torch.from_numpy(positions),
                                           *caches), strict=True)
        program = torch.onnx.export(ep, dynamo=True, verbose=False, input_names=[
            "input_ids", "cache_position", *wrapper.names], output_names=[
            "logits", *[f"new_{n}" for n in wrapper.names]])
    program.save(str(path))
    return wrapper.names
