"""The `lut` dialect: low-bit weights, lookup tables and the LUT mpGEMM."""

from xdsl.ir import Dialect

from lutc.dialects.attention_ops import AttentionOp, KvAttentionOp
from lutc.dialects.fused_precompute import FusedPrecomputeOp, YieldOp
from lutc.dialects.lut_ops import BitPlanesOp, DequantizeOp, MmaOp, PrecomputeOp, WeightOp
from lutc.dialects.mirror_ops import MirrorCodesOp, MirrorScalesOp, MirrorZerosOp
from lutc.dialects.packed_ops import PackCodeBytesOp, PackedMmaOp, PackOp, PackScalesOp
from lutc.dialects.table_type import TableType
from lutc.dialects.tile_attr import TileAttr
from lutc.dialects.weight_format import WeightFormatAttr

# op attribute: the decoder layer an op belongs to (frontends set it; passes keep repeated
# layers identical; compiler/codegen/emit_c.py emits each distinct layer body once)
LAYER_ATTR = "lutc.layer"

LUT = Dialect(
    "lut",
    [WeightOp, DequantizeOp, BitPlanesOp, PrecomputeOp, MmaOp,
     # added by the optimization passes (lutc/passes/)
     MirrorScalesOp, MirrorZerosOp, MirrorCodesOp, FusedPrecomputeOp, YieldOp,
     PackOp, PackCodeBytesOp, PackScalesOp, PackedMmaOp,
     # generation: attention over the KV cache the compiled model owns
     KvAttentionOp,
     # lut-fuse-attention: attention on whole sequences
     AttentionOp],
    [WeightFormatAttr, TableType, TileAttr],
)
