"""The argument parser of lutc's commands: command-line mistakes are one line, like every
other lutc error.

argparse's own `error()` prints the whole usage text and exits 2, which lutc's commands keep
for errors lutc did not anticipate (compiler/driver.py); a bad option value is bad input:
`PROG: error: MESSAGE (PROG --help lists the options)` on stderr, exit 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


def one_line_error(parser: argparse.ArgumentParser, message: str,
                   prog: str | None = None) -> NoReturn:
    """Print `message` for `parser`'s command (named `prog`, default the parser's) as one line
    on stderr and exit 1."""
    text = " ".join(str(message).split())
    prog = prog or parser.prog
    print(f"{prog}: error: {text} ({prog} --help lists the options)", file=sys.stderr)
    sys.exit(1)


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose usage errors are one line, exit 1; its subparsers are of
    this class too (add_subparsers defaults to the parent's class)."""

    def error(self, message: str) -> NoReturn:
        one_line_error(self, message)


def at_least(kind: type, low: float):
    """An argparse `type=` for numbers of `kind` (int / float) >= `low`, e.g. at_least(int, 1);
    anything else is a one-line usage error naming the option."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}"
                                              f", got '{text}'") from None
        if not value >= low:  # also refuses nan
            raise argparse.ArgumentTypeError(f"expected a value >= {low}, got {text}")
        return value

    return parse
