"""Pick the importer for what the user gave: an ONNX file/ModelProto or a torch.export program."""

from __future__ import annotations

from pathlib import Path

from lutc.runtime.errors import LutcError
from lutc.compiler.imported_model import ImportedModel
from lutc.compiler.frontends.quantize import WeightSpec


def import_model(model, shapes: dict[str, tuple[int, ...]] | None = None,
                 weights: WeightSpec | None = None, example_inputs=None) -> ImportedModel:
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.exists():
            raise LutcError(f"model file '{path}' does not exist")
        if path.suffix in (".pt2", ".pt", ".ep"):
            from lutc.compiler.frontends.torch_importer import load_exported_program

            return _import_torch(load_exported_program(path), weights)
        from lutc.compiler.frontends.onnx_importer import import_onnx

        return import_onnx(path, shapes=shapes, weights=weights)
    kind = type(model).__module__ + "." + type(model).__name__
    if kind.startswith("onnx"):
        from lutc.compiler.frontends.onnx_importer import import_onnx

        return import_onnx(model, shapes=shapes, weights=weights)
    if "ExportedProgram" in kind:
        return _import_torch(model, weights)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is optional
        torch = None
    if torch is not None and isinstance(model, torch.nn.Module):
        if example_inputs is None:
            raise LutcError("compiling an nn.Module needs example_inputs to export it")
        args = tuple(torch.as_tensor(x) for x in example_inputs)
        return _import_torch(torch.export.export(model.eval(), args), weights)
    raise LutcError(f"cannot compile a {kind}: give an ONNX path/ModelProto, an ExportedProgram "
                    f"or an nn.Module")


def _import_torch(ep, weights) -> ImportedModel:
    from lutc.compiler.frontends.torch_importer import import_exported_program

    return import_exported_program(ep, weights=weights)
