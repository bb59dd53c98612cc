"""`lutc-opt`: xDSL's opt driver with the `lut` dialect and lutc's passes registered.

Diagnostics are one line on stderr and exit 1, never a traceback, in MLIR's form:
`FILE:LINE:COL: error: ...` for parse errors, `FILE: error: ...` for verifier and pass
failures (xDSL's IR carries no source locations), `lutc-opt: error: ...` for the command line.
`--verify-diagnostics` / `--parsing-diagnostics` keep xDSL's behaviour (print, exit 0).
Like mlir-opt, any input file is read as MLIR text whatever its name (`-f` picks another of
xDSL's frontends).
"""

from __future__ import annotations

import argparse
import re
import sys
from unittest import mock

from xdsl.utils.exceptions import ArgSpecParseError, DiagnosticException, ParseError
from xdsl.xdsl_opt_main import xDSLOptMain

from lutc.compiler.cli_parser import one_line_error
from lutc.runtime.errors import LutcError


class _CommandLineError(Exception):
    """A bad -p pipeline, input or output file."""


class LutcOptMain(xDSLOptMain):
    version_format = "lutc-opt built on xdsl {xdsl_version}"

    def register_all_dialects(self):
        super().register_all_dialects()
        from lutc.dialects.lut import LUT

        self.ctx.load_dialect(LUT)

    def register_all_passes(self):
        super().register_all_passes()
        from lutc.passes import PASSES

        for name, factory in PASSES.items():
            self.register_pass(name, factory)

    def setup_pipeline(self):
        try:
            super().setup_pipeline()
        except (ValueError, TypeError, ArgSpecParseError) as err:  # unknown pass, bad option
            message = str(err).strip().splitlines()[-1].strip()
            raise _CommandLineError(f"-p '{self.args.passes}': {message}") from None

    def get_input_stream(self):
        """xDSL picks the frontend by file extension and refuses unknown ones ('ir.txt', no
        extension); mlir-opt reads every file as MLIR, and so does lutc-opt."""
        f, extension = super().get_input_stream()
        return f, extension if extension in self.available_frontends else "mlir"

    def prepare_input(self):
        try:
            return super().prepare_input()
        except OSError as err:
            raise _CommandLineError(f"cannot read '{err.filename}': {err.strerror}") from None

    def prepare_output(self):
        try:
            return super().prepare_output()
        except OSError as err:
            raise _CommandLineError(f"cannot write '{err.filename}': {err.strerror}") from None


def _failing_op(err: Exception) -> str | None:
    """The op xDSL marks with `^^^` in the IR it attaches to a verifier error."""
    for note in getattr(err, "__notes__", []):
        lines = note.splitlines()
        for line, marker in zip(lines, lines[1:]):
            if re.fullmatch(r"\s*\^+-*\s*", marker):  # not a block label (^bb0)
                match = re.match(r'\s*(?:[%\w#:, ]+=\s*)?"([\w.$]+)"', line)
                if match:
                    return match.group(1)
    return None


def _diagnostic(err: BaseException, source: str) -> str:
    if isinstance(err, ParseError):
        return f"{err.span.get_location()}: error: {err.msg}"
    if isinstance(err, _CommandLineError):
        return f"lutc-opt: error: {err}"
    if isinstance(err, UnicodeDecodeError):
        return f"{source}: error: not UTF-8 text ({err.reason} at byte {err.start})"
    message = " ".join(str(err).split()) or type(err).__name__
    op = _failing_op(err) if isinstance(err, DiagnosticException) else None
    if op and not re.match(r"'[\w.$]+' op ", message):
        message = f"'{op}' op {message}"
    return f"{source}: error: {message}"


def main(argv=None) -> None:
    opt = None
    try:
        # xDSL builds its own argparse.ArgumentParser inside LutcOptMain(): its usage errors
        # become one line, exit 1, like lutc's (compiler/cli_parser.py)
        with mock.patch.object(argparse.ArgumentParser, "error",
                               lambda parser, message: one_line_error(parser, message, "lutc-opt")):
            opt = LutcOptMain(args=argv)
        opt.run()
    except (ParseError, DiagnosticException, LutcError, UnicodeDecodeError,
            _CommandLineError) as err:
        source = getattr(getattr(opt, "args", None), "input_file", None) or "<stdin>"
        print(_diagnostic(err, source), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
