"""An MLP and nn.TransformerEncoderLayer through ONNX and through torch.export to C, as f32 and
lutc-quantized (lossless pipeline) against torch eager; `lutc.compile` on an nn.Module."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

import lutc
from lutc.compiler.frontends.quantize import WeightSpec, quantize

from ..frontends.torch_models import MLP
from .conftest import LOSSLESS, rel_max_abs, report

FORMATS = [None, "w4g32"]


def encoder_layer() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True).eval()


MODELS = {  # name -> (module factory, input shape, ONNX exporter)
    "MLP": (lambda: MLP().eval(), (4, 32), "classic"),
    "TransformerEncoderLayer": (encoder_layer, (2, 8, 64), "dynamo"),
}


def dequantized(model: torch.nn.Module, fmt: str | None) -> torch.nn.Module:
    """A copy whose matrices (what lutc quantizes: every 2-D weight a linear layer uses) are
    replaced by their dequantized `fmt` values."""
    model = copy.deepcopy(model)
    if fmt is not None:
        spec = WeightSpec.parse(fmt)
        with torch.no_grad():
            for p in model.parameters():
                if p.ndim == 2:
                    p.copy_(torch.from_numpy(quantize(p.numpy(), spec).dequantize()))
    return model


@pytest.fixture(scope="session")
def small_models(e2e_dir):
    """name -> (eager module, example input, exported program, ONNX file)."""
    out = {}
    for name, (make, shape, exporter) in MODELS.items():
        model = make()
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        ep = torch.export.export(model, (x,))
        path = e2e_dir / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                torch.onnx.export(model, (x,), str(path), dynamo=True, input_names=["x"],
                                  output_names=["y"], verbose=False)
            else:
                torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"],
                                  output_names=["y"], opset_version=17)
        out[name] = (model, x, ep, path)
    return out


def _jobs(small_models, name: str) -> list[tuple]:
    _, _, ep, path = small_models[name]
    return [(f"{name}_{path_name}_{fmt or 'f32'}", source, fmt, LOSSLESS)
            for path_name, source in (("torch", ep), ("onnx", path)) for fmt in FORMATS]


@pytest.mark.parametrize("name", list(MODELS))
def test_small_model_both_paths(compiled, small_models, name):
    model, x, _, _ = small_models[name]
    jobs = _jobs(small_models, name)
    compiled.prefetch(jobs)
    for job in jobs:
        key, _, fmt, _ = job
        compiled_model, secs = compiled(*job)
        with torch.no_grad():
            want = dequantized(model, fmt)(x).numpy()
        (got,) = compiled_model(x.numpy())
        err = rel_max_abs(got, want)
        path = "ONNX" if "_onnx_" in key else "torch.export"
        report(name, fmt, path, "lossless", f"rel {err:.1e} vs eager", secs)
        assert err <= 1e-4, key


def test_lutc_compile_nn_module(tmp_path):
    """The Python API: export, quantize to 2 bits, build and load in one call."""
    model = MLP().eval()
    x = torch.randn(3, 32, generator=torch.Generator().manual_seed(2))
    run = lutc.compile(model, example_inputs=(x,), weights="w2g16", outdir=tmp_path / "mlp",
                       disable_passes=LOSSLESS)
    (got,) = run(x.numpy())
    with torch.no_grad():
        want = dequantized(model, "w2g16")(x).numpy()
    assert got.shape == (3, 48) and got.dtype == np.float32
    assert rel_max_abs(got, want) <= 1e-4
