"""The xDSL context that knows every dialect lutc's IR may contain."""

from xdsl.context import Context
from xdsl.universe import Universe


def make_context() -> Context:
    from lutc.dialects.lut import LUT

    ctx = Context(allow_unregistered=False)
    for name, factory in Universe.get_multiverse().all_dialects.items():
        ctx.register_dialect(name, factory)
    ctx.load_dialect(LUT)
    return ctx
