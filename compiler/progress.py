"""Progress of a compile's phases on stderr, through tqdm (a well-kept progress library).

A compile runs a few phases of a second or more each (decoder graph, LUT passes, C emission,
the C compiler). `CompileProgress` shows one bar over them, naming the phase that is running,
and prints nothing when disabled or when stderr is not a terminal (tqdm's `disable=None`), so
logs, pipes and tests stay clean.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


class CompileProgress:
    """A bar over `phases` phases, each named when it starts (`start`).

    `enabled`: True shows the bar, False never, None only when stderr is a terminal.
    `say(text)`: also receives "<phase> in <t> s" after each phase (the stats lines the CLI
    prints with `lutc: ...`); None prints nothing else.
    """

    def __init__(self, phases: int, enabled: bool | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        from tqdm import tqdm

        self.say = say or (lambda s: None)
        self.bar = tqdm(total=phases, desc="lutc: compiling", unit="phase", file=sys.stderr,
                        disable=None if enabled is None else not enabled, leave=False,
                        bar_format="{desc}: {n}/{total} phases |{bar}| {elapsed}")
        self.phase: str | None = None
        self.started = 0.0

    def start(self, phase: str) -> None:
        """Finish the running phase (if any) and start `phase`."""
        self._finish()
        self.phase, self.started = phase, time.perf_counter()
        self.bar.set_description_str(f"lutc: {phase}")

    def _finish(self) -> None:
        if self.phase is not None:
            self.bar.clear()  # a line printed by `say` must not land inside the bar
            self.say(f"{self.phase} in {time.perf_counter() - self.started:.1f} s")
            self.bar.update(1)
            self.phase = None

    def close(self) -> None:
        """Finish the last phase and remove the bar."""
        self._finish()
        self.bar.close()

    def __enter__(self) -> "CompileProgress":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self._finish()
        self.bar.close()
