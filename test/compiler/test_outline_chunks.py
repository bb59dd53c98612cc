"""Long stretches of untagged ops are outlined in chunks of OUTLINE_OPS (compiler/codegen/
emit_c.py): a chain of 200 ops compiles to chunk functions, the chunks of equal text sharing
one body (cc's time grows faster than linearly with a function's size), and computes what the
chain does."""

from __future__ import annotations

import re

import numpy as np
import onnx
from onnx import TensorProto, helper

from lutc.compiler.api import compile_model
from lutc.compiler.codegen.emit_c import OUTLINE_OPS
from lutc.runtime.model_loader import CompiledModel

CHAIN = 200


def _chain(path):
    """x -> (Neg -> Relu) x 100: y = relu(-x) after the first pair, then relu(-relu(-x)) = 0
    ... alternating; a Neg/Relu pattern makes chunk texts repeat only if chunks line up."""
    nodes = [helper.make_node("Neg" if i % 2 == 0 else "Relu", ["x" if i == 0 else f"t{i - 1}"],
                              ["y" if i == CHAIN - 1 else f"t{i}"]) for i in range(CHAIN)]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 40])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 40])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_chain_is_outlined_in_shared_chunks(tmp_path):
    # lut-fuse-elementwise would make the chain one loop nest (the test below): off here, so
    # that 200 ops reach the outliner
    out = compile_model(_chain(tmp_path / "chain.onnx"), tmp_path / "m", out=lambda s: None,
                        disabled=("lut-fuse-elementwise",))
    c_text = (tmp_path / "m" / "model.c").read_text()
    bodies = re.findall(r"^(?:LUTC_ISA_CLONES )?static void lutc_layer\d+\(", c_text, re.M)
    calls = re.findall(r"^    lutc_layer(\d+)\(.*\);  /\* op chunk (\d+) \*/$", c_text, re.M)
    assert OUTLINE_OPS % 2 == 0  # chunks of whole Neg/Relu pairs: one text after the first
    # (which reads the input argument, not an arena slot)
    assert len(bodies) == 2 and [b for b, _ in calls].count("1") >= 3, (bodies, calls)
    x = np.random.default_rng(0).standard_normal((3, 40)).astype(np.float32)
    want = x
    for i in range(CHAIN):
        want = -want if i % 2 == 0 else np.maximum(want, 0)
    (y,) = CompiledModel(out if out.is_dir() else tmp_path / "m")(x)
    assert np.array_equal(y, want)


def test_fused_chain_is_one_loop_nest(tmp_path):
    """With lut-fuse-elementwise (default) the 200 elementwise ops are one loop nest."""
    out = compile_model(_chain(tmp_path / "chain.onnx"), tmp_path / "m", out=lambda s: None)
    c_text = (tmp_path / "m" / "model.c").read_text()
    assert c_text.count("for (int64_t i1 = 0; i1 < 40; ++i1)") == 1
    assert "lutc_layer" not in c_text
    x = np.random.default_rng(1).standard_normal((3, 40)).astype(np.float32)
    (y,) = CompiledModel(out if out.is_dir() else tmp_path / "m")(x)
    assert np.array_equal(y, np.zeros_like(x))  # relu(-relu(-x)) = 0 for every x
