"""Building the lutrt C runtime (and C that links against it) with the system compiler.

The library is compiled file by file: portable files with plain `-O3`, and only the SIMD
kernel files with their ISA flags (`*_avx2.c`: -mavx2 -mfma; `*_avx512.c`: additionally
-mavx512f -mavx512bw), so the generic code runs on any x86-64 and dispatch.c picks the kernel
at run time. `-march=native` is never used for the library.

`runtime_library()` builds `liblutrt.so` once per distinct (sources, flags, compiler) into
`$LUTC_CACHE` (default `~/.cache/lutc`).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RUNTIME_DIR = Path(__file__).resolve().parent
BASE_CFLAGS = ("-O3", "-fPIC", "-std=gnu11", "-pthread", "-Wall", "-Wextra")
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g",
                  "-fno-sanitize-recover=undefined")
AVX2_FLAGS = ("-mavx2", "-mfma")
AVX512_FLAGS = AVX2_FLAGS + ("-mavx512f", "-mavx512bw")


class RuntimeBuildError(RuntimeError):
    """The C compiler is missing or rejected the runtime / generated sources."""


def _is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def runtime_sources() -> list[Path]:
    """The runtime's C files (x86 SIMD kernels only on x86-64)."""
    files = sorted(RUNTIME_DIR.glob("*.c"))
    if not _is_x86():
        files = [f for f in files if "avx" not in f.stem]
    return files


def isa_flags(c_file: Path) -> tuple[str, ...]:
    """Per-file ISA flags: only the SIMD kernel files get them."""
    stem = Path(c_file).stem
    if not _is_x86():
        return ()
    if stem.endswith("avx512"):
        return AVX512_FLAGS
    if stem.endswith("avx2"):
        return AVX2_FLAGS
    return ()


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


def _compile_objects(c_files: Sequence[Path], obj_dir: Path, cflags: Sequence[str]) -> list[Path]:
    cc = compiler()
    objs = [obj_dir / f"{i}_{Path(f).stem}.o" for i, f in enumerate(c_files)]

    def one(pair):
        src, obj = pair
        _run([cc, *cflags, *isa_flags(src), f"-I{RUNTIME_DIR}", "-c", str(src), "-o", str(obj)],
             f"compiling {Path(src).name}")

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(one, zip(c_files, objs)))
    return objs


def _flags(extra_cflags: Iterable[str], sanitize: bool) -> list[str]:
    return [*BASE_CFLAGS, *(SANITIZE_FLAGS if sanitize else ()), *extra_cflags]


def compile_shared(c_files: Sequence[Path | str], out_so: Path | str,
                   extra_cflags: Iterable[str] = (), sanitize: bool = False) -> Path:
    """Compiles C files into a shared library (cc -O3 -fPIC -shared -pthread, per-file ISA
    flags). `sanitize` adds -fsanitize=address,undefined. Returns the library path."""
    out_so = Path(out_so)
    flags = _flags(extra_cflags, sanitize)
    with tempfile.TemporaryDirectory(prefix="lutrt-build-") as tmp:
        objs = _compile_objects([Path(f) for f in c_files], Path(tmp), flags)
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
    with tempfile.TemporaryDirectory(prefix="lutrt-build-") as tmp:
        objs = _compile_objects([Path(f) for f in c_files], Path(tmp), flags)
        out_exe.parent.mkdir(parents=True, exist_ok=True)
        _run([compiler(), *flags, *map(str, objs), "-o", str(out_exe), "-lm"],
             f"linking {out_exe.name}")
    return out_exe


def cache_dir() -> Path:
    return Path(os.environ.get("LUTC_CACHE") or Path.home() / ".cache" / "lutc")


def _compiler_id(cc: str) -> str:
    proc = subprocess.run([cc, "--version"], capture_output=True, text=True)
    return proc.stdout.splitlines()[0] if proc.stdout else cc


def runtime_library(sanitize: bool = False) -> Path:
    """Path of liblutrt.so, built on first use and cached by a hash of the runtime sources,
    the flags and the compiler."""
    cc = compiler()
    h = hashlib.sha256()
    for f in sorted(RUNTIME_DIR.glob("*.[ch]")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    h.update(repr((_flags((), sanitize), [isa_flags(f) for f in runtime_sources()],
                   _compiler_id(cc), platform.machine())).encode())
    out = cache_dir() / f"liblutrt-{h.hexdigest()[:16]}.so"
    if not out.exists():
        # build under a unique name, then rename: concurrent builders never see a partial file
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        compile_shared(runtime_sources(), tmp, sanitize=sanitize)
        os.replace(tmp, out)
    return out
