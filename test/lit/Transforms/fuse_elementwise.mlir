// RUN: lutc-opt %s --split-input-file -p lut-fuse-elementwise | filecheck %s

// SiLU * up, imported as three generics (sigmoid, x * sigmoid, * up): one loop nest whose
// body runs the producers' ops first, reading their inputs through fresh block arguments.
// CHECK-LABEL: func.func @swiglu
// CHECK:         %y = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%g, %g, %u : tensor<4x64xf32>, tensor<4x64xf32>, tensor<4x64xf32>) outs(%e2 : tensor<4x64xf32>) {
// CHECK-NEXT:    ^bb0(%a: f32, %a_1: f32, %c: f32, %o: f32):
// CHECK-NEXT:      %n = arith.negf %a_1 : f32
// CHECK-NEXT:      %x = math.exp %n : f32
// CHECK-NEXT:      %one = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:      %d = arith.addf %one, %x : f32
// CHECK-NEXT:      %sig = arith.divf %one, %d : f32
// CHECK-NEXT:      %m = arith.mulf %a, %sig : f32
// CHECK-NEXT:      %r = arith.mulf %m, %c : f32
// CHECK-NEXT:      linalg.yield %r : f32
// CHECK-NEXT:    } -> tensor<4x64xf32>
// CHECK-NEXT:    func.return %y
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @swiglu(%g: tensor<4x64xf32>, %u: tensor<4x64xf32>) -> tensor<4x64xf32> {
  %e0 = tensor.empty() : tensor<4x64xf32>
  %s = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%g : tensor<4x64xf32>) outs(%e0 : tensor<4x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %n = arith.negf %a : f32
    %x = math.exp %n : f32
    %one = arith.constant 1.0 : f32
    %d = arith.addf %one, %x : f32
    %sig = arith.divf %one, %d : f32
    linalg.yield %sig : f32
  } -> tensor<4x64xf32>
  %e1 = tensor.empty() : tensor<4x64xf32>
  %h = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%g, %s : tensor<4x64xf32>, tensor<4x64xf32>) outs(%e1 : tensor<4x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.mulf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<4x64xf32>
  %e2 = tensor.empty() : tensor<4x64xf32>
  %y = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%h, %u : tensor<4x64xf32>, tensor<4x64xf32>) outs(%e2 : tensor<4x64xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %r = arith.mulf %a, %c : f32
    linalg.yield %r : f32
  } -> tensor<4x64xf32>
  func.return %y : tensor<4x64xf32>
}

// -----

