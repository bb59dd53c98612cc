"""The cap on a compiled model's total memory: its weights plus its activation arena.

The per-tensor cap (graph_builder.max_tensor_elements: 2^32 elements, LUTC_MAX_TENSOR_ELEMENTS or
`--max-tensor-elements`) stops one absurd shape; this one stops a model whose tensors are each
plausible but whose sum is not what the machine that runs it can hold. The default is 2^36 bytes
(64 GiB); LUTC_MAX_MODEL_BYTES=N or `lutc compile --max-model-bytes N` raises or lowers it.

It is checked twice: on the weights as imported (before any pass runs, so a too-large model fails
fast), and on the emitted model's weights file plus its liveness-planned arena (model.json's
`weight_bytes` + `arena_bytes`), before the C compiler runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from lutc.runtime.errors import LutcError

MAX_MODEL_BYTES_ENV = "LUTC_MAX_MODEL_BYTES"
DEFAULT_MAX_MODEL_BYTES = 2**36


def max_model_bytes() -> int:
    """The cap in bytes: 2^36 unless LUTC_MAX_MODEL_BYTES sets it (a positive integer, any base
    Python's int(text, 0) reads). LutcError for anything else."""
    text = os.environ.get(MAX_MODEL_BYTES_ENV, "")
    if not text:
        return DEFAULT_MAX_MODEL_BYTES
    try:
        value = int(text, 0)
    except ValueError:
        value = 0
    if value <= 0:
        raise LutcError(f"{MAX_MODEL_BYTES_ENV}={text!r} must be a positive integer")
    return value


def _largest(weights: Mapping[str, np.ndarray]) -> str:
    if not weights:
        return ""
    name = max(weights, key=lambda k: np.asarray(weights[k]).nbytes)
    array = np.asarray(weights[name])
    return f"; the largest weight is '{name}' {list(array.shape)} ({array.nbytes} bytes)"


def _human(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} B"


def _refuse(total: int, what: str, weights: Mapping[str, np.ndarray], cap: int) -> None:
    raise LutcError(f"the model needs {total} bytes ({_human(total)}: {what}), over the "
                    f"limit of {cap} bytes{_largest(weights)} (raise it with --max-model-bytes N "
                    f"or {MAX_MODEL_BYTES_ENV}=N)")


def check_imported_weights(weights: Mapping[str, np.ndarray]) -> None:
    """LutcError when the imported weights alone are over the cap (names the largest)."""
    cap = max_model_bytes()
    total = sum(np.asarray(a).nbytes for a in weights.values())
    if total > cap:
        _refuse(total, "imported weights", weights, cap)


def check_compiled_model(weight_bytes: int, arena_bytes: int,
                         weights: Mapping[str, np.ndarray]) -> None:
    """LutcError when the weights file plus the activation arena is over the cap."""
    cap = max_model_bytes()
    total = int(weight_bytes) + int(arena_bytes)
    if total > cap:
        _refuse(total, f"weights {weight_bytes} + activation arena {arena_bytes}", weights, cap)


# -- the command-line options that set both caps ----------------------------------------------


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text, 0)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return value


def add_size_options(parser) -> None:
    """`--max-tensor-elements N` and `--max-model-bytes N` on a command that compiles."""
    from lutc.compiler.frontends.graph_builder import DEFAULT_MAX_TENSOR_ELEMENTS

    parser.add_argument("--max-tensor-elements", type=_positive_int, metavar="N",
                        help=f"the largest tensor the model may hold, in elements (default "
                        f"2^{DEFAULT_MAX_TENSOR_ELEMENTS.bit_length() - 1}; same as "
                        "LUTC_MAX_TENSOR_ELEMENTS=N)")
    parser.add_argument("--max-model-bytes", type=_positive_int, metavar="N",
                        help=f"the most bytes of weights plus activation arena (default "
                        f"2^{DEFAULT_MAX_MODEL_BYTES.bit_length() - 1}; same as "
                        f"{MAX_MODEL_BYTES_ENV}=N)")


def apply_size_options(args) -> None:
    """The options set the caps for this process, as the environment variables would (the
    options win over the variables)."""
    from lutc.compiler.frontends.graph_builder import MAX_TENSOR_ELEMENTS_ENV

    if getattr(args, "max_tensor_elements", None) is not None:
        os.environ[MAX_TENSOR_ELEMENTS_ENV] = str(args.max_tensor_elements)
    if getattr(args, "max_model_bytes", None) is not None:
        os.environ[MAX_MODEL_BYTES_ENV] = str(args.max_model_bytes)


def check_emitted_model(outdir, weights: Mapping[str, np.ndarray]) -> None:
    """check_compiled_model on the model.json that codegen.build.emit_model wrote in `outdir`."""
    import json
    from pathlib import Path

    manifest = json.loads((Path(outdir) / "model.json").read_text())
    check_compiled_model(manifest["weight_bytes"], manifest["arena_bytes"], weights)


def check_emitted_model(outdir, weights: Mapping[str, np.ndarray]) -> None:
    """check_compiled_model on the model.json that codegen.build.emit_model wrote in `outdir`."""
    import json
    from pathlib import Path

    manifest = json.loads((Path(outdir) / "model.json").read_text())
    check_compiled_model(manifest["weight_bytes"], manifest["arena_bytes"], weights)
