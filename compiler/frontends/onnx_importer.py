"""ONNX model -> lutc graph-level IR (`ImportedModel`).

Loading checks the file (exists, is ONNX, external data stays inside the model's folder),
every graph input gets a static shape (from the model or `shapes`), unsupported operators are
listed together before anything is translated, then nodes are translated in order: nodes whose
inputs are all constants are folded with numpy, the rest become IR through GraphBuilder.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from xdsl.ir import SSAValue

from lutc.runtime.errors import LutcError, first_line
from lutc.compiler.frontends import onnx_quant_formats  # noqa: F401  (registers handlers)
from lutc.compiler.frontends.onnx_ops import (
    HANDLERS,
    ImportState,
    NodeContext,
    dtype,
    onnx_dtype,
    shape,
)
from lutc.compiler.frontends.graph_builder import GraphBuilder, canonical_array, check_tensor_size
from lutc.compiler.frontends.reference_folding import constant_tensors, fold_node
from lutc.compiler.imported_model import ImportedModel, TensorSpec
from lutc.compiler.frontends.quantize import WeightSpec
from lutc.compiler.weight_store import WeightStore, sanitize

DEFAULT_DOMAINS = ("", "ai.onnx")


def load_onnx(model: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    """Read and check an ONNX file, including its external data (kept inside its folder)."""
    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.exists():
        raise LutcError(f"model file '{path}' does not exist")
    if not path.is_file():
        raise LutcError(f"model path '{path}' is not a file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"GGUF" or path.suffix.lower() == ".gguf":
        raise LutcError(f"'{path}' is a GGUF language model: run it with `lutc generate` or "
                        f"`lutc perplexity` (`lutc compile` takes ONNX and .pt2 models)")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf decode errors have many types
        raise LutcError(f"'{path}' is not an ONNX model file (it does not parse: "
                        f"{first_line(str(e)) or type(e).__name__})") from None
    if not proto.HasField("graph") or proto.ir_version == 0:
        raise LutcError(f"'{path}' is not an ONNX model file (no graph or IR version)")
    bad = _non_utf8_string(proto.graph)
    if bad is not None:
        raise LutcError(f"'{path}': {bad} is not valid UTF-8 (the ONNX format requires UTF-8 "
                        "strings)")
    _load_external_data(proto, path.parent)
    return proto


def _non_utf8_string(graph: onnx.GraphProto) -> str | None:
    """Where `graph` (or a subgraph of it) holds a name the protobuf parser could not decode:
    it hands such strings over as bytes, which no later step expects. None if all are text."""
    for kind in ("input", "output", "initializer", "value_info", "sparse_initializer"):
        for i, item in enumerate(getattr(graph, kind)):
            name = item.values.name if kind == "sparse_initializer" else item.name
            if not isinstance(name, str):
                return f"the name of graph {kind} #{i} ({name!r})"
    for i, node in enumerate(graph.node):
        fields = [("the name", node.name), ("the op_type", node.op_type), ("the domain", node.domain)]
        fields += [("an input", s) for s in node.input] + [("an output", s) for s in node.output]
        fields += [("an attribute name", a.name) for a in node.attribute]
        for what, s in fields:
            if not isinstance(s, str):
                return f"{what} of node #{i} ({s!r})"
        for a in node.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                bad = _non_utf8_string(sub)
                if bad is not None:
                    return bad
    return None


def _load_external_data(proto: onnx.ModelProto, folder: Path) -> None:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    base = folder.resolve()
    for t in _get_all_tensors(proto):
        if not uses_external_data(t):
            continue
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        target = (base / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(base):
            raise LutcError(
                f"initializer '{t.name}' refers to external data '{location}' outside the "
                f"model's folder; external data must stay next to the model"
            )
        if not target.exists():
            raise LutcError(f"external data file '{location}' of initializer '{t.name}' "
                            "does not exist")
        if not target.is_file():  # a FIFO or device would block or never end
            raise LutcError(f"external data file '{location}' of initializer '{t.name}' "
                            "is not a regular file")
    try:
        onnx.external_data_helper.load_external_data_for_model(proto, str(base))
    except Exception as e:
        raise LutcError(f"cannot read the model's external data: {e}") from None


def _opset(proto: onnx.ModelProto) -> int:
    for imp in proto.opset_import:
        if imp.domain in DEFAULT_DOMAINS:
            return imp.version
    return 1


MIN_OPSET, MAX_OPSET = 17, 23  # README "What imports"; older models are converted up to 17


def _supported_opset(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The model at an opset lutc's handlers follow: 17-23 as is, older ones through onnx's
    version converter (which rewrites the ops whose semantics changed), newer ones refused."""
    versions = [imp.version for imp in proto.opset_import if imp.domain in DEFAULT_DOMAINS]
    if not versions:
        return proto
    opset = versions[0]
    if opset > MAX_OPSET:
        raise LutcError(f"the model uses ONNX opset {opset}; lutc imports opsets "
                        f"{MIN_OPSET}-{MAX_OPSET} (older ones are converted to {MIN_OPSET})")
    if opset < MIN_OPSET:
        from onnx import version_converter

        try:
            proto = version_converter.convert_version(proto, MIN_OPSET)
        except Exception as e:
            raise LutcError(f"the model uses ONNX opset {opset} and onnx's version converter "
                            f"cannot bring it to opset {MIN_OPSET} ({first_line(str(e))}); "
                            f"re-export it at opset {MIN_OPSET}-{MAX_OPSET}") from None
    return proto


