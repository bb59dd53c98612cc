"""Load a compiled model directory (model.so + weights.bin + model.json) and run it on numpy.

Nothing in the directory is trusted: model.json is only a description, checked against the
facts the compiled library exports about itself before anything enters C:

    size_t lutc_arena_bytes(void);      scratch the entry point writes
    size_t lutc_weight_bytes(void);     bytes it reads from the weights file
    const char *lutc_signature(void);   "float32[2x8],int64[1x16]->float32[2x8]" (`signature`)

The files it names must lie inside the directory, the weights file must be a regular file of
exactly the library's size (a shorter mmapped file would SIGBUS; where the weights are copied
to huge pages instead, runtime/weight_memory.py, a short read is the same error), and each
call's inputs are checked against the signature. Any mismatch is one LutcError naming the file
and field.

Threads: each Python thread that calls a model gets its own arena (allocated on its first
call), so concurrent calls never share scratch memory and run in parallel; the runtime's
thread pool serializes only its parallel loops.
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lutc.runtime.errors import LutcError
from lutc.runtime.weight_memory import load_weights

MANIFEST = "model.json"
MAX_THREADS = 256  # threadpool.c's MAX_THREADS: lutrt clamps larger counts to it
# The entry point every compiled model exports (compiler/codegen/build.py writes it into
# model.json). The loader accepts no other name: ctypes resolves a name through the library's
# dependencies too, so a tampered manifest could otherwise name abort() or system().
ENTRY = "lutc_main"
_ALIGN = 64


def tensor_text(shape, dtype) -> str:
    """One tensor of a signature: "float32[2x8]"."""
    return f"{np.dtype(dtype).name}[{'x'.join(str(int(d)) for d in shape)}]"


def signature(inputs, outputs) -> str:
    """The C entry point's signature as text: dtypes and shapes of inputs -> outputs.
    `inputs` / `outputs` are (shape, dtype) pairs; the generated C exports the same string."""
    return (",".join(tensor_text(s, d) for s, d in inputs) + "->"
            + ",".join(tensor_text(s, d) for s, d in outputs))


class CompiledModel:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._root = self.directory.resolve()
        manifest_path = self.directory / MANIFEST
        self._manifest_path = manifest_path
        if not manifest_path.is_file():
            raise LutcError(f"'{self.directory}' is not a compiled lutc model (no {MANIFEST})")
        try:
            self.manifest = json.loads(manifest_path.read_text())
        except (ValueError, OSError) as err:  # UnicodeDecodeError is a ValueError
            raise LutcError(f"{manifest_path}: not valid JSON ({err}); recompile the model") from None
        if not isinstance(self.manifest, dict):
            self._bad("", "must be a JSON object")
        if self.manifest.get("library", "") is None:  # `lutc compile --emit c` output
            raise LutcError(f"{manifest_path}: field 'library' is null: the directory holds "
                            "C sources only (--emit c) or its build failed; build it with "
                            "`lutc compile` without --emit c")
        library = self._inside("library", want_size=None)
        entry = self._field("entry", str)
        if entry != ENTRY:  # a symbol lookup also searches the library's dependencies (libc)
            self._bad("entry", f"must be {ENTRY!r}, got {json.dumps(entry)}")
        for key in ("inputs", "outputs"):
            self._tensor_specs(key)
        try:
            self.lib = ctypes.CDLL(str(library))
        except OSError as err:
            raise LutcError(f"{library}: cannot be loaded ({err}); recompile the model") from None
        facts = self._library_facts(library, entry)
        self._check_facts(library, facts)
        self.arena_bytes = facts["arena_bytes"]
        weights_path = self._inside("weights", want_size=facts["weight_bytes"])
        with open(weights_path, "rb") as f:  # mapped from the file that was size-checked
            if os.fstat(f.fileno()).st_size != facts["weight_bytes"]:
                raise LutcError(f"{weights_path}: changed while loading; try again")
            try:
                self.weights = load_weights(f, facts["weight_bytes"])
            except EOFError as err:
                raise LutcError(f"{weights_path}: changed while loading ({err}); try again") from None
        self.entry = getattr(self.lib, entry)
        self.entry.restype = None
        self._local = threading.local()

    # -- manifest checks ----------------------------------------------------------------
    def _bad(self, field: str, problem: str):
        where = f"field '{field}' " if field else ""
        raise LutcError(f"{self._manifest_path}: {where}{problem}; recompile the model")

    def _field(self, key: str, kind: type):
        value = self.manifest.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            what = {str: "a string", int: "an integer"}[kind]
            self._bad(key, f"must be {what}, got {json.dumps(value)}")
        return value

    def _inside(self, key: str, want_size: int | None) -> Path:
        """The regular file `manifest[key]` names, which must lie inside the model directory
        (and, for the weights, hold exactly `want_size` bytes)."""
        name = self._field(key, str)
        path = self.directory / name
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError) as err:
            self._bad(key, f"names '{name}', which cannot be resolved ({err})")
        if resolved != self._root and self._root not in resolved.parents:
            self._bad(key, f"names '{name}', which is outside the model directory")
        try:
            st = os.stat(resolved)
        except FileNotFoundError:
            raise LutcError(f"{path}: does not exist (named by {MANIFEST} field '{key}'); "
                            "recompile the model") from None
        except OSError as err:
            raise LutcError(f"{path}: cannot be read ({err.strerror})") from None
        if not stat.S_ISREG(st.st_mode):
            raise LutcError(f"{path}: is not a regular file (named by {MANIFEST} field '{key}')")
        if want_size is not None and st.st_size != want_size:
            raise LutcError(f"{path}: holds {st.st_size} bytes but the model's library reads "
                            f"{want_size}; the weights file does not belong to this library, "
                            "recompile the model")
        return path

    def _tensor_specs(self, key: str) -> None:
        specs = self.manifest.get(key)
        if not isinstance(specs, list):
            self._bad(key, f"must be a list, got {json.dumps(specs)}")
        for i, spec in enumerate(specs):
            field = f"{key}[{i}]"
            if not isinstance(spec, dict):
                self._bad(field, "must be an object")
            shape, dtype = spec.get("shape"), spec.get("dtype")
            if not isinstance(shape, list) or not all(
                    isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**62
                    for d in shape):
                self._bad(f"{field}.shape", f"must be a list of sizes, got {json.dumps(shape)}")
            try:
                ok = isinstance(dtype, str) and np.dtype(dtype).kind in "biuf"
            except TypeError:
                ok = False
            if not ok:
                self._bad(f"{field}.dtype", f"must be a numeric dtype, got {json.dumps(dtype)}")

    def _library_facts(self, library: Path, entry: str) -> dict:
        facts = {}
        for name, restype in (("arena_bytes", ctypes.c_size_t), ("weight_bytes", ctypes.c_size_t),
                              ("signature", ctypes.c_char_p)):
            try:
                fn = getattr(self.lib, f"lutc_{name}")
            except AttributeError:
                raise LutcError(f"{library}: does not export lutc_{name}() (built by an older "
                                "lutc, or not a lutc model); recompile the model") from None
            fn.restype, fn.argtypes = restype, []
            facts[name] = fn()
        facts["signature"] = facts["signature"].decode("ascii", "replace")
        if not hasattr(self.lib, entry):
            self._bad("entry", f"names '{entry}', which {library.name} does not export")
        return facts

    def _check_facts(self, library: Path, facts: dict) -> None:
        # the library reports at least 1 byte for an empty arena / weights file
        for key in ("arena_bytes", "weight_bytes"):
            value = self._field(key, int)
            if max(value, 1) != facts[key]:
                self._bad(key, f"is {value} but {library.name} says {facts[key]}")
        lib_in, _, lib_out = facts["signature"].partition("->")
        for key, lib_side in (("inputs", lib_in), ("outputs", lib_out)):
            specs = self.manifest[key]
            lib_items = lib_side.split(",") if lib_side else []
            if len(lib_items) != len(specs):
                self._bad(key, f"lists {len(specs)} tensors but {library.name} takes "
                          f"{len(lib_items)} ({facts['signature']})")
            for i, (spec, lib_item) in enumerate(zip(specs, lib_items)):
                mine = tensor_text(spec["shape"], spec["dtype"])
                if mine != lib_item:
                    self._bad(f"{key}[{i}]", f"says {mine} but {library.name} has {lib_item}")

    # -- running --------------------------------------------------------------------------
    @property
    def inputs(self) -> list[dict]:
        return self.manifest["inputs"]

    @property
    def outputs(self) -> list[dict]:
        return self.manifest["outputs"]

    def set_num_threads(self, n: int) -> None:
        """Threads for the runtime's parallel loops (process-wide); 0 restores the default
        ($LUTRT_NUM_THREADS, else the number of online CPUs)."""
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 0 <= n <= MAX_THREADS:
            raise LutcError(f"the thread count must be between 1 and {MAX_THREADS} "
                            f"(0: default), got {n}")
        self.lib.lutrt_set_num_threads(ctypes.c_int(int(n)))

    def set_i8act_kernel(self, name: str | None) -> None:
        """The int8-activation kernel of this model's runtime (runtime/lutrt.h: "amx",
        "avx512vnni", "avx2", "c"; None or "auto": the fastest this CPU runs). The model's
        runtime library is its own copy, so lutc.runtime.kernels.set_i8act_kernel does not
        reach it. Raises LutcError for a name this CPU cannot run."""
        fn = self.lib.lutrt_set_i8act_kernel
        fn.argtypes = [ctypes.c_char_p]
        if fn(None if name is None else str(name).encode()) != 0:
            self.lib.lutrt_last_error.restype = ctypes.c_char_p
            raise LutcError(self.lib.lutrt_last_error().decode())

    def _check(self, i: int, spec: dict, value) -> np.ndarray:
        array = np.asarray(value)
        want = tuple(spec["shape"])
        label = spec.get("original_name") or f"input {i}"
        if array.shape != want:
            raise LutcError(f"{label} must have shape {list(want)}, got {list(array.shape)}")
        if array.dtype != np.dtype(spec["dtype"]):
            if np.can_cast(array.dtype, spec["dtype"], casting="same_kind"):
                array = array.astype(spec["dtype"])
            else:
                raise LutcError(f"{label} must have dtype {spec['dtype']}, got {array.dtype}")
        return np.ascontiguousarray(array)

    def _arena(self) -> int:
        """This thread's 64-byte aligned arena (one per thread: calls never share scratch)."""
        buf = getattr(self._local, "arena", None)
        if buf is None:
            buf = self._local.arena = np.zeros(self.arena_bytes + _ALIGN, dtype=np.uint8)
        base = buf.ctypes.data
        return base + (-base) % _ALIGN

    def _by_name(self, feed: dict) -> list:
        """Inputs in signature order from {name: array}; a name is the signature's name or
        the model's original one. Raises LutcError for an unknown or a missing name."""
        index = {}
        for i, spec in enumerate(self.inputs):
            for key in (spec.get("name"), spec.get("original_name")):
                if key:
                    index[key] = i
        values: list = [None] * len(self.inputs)
        for name, value in feed.items():
            if name not in index:
                expected = ", ".join(s.get("original_name") or s["name"] for s in self.inputs)
                raise LutcError(f"the model has no input named '{name}' (inputs: {expected})")
            values[index[name]] = value
        missing = [s.get("original_name") or s["name"]
                   for s, v in zip(self.inputs, values) if v is None]
        if missing:
            raise LutcError(f"missing input(s): {', '.join(missing)}")
        return values

    def run(self, output_names, feed: dict) -> list[np.ndarray]:
        """onnxruntime-style: outputs (all when output_names is None, else those named) of
        the model on the inputs in `feed` ({name: array})."""
        outputs = self(feed)
        if output_names is None:
            return outputs
        names = {}
        for i, spec in enumerate(self.outputs):
            for key in (spec.get("name"), spec.get("original_name")):
                if key:
                    names[key] = i
        unknown = [n for n in output_names if n not in names]
        if unknown:
            raise LutcError(f"the model has no output named '{unknown[0]}' "
                            f"(outputs: {', '.join(names)})")
        return [outputs[names[n]] for n in output_names]

    def __call__(self, *inputs, **named) -> list[np.ndarray]:
        """Run on inputs given in signature order, as one {name: array} dict, or as keyword
        arguments by name. Returns the outputs in signature order."""
        if len(inputs) == 1 and isinstance(inputs[0], dict):
            inputs = tuple(self._by_name({**inputs[0], **named}))
        elif named:
            if inputs:
                raise LutcError("give inputs either in order or by name, not both")
            inputs = tuple(self._by_name(named))
        outputs = [np.empty(spec["shape"], dtype=spec["dtype"]) for spec in self.outputs]
        return self.run_into(outputs, *inputs)

    def bind_into(self, outputs: list[np.ndarray], *inputs) -> Callable[[], None]:
        """run_into's checks done once: returns a call that runs the model on the current
        contents of these very arrays (the caller keeps them alive and rewrites them in place
        between calls) into `outputs`. A decode loop then skips the per-call checks and
        conversions (70-100 us of a SmolLM2 step: after each step's 112 MB of weights the
        interpreter's state is cold). Raises LutcError like run_into; inputs that are not already
        C-contiguous arrays of the right dtype are refused (a converted copy would not follow
        the caller's writes). Each thread runs on its own arena, as run_into does."""
        arrays = self._checked_arrays(outputs, inputs)
        for a, v in zip(arrays, inputs):
            if a is not v:
                raise LutcError("bind_into needs C-contiguous input arrays of the model's dtypes")
        ptrs = [ctypes.c_void_p(a.ctypes.data) for a in (*arrays, *outputs)]
        weights = ctypes.c_void_p(self.weights.ctypes.data)
        entry, arena = self.entry, self._arena

        def call() -> None:
            entry(weights, ctypes.c_void_p(arena()), *ptrs)
        call.arrays = (arrays, outputs)  # kept alive with the call
        return call

    def _checked_arrays(self, outputs: list[np.ndarray], inputs) -> list[np.ndarray]:
        """run_into's and bind_into's checks: writable C-contiguous outputs of the model's
        shapes and dtypes, the inputs as C-contiguous arrays of its dtypes (converted where
        needed), no output overlapping an input. Returns the input arrays."""
        if len(outputs) != len(self.outputs):
            raise LutcError(f"the model has {len(self.outputs)} outputs, got {len(outputs)} arrays")
        for spec, o in zip(self.outputs, outputs):
            if (not isinstance(o, np.ndarray) or list(o.shape) != list(spec["shape"])
                    or o.dtype != np.dtype(spec["dtype"]) or not o.flags.c_contiguous
                    or not o.flags.writeable):
                raise LutcError(f"output '{spec['name']}' needs a writable C-contiguous "
                                f"{spec['dtype']} array of shape {tuple(spec['shape'])}")
        if len(inputs) != len(self.inputs):
            raise LutcError(f"the model takes {len(self.inputs)} inputs, got {len(inputs)}")
        arrays = [self._check(i, spec, v) for i, (spec, v) in enumerate(zip(self.inputs, inputs))]
        if any(np.may_share_memory(o, a) for o in outputs for a in arrays):
            raise LutcError("an output array overlaps an input array")
        return arrays

    def run_into(self, outputs: list[np.ndarray], *inputs) -> list[np.ndarray]:
        """Like calling the model with inputs in signature order, but writing into `outputs`:
        C-contiguous arrays of the outputs' shapes and dtypes, reused across calls (a decode
        loop then does not fault in fresh pages for its logits every step). Returns outputs.
        Raises LutcError when an output array does not match."""
        arrays = self._checked_arrays(outputs, inputs)
        self.entry(ctypes.c_void_p(self.weights.ctypes.data), ctypes.c_void_p(self._arena()),
                   *[ctypes.c_void_p(a.ctypes.data) for a in arrays],
                   *[ctypes.c_void_p(o.ctypes.data) for o in outputs])
        return outputs