// x * x folds into its sum (the consumer reads every element once, through all its loops,
// reductions included); the per-row rsqrt is read as a broadcast by x * rsqrt, so it stays a
// loop of its own rather than being recomputed for every column.
// CHECK-LABEL: func.func @rmsnorm
// CHECK:         %sum = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%x : tensor<4x64xf32>) outs(%zero : tensor<4xf32>) {
// CHECK-NEXT:    ^bb0(%a: f32, %acc: f32):
// CHECK-NEXT:      %sq = arith.mulf %a, %a : f32
// CHECK-NEXT:      %t = arith.addf %acc, %sq : f32
// CHECK-NEXT:      linalg.yield %t : f32
// CHECK:         %r = linalg.generic {{.*}} ins(%sum : tensor<4xf32>)
// CHECK:           math.rsqrt
// CHECK:         %y = linalg.generic {{.*}} ins(%x, %r : tensor<4x64xf32>, tensor<4xf32>)
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#id1 = affine_map<(d0) -> (d0)>
func.func @rmsnorm(%x: tensor<4x64xf32>) -> tensor<4x64xf32> {
  %e0 = tensor.empty() : tensor<4x64xf32>
  %x2 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<4x64xf32>) outs(%e0 : tensor<4x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %sq = arith.mulf %a, %a : f32
    linalg.yield %sq : f32
  } -> tensor<4x64xf32>
  %c0 = arith.constant 0.0 : f32
  %e1 = tensor.empty() : tensor<4xf32>
  %zero = linalg.fill ins(%c0 : f32) outs(%e1 : tensor<4xf32>) -> tensor<4xf32>
  %sum = linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]} ins(%x2 : tensor<4x64xf32>) outs(%zero : tensor<4xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %t = arith.addf %acc, %a : f32
    linalg.yield %t : f32
  } -> tensor<4xf32>
  %e2 = tensor.empty() : tensor<4xf32>
  %r = linalg.generic {indexing_maps = [#id1, #id1], iterator_types = ["parallel"]} ins(%sum : tensor<4xf32>) outs(%e2 : tensor<4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %q = math.rsqrt %a : f32
    linalg.yield %q : f32
  } -> tensor<4xf32>
  %e3 = tensor.empty() : tensor<4x64xf32>
  %y = linalg.generic {indexing_maps = [#id2, #row, #id2], iterator_types = ["parallel", "parallel"]} ins(%x, %r : tensor<4x64xf32>, tensor<4xf32>) outs(%e3 : tensor<4x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.mulf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<4x64xf32>
  func.return %y : tensor<4x64xf32>
}

// -----

// A transposing producer (written through (d1, d0)) read by a consumer through its identity:
// the producer's input map is composed with both, and its linalg.index follows its loop into
// the consumer's numbering (producer loop d0 is the consumer's d1).
// CHECK-LABEL: func.func @transposed
// CHECK:         %y = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1, d0)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<8x4xf32>) outs(%e1 : tensor<4x8xf32>) {
// CHECK-NEXT:    ^bb0(%a: f32, %o: f32):
// CHECK-NEXT:      %{{.*}} = linalg.index 1 : index
// CHECK-NEXT:      %ii = arith.index_cast
// CHECK:           %s = arith.addf %a, %f : f32
// CHECK-NEXT:      %n = arith.negf %s : f32
#p_in = affine_map<(d0, d1) -> (d0, d1)>
#p_out = affine_map<(d0, d1) -> (d1, d0)>
#c_id = affine_map<(d0, d1) -> (d0, d1)>
func.func @transposed(%x: tensor<8x4xf32>) -> tensor<4x8xf32> {
  %e0 = tensor.empty() : tensor<4x8xf32>
  %t = linalg.generic {indexing_maps = [#p_in, #p_out], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<8x4xf32>) outs(%e0 : tensor<4x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %i = linalg.index 0 : index
    %ii = arith.index_cast %i : index to i64
    %f = arith.sitofp %ii : i64 to f32
    %s = arith.addf %a, %f : f32
    linalg.yield %s : f32
  } -> tensor<4x8xf32>
  %e1 = tensor.empty() : tensor<4x8xf32>
  %y = linalg.generic {indexing_maps = [#c_id, #c_id], iterator_types = ["parallel", "parallel"]} ins(%t : tensor<4x8xf32>) outs(%e1 : tensor<4x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %n = arith.negf %a : f32
    linalg.yield %n : f32
  } -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}

// -----

// Left alone: a producer with a second use (fusing would compute it twice), a producer whose
// body reads its output, and a producer of another layer (repeated layers keep one body).
// CHECK-LABEL: func.func @not_fused
// CHECK-COUNT-6: linalg.generic
#i = affine_map<(d0) -> (d0)>
func.func @not_fused(%x: tensor<16xf32>, %acc: tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) {
  %e0 = tensor.empty() : tensor<16xf32>
  %a = linalg.generic {indexing_maps = [#i, #i], iterator_types = ["parallel"]} ins(%x : tensor<16xf32>) outs(%e0 : tensor<16xf32>) {
  ^bb0(%v: f32, %o: f32):
    %n = arith.negf %v : f32
    linalg.yield %n : f32
  } -> tensor<16xf32>
  %b = linalg.generic {indexing_maps = [#i, #i], iterator_types = ["parallel"]} ins(%a : tensor<16xf32>) outs(%e0 : tensor<16xf32>) {
  ^bb0(%v: f32, %o: f32):
    %n = math.exp %v : f32
    linalg.yield %n : f32
  } -> tensor<16xf32>
  %c = linalg.generic {indexing_maps = [#i, #i], iterator_types = ["parallel"]} ins(%x : tensor<16xf32>) outs(%acc : tensor<16xf32>) {
  ^bb0(%v: f32, %o: f32):
    %s = arith.addf %o, %v : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  %d = linalg.generic {indexing_maps = [#i, #i], iterator_types = ["parallel"]} ins(%c : tensor<16xf32>) outs(%e0 : tensor<16xf32>) {
  ^bb0(%v: f32, %o: f32):
    %s = arith.mulf %v, %v : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  %f = linalg.generic {indexing_maps = [#i, #i], iterator_types = ["parallel"]} ins(%x : tensor<16xf32>) outs(%e0 : tensor<16xf32>) attrs = {lutc.layer = 0 : i64} {
  ^bb0(%v: f32, %o: f32):
    %s = arith.negf %v : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  %g = linalg.generic {indexing_maps = [#i, #i], iterator_types = ["parallel"]} ins(%f : tensor<16xf32>) outs(%e0 : tensor<16xf32>) attrs = {lutc.layer = 1 : i64} {
  ^bb0(%v: f32, %o: f32):
    %s = math.exp %v : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  func.return %a, %b, %d, %g : tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>
}

// -----

// A producer with no inputs (an iota from linalg.index): the fused op keeps the consumer's
// other operands in place.
// CHECK-LABEL: func.func @iota
// CHECK:         %y = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%x : tensor<16xf32>) outs(%e1 : tensor<16xf32>) {
// CHECK-NEXT:    ^bb0(%a: f32, %o: f32):
// CHECK-NEXT:      %{{.*}} = linalg.index 0 : index
// CHECK:           %s = arith.addf %a, %f : f32
#iota = affine_map<(d0) -> (d0)>
func.func @iota(%x: tensor<16xf32>) -> tensor<16xf32> {
  %e0 = tensor.empty() : tensor<16xf32>
  %io = linalg.generic {indexing_maps = [#iota], iterator_types = ["parallel"]} outs(%e0 : tensor<16xf32>) {
  ^bb0(%o: f32):
    %i = linalg.index 0 : index
    %ii = arith.index_cast %i : index to i64
    %f = arith.sitofp %ii : i64 to f32
    linalg.yield %f : f32
  } -> tensor<16xf32>
  %e1 = tensor.empty() : tensor<16xf32>
  %y = linalg.generic {indexing_maps = [#iota, #iota, #iota], iterator_types = ["parallel"]} ins(%x, %io : tensor<16xf32>, tensor<16xf32>) outs(%e1 : tensor<16xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  func.return %y : tensor<16xf32>
}