def _op_label(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"


def _node_names(graph: onnx.GraphProto) -> list[str]:
    return [n.name or f"{n.op_type}_{i}" for i, n in enumerate(graph.node)]


def check_types(graph: onnx.GraphProto, opset_import) -> None:
    """Refuses a node whose input types break its operator's type constraints (a MatMul of
    float and int64, say), as onnxruntime does at load: ONNX's own type inference
    (onnx.shape_inference, check_type) over the graph with its initializers declared by type
    and shape but without their data (no copy of the weights; shapes that need constant
    values stay unknown). Only type errors count: a shape that inference finds inconsistent
    with a declared one, or inference that cannot run, is left to the importer's checks.
    Raises LutcError naming the node."""
    names = _node_names(graph)
    g = onnx.GraphProto(name=graph.name)
    for node, name in zip(graph.node, names):
        n = g.node.add()
        n.CopyFrom(node)
        n.name = name
    g.input.extend(graph.input)
    g.output.extend(graph.output)
    g.value_info.extend(graph.value_info)
    declared = {vi.name for vi in graph.input}
    for init in graph.initializer:
        if init.name not in declared:
            g.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    for sp in graph.sparse_initializer:
        if sp.values.name not in declared:
            g.input.append(onnx.helper.make_tensor_value_info(sp.values.name, sp.values.data_type,
                                                              list(sp.dims)))
    model = onnx.helper.make_model(g, opset_imports=list(opset_import))
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=False)
    except onnx.shape_inference.InferenceError as e:
        msg = first_line(str(e))
        where = re.search(r"\(op_type:\s*([^,]*), node name:\s*([^)]*)\):\s*", msg)
        what = msg[where.end():] if where else msg
        if "type" not in what.lower():
            return
        node = f"{where.group(1)} node '{where.group(2)}'" if where else None
        raise LutcError(f"input types break the operator's type constraints: {what} (the "
                        "ONNX model is invalid; onnxruntime refuses it too)", node) from None
    except Exception:  # inference could not run (e.g. an op it has no schema version for)
        return


def _handled(node: onnx.NodeProto) -> bool:
    return ("" if node.domain in DEFAULT_DOMAINS else node.domain, node.op_type) in HANDLERS


def check_supported(graph: onnx.GraphProto) -> None:
    """One error listing every unsupported operator type, its count and first node; nodes
    whose inputs are all constants are left out (they are folded, see reference_folding)."""
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    constants = constant_tensors(graph, lambda node: True)
    for node, name in zip(graph.node, _node_names(graph)):
        if _handled(node) or all(i in constants for i in node.input):
            continue
        label = _op_label(node)
        counts[label] += 1
        first.setdefault(label, name)
    if counts:
        listing = ", ".join(f"{op} (x{n}, first at node '{first[op]}')"
                            for op, n in counts.items())
        raise LutcError(f"unsupported ONNX ops: {listing}")


