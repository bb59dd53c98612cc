"""Building the lutrt C runtime (and C that links against it) with the system compiler.

The library is compiled file by file: portable files with plain `-O3`, and only the SIMD
kernel files with their ISA flags (`*_avx2.c`: -mavx2 -mfma -mf16c; `*_avx512.c`: additionally
-mavx512f -mavx512bw; `*_avx512vbmi.c`: additionally -mavx512vbmi -mavx512vnni;
`*_avx512vnni.c`: -mavx512vnni; `*_avx512amx.c`: additionally -mamx-tile -mamx-int8), so the
generic code runs on any x86-64 and dispatch.c picks the kernel at run time. `-march=native` is never used for the library.

`runtime_library()` builds `liblutrt.so` once per distinct (sources, flags, compiler) into
`$LUTC_CACHE` (default `~/.cache/lutc`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RUNTIME_DIR = Path(__file__).resolve().parent
BASE_CFLAGS = ("-O3", "-fPIC", "-std=gnu11", "-pthread", "-Wall", "-Wextra")
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g",
                  "-fno-sanitize-recover=undefined")
AVX2_FLAGS = ("-mavx2", "-mfma", "-mf16c")
AVX512_FLAGS = AVX2_FLAGS + ("-mavx512f", "-mavx512bw")
AVX512VBMI_FLAGS = AVX512_FLAGS + ("-mavx512vbmi", "-mavx512vnni")
AVX512VNNI_FLAGS = AVX512_FLAGS + ("-mavx512vnni",)
AMX_FLAGS = AVX512VNNI_FLAGS + ("-mamx-tile", "-mamx-int8")


try:  # the project's user-error type, so the CLI reports build failures in one line
    from lutc.runtime.errors import LutcError as _UserError
except ImportError:  # the runtime used on its own
    _UserError = Exception


class RuntimeBuildError(_UserError, RuntimeError):
    """The C compiler is missing or rejected the runtime / generated sources."""


def _is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def runtime_sources() -> list[Path]:
    """The runtime's C files (x86 SIMD kernels only on x86-64)."""
    files = sorted(RUNTIME_DIR.glob("*.c"))
    if not _is_x86():
        files = [f for f in files if "avx" not in f.stem]
    return files


def isa_flags(c_file: Path, avx512_emulation: bool = False) -> tuple[str, ...]:
    """Per-file ISA flags: only the SIMD kernel files get them. `avx512_emulation` (tests only)
    compiles the AVX-512 kernels for AVX2 through SIMDe's emulation headers instead."""
    stem = Path(c_file).stem
    if not _is_x86():
        return ()
    if stem.endswith("avx512vnni") or stem.endswith("avx512amx"):  # never emulated: compiled
        if avx512_emulation:                                          # to nothing under SIMDe
            return AVX2_FLAGS + ("-DLUTRT_AVX512_SIMDE",)
        if stem.endswith("amx") and compiler_accepts(AMX_FLAGS):
            return AMX_FLAGS
        return AVX512VNNI_FLAGS  # an AMX file then compiles to its NULL kernel pointer
    if stem.endswith("avx512") or stem.endswith("avx512vbmi"):
        if avx512_emulation:  # -O1: emulated zmm code is slow to optimize, and only tested
            return AVX2_FLAGS + ("-DLUTRT_AVX512_SIMDE", "-Wno-psabi", "-O1")
        return AVX512VBMI_FLAGS if stem.endswith("avx512vbmi") else AVX512_FLAGS
    if stem.endswith("avx2"):
        return AVX2_FLAGS
    return ()


@functools.lru_cache(maxsize=None)
def _accepts(cc: str, flags: tuple[str, ...]) -> bool:
    proc = subprocess.run([cc, *flags, "-x", "c", "-c", "-o", os.devnull, "-"],
                          input="int lutrt_flag_probe;\n", capture_output=True, text=True)
    return proc.returncode == 0


def compiler_accepts(flags: Sequence[str]) -> bool:
    """Whether the C compiler takes these flags (an empty file compiled once per compiler and
    flags): GCC < 11 and Clang < 12 do not know -mamx-tile / -mamx-int8, and the runtime is
    then built without its AMX kernel (dispatch.c never picks it)."""
    return _accepts(compiler(), tuple(flags))


