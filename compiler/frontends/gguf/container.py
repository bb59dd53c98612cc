"""The GGUF container: header, metadata and tensor directory, read with every offset bounds-checked.

We do not use `gguf.GGUFReader` for this: it trusts the counts in the file (an array length of 2**60
makes it loop for ever) and reads past the end into short arrays that fail later with an unrelated
numpy error. Here every read goes through `_Cursor.take`, which fails with a one-line `LutcError`
naming the file and offset, and tensor data ranges are checked against the file and each other
before any byte of them is touched.

Layout (GGUF v2/v3, little-endian; `ggml/docs/gguf.md`):

    magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
    n_kv x      (string key, u32 value type, value)
    n_tensors x (string name, u32 n_dims, u64 dims[n_dims] (ne0 = row length first),
                 u32 ggml type, u64 offset relative to the data section)
    padding to `general.alignment` (default 32) | data section
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from lutc.runtime.errors import LutcError

_MAGIC = b"GGUF"
_DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 4  # GGML_MAX_DIMS

# GGUF metadata value types -> (struct format, numpy dtype); 8 = string, 9 = array.
_SCALARS = {
    0: ("<B", np.uint8), 1: ("<b", np.int8), 2: ("<H", np.uint16), 3: ("<h", np.int16),
    4: ("<I", np.uint32), 5: ("<i", np.int32), 6: ("<f", np.float32), 7: ("<?", np.bool_),
    10: ("<Q", np.uint64), 11: ("<q", np.int64), 12: ("<d", np.float64),
}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor directory. `shape` is numpy order (row length last)."""
    name: str
    ggml_type: GGMLQuantizationType
    shape: tuple[int, ...]
    start: int  # absolute byte offset in the file
    n_bytes: int

    @property
    def type_name(self) -> str:
        return self.ggml_type.name


