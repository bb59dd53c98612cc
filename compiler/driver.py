"""`lutc`: compile a model to a C library, run it, or run the built-in demo."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from lutc.compiler.api import compile_model
from lutc.compiler.cli_parser import OneLineArgumentParser, at_least
from lutc.compiler.model_size import add_size_options, apply_size_options
from lutc.runtime.errors import LutcError, first_line


def _shape_arg(text: str) -> tuple[str, tuple[int, ...]]:
    name, _, dims = text.partition("=")
    try:
        return name, tuple(int(d) for d in dims.split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape wants NAME=DxDx..., got '{text}'") from None


def _cmd_compile(args) -> None:
    from lutc.compiler.pipeline import lossless_disabled

    apply_size_options(args)
    pass_options = {}
    for item in args.pass_option or []:
        name, _, spec = item.partition("{")
        pass_options[name] = "{" + spec
    t0 = time.perf_counter()
    disabled = lossless_disabled(args.disable_pass or [], args.lossless)
    path = compile_model(Path(args.model), Path(args.output), weights=args.weights,
                         shapes=dict(args.shape or []), emit=args.emit,
                         disabled=disabled, print_after_all=args.print_ir_after_all,
                         print_after=args.print_ir_after or [], pass_options=pass_options,
                         sanitize=args.sanitize, stats=args.stats)
    print(f"wrote {path} in {time.perf_counter() - t0:.2f} s")


def _load_input(path: str) -> np.ndarray:
    """One --input: a plain .npy array (never a pickle, which could run code), whose header
    must not claim more data than the file holds (checked before any memory is taken)."""
    if not Path(path).exists():
        raise LutcError(f"input file '{path}' does not exist")
    if not Path(path).is_file():
        raise LutcError(f"input '{path}' is not a file")
    _check_npy_size(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:  # pickles, object arrays, damaged headers
        reason = first_line(str(err)) or type(err).__name__
        if "pickle" in reason or "Object arrays" in reason:
            reason = "it holds pickled Python objects, which lutc never loads"
        raise LutcError(f"input file '{path}' is not a numeric .npy array: {reason}") from None
    if not isinstance(array, np.ndarray):  # an .npz archive
        array.close()
        raise LutcError(f"input file '{path}' is an .npz archive; give one .npy per --input")
    return array


def _check_npy_size(path: str) -> None:
    """A .npy header's shape x itemsize against the bytes after the header (damaged headers are
    left to np.load's own message)."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            major, _ = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            shape, _, dtype = read(f)
            left = Path(path).stat().st_size - f.tell()
    except (ValueError, OSError, EOFError, TypeError):
        return
    if dtype.hasobject:
        return
    need = math.prod(shape) * dtype.itemsize
    if need > left:
        raise LutcError(f"input file '{path}' is damaged: its header claims shape "
                        f"{list(shape)} {dtype} ({need} bytes) but {left} bytes follow it")


def _cmd_run(args) -> None:
    from lutc.runtime.model_loader import CompiledModel

    model = CompiledModel(args.model_dir)
    if args.threads:
        model.set_num_threads(args.threads)
    inputs = [_load_input(path) for path in args.input or []]
    if args.output and not Path(args.output).absolute().parent.is_dir():
        raise LutcError(f"--output {args.output}: folder '{Path(args.output).parent}' does not exist")
    if args.output and Path(args.output).is_dir():
        raise LutcError(f"--output {args.output} is a folder; give a file name (e.g. "
                        f"{Path(args.output) / 'y.npy'})")
    outputs = model(*inputs)
    for i, out in enumerate(outputs):
        if args.output:
            target = Path(args.output if len(outputs) == 1 else f"{args.output}.{i}.npy")
            if target.suffix != ".npy":  # what np.save writes: say the file's real name
                target = target.with_name(target.name + ".npy")
            try:
                np.save(target, out)
            except OSError as err:
                raise LutcError(f"cannot write '{target}': {err.strerror or err}") from None
            print(f"output {i}: {list(out.shape)} {out.dtype} -> {target}")
        else:
            print(f"output {i}: {list(out.shape)} {out.dtype}")
            print(np.array2string(out, threshold=64, precision=5))