def check_single_assignment(graph: onnx.GraphProto) -> None:
    """Every tensor has one producer (an initializer, a graph input or one node's output),
    there is at least one graph output and each is listed once."""
    if not graph.output:
        raise LutcError("the graph declares no outputs: there is nothing to compute")
    producer = {i.name: f"initializer '{i.name}'" for i in graph.initializer}
    for vi in graph.input:
        producer.setdefault(vi.name, f"graph input '{vi.name}'")
    for node, name in zip(graph.node, _node_names(graph)):
        for out in node.output:
            if not out:
                continue
            if out in producer:
                raise LutcError(f"tensor '{out}' is written by {producer[out]} and again by "
                                f"{node.op_type} node '{name}'; each tensor must have one producer")
            producer[out] = f"{node.op_type} node '{name}'"
    seen = set()
    for vi in graph.output:
        if vi.name in seen:
            raise LutcError(f"graph output '{vi.name}' is listed twice")
        seen.add(vi.name)


def _check_declared_shape(vi: onnx.ValueInfoProto, computed: tuple[int, ...]) -> None:
    """A graph output's fixed dims in the model must match what the graph computes."""
    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
        return
    dims = t.shape.dim
    declared = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
    if len(dims) != len(computed) or any(
            d.HasField("dim_value") and d.dim_value != c for d, c in zip(dims, computed)):
        raise LutcError(f"graph output '{vi.name}' is declared with shape {declared} but the "
                        f"graph computes {list(computed)}")


