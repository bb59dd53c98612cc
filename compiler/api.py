"""The public compile API: a model in, a compiled model directory (or IR, or C) out.

`lutc.compile` (lutc_init/__init__.py) and the `lutc compile` CLI (driver.py) both call
`compile_model`; the CLI only parses arguments and prints.
"""

from __future__ import annotations

from pathlib import Path


def compile_model(model, outdir: Path, weights: str | None = None,
                  shapes: dict[str, tuple[int, ...]] | None = None, emit: str = "lib",
                  disabled=(), print_after_all=False, print_after=(), pass_options=None,
                  sanitize=False, example_inputs=None, stats=False, out=print, progress=None):
    """import -> passes -> (mlir | C | shared library). Returns the output path.
    progress: a bar over the phases on stderr (True / False / None: only on a terminal)."""
    from lutc.compiler.codegen.staged_output import check_output_dir
    from lutc.compiler.frontends.quantize import WeightSpec
    from lutc.compiler.progress import CompileProgress

    outdir = Path(outdir)
    check_output_dir(outdir)
    spec = WeightSpec.parse(weights) if weights else None
    with CompileProgress({"mlir": 2, "c": 3}.get(emit, 4), progress) as bar:
        bar.start("importing the model")
        return _compile(model, outdir, spec, shapes, emit, disabled, print_after_all, print_after,
                        pass_options, sanitize, example_inputs, stats, out, bar)


def _compile(model, outdir, spec, shapes, emit, disabled, print_after_all, print_after,
             pass_options, sanitize, example_inputs, stats, out, bar) -> Path:
    from lutc.compiler.codegen.staged_output import staged_directory
    from lutc.compiler.frontends.dispatch import import_model
    from lutc.compiler.model_size import check_imported_weights
    from lutc.compiler.pipeline import PipelineOptions, run_pipeline

    imported = import_model(model, shapes=shapes, weights=spec, example_inputs=example_inputs)
    check_imported_weights(imported.weights.arrays)
    for name, err in imported.quantization_report:
        out(f"quantized {name}: relative weight error {err:.4f}")
    for note in imported.float_notes:
        out(f"note: {note}")
    options = PipelineOptions(disabled=tuple(disabled), print_after_all=print_after_all,
                              print_after=tuple(print_after), pass_options=pass_options or {},
                              out=out)
    bar.start("running the LUT passes")
    run_pipeline(imported.module, options)
    if stats:
        from lutc.compiler.stats import collect_stats, format_stats

        out("lutc stats:\n" + format_stats(collect_stats(imported.module, imported.weights)))
    # built aside and published only on success: a failed build leaves outdir's model usable
    with staged_directory(outdir) as stage:
        path = _write_outputs(model, imported, stage, emit, print_after_all, sanitize, stats, out,
                              bar)
    return outdir / path.relative_to(stage)


def _write_outputs(model, imported, outdir: Path, emit: str, print_after_all: bool,
                   sanitize: bool, stats: bool, out, bar) -> Path:
    from lutc.compiler.codegen.build import build_library, emit_model
    from lutc.compiler.model_size import check_emitted_model
    from lutc.compiler.pipeline import print_ir

    bar.start("writing outputs" if emit == "mlir" else "emitting C")
    if emit == "mlir":
        import io

        from xdsl.printer import Printer

        buf = io.StringIO()
        Printer(stream=buf).print_op(imported.module)
        (outdir / "model.mlir").write_text(buf.getvalue())
        imported.weights.save(outdir / "weights.safetensors")
        return outdir / "model.mlir"
    suffix = Path(model).suffix if isinstance(model, (str, Path)) else ""
    title = {".onnx": "an ONNX model", ".pt2": "a torch.export program"}.get(suffix, "a model")
    c_file = emit_model(imported, outdir, title=title)
    check_emitted_model(outdir, imported.weights.arrays)
    if print_after_all:
        print_ir(imported.module, "fold-weights", out)
    if stats:
        import json

        manifest = json.loads((outdir / "model.json").read_text())
        out(f"  peak activation memory    {manifest['arena_bytes']} bytes (liveness-planned arena)")
        out(f"  weights file              {manifest['weight_bytes']} bytes")
    if emit == "c":
        return c_file
    bar.start("compiling C")
    return build_library(c_file, sanitize=sanitize)
