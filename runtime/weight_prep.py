"""The C runtime's compile-time weight helpers from Python: round-to-nearest quantization
(quantize_rtn.c) and bit planes + packing (pack_weights.c), each bit-identical to a numpy
reference (lutc.compiler.frontends.quantize, lutc.runtime.packing), which calls these as fast
paths. The library is the same liblutrt the kernels use (build.runtime_library), bound here on
its own so that packing.py can use it without importing kernels.py (which imports packing).
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from lutc.runtime import build
from lutc.runtime.abi import packed_weight_bytes

_lib: ctypes.CDLL | None = None
_lock = threading.Lock()


def _library() -> ctypes.CDLL | None:
    """liblutrt with the helpers' signatures (built on first use; one build when threads race,
    e.g. the quantizer's row chunks), or None when it cannot be built or loaded (no C compiler):
    every helper then returns None and its caller takes the numpy path."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                try:
                    lib = ctypes.CDLL(str(build.runtime_library()))
                except (build.RuntimeBuildError, OSError):
                    return None
                vp, i64, cint = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
                lib.lutrt_quantize_rtn.argtypes = [vp, i64, i64, i64, cint, cint, vp, vp, vp, vp]
                lib.lutrt_pack_weights.argtypes = [vp, cint, i64, i64, vp]
                lib.lutrt_bit_planes.argtypes = [vp, i64, i64, cint, cint, vp]
                for name in ("lutrt_quantize_rtn", "lutrt_pack_weights", "lutrt_bit_planes"):
                    getattr(lib, name).restype = cint
                _lib = lib
    return _lib


def quantize_rtn(w: np.ndarray, group: int, bits: int, mode: int, out=None):
    """lutrt_quantize_rtn (lutrt.h) on float32 w[n, k]: (codes uint8 [n, k], scales f32
    [n, k/group], zeros f32 [n, k/group] or None, sum of squared errors, sum w^2), or None
    when a weight is not finite or there is no runtime. Mode 0 asym, 1 sym, 2 ternary. `out`: optional (codes,
    scales, zeros) arrays of those shapes (C-contiguous) to write into instead of new ones.
    Raises ValueError on arguments the C function rejects."""
    lib = _library()
    if lib is None:
        return None
    w = np.ascontiguousarray(w, dtype=np.float32)
    n, k = w.shape
    ng = k // group if group else 0
    if out is not None:
        codes, scales, zeros = out
        assert codes.flags.c_contiguous and scales.flags.c_contiguous and codes.shape == (n, k)
        assert scales.shape == (n, ng) and (zeros is None) == (mode != 0)
    else:
        codes = np.empty((n, k), np.uint8)
        scales = np.empty((n, ng), np.float32)
        zeros = np.empty((n, ng), np.float32) if mode == 0 else None
    err = np.zeros(2, np.float64)
    rc = lib.lutrt_quantize_rtn(
        w.ctypes.data, n, k, group, bits, mode, codes.ctypes.data, scales.ctypes.data,
        None if zeros is None else zeros.ctypes.data, err.ctypes.data)
    if rc == 1:
        return None
    if rc != 0:
        raise ValueError(f"lutrt_quantize_rtn: invalid arguments (shape {w.shape}, group "
                         f"{group}, bits {bits}, mode {mode})")
    return codes, scales, zeros, float(err[0]), float(err[1])


def pack_weights(codes: np.ndarray) -> np.ndarray | None:
    """lutrt_pack_weights on uint8 codes [B, N, J]: packing.pack_weights' bytes, or None when
    the C function rejects them (the numpy path then raises its precise error) or there is no
    runtime."""
    lib = _library()
    if lib is None:
        return None
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    bits, n, j = codes.shape
    out = np.empty(packed_weight_bytes(bits, n, 4 * j), np.uint8)
    rc = lib.lutrt_pack_weights(codes.ctypes.data, bits, n, j, out.ctypes.data)
    return out if rc == 0 else None


def bit_planes(q: np.ndarray, bits: int, mirrored: bool) -> np.ndarray | None:
    """lutrt_bit_planes on uint8 q [N, K]: packing.codes_from_q (then mirror_codes when
    mirrored) as uint8 [bits, N, K/4], or None when the C function rejects the input or there
    is no runtime."""
    lib = _library()
    if lib is None:
        return None
    q = np.ascontiguousarray(q, dtype=np.uint8)
    n, k = q.shape
    out = np.empty((bits, n, k // 4), np.uint8)
    rc = lib.lutrt_bit_planes(q.ctypes.data, n, k, bits, int(mirrored), out.ctypes.data)
    return out if rc == 0 else None
