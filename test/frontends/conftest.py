"""Shared fixtures: a session-wide folder for generated models and a numeric-compare helper."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """Generated ONNX files / exported programs, built once per test session."""
    return tmp_path_factory.mktemp("frontend_models")


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def rel_max_abs(a: np.ndarray, ref: np.ndarray) -> float:
    """max|a - ref| / max|ref|: the error measure for quantized formats."""
    return max_abs(a, ref) / max(float(np.max(np.abs(ref))), 1e-30)


@pytest.fixture(scope="session")
def llama_onnx(model_dir):
    """Tiny Llama exported to ONNX once per exporter: get("dynamo" | "dynamo_dynamic" |
    "classic") -> path."""
    cache: dict[str, object] = {}

    def get(exporter: str):
        if exporter not in cache:
            from .torch_models import export_llama_onnx

            cache[exporter] = export_llama_onnx(model_dir / f"llama_{exporter}.onnx",
                                                dynamo=exporter.startswith("dynamo"),
                                                dynamic=exporter.endswith("dynamic"))
        return cache[exporter]

    return get


@pytest.fixture(scope="session")
def llama_program():
    """(eager model, exported program after run_decompositions, token ids), built once."""
    import torch

    from .torch_models import LogitsOnly, tiny_llama, token_ids

    model = LogitsOnly(tiny_llama())
    ids = token_ids()
    ep = torch.export.export(model, (ids,)).run_decompositions()
    return model, ep, ids