def _input_shape(vi: onnx.ValueInfoProto, shapes: dict[str, tuple[int, ...]]) -> tuple:
    t = vi.type.tensor_type
    if vi.name in shapes:
        given = tuple(int(d) for d in shapes[vi.name])
        if any(g <= 0 for g in given):
            raise LutcError(f"--shape {vi.name}={'x'.join(map(str, given))}: dimensions must be "
                            "positive")
        if t.HasField("shape"):
            dims = t.shape.dim
            if len(dims) != len(given) or any(
                d.HasField("dim_value") and d.dim_value != g for d, g in zip(dims, given)
            ):
                model_dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                              for d in dims]
                raise LutcError(f"shape {list(given)} given for input '{vi.name}' does not "
                                f"match the model's {model_dims}")
        return given
    if not t.HasField("shape"):
        raise LutcError(f"input '{vi.name}' has no shape in the model; give one with "
                        f"--shape {vi.name}=D0xD1x...")
    out = []
    for i, d in enumerate(t.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(d.dim_value)
        elif d.HasField("dim_value"):  # a fixed but impossible size, not a dynamic one
            raise LutcError(f"input '{vi.name}' has dimension {d.dim_value} (axis {i}) in the "
                            f"model; dimensions must be positive (fix it with --shape "
                            f"{vi.name}=D0xD1x...)")
        else:
            label = f" '{d.dim_param}'" if d.dim_param else ""
            raise LutcError(f"input '{vi.name}' has a dynamic dimension{label} (axis {i}); give "
                            f"its static shape with --shape {vi.name}=D0xD1x...")
    return tuple(out)


def _initializer_array(init: onnx.TensorProto) -> np.ndarray:
    """The initializer's data, checked against its declared shape and the size cap."""
    dims = [int(d) for d in init.dims]
    if any(d < 0 for d in dims):
        raise LutcError(f"initializer '{init.name}' has a negative dimension in its shape {dims}")
    check_tensor_size(dims, f"initializer '{init.name}'")
    try:
        array = numpy_helper.to_array(init)
    except Exception as e:  # data of the wrong length, unknown data type, ...
        raise LutcError(f"initializer '{init.name}' declares shape {dims} "
                        f"({int(np.prod(dims))} elements) but its data does not fit it: "
                        f"{first_line(str(e))}") from None
    if list(array.shape) != dims:
        raise LutcError(f"initializer '{init.name}' declares shape {dims} but holds "
                        f"{list(array.shape)}")
    return array


def import_onnx(model: str | Path | onnx.ModelProto,
                shapes: dict[str, tuple[int, ...]] | None = None,
                weights: WeightSpec | None = None) -> ImportedModel:
    """Translate an ONNX model to lutc's graph-level IR.

    `shapes` fixes dynamic input dimensions; `weights` quantizes float MatMul/Gemm weights
    to that low-bit format (layers already quantized in the model keep their own format).
    """
    proto = load_onnx(model)
    if proto.functions:
        proto = onnx.inliner.inline_local_functions(proto)
    check_single_assignment(proto.graph)
    check_supported(proto.graph)  # the full list of unsupported ops comes first
    proto = _supported_opset(proto)
    graph = proto.graph
    check_types(graph, proto.opset_import)
    shapes = dict(shapes or {})
    opset = _opset(proto)

    env: dict[str, SSAValue | np.ndarray | None] = {"": None}
    store = WeightStore()
    gb = GraphBuilder(store)
    for init in graph.initializer:
        env[init.name] = canonical_array(_initializer_array(init))
        gb.name_constant(env[init.name], init.name)
    graph_inputs = [vi for vi in graph.input if vi.name not in env]
    unknown = set(shapes) - {vi.name for vi in graph_inputs}
    if unknown:
        raise LutcError(f"--shape names unknown input(s): {', '.join(sorted(unknown))} "
                        f"(the model's inputs: {', '.join(vi.name for vi in graph_inputs)})")
    inputs: list[TensorSpec] = []
    for vi in graph_inputs:
        shp = _input_shape(vi, shapes)
        dt = onnx_dtype(vi.type.tensor_type.elem_type)
        env[vi.name] = gb.add_input(shp, dt, f"input '{vi.name}'")
        inputs.append(TensorSpec(sanitize(vi.name), shp, dt, vi.name))

    state = ImportState(gb, opset, weights,
                        initializer_types={i.name: i.data_type for i in graph.initializer})
    for node, name in zip(graph.node, _node_names(graph)):
        domain = "" if node.domain in DEFAULT_DOMAINS else node.domain
        handler = HANDLERS.get((domain, node.op_type))
        try:
            ins = [env[i] for i in node.input]
        except KeyError as e:
            raise LutcError(f"input {e} of {node.op_type} node '{name}' is not defined "
                            "(the graph is not in topological order?)") from None
        ctx = NodeContext(state, node, name)
        label = f"{node.op_type} node '{name}'"
        try:
            if handler is not None:
                outs = handler(ctx, ins)
            elif all(v is None or isinstance(v, np.ndarray) for v in ins):
                outs = [canonical_array(o)
                        for o in fold_node(node, ins, proto.opset_import, label)]
            else:
                raise LutcError(f"unsupported ONNX op {_op_label(node)} (only its folding on "
                                "constant inputs is, and an input here is computed)", label)
            for out_name, value in zip(node.output, outs):
                if isinstance(value, np.ndarray):  # folded constants are capped too
                    check_tensor_size(value.shape, f"output '{out_name}'")
        except LutcError as e:
            if e.node is None:  # raised below the handler: say which node
                raise LutcError(str(e), f"{node.op_type} node '{name}'") from None
            raise
        except Exception as e:
            raise LutcError(f"cannot translate: {type(e).__name__}: {first_line(str(e))}",
                            f"{node.op_type} node '{name}'") from e
        for out_name, value in zip(node.output, outs):
            if isinstance(value, np.generic):  # numpy scalars from folding: 0-d arrays
                value = np.asarray(value)
            if out_name:
                env[out_name] = value
                if isinstance(value, np.ndarray):
                    gb.name_constant(value, out_name)

    results, outputs = [], []
    for vi in graph.output:
        value = env.get(vi.name)
        if value is None:
            raise LutcError(f"graph output '{vi.name}' is not computed by any supported node")
        if isinstance(value, np.ndarray):
            value = gb.value(value, vi.name)
        _check_declared_shape(vi, shape(value))
        results.append(value)
        outputs.append(TensorSpec(sanitize(vi.name), shape(value), dtype(value), vi.name))
    module = gb.finish(results)
    return ImportedModel(module, store, inputs, outputs, state.report, state.float_notes)
