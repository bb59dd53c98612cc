"""lutc's passes, one per file; `PASSES` maps each pass name to a lazy factory."""

from collections.abc import Callable

from xdsl.passes import ModulePass


def _fuse_attention():
    from lutc.passes.fuse_attention import FuseAttentionPass

    return FuseAttentionPass


def _fuse_elementwise():
    from lutc.passes.fuse_elementwise import FuseElementwisePass

    return FuseElementwisePass


def _lower_mpgemm():
    from lutc.passes.lower_mpgemm import LowerMpGemmPass

    return LowerMpGemmPass


def _symmetrize():
    from lutc.passes.symmetrize import SymmetrizePass

    return SymmetrizePass


def _quantize_table():
    from lutc.passes.quantize_table import QuantizeTablePass

    return QuantizeTablePass


def _fuse_precompute():
    from lutc.passes.fuse_precompute import FusePrecomputePass

    return FusePrecomputePass


def _fuse_siblings():
    from lutc.passes.fuse_siblings import FuseSiblingsPass

    return FuseSiblingsPass


def _tile():
    from lutc.passes.tile import TilePass

    return TilePass


def _pack_weights():
    from lutc.passes.pack_weights import PackWeightsPass

    return PackWeightsPass


PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "lut-fuse-attention": _fuse_attention,
    "lut-fuse-elementwise": _fuse_elementwise,
    "lut-lower-mpgemm": _lower_mpgemm,
    "lut-symmetrize": _symmetrize,
    "lut-quantize-table": _quantize_table,
    "lut-fuse-precompute": _fuse_precompute,
    "lut-fuse-siblings": _fuse_siblings,
    "lut-tile": _tile,
    "lut-pack-weights": _pack_weights,
}
