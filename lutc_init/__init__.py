"""lutc: compile low-bit-weight networks to C whose GEMMs are table lookups.

    import lutc
    model = lutc.compile("model.onnx", weights="w2g64")       # or an ExportedProgram / nn.Module
    (y,) = model(x)                                            # numpy in, numpy out
"""

from __future__ import annotations

__version__ = "0.1.0"


def compile(model, example_inputs=None, weights: str | None = None,
            shapes: dict[str, tuple[int, ...]] | None = None, outdir=None,
            disable_passes=(), pass_options=None, lossless: bool = False):
    """Compile an ONNX path/ModelProto, an `ExportedProgram` or an `nn.Module` (exported here
    with `example_inputs`) to a shared library and load it. Returns a callable on numpy arrays.

    `weights` quantizes float weights (w1..w8[gG][sym|asym] | ternary[gG]); `shapes` fixes
    dynamic ONNX input dims; `outdir` keeps the model directory (default: a temporary one,
    removed with the returned model); `lossless` keeps the lookup tables in f32 (exact up to
    float rounding; the default int8 tables err by ~1e-5 NMSE per GEMM), as
    `lutc.LLM(lossless=True)` does.

    Each weight kept float although `weights` asked for a format is a `LutcWarning` (what
    `lutc compile` prints as `note:` lines); each quantized layer's relative weight error is
    logged at INFO on the "lutc" logger. Errors raise `LutcError`.
    """
    import logging
    import shutil
    import tempfile
    import warnings
    import weakref
    from pathlib import Path

    if hasattr(model, "config") and hasattr(model, "generate") and \
            getattr(model.config, "model_type", None):
        # a transformers causal LM: compiled for generation, no wrapper needed
        return LLM(model, weights=weights, lossless=lossless)

    from lutc.compiler.api import compile_model
    from lutc.compiler.pipeline import lossless_disabled
    from lutc.runtime.model_loader import CompiledModel

    def report(line: str) -> None:
        if line.startswith("note: "):
            warnings.warn(line.removeprefix("note: "), LutcWarning, stacklevel=3)
        else:
            logging.getLogger("lutc").info(line)

    target = Path(outdir) if outdir else Path(tempfile.mkdtemp(prefix="lutc-"))
    try:
        compile_model(model, target, weights=weights, shapes=shapes,
                      disabled=lossless_disabled(disable_passes, lossless),
                      pass_options=pass_options, example_inputs=example_inputs, out=report)
        compiled = CompiledModel(target)
    except BaseException:
        if not outdir:
            shutil.rmtree(target, ignore_errors=True)
        raise
    if not outdir:  # the library stays mapped and the weights memory-mapped after removal
        weakref.finalize(compiled, shutil.rmtree, str(target), True)
    return compiled


def LLM(model, **options):
    """A compiled causal LM: `.generate(...)`, `.logits(ids)`, `.perplexity(text)`.
    See lutc.compiler.llm.llm.LLM for the options."""
    from lutc.compiler.llm.llm import LLM as _LLM

    return _LLM(model, **options)


from lutc.runtime.errors import LutcError, LutcWarning  # noqa: E402  (user errors, warnings)