def _cmd_demo(args) -> None:
    if args.mlp:
        from lutc.compiler.demo import run_demo

        run_demo(Path(args.workdir), threads=args.threads)
        return
    from lutc.compiler.llm.demo import run_demo as run_llm_demo

    run_llm_demo(threads=args.threads, reference=not args.no_reference)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="lutc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compile", help="compile an ONNX model or saved torch.export program")
    c.add_argument("model")
    c.add_argument("-o", "--output", required=True, help="output directory")
    c.add_argument("--weights", help="quantize float weights: w1..w8[gG][sym|asym] | ternary[gG]")
    c.add_argument("--lossless", action="store_true",
                   help="f32 lookup tables, exact up to float rounding (same as --disable-pass "
                   "lut-quantize-table; as on lutc generate and lutc.LLM)")
    c.add_argument("--shape", action="append", type=_shape_arg, metavar="NAME=DxD",
                   help="fix a dynamic input shape")
    c.add_argument("--emit", choices=["mlir", "c", "lib"], default="lib")
    c.add_argument("--print-ir-after-all", action="store_true")
    c.add_argument("--print-ir-after", action="append", metavar="PASS")
    c.add_argument("--disable-pass", action="append", metavar="PASS")
    c.add_argument("--pass-option", action="append", metavar="PASS{k=v}",
                   help="options for one pass, e.g. 'lut-tile{n=128}'")
    c.add_argument("--sanitize", action="store_true", help="build with ASan/UBSan")
    c.add_argument("--stats", action="store_true",
                   help="report precomputes, table bytes, reuse, weight bytes, peak memory")
    add_size_options(c)
    c.set_defaults(func=_cmd_compile)
    r = sub.add_parser("run", help="run a compiled model directory on .npy inputs")
    r.add_argument("model_dir")
    r.add_argument("--input", action="append", metavar="X.npy")
    r.add_argument("--output", metavar="Y.npy")
    r.add_argument("--threads", type=int, default=0, help="0: all cores")
    r.set_defaults(func=_cmd_run)
    d = sub.add_parser("demo", help="compile SmolLM2-135M (GGUF Q4_1) and chat with it; "
                       "--mlp: the built-in 2-bit MLP")
    d.add_argument("--mlp", action="store_true", help="the small built-in MLP instead")
    d.add_argument("--no-reference", action="store_true",
                   help="skip the transformers comparison")
    d.add_argument("--workdir", default="out/demo")
    d.add_argument("--threads", type=at_least(int, 0), default=0, help="0: all cores")
    d.set_defaults(func=_cmd_demo)
    from lutc.compiler.llm.cli import add_commands

    add_commands(sub)
    return parser


def main(argv=None) -> None:
    """The `lutc` command. Exit status 0, 1 for a LutcError or a bad option (bad input: one
    line naming it), 2 for an error lutc did not anticipate (one line; LUTC_DEBUG=1 shows the
    traceback), 130 on Ctrl-C."""
    import os

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except LutcError as err:
        print(f"lutc: error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("lutc: interrupted", file=sys.stderr)
        sys.exit(130)
    except MemoryError:
        hint = " (a smaller --max-context, --chunk or model would fit)" \
            if hasattr(args, "chunk") else ""  # the LLM commands' options
        print(f"lutc: error: out of memory{hint}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:  # noqa: BLE001 -- the last line of defence: never a traceback
        if os.environ.get("LUTC_DEBUG"):
            raise
        print(f"lutc: internal error: {type(err).__name__}: {first_line(str(err), 400)} "
              f"(LUTC_DEBUG=1 shows the traceback; please report it)", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
