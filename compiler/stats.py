"""What the LUT passes did to a module, in numbers (`lutc compile --stats`).

Counts table precomputes (and how many are fused into their producer), GEMMs and how many
GEMMs share each table, the tables one activation row (token) needs and their bytes, and the
weight bytes of the GEMMs per bit width as the runtime reads them (packed codes + scales and
zero points in 32-row blocks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue

from lutc.compiler.codegen import fold_weights
from lutc.dialects.dtypes import numpy_dtype
from lutc.dialects.fused_precompute import FusedPrecomputeOp
from lutc.dialects.lut_ops import DequantizeOp, MmaOp, PrecomputeOp, WeightOp
from lutc.dialects.packed_ops import PackedMmaOp
from lutc.dialects.table_type import TableType
from lutc.runtime import abi


def _format_label(op: MmaOp | PackedMmaOp) -> str:
    fmt = op.format
    return "ternary" if fmt.is_ternary else f"w{fmt.nbits}"


def _table_row_bytes(typ: TableType) -> int:
    """Bytes of one row's tables: entries plus the int8 tables' f32 scales."""
    return typ.row_entries_bytes + 4 * typ.row_scale_count


def _weight_bytes(value: SSAValue, weights: Mapping | None) -> int:
    owner = value.owner
    if isinstance(owner, WeightOp) and weights is not None and owner.weight_name.data in weights:
        return int(weights[owner.weight_name.data].nbytes)
    typ = value.type
    assert isinstance(typ, TensorType)
    return math.prod(typ.get_shape()) * numpy_dtype(typ).itemsize


def collect_stats(module: ModuleOp, weights: Mapping | None = None) -> dict:
    """Numbers describing `module`'s LUT mpGEMMs; `weights` (name -> array) sizes the float
    weights outside the GEMMs."""
    producers = [op for op in module.walk() if isinstance(op, (PrecomputeOp, FusedPrecomputeOp))]
    gemms = [op for op in module.walk() if isinstance(op, (MmaOp, PackedMmaOp))]
    tables_per_token = table_bytes_per_token = table_bytes = 0
    for op in producers:
        typ = op.table.type
        assert isinstance(typ, TableType)
        rows, t, _ = typ.shape
        tables_per_token += t
        table_bytes_per_token += _table_row_bytes(typ)
        table_bytes += rows * _table_row_bytes(typ)
    weight_bytes: dict[str, int] = {}
    per_gemm = []
    for op in gemms:
        fmt = op.format
        typ = op.table.type
        assert isinstance(typ, TableType)
        m, t, _ = typ.shape
        n = op.result.type.get_shape()[1]
        k = 4 * t
        group_values = abi.packed_scale_count(n, k, fmt.group_size) * 4 \
            * (2 if op.zeros is not None else 1)
        label = _format_label(op)
        weight_bytes[label] = (weight_bytes.get(label, 0)
                               + abi.packed_weight_bytes(fmt.nbits, n, k) + group_values)
        tile = op.attributes.get("tile")
        per_gemm.append({"M": m, "N": n, "K": k, "format": str(fmt).removeprefix("#lut.wfmt"),
                         "table": str(typ).removeprefix("!lut.table"),
                         "tile": str(tile).removeprefix("#lut.tile") if tile else None})
    other = sum(_weight_bytes(op.result, weights) for op in module.walk()
                if isinstance(op, WeightOp)
                and not any(_feeds_gemm(u.operation) for u in op.result.uses))
    fused = sum(isinstance(op, FusedPrecomputeOp) for op in producers)
    return {
        "gemms": len(gemms),
        "precomputes": len(producers),
        "fused_precomputes": fused,
        "reuse": len(gemms) / len(producers) if producers else 0.0,
        "tables_per_token": tables_per_token,
        "table_bytes_per_token": table_bytes_per_token,
        "table_bytes": table_bytes,
        "weight_bytes": dict(sorted(weight_bytes.items())),
        "other_weight_bytes": other,
        "per_gemm": per_gemm,
    }


def _feeds_gemm(op: Operation) -> bool:
    """`op` is a GEMM, or a weight-only op (bit planes, re-encoding, packing) feeding one."""
    if isinstance(op, (MmaOp, PackedMmaOp, DequantizeOp)):
        return True
    if not isinstance(op, fold_weights.FOLDABLE):
        return False
    return any(_feeds_gemm(u.operation) for r in op.results for u in r.uses)


def format_stats(stats: dict) -> str:
    """The numbers of `collect_stats` as an aligned text block."""
    fused = stats["fused_precomputes"]
    weights = ", ".join(f"{k}: {v}" for k, v in stats["weight_bytes"].items()) or "none"
    rows = [
        ("LUT GEMMs", f"{stats['gemms']}"),
        ("table precomputes", f"{stats['precomputes']} ({fused} fused into their producer)"),
        ("GEMMs per table (reuse)", f"{stats['reuse']:.2f}"),
        ("tables built per token", f"{stats['tables_per_token']}"),
        ("table bytes per token", f"{stats['table_bytes_per_token']}"),
        ("table bytes per call", f"{stats['table_bytes']}"),
        ("GEMM weight bytes", weights),
        ("other weight bytes", f"{stats['other_weight_bytes']}"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {value}" for name, value in rows]
    for i, g in enumerate(stats["per_gemm"]):
        lines.append(f"  gemm {i}: {g['M']}x{g['N']}x{g['K']} {g['format']} table {g['table']}"
                     + (f" tile {g['tile']}" if g["tile"] else ""))
    return "LUT statistics\n" + "\n".join(lines)
