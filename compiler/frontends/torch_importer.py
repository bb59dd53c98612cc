"""torch.export program -> lutc graph-level IR (`ImportedModel`).

Parameters, buffers and constants are constants; every node whose inputs are all constants is
evaluated by torch itself (masks, rotary tables, and the dequantization of low-bit weights a
model does in its forward pass), so only real tensor math reaches the IR. Each linear layer's
weight is checked for a low-bit format it came from (weight_recovery) and imported losslessly
as `lut.dequantize`; other float weights are quantized when a weight format is requested.

Programs that update buffers in place (a static KV cache: `index_copy_` / `index_put_` /
`copy_` at `cache_position`) are imported functionally. torch.export lists those buffers in
`graph_signature.buffers_to_mutate`; each becomes a function input and its new value a
function output, so the caller owns the state and threads it from one call to the next:

    inputs  = user inputs (program order) + mutated buffers (their order in the signature)
    outputs = user outputs (program order) + each mutated buffer's new value (same order)

so outputs[n_user_outputs + i] is the next call's inputs[n_user_inputs + i]. Buffer names
follow `state_names`: transformers' `key_cache_3` / `value_cache_3` are `cache.k.3` /
`cache.v.3`, other buffers keep their own name.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind
from torch.fx import Node
from xdsl.ir import SSAValue

from lutc.runtime.errors import LutcError, first_line
from lutc.compiler.codegen.emit_c import tag_layer
from lutc.compiler.frontends import weight_recovery
from lutc.compiler.frontends.torch_ops import (
    HANDLERS,
    IGNORED,
    SHAPE_ONLY,
    TorchNodeContext,
    op_name,
    torch_dtype,
)
from lutc.compiler.frontends.graph_builder import GraphBuilder, canonical_array
from lutc.compiler.imported_model import ImportedModel, TensorSpec
from lutc.compiler.frontends.linear_policy import low_bit_weight
from lutc.compiler.frontends.quantize import WeightSpec
from lutc.compiler.weight_store import WeightStore, sanitize

# a module path inside a ModuleList: (container, index), e.g. "model.layers.3.mlp"
_LAYER_PATH = re.compile(r"^(.*?)\.(\d+)(?:\.|$)")


def load_exported_program(path: str | Path) -> ExportedProgram:
    """torch.export.load, with its failure as one line: torch logs the real reason (e.g. an
    unregistered custom op) as a warning with a traceback and then raises a generic error, so
    the log is captured, kept off stderr, and its root cause reported."""
    path = Path(path)
    if not path.exists():
        raise LutcError(f"model file '{path}' does not exist")
    try:
        is_zip = zipfile.is_zipfile(path)
    except (zipfile.BadZipFile, OSError, ValueError):  # a damaged end-of-archive record
        is_zip = False
    if not is_zip:
        hint = "; it looks like an ONNX model: name it .onnx" if _looks_like_onnx(path) else ""
        raise LutcError(f"'{path}' is not a saved torch.export program: not a zip archive "
                        f"(torch.export.save writes one){hint}")
    logger = logging.getLogger("torch.export")
    records: list[logging.LogRecord] = []
    collect = logging.Handler(logging.WARNING)
    collect.emit = records.append
    saved = logger.handlers, logger.propagate
    logger.handlers, logger.propagate = [collect], False
    try:
        return torch.export.load(str(path))
    except Exception as e:
        logged = [r.exc_info[1] for r in records if r.exc_info and r.exc_info[1]]
        reason = _root_cause(logged[-1] if logged else e)
        raise LutcError(f"cannot load '{path}' as a torch.export program: torch says: "
                        f"{reason}") from None
    finally:
        logger.handlers, logger.propagate = saved


def _root_cause(err: BaseException) -> str:
    """The first sentence of the innermost exception in `err`'s chain."""
    while err.__cause__ is not None or (err.__context__ is not None
                                        and not err.__suppress_context__):
        err = err.__cause__ or err.__context__
    text = " ".join(str(err).split())
    text = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", text) or type(err).__name__
    sentence = re.match(r"(.{30,}?[.!?])(\s|$)", text)
    reason = sentence.group(1) if sentence else text[:300]
    if "custom op" in text:
        reason += " (a custom op: its library is not loaded, and lutc compiles core ATen only)"
    return reason


