"""Writing a tensor's slices at positions known only at run time (a KV cache update).

    out = dest;  out[..., index[j], ...] = src[..., j, ...]  for j in order (the last write wins)

torch's `index_put` (one index tensor), `index_copy`, `slice_scatter` and `select_scatter` all
mean this (the functional forms of `cache[:, :, pos] = kv`, `index_copy_`, `copy_`), and so
does ONNX `ScatterND` once the dims it indexes are flattened into one. It is built
from GraphBuilder ops that already lower to C, so no new IR op is needed: per destination
position s the writer j*(s) = max{j : index[j] == s} (or -1), then

    out = where(j* >= 0, gather(src, max(j*, 0), axis), dest)

Indices known at import time that form one contiguous run become a static `tensor.insert_slice`.
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import SSAValue

from lutc.compiler.frontends.graph_builder import GraphBuilder, elem_of, element_type, shape_of


def scatter_along(gb: GraphBuilder, dest: SSAValue, axis: int, index, src: SSAValue) -> SSAValue:
    """`dest` with dest[.., index[j], ..] = src[.., j, ..] along `axis`.

    `index` is a 1-D int tensor (SSA value or numpy; negative positions count from the end) and
    `src` has dest's shape with `axis` of size len(index).
    """
    dshape = shape_of(dest)
    size = dshape[axis]
    src = gb.cast(src, elem_of(dest)) if elem_of(src) != elem_of(dest) else src
    if isinstance(index, SSAValue):
        writer = _last_writer(gb, index, size)
    else:  # known positions: the writers are constants, one contiguous run is a slice insert
        index = np.asarray(index, np.int64).reshape(-1)
        index = np.where(index < 0, index + size, index)
        if len(index) and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
            offsets = [0] * len(dshape)
            offsets[axis] = int(index[0])
            return gb.insert_slice(src, dest, offsets)
        writer = np.full(size, -1, np.int64)
        np.maximum.at(writer, index, np.arange(len(index)))
    gathered = gb.gather(src, gb.binary("max", writer, np.int64(0)) if isinstance(
        writer, SSAValue) else np.maximum(writer, 0), axis)
    mask_shape = [size if d == axis else 1 for d in range(len(dshape))]
    written = gb.reshape(gb.binary("ge", writer, np.int64(0)), mask_shape) if isinstance(
        writer, SSAValue) else (writer >= 0).reshape(mask_shape)
    return gb.where(written, gathered, dest)


def _last_writer(gb: GraphBuilder, index: SSAValue, size: int) -> SSAValue:
    """[size] int64: for each position the last j with index[j] == position, else -1."""
    n = shape_of(index)[0]
    index = gb.cast(index, element_type(np.int64))
    index = gb.where(gb.binary("lt", index, np.int64(0)), gb.binary("add", index, np.int64(size)),
                     index)
    hits = gb.binary("eq", gb.reshape(index, (1, n)),
                     np.arange(size, dtype=np.int64).reshape(size, 1))  # [size, n]
    return gb.reduce(gb.where(hits, np.arange(n, dtype=np.int64).reshape(1, n), np.int64(-1)),
                     [1], "max")