def compiler() -> str:
    """The C compiler command ($CC, else cc); raises RuntimeBuildError if it is missing."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise RuntimeBuildError(
            f"C compiler '{cc}' not found: install gcc or clang, or set CC to a C compiler")
    return cc


def _run(cmd: Sequence[str], what: str) -> None:
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeBuildError(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr.strip()}")


def _compile_objects(c_files: Sequence[Path], cflags: Sequence[str],
                     avx512_emulation: bool = False) -> list[Path]:
    """Compiles each file (in parallel) to an object, reusing objects cached in
    `cache_dir()/obj` under a hash of the source, the runtime headers, the flags and the
    compiler, so builds that differ in one file or flag only recompile what changed."""
    cc = compiler()
    missing = [str(f) for f in c_files if not Path(f).is_file()]
    if missing:
        raise RuntimeBuildError(f"C source file(s) not found: {', '.join(missing)}")
    cc_id = _compiler_id(cc)
    headers = b"".join(h.read_bytes() for h in sorted(RUNTIME_DIR.glob("*.h")))
    obj_cache = cache_dir() / "obj"
    obj_cache.mkdir(parents=True, exist_ok=True)

    def one(src: Path) -> Path:
        flags = [*cflags, *isa_flags(src, avx512_emulation), f"-I{RUNTIME_DIR}"]
        text = src.read_bytes()
        # a source that includes another runtime .c (lmma_avx512vnni.c) hashes that one too
        included = b"".join((src.parent / name.decode()).read_bytes()
                            for name in re.findall(rb'#include "(\w+\.c)"', text))
        key = hashlib.sha256(repr((flags, cc_id)).encode() + text + included + headers)
        cached = obj_cache / f"{src.stem}-{key.hexdigest()[:16]}.o"
        if not cached.exists():
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            _run([cc, *flags, "-c", str(src), "-o", str(tmp)], f"compiling {src.name}")
            os.replace(tmp, cached)
        return cached

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, [Path(f) for f in c_files]))


def _flags(extra_cflags: Iterable[str], sanitize: bool) -> list[str]:
    return [*BASE_CFLAGS, *(SANITIZE_FLAGS if sanitize else ()), *extra_cflags]


def compile_shared(c_files: Sequence[Path | str], out_so: Path | str,
                   extra_cflags: Iterable[str] = (), sanitize: bool = False,
                   avx512_emulation: bool = False) -> Path:
    """Compiles C files into a shared library (cc -O3 -fPIC -shared -pthread, per-file ISA
    flags). `sanitize` adds -fsanitize=address,undefined. `avx512_emulation` (tests only, needs
    the SIMDe headers) makes the AVX-512 kernel runnable on AVX2 CPUs. Returns the path."""
    out_so = Path(out_so)
    flags = _flags(extra_cflags, sanitize)
    with tempfile.TemporaryDirectory(prefix="lutrt-build-") as tmp:
        objs = _compile_objects([Path(f) for f in c_files], flags, avx512_emulation)
        tmp_so = Path(tmp) / out_so.name
        _run([compiler(), *flags, "-shared", *map(str, objs), "-o", str(tmp_so), "-lm"],
             f"linking {out_so.name}")
        out_so.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(tmp_so), str(out_so))
    return out_so


def compile_executable(c_files: Sequence[Path | str], out_exe: Path | str,
                       extra_cflags: Iterable[str] = (), sanitize: bool = False) -> Path:
    """Like `compile_shared` but links an executable (a test driver with its own main)."""
    out_exe = Path(out_exe)
    flags = [f for f in _flags(extra_cflags, sanitize) if f != "-fPIC"]
    objs = _compile_objects([Path(f) for f in c_files], flags)
    out_exe.parent.mkdir(parents=True, exist_ok=True)
    _run([compiler(), *flags, *map(str, objs), "-o", str(out_exe), "-lm"], f"linking {out_exe.name}")
    return out_exe


def cache_dir() -> Path:
    return Path(os.environ.get("LUTC_CACHE") or Path.home() / ".cache" / "lutc")


def _compiler_id(cc: str) -> str:
    proc = subprocess.run([cc, "--version"], capture_output=True, text=True)
    return proc.stdout.splitlines()[0] if proc.stdout else cc


def _digest(files: Iterable[Path], *config) -> str:
    """Hash of the runtime's sources and headers, the extra files and the build config."""
    h = hashlib.sha256()
    for f in [*sorted(RUNTIME_DIR.glob("*.[ch]")), *map(Path, files)]:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    h.update(repr((config, _compiler_id(compiler()), platform.machine())).encode())
    return h.hexdigest()[:16]


def _cached(out: Path, build_fn) -> Path:
    if not out.exists():
        # build under a unique name, then rename: concurrent builders never see a partial file
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        build_fn(tmp)
        os.replace(tmp, out)
    return out


def runtime_library(sanitize: bool = False, avx512_emulation: bool = False,
                    extra_cflags: Sequence[str] = ()) -> Path:
    """Path of liblutrt.so, built on first use and cached in `cache_dir()` by a hash of the
    runtime sources, the flags and the compiler."""
    key = _digest((), _flags(extra_cflags, sanitize), avx512_emulation)
    return _cached(cache_dir() / f"liblutrt-{key}.so",
                   lambda tmp: compile_shared(runtime_sources(), tmp, extra_cflags, sanitize,
                                              avx512_emulation))


def runtime_executable(main_c: Path | str, sanitize: bool = False,
                       extra_cflags: Sequence[str] = ()) -> Path:
    """An executable of the runtime plus `main_c` (a test driver), cached like the library."""
    main_c = Path(main_c)
    key = _digest([main_c], _flags(extra_cflags, sanitize), "exe")
    return _cached(cache_dir() / f"{main_c.stem}-{key}",
                   lambda tmp: compile_executable([*runtime_sources(), main_c], tmp,
                                                  extra_cflags, sanitize))


if __name__ == "__main__":  # `python -m lutc.runtime.build`: build (or find) the library now
    try:
        print(runtime_library())
    except RuntimeBuildError as err:
        raise SystemExit(f"lutc: {err}") from None