def _looks_like_onnx(path: Path) -> bool:
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        return proto.HasField("graph") and proto.ir_version > 0
    except Exception:  # any parse failure just means: not ONNX either
        return False


def state_names(buffers: list[str], taken: set[str] = frozenset()) -> list[str]:
    """Signature names of mutated buffers: `cache.k.N` / `cache.v.N` for KV caches
    (`key_cache_N`, `v_cache`, ...), else the buffer's own name. A name that would clash
    (`layers.0.k_cache` and `layers.1.k_cache`, or a user input's name) stays the buffer's."""

    def friendly(buffer: str) -> str:
        m = re.fullmatch(r"(?:.*[._])?(key|value|k|v)_cache(?:_(\d+))?", buffer)
        if m is None:
            return sanitize(buffer)
        return f"cache.{m.group(1)[0]}" + (f".{m.group(2)}" if m.group(2) else "")

    names = [friendly(b) for b in buffers]
    counts = Counter(names)
    return [n if counts[n] == 1 and n not in taken else "state." + sanitize(b)
            for n, b in zip(names, buffers)]


def _state_inputs(ep: ExportedProgram) -> list[str]:
    """Placeholder names of the mutated buffers, in signature order."""
    sig = ep.graph_signature
    mutated = set(sig.buffers_to_mutate.values())
    return [s.arg.name for s in sig.input_specs
            if s.kind == InputKind.BUFFER and s.target in mutated]


def _unsupported(ep: ExportedProgram) -> list[str]:
    """'op (xN, first at node 'n')' for each non-constant op lutc cannot translate."""
    sig = ep.graph_signature
    user_inputs = {s.arg.name for s in sig.input_specs if s.kind == InputKind.USER_INPUT}
    user_inputs |= set(_state_inputs(ep))
    dynamic: set[Node] = set()
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            if node.name in user_inputs:
                dynamic.add(node)
            continue
        if node.op != "call_function":
            continue
        name = op_name(node.target)
        if name in IGNORED or name in SHAPE_ONLY:
            continue
        if any(i in dynamic for i in node.all_input_nodes):
            dynamic.add(node)
            if name not in HANDLERS:
                label = str(node.target)
                counts[label] += 1
                first.setdefault(label, node.name)
    return [f"{op} (x{n}, first at node '{first[op]}')" for op, n in counts.items()]