class _Cursor:
    """A read position in the mapped file that refuses to leave it."""

    def __init__(self, buf, path: Path):
        self.buf, self.path, self.pos = buf, path, 0

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise LutcError(f"{self.path}: truncated GGUF file: {what} needs {n} bytes at offset "
                            f"{self.pos}, but the file has {len(self.buf)} bytes")
        view = memoryview(self.buf)[self.pos:self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        n = self.unpack("<Q", what)
        raw = self.take(n, what)
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise LutcError(f"{self.path}: {what} is not valid UTF-8") from None

    def remaining(self) -> int:
        return len(self.buf) - self.pos


class GGUFContainer:
    """A parsed GGUF file: `metadata` (key -> Python value) and `tensors` (name -> TensorInfo).

    Keeps the file mapped until `close()`; `raw(info)` is a zero-copy uint8 view of a tensor's bytes.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, 2)
                if size == 0:
                    raise LutcError(f"{self.path}: not a GGUF file (it is empty)")
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            raise LutcError(f"{self.path}: cannot read the file ({e.strerror or e})") from None
        try:
            self._parse()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if getattr(self, "_map", None) is not None:
            try:
                self._map.close()
            except BufferError:  # a caller still holds a view; the map closes when it is released
                pass
            self._map = None

    def raw(self, info: TensorInfo) -> np.ndarray:
        return np.frombuffer(self._map, dtype=np.uint8, count=info.n_bytes, offset=info.start)

    # -- parsing ---------------------------------------------------------------------------------

    def _parse(self) -> None:
        cur = _Cursor(self._map, self.path)
        if len(self._map) < 4 or bytes(self._map[:4]) != _MAGIC:
            raise LutcError(f"{self.path}: not a GGUF file (the first bytes are not 'GGUF')")
        cur.take(4, "magic")
        version = cur.unpack("<I", "the version")
        if version not in (2, 3):
            hint = " (a big-endian file?)" if version & 0xFFFF == 0 else ""
            raise LutcError(f"{self.path}: GGUF version {version} is not supported{hint}; "
                            "lutc reads versions 2 and 3")
        n_tensors = cur.unpack("<Q", "the tensor count")
        n_kv = cur.unpack("<Q", "the metadata count")
        # Every entry takes at least 12 bytes (a key/name length and a type), so a count that
        # cannot fit in the file is rejected before looping over it.
        if (n_tensors + n_kv) * 12 > cur.remaining():
            raise LutcError(f"{self.path}: truncated or corrupt GGUF file: it claims {n_kv} metadata "
                            f"entries and {n_tensors} tensors but has only {len(self._map)} bytes")

        self.metadata: dict[str, object] = {}
        for _ in range(n_kv):
            key = self._name(cur.string("a metadata key"), "metadata key")
            vtype = cur.unpack("<I", f"the type of metadata key '{key}'")
            if key in self.metadata:
                raise LutcError(f"{self.path}: metadata key '{key}' appears twice")
            self.metadata[key] = self._value(cur, vtype, key)

        alignment = self.metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise LutcError(f"{self.path}: metadata 'general.alignment' = {alignment!r} is not a "
                            "positive power of two")

        entries = []
        for _ in range(n_tensors):
            name = self._name(cur.string("a tensor name"), "tensor name")
            n_dims = cur.unpack("<I", f"the rank of tensor '{name}'")
            if not 1 <= n_dims <= _MAX_DIMS:
                raise LutcError(f"{self.path}: tensor '{name}' has {n_dims} dimensions; GGUF allows "
                                f"1 to {_MAX_DIMS}")
            dims = [cur.unpack("<Q", f"the shape of tensor '{name}'") for _ in range(n_dims)]
            type_id = cur.unpack("<I", f"the type of tensor '{name}'")
            offset = cur.unpack("<Q", f"the data offset of tensor '{name}'")
            entries.append((name, dims, type_id, offset))

        data_start = -(-cur.pos // alignment) * alignment
        self.tensors: dict[str, TensorInfo] = {}
        for name, dims, type_id, offset in entries:
            if name in self.tensors:
                raise LutcError(f"{self.path}: tensor '{name}' appears twice")
            self.tensors[name] = self._tensor_info(name, dims, type_id, offset, data_start, alignment)
        self._check_no_overlap()

    def _name(self, name: str, what: str) -> str:
        # Names end up in one-line error messages and generated identifiers.
        if not name.isprintable():
            raise LutcError(f"{self.path}: {what} {name!r} contains unprintable characters")
        return name

    def _value(self, cur: _Cursor, vtype: int, key: str, depth: int = 0):
        what = f"the value of metadata key '{key}'"
        if vtype in _SCALARS:
            fmt, _ = _SCALARS[vtype]
            value = cur.unpack(fmt, what)
            return bool(value) if vtype == 7 else value
        if vtype == _STRING:
            return cur.string(what)
        if vtype == _ARRAY and depth == 0:
            itype = cur.unpack("<I", what)
            count = cur.unpack("<Q", what)
            if itype in _SCALARS:
                dtype = np.dtype(_SCALARS[itype][1]).newbyteorder("<")
                raw = cur.take(count * dtype.itemsize, what)
                return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
            if itype == _STRING:
                if count * 8 > cur.remaining():
                    raise LutcError(f"{self.path}: truncated GGUF file: metadata key '{key}' claims "
                                    f"{count} strings")
                return [cur.string(what) for _ in range(count)]
            if itype == _ARRAY:
                if count * 12 > cur.remaining():
                    raise LutcError(f"{self.path}: truncated GGUF file: metadata key '{key}' claims "
                                    f"{count} arrays")
                return [self._value(cur, _ARRAY, key, depth + 1) for _ in range(count)]
            raise LutcError(f"{self.path}: metadata key '{key}' is an array of unknown type {itype}")
        if vtype == _ARRAY:  # nested: one level of nesting is all GGUF writers produce
            raise LutcError(f"{self.path}: metadata key '{key}' nests arrays too deeply")
        raise LutcError(f"{self.path}: metadata key '{key}' has unknown value type {vtype}")

    def _tensor_info(self, name, dims, type_id, offset, data_start, alignment) -> TensorInfo:
        try:
            ggml_type = GGMLQuantizationType(type_id)
        except ValueError:
            raise LutcError(f"{self.path}: tensor '{name}' has unknown ggml type id {type_id}") from None
        if ggml_type not in GGML_QUANT_SIZES:
            raise LutcError(f"{self.path}: tensor '{name}' has ggml type {ggml_type.name} with no "
                            "known block size")
        block, block_bytes = GGML_QUANT_SIZES[ggml_type]
        shape = tuple(reversed(dims))
        if dims[0] % block:
            raise LutcError(f"{self.path}: tensor '{name}' of type {ggml_type.name} has rows of "
                            f"{dims[0]} elements, not a multiple of its block size {block}")
        n_elements = int(np.prod(dims, dtype=object))
        n_bytes = n_elements // block * block_bytes
        if offset % alignment:
            raise LutcError(f"{self.path}: tensor '{name}' data offset {offset} is not aligned to "
                            f"{alignment} bytes")
        start = data_start + offset
        if start + n_bytes > len(self._map):
            raise LutcError(f"{self.path}: tensor '{name}' ({ggml_type.name}, shape {list(shape)}) "
                            f"needs bytes [{start}, {start + n_bytes}) but the file has only "
                            f"{len(self._map)} bytes (truncated?)")
        return TensorInfo(name, ggml_type, shape, start, n_bytes)

    def _check_no_overlap(self) -> None:
        # A tensor whose stated type/shape need more bytes than lie before the next tensor's data
        # is a size mismatch: reading it would return the next tensor's bytes as its own.
        ordered = sorted(self.tensors.values(), key=lambda t: t.start)
        for a, b in zip(ordered, ordered[1:]):
            if a.start + a.n_bytes > b.start:
                raise LutcError(f"{self.path}: tensor '{a.name}' ({a.type_name}, shape "
                                f"{list(a.shape)}) needs {a.n_bytes} bytes but tensor '{b.name}' "
                                f"starts {b.start - a.start} bytes after it: its size disagrees "
                                "with its type and shape")
