"""C for the `lut` ops: calls into the lutrt runtime (runtime/lutrt.h).

- `lut.precompute`       -> lutrt_precompute over all rows.
- `lut.fused_precompute` -> the producer's loop nest (a row-wise linalg.generic) with a
  lutrt_precompute_row call after the loops that finish each row: the row is still in L1.
- `lut.packed_mma`       -> lutrt_mma on weights `lut-pack-weights` packed (folded into the
  weight store by the driver): the pointers pass straight through; `code_bytes` sets the
  descriptor's layout to LUTRT_LAYOUT_CODE_BYTES.
- `lut.kv_attention`     -> lutrt_attention_kv(_f16) on the layer's slice of the cache argument.
- `lut.attention`        -> lutrt_attention once per batch element; a constant boolean mask is
  read here: a causal one becomes the call's causal mode, any other an additive f32 mask in the
  weights blob.
- `lut.mma`              -> lutrt_mma; its weight operands (folded `lut.bitplanes`, scales,
  zeros) are packed here into the runtime's block layout (lutc.runtime.packing) — the path
  taken with `--disable-pass lut-pack-weights`.
A `tile` attribute (lut-tile) sets the descriptor's strategy (per-token / Vec-LUT kernel) and
tile sizes (tile_m, tile_n, tile_k), and a GEMM of a single weight tile runs on one thread;
without one they stay 0 (the runtime decides).

The CEmitter (emit_c.py) hands every op `handles` accepts to `emit`. The fused precompute
reuses its linalg.generic lowering (`emit_GenericOp`) with a row hook around `_close`; a
`row_epilogue` parameter of emit_GenericOp would make that hook explicit.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.linalg import ops as linalg
from xdsl.dialects import arith, tensor
from xdsl.dialects.builtin import IntegerType
from xdsl.ir import Operation, SSAValue

from lutc.runtime import abi
from lutc.runtime.errors import LutcError
from lutc.dialects.attention_ops import AttentionOp, KvAttentionOp, causal_mode_of
from lutc.dialects.fused_precompute import FusedPrecomputeOp
from lutc.dialects.lut_ops import MmaOp, PrecomputeOp, WeightOp
from lutc.dialects.packed_ops import PackedMmaOp
from lutc.dialects.table_readers import consumer_bits, consumer_code_bytes
from lutc.dialects.table_type import TableType
from lutc.dialects.tile_attr import TileAttr


def _align(n: int) -> int:
    return (n + 63) // 64 * 64


def table_entries_bytes(typ: TableType) -> int:
    """All rows' entries (lutrt_table_row_bytes per row, runtime/abi.py)."""
    return typ.shape[0] * typ.row_entries_bytes


def _shape(value: SSAValue) -> tuple[int, ...]:
    return tuple(value.type.get_shape())  # type: ignore[attr-defined]


