"""lutc's passes, one per file; `PASSES` maps each pass name to a lazy factory."""

from collections.abc import Callable

from xdsl.passes import ModulePass


def _lower_mpgemm():
    from lutc.passes.lower_mpgemm import LowerMpGemmPass

    return LowerMpGemmPass


PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "lut-lower-mpgemm": _lower_mpgemm,
}
