"""The pass pipeline from imported IR to C-ready IR, with IR printing between stages."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.printer import Printer
from xdsl.utils.exceptions import PassFailedException

from lutc.compiler.context import make_context
from lutc.runtime.errors import LutcError
from lutc.passes import PASSES

# The default order; passes not yet registered in lutc.passes.PASSES are skipped.
DEFAULT_PASSES = (
    "lut-fuse-attention",  # float attention chains -> lutrt_attention (no LUT op involved)
    "lut-fuse-elementwise",  # elementwise chains -> one loop nest
    "lut-lower-mpgemm",
    "lut-symmetrize",
    "lut-quantize-table",
    "lut-fuse-precompute",
    "lut-fuse-siblings",
    "lut-tile",
    "lut-pack-weights",
)


# `--print-ir-after import`: the IR the frontend built, before the first pass (lutc-opt's input)
IMPORT_STAGE = "import"


@dataclass
class PipelineOptions:
    disabled: Sequence[str] = ()
    print_after_all: bool = False
    print_after: Sequence[str] = ()
    pass_options: dict[str, str] = field(default_factory=dict)  # name -> "{a=1 b=2}" text
    out: Callable[[str], None] = print
    verify_each: bool = field(default_factory=lambda: os.environ.get("LUTC_VERIFY_EACH") == "1")


def lossless_disabled(disabled: Sequence[str], lossless: bool) -> tuple[str, ...]:
    """The passes to disable for the lossless mode (f32 lookup tables, exact up to float
    rounding): `disabled` plus lut-quantize-table when `lossless`. One definition for
    `lutc compile --lossless`, `lutc.compile(lossless=True)` and `lutc.LLM(lossless=True)`."""
    return tuple(disabled) + (("lut-quantize-table",) if lossless else ())


def pipeline_passes(options: PipelineOptions) -> list[ModulePass]:
    for flag, names in (("--disable-pass", options.disabled), ("--print-ir-after", options.print_after),
                        ("--pass-option", options.pass_options)):
        for name in names:
            if name == IMPORT_STAGE and flag == "--print-ir-after":
                continue
            if name not in DEFAULT_PASSES:
                also = f"; '{IMPORT_STAGE}' prints the imported IR" if flag == "--print-ir-after" else ""
                raise LutcError(f"{flag} {name}: no such pass (passes: {', '.join(DEFAULT_PASSES)}"
                                f"{also})")
    passes = []
    for name in DEFAULT_PASSES:
        if name in options.disabled or name not in PASSES:
            continue
        cls = PASSES[name]()
        spec = options.pass_options.get(name)
        if spec:
            from xdsl.utils.arg_spec import parse_spec
            from xdsl.utils.exceptions import ArgSpecParseError  # a BaseException

            try:
                if not (spec[0] == "{" and spec[-1] == "}" and spec.count("{") == spec.count("}") == 1):
                    raise ValueError("options go in one pair of braces: NAME{key=value ...}")
                passes.append(cls.from_pass_spec(parse_spec(f"{name}{spec}")))
            except (ValueError, TypeError, ArgSpecParseError) as err:
                reason = str(err).strip().splitlines()[-1].strip()
                raise LutcError(f"--pass-option {name}{spec}: {reason}") from None
        else:
            passes.append(cls())
    return passes


def print_ir(module: ModuleOp, title: str, out: Callable[[str], None]) -> None:
    import io

    buffer = io.StringIO()
    Printer(stream=buffer).print_op(module)
    out(f"// -----// IR after {title} //----- //\n{buffer.getvalue()}")


def run_pipeline(module: ModuleOp, options: PipelineOptions) -> ModuleOp:
    ctx = make_context()
    passes = pipeline_passes(options)  # bad pass names fail before anything is printed
    if options.print_after_all or IMPORT_STAGE in options.print_after:
        print_ir(module, IMPORT_STAGE, options.out)
    for p in passes:
        try:
            p.apply(ctx, module)
        except PassFailedException as err:
            raise LutcError(str(err)) from None
        # Verifying a 30-layer model takes seconds each time (measured 2026-12-01: ~60% of
        # SmolLM2's pass time), so the IR is verified once after the pipeline; a failure
        # names no pass then, so LUTC_VERIFY_EACH=1 (or verify_each) checks after every pass.
        if options.verify_each:
            module.verify()
        if options.print_after_all or p.name in options.print_after:
            print_ir(module, p.name, options.out)
    if not passes or not options.verify_each:  # once per pipeline, imports included
        module.verify()
    return module
