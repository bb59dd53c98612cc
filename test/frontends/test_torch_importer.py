"""torch.export importer: MLP and tiny Llama logits against torch eager, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lutc.runtime.errors import LutcError
from lutc.compiler.frontends.torch_importer import import_exported_program
from lutc.compiler.interp.interpret import run_module
from lutc.compiler.frontends.quantize import WeightSpec, quantize

from .conftest import max_abs, rel_max_abs
from .ir_contract import check_contract
from .torch_models import MLP


def _eager(model, *args) -> np.ndarray:
    with torch.no_grad():
        return model(*args).numpy()


@pytest.mark.parametrize("decompose", [True, False])
def test_mlp_float(decompose):
    model = MLP().eval()
    x = torch.randn(4, 32, generator=torch.Generator().manual_seed(1))
    ep = torch.export.export(model, (x,))
    if decompose:
        ep = ep.run_decompositions()
    im = import_exported_program(ep)
    check_contract(im.module)
    assert [i.shape for i in im.inputs] == [(4, 32)] and im.outputs[0].shape == (4, 48)
    out = run_module(im.module, im.weights, [x.numpy()])[0]
    assert max_abs(out, _eager(model, x)) <= 1e-4


def test_mlp_quantized_matches_dequantized_eager():
    model = MLP().eval()
    x = torch.randn(3, 32, generator=torch.Generator().manual_seed(2))
    spec = WeightSpec.parse("w2g16")
    im = import_exported_program(torch.export.export(model, (x,)).run_decompositions(), spec)
    check_contract(im.module)
    assert [name for name, _ in im.quantization_report] == ["fc1", "fc2"]
    assert str(im.module).count("as <w2, g16, zp>") == 2
    with torch.no_grad():
        for layer in (model.fc1, model.fc2):
            deq = quantize(layer.weight.numpy(), spec).dequantize()
            layer.weight.copy_(torch.from_numpy(deq))
    out = run_module(im.module, im.weights, [x.numpy()])[0]
    assert rel_max_abs(out, _eager(model, x)) <= 1e-3


def test_llama_float_logits_match_eager(llama_program):
    model, ep, ids = llama_program
    im = import_exported_program(ep)
    check_contract(im.module)
    assert im.inputs[0].shape == (1, 16) and im.inputs[0].dtype == np.int64
    out = run_module(im.module, im.weights, [ids.numpy()])[0]
    assert out.shape == (1, 16, 1000)
    assert max_abs(out, _eager(model, ids)) <= 1e-4


def test_llama_quantized_w4_matches_dequantized_eager(llama_program):
    import copy

    model, ep, ids = llama_program
    spec = WeightSpec.parse("w4g64")
    im = import_exported_program(ep, spec)
    check_contract(im.module)
    assert len(im.quantization_report) == 15
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.Linear):
                deq = quantize(module.weight.numpy(), spec).dequantize()
                module.weight.copy_(torch.from_numpy(deq))
    out = run_module(im.module, im.weights, [ids.numpy()])[0]
    assert rel_max_abs(out, _eager(reference, ids)) <= 1e-3


def test_missing_and_bad_program_files(tmp_path):
    with pytest.raises(LutcError, match="does not exist"):
        import_exported_program(tmp_path / "nope.pt2")
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"not a zip")
    with pytest.raises(LutcError, match="is not a saved torch.export program"):
        import_exported_program(bad)


def test_unsupported_ops_listed_once_each():
    class Odd(torch.nn.Module):
        def forward(self, x):
            return torch.special.bessel_j0(torch.atan2(x, x) + torch.atan2(x, 2 * x))

    ep = torch.export.export(Odd(), (torch.randn(4),)).run_decompositions()
    with pytest.raises(LutcError) as info:
        import_exported_program(ep)
    message = str(info.value)
    assert message.startswith("unsupported torch ops: ")
    assert "aten.atan2.default (x2, first at node 'atan2')" in message
    assert "aten.special_bessel_j0.default (x1" in message
    assert "\n" not in message


def test_saved_program_round_trip(tmp_path):
    model = MLP().eval()
    x = torch.randn(2, 32)
    path = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(model, (x,)), path)
    im = import_exported_program(path)
    assert max_abs(run_module(im.module, im.weights, [x.numpy()])[0], _eager(model, x)) <= 1e-4


def test_llama_layers_share_one_c_body(llama_program, tmp_path):
    """Ops of `model.layers.i` (torch.export's nn_module_stack) are tagged as layer i, so the
    C emitter compiles one body for the identical layers of an exported program (compile
    time); the compiled logits equal the interpreter's on the same (default-pipeline) IR and
    are within issue 10's NMSE bound of the exact ones."""
    from lutc.compiler.api import compile_model
    from lutc.compiler.pipeline import PipelineOptions, run_pipeline
    from lutc.runtime.model_loader import CompiledModel

    model, ep, ids = llama_program
    im = import_exported_program(ep, WeightSpec.parse("w4g32"))
    layers = {int(op.attributes["lutc.layer"].value.data) for op in im.module.walk()
              if "lutc.layer" in op.attributes}
    assert layers == set(range(model.model.config.num_hidden_layers))
    compile_model(ep, tmp_path / "m", weights="w4g32", out=lambda s: None)
    c_text = (tmp_path / "m" / "model.c").read_text()
    assert c_text.count("static void lutc_layer0(") == 1
    calls = c_text.count("lutc_layer0(W, A")
    assert calls == model.model.config.num_hidden_layers
    got = np.asarray(CompiledModel(tmp_path / "m")(ids.numpy())).reshape(1, 16, -1)
    exact = run_module(im.module, im.weights, [ids.numpy()])[0]
    run_pipeline(im.module, PipelineOptions(out=lambda text: None))
    same_ir = run_module(im.module, im.weights, [ids.numpy()])[0]
    assert rel_max_abs(got, same_ir) <= 1e-4
    assert np.mean((got - exact) ** 2) / np.mean(exact.astype(np.float64) ** 2) <= 2e-4