class LutEmitter:
    def __init__(self, emitter) -> None:
        self.e = emitter
        self.packed: dict[tuple[str, str], int] = {}

    def handles(self, op: Operation) -> bool:
        return isinstance(op, (PrecomputeOp, MmaOp, PackedMmaOp, FusedPrecomputeOp,
                               KvAttentionOp, AttentionOp))

    def emit(self, op: Operation) -> None:
        if isinstance(op, KvAttentionOp):
            self.emit_kv_attention(op)
        elif isinstance(op, AttentionOp):
            self.emit_attention(op)
        elif isinstance(op, PrecomputeOp):
            self.emit_precompute(op)
        elif isinstance(op, FusedPrecomputeOp):
            self.emit_fused_precompute(op)
        elif isinstance(op, PackedMmaOp):
            self.emit_packed_mma(op)
        else:
            self.emit_mma(op)

    def _desc(self, **fields) -> str:
        name = self.e.fresh("d")
        body = ", ".join(f".{k} = {v}" for k, v in fields.items())
        self.e.line(f"const lutrt_mma_desc {name} = {{{body}}};")
        return name

    def _table_parts(self, table: SSAValue, name: str) -> tuple[str, str]:
        typ = table.type
        assert isinstance(typ, TableType)
        if not typ.is_quantized:
            return name, "NULL"
        return name, f"(float *)({name} + {_align(table_entries_bytes(typ))})"

    # -- precompute ---------------------------------------------------------------------
    def _precompute_desc(self, typ: TableType, sum_group: int, table: SSAValue) -> str:
        m, t, _ = typ.shape
        # the readers' weight layout (lutrt.h consumer_bits): bit planes unless code bytes
        layout = {"layout": "LUTRT_LAYOUT_CODE_BYTES"} if consumer_code_bytes(table) else {}
        return self._desc(M=self.e.rows(table, m), N=1, K=4 * t, bits=1, group=sum_group,
                          mirrored=int(typ.mirrored), table_i8=int(typ.is_quantized),
                          scale_group=typ.scale_group.data or 4, zimp="0.0f", num_threads=0,
                          consumer_bits=consumer_bits(table), **layout)

    def emit_precompute(self, op: PrecomputeOp) -> None:
        typ = op.table.type
        assert isinstance(typ, TableType)
        table = self.e.define(op.table)
        sums = self.e.define(op.sums)
        d = self._precompute_desc(typ, op.sum_group.value.data, op.table)
        entries, tscale = self._table_parts(op.table, table)
        self.e.line(f"lutrt_precompute(&{d}, {self.e.ptr(op.input)}, {entries}, {tscale}, {sums});")

    def emit_fused_precompute(self, op: FusedPrecomputeOp) -> None:
        """The producer as emit_c.py lowers a linalg.generic, writing straight into the
        activations' buffer, with one lutrt_precompute_row per row placed after the loops
        below the row dims close (emit_GenericOp's `row_epilogue` hook)."""
        generic = op.producer
        if not isinstance(generic, linalg.GenericOp):
            raise LutcError(f"'{op.name}' holds a '{generic.name}', which has no fused C "
                            f"lowering (only a row-wise linalg.generic)")
        e = self.e
        typ = op.table.type
        assert isinstance(typ, TableType)
        t = typ.shape[1]
        k = 4 * t
        acts = e.define(op.activations)
        e.plan.root[generic.res[0]] = op.activations  # the producer writes into it
        table = e.define(op.table)
        sums = e.define(op.sums)
        d = self._precompute_desc(typ, op.sum_group.value.data, op.table)
        entries, tscale = self._table_parts(op.table, table)
        row_bytes = typ.row_entries_bytes
        ns = -(-k // typ.scale_group.data) if typ.is_quantized else 0
        ng = _shape(op.sums)[1]
        out_shape = _shape(op.activations)
        row_dims = len(out_shape) - 1
        depth = generic.indexing_maps.data[0].data.num_dims
        closed: list[int] = []

        def close_with_row_precompute(n: int) -> None:
            assert n == depth and not closed, "emit_GenericOp closes its loop nest once"
            closed.append(n)
            e._close(n - row_dims)
            row = e._linear(e._index_names[:row_dims], out_shape[:row_dims])
            tscale_row = f"{tscale} + ({row}) * {ns}" if typ.is_quantized else "NULL"
            e.line(f"lutrt_precompute_row(&{d}, {acts} + ({row}) * {k}, "
                   f"(uint8_t *){entries} + ({row}) * {row_bytes}, {tscale_row}, "
                   f"{sums} + ({row}) * {ng});")
            e._close(row_dims)

        e.line(f"/* {generic.name} fused with lut.precompute: each row's tables are built "
               f"right after the row is written */")
        e.emit_GenericOp(generic, row_epilogue=close_with_row_precompute, row_dims=row_dims)
        assert closed, "emit_GenericOp emitted no loop nest"

    # -- mma ----------------------------------------------------------------------------
    @staticmethod
    def _threads(op: Operation, n: int) -> str:
        """lut-tile's n: a GEMM of one weight tile runs on one thread; others on the pool's
        threads (0), which the runtime splits by weight blocks. (Capping them at their number
        of tiles left N = 2048 GEMMs on 4 of a 16-core Xeon's threads: a 128-token prefill
        scaled 2.4x from 1 to 16 threads.)"""
        tile = op.attributes.get("tile")
        if isinstance(tile, TileAttr) and -(-n // tile.n.data) == 1:
            return "1"
        return "0"


    @classmethod
    def _tile_fields(cls, op: Operation) -> dict[str, str | int]:
        tile = op.attributes.get("tile")
        if not isinstance(tile, TileAttr):
            return {}
        m, n, k = tile.sizes
        # the C name of abi.STRATEGY_CODES[name] (test/runtime/test_abi.py checks both)
        assert tile.strategy_name in abi.STRATEGY_CODES
        return dict(strategy=f"LUTRT_STRATEGY_{tile.strategy_name.upper()}", tile_m=m, tile_n=n,
                    tile_k=k)

    def _mma_desc(self, op: MmaOp | PackedMmaOp, n: int, **extra: str) -> str:
        fmt = op.format
        typ = op.table.type
        assert isinstance(typ, TableType)
        m, t, _ = typ.shape
        return self._desc(M=self.e.rows(op.table, m), N=n, K=4 * t, bits=fmt.nbits, group=fmt.group_size,
                          mirrored=int(fmt.is_mirrored), table_i8=int(typ.is_quantized),
                          scale_group=typ.scale_group.data or 4,
                          zimp=f"{fmt.implicit_zero()!r}f", num_threads=self._threads(op, n),
                          **self._tile_fields(op), **extra)

    def emit_packed_mma(self, op: PackedMmaOp) -> None:
        """The weights are folded `lut.pack`/`lut.pack_scales` results: bytes as stored."""
        def offset(value: SSAValue, what: str) -> str:
            return self.e.off(self.e.weight_offset(self._weight_name(value, what)))

        packed = offset(op.packed, "packed weights")
        scales = f"(const float *)(W + {offset(op.scales, 'scales')})"
        zeros = "NULL"
        if op.zeros is not None:
            zeros = f"(const float *)(W + {offset(op.zeros, 'zeros')})"
        out = self.e.define(op.result)
        layout = {"layout": "LUTRT_LAYOUT_CODE_BYTES"} if op.code_bytes is not None else {}
        d = self._mma_desc(op, op.n, **layout)
        entries, tscale = self._table_parts(op.table, self.e.ptr(op.table))
        self.e.line(f"lutrt_mma(&{d}, {entries}, {tscale}, {self.e.ptr(op.sums)}, "
                    f"W + {packed}, {scales}, {zeros}, {out});")

    def _weight_name(self, value: SSAValue, what: str) -> str:
        owner = value.owner
        if not isinstance(owner, WeightOp):
            raise LutcError(f"LUT GEMM {what} must be a constant weight by code generation "
                            f"(got the result of '{getattr(owner, 'name', 'an argument')}')")
        return owner.weight_name.data

    def _packed_offset(self, name: str, kind: str, pack) -> int:
        key = (name, kind)
        if key not in self.packed:
            array = pack(np.asarray(self.e.weights[name]))
            self.packed[key] = self.e.blob.add(array)
        return self.packed[key]

    def emit_mma(self, op: MmaOp) -> None:
        from lutc.runtime import packing

        n = op.result.type.get_shape()[1]
        planes = self._weight_name(op.codes, "codes")
        w_off = self._packed_offset(planes, "planes",
                                    lambda a: packing.pack_weights(a.astype(np.uint8)))
        s_off = self._packed_offset(self._weight_name(op.scales, "scales"), "scales",
                                    lambda a: packing.pack_scales(a.astype(np.float32)))
        zeros = "NULL"
        if op.zeros is not None:
            z_off = self._packed_offset(self._weight_name(op.zeros, "zeros"), "scales",
                                        lambda a: packing.pack_scales(a.astype(np.float32)))
            zeros = f"(const float *)(W + {self.e.off(z_off)})"
        out = self.e.define(op.result)
        d = self._mma_desc(op, n)
        entries, tscale = self._table_parts(op.table, self.e.ptr(op.table))
        self.e.line(f"lutrt_mma(&{d}, {entries}, {tscale}, {self.e.ptr(op.sums)}, "
                    f"W + {self.e.off(w_off)}, (const float *)(W + {self.e.off(s_off)}), "
                    f"{zeros}, {out});")

    # -- attention over the KV cache ------------------------------------------------------
    def emit_kv_attention(self, op: KvAttentionOp) -> None:
        """lutrt_attention_kv (f32 cache) or lutrt_attention_kv_f16 on the cache argument's
        slice of this layer (rows: `M`)."""
        e = self.e
        h, kvh, d = op.heads
        c = _shape(op.q)[0]
        ctx = op.max_context
        layer_elems = 2 * kvh * ctx * d
        layer_off = e.off(op.layer.value.data * layer_elems)  # o[k] in a shared layer body
        elem, fn = ("uint16_t", "lutrt_attention_kv_f16") if op.f16_cache else \
            ("float", "lutrt_attention_kv")
        cache = f"(({elem} *){e.ptr(op.cache)} + {layer_off}{'LL' if layer_off.isdigit() else ''})"
        out = e.define(op.result)
        name = e.fresh("a")
        e.line(f"const lutrt_attn_desc {name} = {{.n_heads = {h}, .n_kv_heads = {kvh}, "
               f".head_dim = {d}, .max_context = {ctx}, "
               f".sliding_window = {op.sliding_window.value.data}, "
               f".scale = {float(op.scale.value.data)!r}f, "
               f".softcap = {float(op.softcap.value.data)!r}f, .num_threads = 0}};")
        rows = e.rows(op.q, c)
        e.line(f"{fn}(&{name}, {e.ptr(op.q)}, {e.ptr(op.k)}, {e.ptr(op.v)}, "
               f"{cache}, {cache} + {kvh * ctx * d}LL, (int32_t){e.ptr(op.positions)}[0], "
               f"(int32_t)({rows}), {out});")

    # -- attention on whole sequences ---------------------------------------------------
    def _constant_keep_mask(self, mask: SSAValue) -> np.ndarray:
        """The values of a constant boolean mask (a `lut.weight` or an `arith.constant`)."""
        owner = mask.owner
        if isinstance(owner, WeightOp):
            return np.asarray(self.e.weights[owner.weight_name.data]).astype(bool)
        if isinstance(owner, arith.ConstantOp):
            data = np.array(owner.value.get_values()).astype(bool)
            return np.broadcast_to(data, _shape(mask)).copy() if data.size == 1 \
                else data.reshape(_shape(mask))
        raise LutcError("lut.attention: a boolean mask must be a constant by code generation "
                        f"(got the result of '{getattr(owner, 'name', 'an argument')}'); "
                        "lut-fuse-attention turns other boolean masks into additive ones")

    def _constant_additive_mask(self, mask: SSAValue) -> np.ndarray | None:
        """The values of an f32 mask that is a weight (through views), else None."""
        while isinstance(mask.owner, (tensor.CollapseShapeOp, tensor.ExpandShapeOp)):
            mask = mask.owner.operands[0]
        if not isinstance(mask.owner, WeightOp):
            return None
        return np.asarray(self.e.weights[mask.owner.weight_name.data], np.float32)

    def _causal_of_mask(self, op: AttentionOp) -> tuple[int, int] | None:
        """(causal, window) when the op's constant mask only hides keys a causal mode hides:
        an i1 keep-mask, or an f32 one of 0 and -inf / at most -1e30 (transformers' finfo.min:
        exp underflows to exactly 0 beside any visible key, and a causal row always has one)."""
        if op.mask is None or len(_shape(op.mask)) != 2 or op.causal.value.data:
            return None
        if op.mask.type.get_element_type() == IntegerType(1):
            return causal_mode_of(self._constant_keep_mask(op.mask))
        values = self._constant_additive_mask(op.mask)
        if values is None:
            return None
        keep = values == 0
        if not (keep | (values <= -1e30)).all():
            return None
        return causal_mode_of(keep.reshape(_shape(op.mask)))

    def emit_attention(self, op: AttentionOp) -> None:
        """lutrt_attention per batch element: q/out [H, Sq, D], k/v [KVH, Skv, D] slices."""
        e = self.e
        b, h, kvh, sq, skv, d = op.dims
        causal, window = op.causal.value.data, op.sliding_window.value.data
        mask, mask_step = "NULL", 0
        mode = self._causal_of_mask(op)
        if mode is not None:
            causal, window = mode
        elif op.mask is not None:
            mask_step = sq * skv if len(_shape(op.mask)) == 3 else 0
            if op.mask.type.get_element_type() == IntegerType(1):
                keep = self._constant_keep_mask(op.mask)
                additive = np.where(keep, 0.0, -np.inf).astype(np.float32)
                mask = f"((const float *)(W + {e.off(e.blob.add(additive))}))"
            else:
                mask = e.ptr(op.mask)
        out = e.define(op.result)
        name = e.fresh("a")
        e.line(f"const lutrt_attn_desc {name} = {{.n_heads = {h}, .n_kv_heads = {kvh}, "
               f".head_dim = {d}, .max_context = 0, .sliding_window = {window}, "
               f".scale = {float(op.scale.value.data)!r}f, "
               f".softcap = {float(op.softcap.value.data)!r}f, .num_threads = 0}};")
        q_step, kv_step = h * sq * d, kvh * skv * d

        def at(ptr: str, step: int) -> str:
            return ptr if b == 1 or not step else f"{ptr} + i * {step}"

        mask_at = at(mask, mask_step) if mask != "NULL" else "NULL"
        call = (f"lutrt_attention(&{name}, {at(e.ptr(op.q), q_step)}, {at(e.ptr(op.k), kv_step)}, "
                f"{at(e.ptr(op.v), kv_step)}, {sq}, {skv}, {causal}, {mask_at}, "
                f"{at(out, q_step)});")
        if b == 1:
            e.line(call)
        else:
            e.line(f"for (int64_t i = 0; i < {b}; ++i)  /* one call per batch element */")
            e.line(f"    {call}")
