"""ctypes bindings of lutrt: run lut.precompute and lut.mma on numpy arrays.

Used by the tests and the kernel benchmark; generated C calls the same functions directly.

    tables = precompute(x, group=128, entries=16, table_i8=True, scale_group=32)
    out = mma(tables, pack_weights(codes), scales, zeros, n=N, bits=2)

Shapes are checked here, in Python, so a mistake is a ValueError naming the argument, never
a crash inside C.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from lutc.runtime import abi, build, packing
from lutc.runtime.abi import BLOCK_N

_C_TYPES = {"int32_t": ctypes.c_int32, "float": ctypes.c_float}


class Desc(ctypes.Structure):
    """Mirror of `lutrt_mma_desc` (lutrt.h documents each field; abi.py owns the order)."""

    _fields_ = [(name, _C_TYPES[c_type]) for name, c_type in abi.MMA_DESC_FIELDS]


STRATEGIES = {None: abi.STRATEGY_CODES["auto"], **abi.STRATEGY_CODES}


_lib: ctypes.CDLL | None = None
_vp = ctypes.c_void_p


def library() -> ctypes.CDLL:
    """The loaded runtime (built and cached on first use)."""
    if _lib is None:
        use_library(build.runtime_library())
    return _lib


def use_library(path) -> ctypes.CDLL:
    """Binds this module to another build of the runtime (e.g. a sanitizer or emulation build
    in tests). Returns the loaded library."""
    global _lib
    lib = ctypes.CDLL(str(path))
    dp = ctypes.POINTER(Desc)
    lib.lutrt_precompute.argtypes = [dp, _vp, _vp, _vp, _vp]
    lib.lutrt_precompute_row.argtypes = [dp, _vp, _vp, _vp, _vp]
    lib.lutrt_mma.argtypes = [dp, _vp, _vp, _vp, _vp, _vp, _vp, _vp]
    lib.lutrt_last_error.restype = ctypes.c_char_p
    lib.lutrt_set_kernel.argtypes = [ctypes.c_char_p]
    lib.lutrt_kernel_name.restype = ctypes.c_char_p
    lib.lutrt_kernel_available.argtypes = [ctypes.c_char_p]
    lib.lutrt_set_num_threads.argtypes = [ctypes.c_int]
    lib.lutrt_set_i8act_min_m.argtypes = [ctypes.c_int]
    lib.lutrt_i8act_min_m.argtypes = [ctypes.c_int]
    lib.lutrt_set_one_pass_max_bits.argtypes = [ctypes.c_int]
    lib.lutrt_one_pass_max_bits.argtypes = []
    lib.lutrt_set_i8act_kernel.argtypes = [ctypes.c_char_p]
    lib.lutrt_i8act_kernel_name.restype = ctypes.c_char_p
    lib.lutrt_i8act_blocks_per_task.argtypes = [ctypes.c_int] * 4
    lib.lutrt_code_bytes_kernel_name.restype = ctypes.c_char_p
    lib.lutrt_set_f32dq_min_m.argtypes = [ctypes.c_int]
    lib.lutrt_f32dq_min_m.argtypes = [ctypes.c_int]
    lib.lutrt_set_f32dq_kernel.argtypes = [ctypes.c_char_p]
    lib.lutrt_f32dq_kernel_name.restype = ctypes.c_char_p
    lib.lutrt_set_f32_gemv.argtypes = [ctypes.c_int]
    for name in ("lutrt_precompute", "lutrt_precompute_row", "lutrt_mma", "lutrt_set_kernel",
                 "lutrt_kernel_available", "lutrt_get_num_threads", "lutrt_i8act_min_m",
                 "lutrt_one_pass_max_bits", "lutrt_i8act_blocks_per_task",
                 "lutrt_f32dq_min_m", "lutrt_set_i8act_kernel", "lutrt_set_f32dq_kernel", "lutrt_f32_gemv_enabled"):
        getattr(lib, name).restype = ctypes.c_int
    _lib = lib
    return lib


def _check(rc: int) -> None:
    if rc != 0:
        raise ValueError(library().lutrt_last_error().decode())


# ---- kernel and thread selection ----------------------------------------------------------

def set_kernel(name: str | None) -> None:
    """Forces 'ref', 'avx2', 'avx512' or 'avx512vbmi' (never the default); None restores the
    default ($LUTRT_KERNEL or best)."""
    _check(library().lutrt_set_kernel(name.encode() if name else None))


def kernel_name() -> str:
    return library().lutrt_kernel_name().decode()


def kernel_available(name: str) -> bool:
    return bool(library().lutrt_kernel_available(name.encode()))


def set_num_threads(n: int | None) -> None:
    """Default thread count of lutrt_mma; None restores $LUTRT_NUM_THREADS / online CPUs."""
    library().lutrt_set_num_threads(int(n or 0))


def get_num_threads() -> int:
    return library().lutrt_get_num_threads()


def set_i8act_min_m(m: int | None) -> None:
    """Tokens from which lut.mma on int8 tables runs the int8-activation kernel (AVX512-VNNI
    or AVX2 CPUs; lutrt.h): m >= 1 from m on, 0 never, None restores the default."""
    library().lutrt_set_i8act_min_m(-1 if m is None else int(m))


def set_one_pass_max_bits(bits: int | None) -> None:
    """Allow one-pass int8 activation groups (crest factor <= 3.5, lutrt.h "Large M") in tables
    whose readers have 1..`bits`-bit weights (bits clipped to 0..ONE_PASS_MAX_BITS = 4; 0: one
    pass nowhere); None restores the default ($LUTRT_ONE_PASS_MAX_BITS, else 0: off, two passes
    everywhere, the setting the perplexity target is met with)."""
    library().lutrt_set_one_pass_max_bits(-1 if bits is None else int(bits))


def one_pass_max_bits() -> int:
    """The one-pass setting in force (0: every activation group keeps two passes)."""
    return library().lutrt_one_pass_max_bits()


def set_i8act_kernel(name: str | None) -> None:
    """The int8-activation kernel: "avx512vnni", "avx2", "c" (portable) or None (the best this
    CPU runs); raises ValueError for one this CPU or build cannot run."""
    _check(library().lutrt_set_i8act_kernel(None if name is None else name.encode()))


def i8act_kernel_name() -> str:
    """The int8-activation kernel in use: "avx512vnni", "avx2", "c" or "none"."""
    return library().lutrt_i8act_kernel_name().decode()


def i8act_blocks_per_task(m: int, k: int, n: int, threads: int) -> int:
    """Weight blocks of 32 columns one task of the AMX / AVX512-VNNI int8-activation kernels
    runs together on an m x k x n call on `threads` threads (lutrt_i8act_blocks_per_task; 1:
    one at a time)."""
    return library().lutrt_i8act_blocks_per_task(int(m), int(k), int(n), int(threads))


def code_bytes_kernel_name() -> str:
    """The kernel code-byte weights run on: "avx512vnni", "avx2" or "c"."""
    return library().lutrt_code_bytes_kernel_name().decode()


def i8act_min_m(bits: int) -> int:
    """The threshold in force for `bits`-bit weights (0: the path is off)."""
    return library().lutrt_i8act_min_m(int(bits))


def set_f32dq_min_m(m: int | None) -> None:
    """Tokens from which lut.mma on f32 tables (the lossless mode) runs the dequantize-then-FMA
    kernel (AVX-512 CPUs; lutrt.h): m >= 1 from m on, 0 never, None restores the default."""
    library().lutrt_set_f32dq_min_m(-1 if m is None else int(m))


def f32dq_min_m(bits: int) -> int:
    """The threshold in force for `bits`-bit weights (0: the path is off)."""
    return library().lutrt_f32dq_min_m(int(bits))


def set_f32dq_kernel(name: str | None) -> None:
    """The lossless mode's f32-dequantize kernel: "avx512", "avx2" or None (the best this CPU
    runs); raises ValueError for one this CPU or build cannot run."""
    _check(library().lutrt_set_f32dq_kernel(None if name is None else name.encode()))


def f32dq_kernel_name() -> str:
    """The f32-dequantize kernel in use: "avx512", "avx2" or "none"."""
    return library().lutrt_f32dq_kernel_name().decode()


def set_f32_gemv(on: bool | None) -> None:
    """Whether lut.mma on f32 tables (the lossless mode) at one token with 4-bit weights runs
    the fixed-point GEMV (three int8 digits, AVX-512 VBMI + VNNI CPUs; lutrt.h) instead of the
    vpermps kernel: True at every N, False never, None automatic (where N is large enough and
    no kernel was forced)."""
    library().lutrt_set_f32_gemv(-1 if on is None else int(bool(on)))


def f32_gemv_enabled() -> bool:
    """Whether lut.mma may take that GEMV now."""
    return bool(library().lutrt_f32_gemv_enabled())


# ---- precompute ----------------------------------------------------------------------------

@dataclass
class Tables:
    """Output of lut.precompute: entries [M, K/4, E] (f32 or int8), int8 table scales [M, NS]
    (None for f32 tables) and group sums [M, NG]; plus the parameters they were built with.
    `rows` is the buffer the runtime reads, [M, lutrt_table_row_bytes] bytes: for int8 tables
    each row holds the entries, then the row's two-pass int8 activations and their scales and
    sums (views: `hi`, `lo`, `ascale`, `shi`, `slo`; lutrt.h)."""

    entries: np.ndarray
    tscale: np.ndarray | None
    sums: np.ndarray
    K: int
    group: int
    mirrored: bool
    table_i8: bool
    scale_group: int
    rows: np.ndarray | None = None

    @property
    def M(self) -> int:
        return self.entries.shape[0]

    def _section(self, start: int, nbytes: int, dtype) -> np.ndarray:
        return self.rows[:, start:start + nbytes].view(dtype)

    def _acts_at(self, i: int, dtype) -> np.ndarray:
        """Section i of the int8 activation part of the rows: 0 hi, 1 lo ([M, K] int8), then
        2 ascale, 3 S_hi, 4 S_lo ([M, NA] f32, NA = ceil(K / act_group); lutrt.h)."""
        start, k, j = self.entries[0].nbytes, self.K, self.K // 4
        if i < 2:
            return self.rows[:, start + i * k:start + (i + 1) * k].view(np.int8)
        na = -(-k // abi.act_group(k, self.group))
        f0 = start + 2 * k + 4 * j * (i - 2)
        return self.rows[:, f0:f0 + 4 * na].view(np.float32)

    @property
    def hi(self) -> np.ndarray:
        """int8 tables: hi [M, K] of the two-pass activations xq = 128 hi + lo."""
        return self._acts_at(0, np.int8)

    @property
    def lo(self) -> np.ndarray:
        return self._acts_at(1, np.int8)

    @property
    def ascale(self) -> np.ndarray:
        """int8 tables: f32 [M, NA], max|x| / 16256 per activation group."""
        return self._acts_at(2, np.float32)

    @property
    def shi(self) -> np.ndarray:
        """int8 tables: f32 [M, NA], the integer sum of each activation group's hi."""
        return self._acts_at(3, np.float32)

    @property
    def slo(self) -> np.ndarray:
        return self._acts_at(4, np.float32)


