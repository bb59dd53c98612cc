"""ONNX nodes lutc has no handler for, evaluated at import when every input is a constant.

A model may compute a buffer from constants with any operator (BERT builds position ids with
GatherElements on two initializers); such a node never reaches the IR, so it needs no handler:
onnx's reference evaluator runs it on the constants and its outputs become constants too.
`constant_tensors` finds these nodes before translation so that the unsupported-op check
leaves them out.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from lutc.runtime.errors import LutcError

# nodes that are never folded: their outputs are not functions of their inputs
_NOT_FOLDABLE = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                 "Multinomial", "Bernoulli"}


def constant_tensors(graph: onnx.GraphProto,
                     folds_any: Callable[[onnx.NodeProto], bool]) -> set[str]:
    """Names of the tensors computable from initializers alone; `folds_any(node)` says whether
    a node whose inputs are all constant yields constants (handled nodes fold with numpy)."""
    known = {i.name for i in graph.initializer} | {""}  # initializers shadow graph inputs
    for node in graph.node:
        if node.op_type in _NOT_FOLDABLE:
            continue
        if all(i in known for i in node.input) and folds_any(node):
            known.update(o for o in node.output if o)
    return known


def fold_node(node: onnx.NodeProto, ins: list[np.ndarray | None],
              opset_imports, label: str) -> list[np.ndarray]:
    """Run one node on constant inputs with onnx.reference; a failure is a one-line error."""
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if name else "" for i, name in enumerate(node.input)]
    feeds = {n: v for n, v in zip(names, ins) if n}
    clone = helper.make_node(node.op_type, names, [f"out{i}" for i in range(len(node.output))],
                             domain=node.domain)
    clone.attribute.extend(node.attribute)
    graph = helper.make_graph(
        [clone], "fold",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for n, v in feeds.items()],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None)
         for o in clone.output])
    model = helper.make_model(graph, opset_imports=list(opset_imports))
    try:
        outs = ReferenceEvaluator(model).run(None, feeds)
    except Exception as e:
        text = str(e).strip().splitlines()
        raise LutcError(f"{node.op_type} is not supported by lutc, and folding it on its "
                        f"constant inputs with onnx.reference failed: {type(e).__name__}"
                        f"{': ' + text[0] if text else ''}", label) from None
    return [np.asarray(o) for o in outs]
