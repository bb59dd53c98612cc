"""erase_dead_tensor_ops (passes/tensor_dce.py): unused tensor ops go, chains of them in one
call, ops inside a dead op's region with it; used ops, ops on memrefs and ops without results
stay."""

from xdsl.parser import Parser

from lutc.compiler.context import make_context
from lutc.passes.tensor_dce import erase_dead_tensor_ops

IR = """
func.func @f(%x: tensor<4xf32>, %m: memref<4xf32>) -> tensor<4xf32> {
  %a = arith.addf %x, %x : tensor<4xf32>
  %b = arith.mulf %a, %a : tensor<4xf32>
  %e = tensor.empty() : tensor<4xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
                       iterator_types = ["parallel"]} ins(%b : tensor<4xf32>)
                       outs(%e : tensor<4xf32>) {
  ^bb0(%i: f32, %o: f32):
    %s = arith.addf %i, %i : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  %live = arith.subf %x, %x : tensor<4xf32>
  %t = bufferization.to_tensor %m restrict : memref<4xf32> to tensor<4xf32>
  func.return %live : tensor<4xf32>
}
"""


def test_dead_chain_goes_live_and_memref_ops_stay():
    module = Parser(make_context(), IR).parse_module()
    erase_dead_tensor_ops(module)
    names = [op.name for op in module.walk()]
    assert "arith.addf" not in names and "arith.mulf" not in names  # the dead chain
    assert "linalg.generic" not in names and "tensor.empty" not in names
    assert names.count("arith.subf") == 1  # used by the return
    assert "bufferization.to_tensor" in names  # reads a memref: not provably free
    module.verify()