class _TorchImporter:
    def __init__(self, ep: ExportedProgram, spec: WeightSpec | None):
        self.ep = ep
        self.spec = spec
        self.store = WeightStore()
        self.gb = GraphBuilder(self.store)
        self.report: list[tuple[str, float]] = []
        self.float_notes: list[str] = []
        self.env: dict[Node, object] = {}
        self.sources: dict[Node, frozenset[str]] = {}  # placeholder names a constant came from
        self.targets: dict[str, str] = {}  # placeholder name -> parameter / buffer name
        self.raw: dict[str, torch.Tensor] = {}  # placeholder name -> its tensor
        self._numpy: dict[int, tuple[torch.Tensor, np.ndarray]] = {}
        self.inputs: list[TensorSpec] = []
        self.state: list[str] = []  # mutated buffers, in input order
        self.state_names: dict[str, str] = {}  # mutated buffer -> its input / output name

    # -- values --------------------------------------------------------------------------
    def is_const(self, x) -> bool:
        if isinstance(x, SSAValue):
            return False
        if isinstance(x, (list, tuple)):
            return all(self.is_const(v) for v in x)
        return True

    def numpy(self, t: torch.Tensor) -> np.ndarray:
        """The canonical numpy array of a constant tensor (one array per tensor: names, dedup)."""
        key = id(t)
        if key not in self._numpy:
            d = t.detach().cpu()
            if d.dtype.is_floating_point and d.dtype != torch.float32:
                d = d.float()
            if d.dim() == 2 and not d.is_contiguous() and d.t().is_contiguous():
                # a transposed weight (aten.t of a Linear's parameter): a view, not a strided
                # copy of the whole matrix (the frontends transpose it back: no copy at all)
                arr = d.t().numpy().T
            else:
                arr = d.contiguous().numpy()
            self._numpy[key] = (t, canonical_array(arr))
        return self._numpy[key][1]

    def value(self, arg):
        """An fx argument as handlers see it: SSA value, numpy array or Python value."""
        if isinstance(arg, Node):
            v = self.env[arg]
            if isinstance(v, torch.Tensor):
                arr = self.numpy(v)
                self.gb.name_constant(arr, self.hint_for(arg))
                return arr
            return v
        if isinstance(arg, (list, tuple)):
            return [self.value(a) for a in arg]
        return arg

    def hint_for(self, node) -> str:
        """A readable name for a constant: its parameter's name when it comes from one."""
        if not isinstance(node, Node):
            return "const"
        srcs = self.sources.get(node, frozenset())
        if len(srcs) == 1:
            return self.targets[next(iter(srcs))]
        return node.name

    def source_shape(self, node) -> tuple[int, ...] | None:
        """The shape of the one parameter a constant node comes from (for messages: the
        constant itself may be an expanded copy), or None."""
        srcs = self.sources.get(node, frozenset()) if isinstance(node, Node) else frozenset()
        return tuple(self.raw[next(iter(srcs))].shape) if len(srcs) == 1 else None

    def torch_arg(self, arg, node: Node):
        """fx argument -> what torch needs to evaluate a constant node."""
        if isinstance(arg, Node):
            v = self.env[arg]
            if isinstance(v, SSAValue):  # shape-only ops: any tensor of the right shape
                val = arg.meta["val"]
                return torch.zeros(tuple(val.shape), dtype=val.dtype)
            return v
        if isinstance(arg, (list, tuple)):
            return type(arg)(self.torch_arg(a, node) for a in arg)
        return arg

    # -- repeated layers -----------------------------------------------------------------
    def _layers(self) -> dict[Node, int]:
        """The decoder layer of each node: the index in the module path of the ModuleList that
        holds the most nodes (`model.layers.3.mlp` -> 3), from torch.export's nn_module_stack.
        The C emitter then compiles one body for layers whose code is the same (emit_c.py)."""
        found: dict[Node, tuple[str, int]] = {}
        for node in self.ep.graph.nodes:
            stack = node.meta.get("nn_module_stack") if node.op == "call_function" else None
            path = list(stack.values())[-1][0] if stack else ""
            m = _LAYER_PATH.match(path if isinstance(path, str) else "")
            if m:
                found[node] = (m.group(1), int(m.group(2)))
        if not found:
            return {}
        container = Counter(c for c, _ in found.values()).most_common(1)[0][0]
        return {n: i for n, (c, i) in found.items() if c == container}

    # -- translation ---------------------------------------------------------------------
    def run(self) -> ImportedModel:
        ep = self.ep
        layers = self._layers()
        specs = {s.arg.name: s for s in ep.graph_signature.input_specs}
        state = _state_inputs(ep)

        def order(node: Node) -> int:  # user inputs, then mutated buffers, then constants
            if node.name in state:
                return 1 + state.index(node.name)
            spec = specs.get(node.name)
            return 0 if spec is None or spec.kind == InputKind.USER_INPUT else len(state) + 1

        users = {sanitize(n) for n, spec in specs.items() if spec.kind == InputKind.USER_INPUT}
        targets = [specs[n].target for n in state]
        self.state_names = dict(zip(targets, state_names(targets, users)))
        for node in sorted((n for n in ep.graph.nodes if n.op == "placeholder"), key=order):
            if node.name in state:
                self._state_input(node, specs[node.name])
            else:
                self._placeholder(node, specs.get(node.name))
        for node in ep.graph.nodes:
            if node.op == "placeholder":
                continue
            elif node.op == "call_function":
                last = self.gb.block.last_op
                self._call(node)
                if node in layers and self.gb.block.last_op is not last:
                    tag_layer(self.gb.block, last, layers[node])
            elif node.op == "output":
                return self._finish(node)
            else:
                raise LutcError(f"graph node kind '{node.op}' is not supported", node.name)
        raise LutcError("the exported program has no output")

    def _state_input(self, node: Node, spec) -> None:
        """A buffer the program updates: an input here, its new value an output (_finish)."""
        val = node.meta.get("val")
        dims = tuple(int(d) for d in val.shape)
        dt = torch_dtype(val.dtype)
        self.env[node] = self.gb.add_input(dims, dt, f"buffer '{spec.target}'")
        self.inputs.append(TensorSpec(self.state_names[spec.target], dims, dt, spec.target))
        self.state.append(spec.target)

    def _placeholder(self, node: Node, spec) -> None:
        if spec is None or spec.kind == InputKind.USER_INPUT:
            val = node.meta.get("val")
            if not isinstance(val, torch.Tensor):
                raise LutcError(f"input '{node.name}' is not a tensor; only tensor inputs are "
                                "supported")
            dims = []
            for i, d in enumerate(val.shape):
                if not isinstance(d, int):
                    raise LutcError(f"input '{node.name}' has a dynamic dimension (axis {i}); "
                                    "export the program with static shapes")
                dims.append(d)
            dt = torch_dtype(val.dtype)
            self.env[node] = self.gb.add_input(dims, dt, f"input '{node.name}'")
            self.inputs.append(TensorSpec(sanitize(node.name), tuple(dims), dt, node.name))
            return
        if spec.kind == InputKind.PARAMETER:
            t = self.ep.state_dict[spec.target]
        elif spec.kind == InputKind.BUFFER:
            t = self.ep.state_dict.get(spec.target, self.ep.constants.get(spec.target))
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            t = self.ep.constants[spec.target]
        else:
            raise LutcError(f"program input '{node.name}' of kind {spec.kind.name} is not "
                            "supported")
        t = t.detach()
        self.env[node] = t
        self.sources[node] = frozenset([node.name])
        self.targets[node.name] = spec.target
        self.raw[node.name] = t

    def _call(self, node: Node) -> None:
        name = op_name(node.target)
        if name in IGNORED:
            self.env[node] = None
            return
        ins = node.all_input_nodes
        self.sources[node] = frozenset().union(*(self.sources.get(i, frozenset()) for i in ins))
        values = [self.env[i] for i in ins]
        if name in SHAPE_ONLY or all(self.is_const(v) for v in values):
            args = [self.torch_arg(a, node) for a in node.args]
            kwargs = {k: self.torch_arg(v, node) for k, v in node.kwargs.items()}
            try:
                with torch.no_grad():
                    self.env[node] = node.target(*args, **kwargs)
            except Exception as e:
                raise LutcError(
                    f"cannot evaluate this constant: {type(e).__name__}: {first_line(str(e))}",
                    f"{node.target} node '{node.name}'") from e
            if name in SHAPE_ONLY:
                self.sources[node] = frozenset()
            return
        handler = HANDLERS.get(name)
        assert handler is not None, name  # checked up front by _unsupported
        ctx = TorchNodeContext(self, node)
        try:
            self.env[node] = handler(ctx)
        except LutcError as e:
            if e.node is None:  # raised below the handler: say which node
                raise LutcError(str(e), f"{node.target} node '{node.name}'") from None
            raise
        except Exception as e:
            raise LutcError(f"cannot translate: {type(e).__name__}: {first_line(str(e))}",
                            f"{node.target} node '{node.name}'") from e

    def linear(self, ctx: TorchNodeContext, x: SSAValue, w_nk: np.ndarray, bias,
               weight_node, hint: str | None = None) -> SSAValue:
        """y = x @ W^T + b for a constant W[N, K]: lossless low-bit, lutc-quantized or float.
        `hint` names the weight when it is not the parameter `weight_node` itself (an expert's
        slice of a stacked parameter: then pass weight_node=None)."""
        gb = self.gb
        w = np.ascontiguousarray(np.asarray(w_nk, np.float32))
        n, k = w.shape
        if hint is None:
            hint = self.hint_for(weight_node).removesuffix(".weight")
            if hint == getattr(weight_node, "name", None) or hint == "const":
                hint = ctx.name
        if bias is not None and not isinstance(bias, SSAValue):
            bias = gb.value(canonical_array(np.asarray(bias)), hint + ".bias")
        srcs = self.sources.get(weight_node, frozenset()) if isinstance(weight_node, Node) \
            else frozenset()
        int_bufs = [self.raw[s].numpy() for s in srcs
                    if not self.raw[s].dtype.is_floating_point and self.raw[s].dtype != torch.bool]
        float_sizes = [self.raw[s].numel() for s in srcs if self.raw[s].dtype.is_floating_point]
        hints = tuple(-(-k // (size // n)) for size in float_sizes
                      if size % n == 0 and 0 < size // n <= k)
        recovered = (lambda: weight_recovery.from_codes(w, int_bufs, hints)) if int_bufs else None
        qw = low_bit_weight(w, self.spec, hint, self.report, self.float_notes, ctx.error,
                            recovered)
        if qw is None:
            return gb.float_linear(x, w, bias, hint + ".weight")
        return gb.quantized_linear(x, qw, bias, hint, ctx.name)

    def _finish(self, node: Node) -> ImportedModel:
        out_specs = self.ep.graph_signature.output_specs
        bad = [s for s in out_specs
               if s.kind not in (OutputKind.USER_OUTPUT, OutputKind.BUFFER_MUTATION)]
        if bad:
            raise LutcError(f"the program mutates its inputs "
                            f"({', '.join(f'{s.kind.name} of {s.target}' for s in bad)}); lutc "
                            "compiles programs whose only state is buffers")
        pairs = list(zip(out_specs, node.args[0]))  # the output node lists them in spec order
        user = [(arg, sanitize(str(arg)), str(arg)) for s, arg in pairs
                if s.kind == OutputKind.USER_OUTPUT]
        new_state = {s.target: arg for s, arg in pairs if s.kind == OutputKind.BUFFER_MUTATION}
        state = [(new_state[t], self.state_names[t], t) for t in self.state]
        results, outputs = [], []
        for arg, name, original in user + state:
            v = self.value(arg)
            if v is None:
                raise LutcError(f"output '{arg}' is not a tensor")
            v = v if isinstance(v, SSAValue) else self.gb.value(canonical_array(np.asarray(v)),
                                                                str(arg))
            results.append(v)
            val = arg.meta.get("val")
            outputs.append(TensorSpec(name, tuple(val.shape), torch_dtype(val.dtype), original))
        module = self.gb.finish(results)
        return ImportedModel(module, self.store, self.inputs, outputs, self.report,
                             self.float_notes)


def import_exported_program(ep: ExportedProgram | str | Path,
                            weights: WeightSpec | None = None) -> ImportedModel:
    """Translate a torch.export program (core ATen after run_decompositions(); aten.linear
    may stay) to lutc's graph-level IR. `weights` quantizes float linear weights."""
    if not isinstance(ep, ExportedProgram):
        ep = load_exported_program(ep)
    missing = _unsupported(ep)
    if missing:  # maybe only composite or in-place ops: decompose to core ATen, look again
        failed = ""
        try:
            ep = ep.run_decompositions()
        except Exception as e:
            failed = (f" (decomposing to core ATen failed: {type(e).__name__}: "
                      f"{first_line(str(e))}; export under torch.no_grad())")
        missing = _unsupported(ep)
        if missing:
            raise LutcError(f"unsupported torch ops: {', '.join(missing)}{failed}")
    return _TorchImporter(ep, weights).run()