def _desc(M: int, N: int, K: int, bits: int, group: int, mirrored: bool, table_i8: bool,
          scale_group: int, zimp: float = 0.0, threads: int | None = None,
          strategy: str | None = None, tile: tuple[int, int, int] = (0, 0, 0),
          consumer_bits: int = 0, layout: str = "bit_planes") -> Desc:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of per_token, vec_lut, auto, got {strategy!r}")
    if layout not in abi.LAYOUT_CODES:
        raise ValueError(f"layout must be one of {', '.join(abi.LAYOUT_CODES)}, got {layout!r}")
    return Desc(M, N, K, bits, group, int(mirrored), int(table_i8),
                scale_group if table_i8 else 0, zimp, int(threads or 0), STRATEGIES[strategy],
                *tile, consumer_bits, abi.LAYOUT_CODES[layout])


def _f32_matrix(name: str, a: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.float32:
        raise ValueError(f"{name} must be float32, got {a.dtype}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(a.shape)}")
    return np.ascontiguousarray(a)


class PrecomputeCall:
    """lut.precompute of one activation buffer with its arguments bound: `call()` refills
    `tables` from the current contents of `x` with little Python overhead. `consumer_bits`
    (lutrt.h): B promises that only per-token/auto lut.mma calls with B-bit weights in
    `consumer_layout` ("bit_planes" or "code_bytes") read the tables, which lets the runtime
    skip the entries where those take the int8-activation path and the int8 activations where
    they take a LUT kernel (bit planes below lutrt_i8act_min_m(B) tokens)."""

    def __init__(self, x: np.ndarray, *, group: int, entries: int = 16, table_i8: bool = True,
                 scale_group: int = 32, threads: int | None = None, consumer_bits: int = 0,
                 consumer_layout: str = "bit_planes"):
        x = _f32_matrix("x", x)
        if x.ndim != 2 or x.shape[1] % 4 or x.shape[0] < 1:
            raise ValueError(f"x must be [M, K] with K a multiple of 4, got shape {list(x.shape)}")
        if entries not in (8, 16):
            raise ValueError(f"entries must be 8 (mirrored) or 16, got {entries}")
        m, k = x.shape
        mirrored = entries == 8
        self.desc = _desc(m, 1, k, 1, group, mirrored, table_i8, scale_group, threads=threads,
                          consumer_bits=consumer_bits, layout=consumer_layout)
        ng = -(-k // group) if group > 0 else 0
        ns = -(-k // scale_group) if table_i8 and scale_group > 0 else 0
        self.x = x
        # (a scale group lutrt rejects is reported by the C call below, not here)
        row_bytes = abi.table_row_bytes(k, entries, table_i8)
        rows = np.empty((m, row_bytes), np.uint8)
        etype = np.int8 if table_i8 else np.float32
        nent = (k // 4) * entries * np.dtype(etype).itemsize
        self.tables = Tables(rows[:, :nent].view(etype).reshape(m, k // 4, entries),
                             np.empty((m, ns), np.float32) if table_i8 else None,
                             np.empty((m, max(ng, 1)), np.float32), k, group, mirrored, table_i8,
                             scale_group if table_i8 else 0, rows)
        t = self.tables
        assert np.shares_memory(t.entries, rows)
        self._fn = library().lutrt_precompute
        self._args = (ctypes.byref(self.desc), x.ctypes.data, rows.ctypes.data,
                      t.tscale.ctypes.data if t.tscale is not None else None, t.sums.ctypes.data)

    def __call__(self) -> Tables:
        _check(self._fn(*self._args))
        return self.tables


def precompute(x: np.ndarray, *, group: int, entries: int = 16, table_i8: bool = True,
               scale_group: int = 32, threads: int | None = None,
               consumer_bits: int = 0, consumer_layout: str = "bit_planes") -> Tables:
    """Tables of activations x f32 [M, K] (K % 4 == 0) with sums over weight groups `group`:
    entries 16 (plain) or 8 (mirrored), int8 with one scale per `scale_group` activations or
    f32. `consumer_bits`, `consumer_layout`: see PrecomputeCall."""
    return PrecomputeCall(x, group=group, entries=entries, table_i8=table_i8,
                          scale_group=scale_group, threads=threads,
                          consumer_bits=consumer_bits, consumer_layout=consumer_layout)()


# ---- mma -----------------------------------------------------------------------------------

def _block_scales(name: str, v: np.ndarray | None, n: int, ng: int) -> np.ndarray | None:
    """Accepts [N, NG] (packed here) or already packed [NB, NG, 32] scales/zeros."""
    if v is None:
        return None
    v = np.asarray(v)
    nb = -(-n // BLOCK_N)
    if v.ndim == 2:
        _f32_matrix(name, v, (n, ng))
        return packing.pack_scales(v)
    return _f32_matrix(name, v, (nb, ng, BLOCK_N))


class MmaCall:
    """A lut.mma call with its arguments bound (checked once): `call()` runs it with little
    Python overhead and returns the output array (reused between calls)."""

    def __init__(self, tables: Tables, packed_w: np.ndarray, scales: np.ndarray,
                 zeros: np.ndarray | None = None, *, n: int, bits: int, zimp: float = 0.0,
                 threads: int | None = None, out: np.ndarray | None = None,
                 strategy: str | None = None, tile: tuple[int, int, int] = (0, 0, 0),
                 layout: str = "bit_planes"):
        if not 1 <= bits <= packing.MAX_BITS:
            raise ValueError(f"bits must be 1..{packing.MAX_BITS}, got {bits}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        k, m = tables.K, tables.M
        ng = tables.sums.shape[1]
        packed_w = np.asarray(packed_w)
        want = packing.packed_nbytes(bits, n, k, layout)
        if packed_w.dtype != np.uint8 or packed_w.size != want or not packed_w.flags.c_contiguous:
            made_by = (f"pack_code_bytes of [{n}, {k}] codes" if layout == "code_bytes" else
                       f"pack_weights of [{bits}, {n}, {k // 4}] codes")
            raise ValueError(f"packed_w must be a contiguous uint8 array of {want} bytes "
                             f"({made_by}), got {packed_w.dtype} of {packed_w.size}")
        self.scales = _block_scales("scales", scales, n, ng)
        self.zeros = _block_scales("zeros", zeros, n, ng)
        self.tables, self.packed_w = tables, packed_w
        self.out = np.empty((m, n), np.float32) if out is None else out
        if self.out.shape != (m, n) or self.out.dtype != np.float32 or not self.out.flags.c_contiguous:
            raise ValueError(f"out must be a contiguous float32 [{m}, {n}] array")
        self.desc = _desc(m, n, k, bits, tables.group, tables.mirrored, tables.table_i8,
                          tables.scale_group, zimp, threads, strategy, tile, layout=layout)
        self._fn = library().lutrt_mma
        if tables.rows is None:
            raise ValueError("tables must come from precompute (the runtime's row layout)")
        self._args = (ctypes.byref(self.desc), tables.rows.ctypes.data,
                      tables.tscale.ctypes.data if tables.tscale is not None else None,
                      tables.sums.ctypes.data, packed_w.ctypes.data, self.scales.ctypes.data,
                      self.zeros.ctypes.data if self.zeros is not None else None,
                      self.out.ctypes.data)

    def __call__(self) -> np.ndarray:
        _check(self._fn(*self._args))
        return self.out


def mma(tables: Tables, packed_w: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None = None,
        *, n: int, bits: int, zimp: float = 0.0, threads: int | None = None,
        strategy: str | None = None, tile: tuple[int, int, int] = (0, 0, 0),
        layout: str = "bit_planes") -> np.ndarray:
    """out f32 [M, n] of lut.mma. scales/zeros: f32 [n, NG] or packed [NB, NG, 32]; zeros None
    uses the scalar zero point `zimp` (symmetrized values for mirrored formats). `strategy`
    ("per_token", "vec_lut"; None: the runtime picks by M) and `tile` (m, n, k; 0 = runtime
    decides) fill the descriptor's tile fields (lutrt.h). `layout` "code_bytes": packed_w is
    `packing.pack_code_bytes` of the unsigned codes (int8 tables only)."""
    return MmaCall(tables, packed_w, scales, zeros, n=n, bits=bits, zimp=zimp, threads=threads,
                   strategy=strategy, tile=tile, layout=layout)()
