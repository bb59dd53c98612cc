"""Where a multi-threaded call's thread time goes: lutrt's parallel-loop profile (lutrt.h,
`lutrt_pool_profile`), per task function, named from the libraries' symbol tables.

    with recording(lib) as prof:          # lib: the runtime, or a model library linked to it
        model(ids)
    print(report(prof, threads=16))

A call of wall time W on T threads holds T x W of thread time. Inside parallel loops the
profile gives, per task function, the caller's time in them (`wall_s`), the threads' time in
task chunks (`busy_s`) and T x wall (`held_s`); held - busy is thread time spent waiting for
the last chunk, claiming or idle because the loop had fewer chunks than threads. Outside the
loops (W - sum of wall) the caller runs serial code while T - 1 threads idle.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class LoopStats:
    name: str
    loops: int
    wall_s: float  # the calling thread's time inside these loops
    busy_s: float  # all threads' time inside task chunks
    held_s: float  # pool threads x wall


@dataclass
class Profile:
    wall_s: float = 0.0  # the whole recorded block
    loops: list[LoopStats] = field(default_factory=list)


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


_symbols: dict[str, dict[int, str]] = {}


def _tool_output(tool: str, *args: str) -> str:
    exe = shutil.which(tool)
    if not exe:
        return ""
    try:
        return subprocess.run([exe, *args], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


# a PLT stub of a local ifunc (objdump's name for it): "0000000000002180 <*ABS*+0x9490@plt>:"
_IFUNC_STUB = re.compile(r"^([0-9a-f]+) <\*ABS\*\+0x([0-9a-f]+)@plt>:$")


def _static_symbols(path: str) -> dict[int, str]:
    """Function offsets -> names of a shared library, static functions included (`nm`). The
    generated loops are ifuncs (one version per ISA level, compiler/codegen/emit_c.py
    ISA_CLONES) whose address is a PLT stub: stubs are named after their ifunc (`objdump`)."""
    if path not in _symbols:
        table: dict[int, str] = {}
        ifuncs = False
        for line in _tool_output("nm", "--defined-only", path).splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "tTwWiI" and not parts[2].endswith(".resolver"):
                table[int(parts[0], 16)] = parts[2]
                ifuncs |= parts[1] in "iI"
        if ifuncs:
            for line in _tool_output("objdump", "-d", "-j", ".plt", path).splitlines():
                m = _IFUNC_STUB.match(line.strip())
                if m and int(m.group(2), 16) in table:
                    table[int(m.group(1), 16)] = table[int(m.group(2), 16)]
        _symbols[path] = table
    return _symbols[path]


def symbol_name(address: int) -> str:
    """The function at `address`: its symbol, else "library+0xoffset"."""
    info = _DlInfo()
    try:
        found = ctypes.CDLL(None).dladdr(ctypes.c_void_p(address), ctypes.byref(info))
    except (AttributeError, OSError):
        found = 0
    if not found or not info.dli_fname:
        return hex(address)
    if info.dli_sname and info.dli_saddr == address:
        return info.dli_sname.decode()
    fname = info.dli_fname.decode()
    offset = address - (info.dli_fbase or 0)
    name = _static_symbols(fname).get(offset)
    return name or f"{fname.rsplit('/', 1)[-1]}+{offset:#x}"


@contextmanager
def recording(lib: ctypes.CDLL) -> Iterator[Profile]:
    """Records the parallel loops run inside the block into the yielded Profile (filled in
    when the block ends)."""
    lib.lutrt_pool_profile.argtypes = [ctypes.c_int]
    lib.lutrt_pool_profile_entry.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
                                             ctypes.POINTER(ctypes.c_int64)]
    prof = Profile()
    lib.lutrt_pool_profile(1)
    t0 = time.perf_counter()
    try:
        yield prof
    finally:
        prof.wall_s = time.perf_counter() - t0
        lib.lutrt_pool_profile(0)
        fn, v = ctypes.c_void_p(), (ctypes.c_int64 * 4)()
        i = 0
        while lib.lutrt_pool_profile_entry(i, ctypes.byref(fn), v):
            prof.loops.append(LoopStats(symbol_name(fn.value or 0), int(v[0]), v[1] * 1e-9,
                                        v[2] * 1e-9, v[3] * 1e-9))
            i += 1


def report(prof: Profile, threads: int, top: int = 12) -> str:
    """A table of the loops by thread time lost (held - busy), and the serial remainder."""
    in_loops = sum(s.wall_s for s in prof.loops)
    serial = max(prof.wall_s - in_loops, 0.0)
    busy = sum(s.busy_s for s in prof.loops) + serial
    lines = [f"{threads} threads, {prof.wall_s * 1e3:.2f} ms: thread time {threads * prof.wall_s * 1e3:.1f} ms, "
             f"busy {busy * 1e3:.1f} ms ({100 * busy / max(threads * prof.wall_s, 1e-12):.0f}%); "
             f"serial code outside loops {serial * 1e3:.2f} ms (idles {(threads - 1) * serial * 1e3:.1f} thread-ms); "
             f"{sum(s.loops for s in prof.loops)} loops",
             f"  {'task function':32} {'loops':>6} {'wall ms':>8} {'busy ms':>8} {'lost thr-ms':>11} {'eff':>5}"]
    for s in sorted(prof.loops, key=lambda s: s.busy_s - s.held_s)[:top]:
        eff = s.busy_s / s.held_s if s.held_s > 0 else 1.0
        lines.append(f"  {s.name[:32]:32} {s.loops:6d} {s.wall_s * 1e3:8.2f} {s.busy_s * 1e3:8.2f} "
                     f"{(s.held_s - s.busy_s) * 1e3:11.2f} {100 * eff:4.0f}%")
    return "\n".join(lines)
