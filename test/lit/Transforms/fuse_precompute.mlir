// RUN: lutc-opt %s --split-input-file -p lut-fuse-precompute | filecheck %s
// RUN: lutc-opt %s --split-input-file -p 'lut-fuse-precompute{fuse=false}' | filecheck %s --check-prefix=NOFUSE

// Q/K/V read the same activations: one precompute serves the three GEMMs.
// CHECK-LABEL: func.func @qkv_share
// CHECK:         %t1, %s1 = lut.precompute %x sums 64
// CHECK-NEXT:    %q = lut.mma %t1, %s1, %pq, %s
// CHECK-NEXT:    %k = lut.mma %t1, %s1, %pk, %s
// CHECK-NEXT:    %v = lut.mma %t1, %s1, %pv, %s
func.func @qkv_share(%x: tensor<2x128xf32>, %pq: tensor<2x32x32xi8>, %pk: tensor<2x32x32xi8>, %pv: tensor<2x32x32xi8>, %s: tensor<32x2xf32>) -> (tensor<2x32xf32>, tensor<2x32xf32>, tensor<2x32xf32>) {
  %t1, %s1 = lut.precompute %x sums 64 : tensor<2x128xf32> -> !lut.table<2x32x8xi8, sg32>, tensor<2x2xf32>
  %q = lut.mma %t1, %s1, %pq, %s as <w2, g64, mirrored> : !lut.table<2x32x8xi8, sg32>, tensor<2x2xf32>, tensor<2x32x32xi8>, tensor<32x2xf32> -> tensor<2x32xf32>
  %t2, %s2 = lut.precompute %x sums 64 : tensor<2x128xf32> -> !lut.table<2x32x8xi8, sg32>, tensor<2x2xf32>
  %k = lut.mma %t2, %s2, %pk, %s as <w2, g64, mirrored> : !lut.table<2x32x8xi8, sg32>, tensor<2x2xf32>, tensor<2x32x32xi8>, tensor<32x2xf32> -> tensor<2x32xf32>
  %t3, %s3 = lut.precompute %x sums 64 : tensor<2x128xf32> -> !lut.table<2x32x8xi8, sg32>, tensor<2x2xf32>
  %v = lut.mma %t3, %s3, %pv, %s as <w2, g64, mirrored> : !lut.table<2x32x8xi8, sg32>, tensor<2x2xf32>, tensor<2x32x32xi8>, tensor<32x2xf32> -> tensor<2x32xf32>
  func.return %q, %k, %v : tensor<2x32xf32>, tensor<2x32xf32>, tensor<2x32xf32>
}

// -----

// Two reshapes of one value to the same [M, K] are the same activations; a different table
// type (16 entries) or sum group needs its own precompute.
// CHECK-LABEL: func.func @share_through_reshapes
// CHECK:         %t1, %s1 = lut.precompute %a sums 64 : tensor<2x128xf32> -> !lut.table<2x32x8xf32>
// CHECK-NEXT:    lut.mma %t1, %s1
// CHECK-NEXT:    %b = tensor.collapse_shape
// CHECK-NEXT:    lut.mma %t1, %s1
// CHECK-NEXT:    %t3, %s3 = lut.precompute %b sums 64 : tensor<2x128xf32> -> !lut.table<2x32x16xf32>
// CHECK:         %t4, %s4 = lut.precompute %b sums 32 : tensor<2x128xf32> -> !lut.table<2x32x8xf32>
func.func @share_through_reshapes(%x: tensor<1x2x128xf32>, %p: tensor<2x32x32xi8>, %s: tensor<32x2xf32>, %s32: tensor<32x4xf32>) -> (tensor<2x32xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<2x32xf32>) {
  %a = tensor.collapse_shape %x [[0, 1], [2]] : tensor<1x2x128xf32> into tensor<2x128xf32>
  %t1, %s1 = lut.precompute %a sums 64 : tensor<2x128xf32> -> !lut.table<2x32x8xf32>, tensor<2x2xf32>
  %y1 = lut.mma %t1, %s1, %p, %s as <w2, g64, mirrored> : !lut.table<2x32x8xf32>, tensor<2x2xf32>, tensor<2x32x32xi8>, tensor<32x2xf32> -> tensor<2x32xf32>
  %b = tensor.collapse_shape %x [[0, 1], [2]] : tensor<1x2x128xf32> into tensor<2x128xf32>
  %t2, %s2 = lut.precompute %b sums 64 : tensor<2x128xf32> -> !lut.table<2x32x8xf32>, tensor<2x2xf32>
  %y2 = lut.mma %t2, %s2, %p, %s as <w2, g64, mirrored> : !lut.table<2x32x8xf32>, tensor<2x2xf32>, tensor<2x32x32xi8>, tensor<32x2xf32> -> tensor<2x32xf32>
  %t3, %s3 = lut.precompute %b sums 64 : tensor<2x128xf32> -> !lut.table<2x32x16xf32>, tensor<2x2xf32>
  %y3 = lut.mma %t3, %s3, %p, %s as <w2, g64> : !lut.table<2x32x16xf32>, tensor<2x2xf32>, tensor<2x32x32xi8>, tensor<32x2xf32> -> tensor<2x32xf32>
  %t4, %s4 = lut.precompute %b sums 32 : tensor<2x128xf32> -> !lut.table<2x32x8xf32>, tensor<2x4xf32>
  %y4 = lut.mma %t4, %s4, %p, %s32 as <w2, g32, mirrored> : !lut.table<2x32x8xf32>, tensor<2x4xf32>, tensor<2x32x32xi8>, tensor<32x4xf32> -> tensor<2x32xf32>
  func.return %y1, %y2, %y3, %y4 : tensor<2x32xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<2x32xf32>
}

// -----

// A row-wise producer (RMSNorm's final multiply) takes the precompute into its region.
// CHECK-LABEL: func.func @fuse_into_norm
// CHECK:         %h, %table, %sums = lut.fused_precompute sums 64 : tensor<3x128xf32>, !lut.table<3x32x8xi8, sg32>, tensor<3x2xf32> {
// CHECK-NEXT:      %{{.*}} = linalg.generic
// CHECK:           lut.yield %{{.*}} : tensor<3x128xf32>
// CHECK-NEXT:    }
// CHECK-NOT:     lut.precompute
// CHECK:         lut.mma %table, %sums
// NOFUSE-LABEL:  func.func @fuse_into_norm
// NOFUSE:          %h = linalg.generic
// NOFUSE:          lut.precompute %h sums 64
func.func @fuse_into_norm(%x: tensor<3x128xf32>, %r: tensor<3xf32>, %g: tensor<128xf32>, %p: tensor<2x32x32xi8>, %s: tensor<32x2xf32>) -> tensor<3x32xf32> {
  %e = tensor.empty() : tensor<3x128xf32>
  %h = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x, %r, %g : tensor<3x128xf32>, tensor<3xf32>, tensor<128xf32>) outs(%e : tensor<3x128xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32, %o: f32):
    %ab = arith.mulf %a, %b : f32
    %abc = arith.mulf %ab, %c : f32
    linalg.yield %abc : f32
  } -> tensor<3x128xf32>
  %table, %sums = lut.precompute %h sums 64 : tensor<3x128xf32> -> !lut.table<3x32x8xi8, sg32>, tensor<3x2xf32>
  %y = lut.mma %table, %sums, %p, %s as <w2, g64, mirrored> : !lut.table<3x32x8xi8, sg32>, tensor<3x2xf32>, tensor<2x32x32xi8>, tensor<32x2xf32> -> tensor<3x32xf32>
  func.return %y : tensor<3x32xf32>
}

// -----

// [1, M, K] activations collapsed to [M, K]: rows are (d0, d1); the collapse stays for other
// readers of the activations (here the function result).
// CHECK-LABEL: func.func @fuse_through_collapse
// CHECK:         %h, %table, %sums = lut.fused_precompute sums 128 : tensor<1x2x128xf32>, !lut.table<2x32x8xf32>, tensor<2x1xf32> {
// CHECK:         %h2 = tensor.collapse_shape %h
// CHECK:         lut.mma %table, %sums
// CHECK:         func.return %y, %h2
func.func @fuse_through_collapse(%x: tensor<1x2x128xf32>, %p: tensor<1x32x32xi8>, %s: tensor<32x1xf32>) -> (tensor<2x32xf32>, tensor<2x128xf32>) {
  %e = tensor.empty() : tensor<1x2x128xf32>
  %h = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x : tensor<1x2x128xf32>) outs(%e : tensor<1x2x128xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.maximumf %a, %a : f32
    linalg.yield %m : f32
  } -> tensor<1x2x128xf32>
  %h2 = tensor.collapse_shape %h [[0, 1], [2]] : tensor<1x2x128xf32> into tensor<2x128xf32>
  %table, %sums = lut.precompute %h2 sums 128 : tensor<2x128xf32> -> !lut.table<2x32x8xf32>, tensor<2x1xf32>
  %y = lut.mma %table, %sums, %p, %s as <w1, g128, mirrored> : !lut.table<2x32x8xf32>, tensor<2x1xf32>, tensor<1x32x32xi8>, tensor<32x1xf32> -> tensor<2x32xf32>
  func.return %y, %h2 : tensor<2x32xf32>, tensor<2x128xf32>
}

// -----

// Not row-wise (the output is written transposed), a matmul producer and a function argument:
// the precomputes stay where they are.
// CHECK-LABEL: func.func @not_fused
// CHECK-NOT:     lut.fused_precompute
// CHECK:         lut.precompute %h
// CHECK:         lut.precompute %m
func.func @not_fused(%x: tensor<128x2xf32>, %w: tensor<128x128xf32>, %p: tensor<1x32x32xi8>, %s: tensor<32x1xf32>) -> (tensor<2x32xf32>, tensor<2x32xf32>) {
  %e = tensor.empty() : tensor<2x128xf32>
  %h = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1, d0)>], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<128x2xf32>) outs(%e : tensor<2x128xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  } -> tensor<2x128xf32>
  %t1, %s1 = lut.precompute %h sums 128 : tensor<2x128xf32> -> !lut.table<2x32x8xf32>, tensor<2x1xf32>
  %y1 = lut.mma %t1, %s1, %p, %s as <w1, g128, mirrored> : !lut.table<2x32x8xf32>, tensor<2x1xf32>, tensor<1x32x32xi8>, tensor<32x1xf32> -> tensor<2x32xf32>
  %zero = arith.constant 0.0 : f32
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<2x128xf32>) -> tensor<2x128xf32>
  %m = linalg.matmul ins(%h, %w : tensor<2x128xf32>, tensor<128x128xf32>) outs(%f : tensor<2x128xf32>) -> tensor<2x128xf32>
  %t2, %s2 = lut.precompute %m sums 128 : tensor<2x128xf32> -> !lut.table<2x32x8xf32>, tensor<2x1xf32>
  %y2 = lut.mma %t2, %s2, %p, %s as <w1, g128, mirrored> : !lut.table<2x32x8xf32>, tensor<2x1xf32>, tensor<1x32x32xi8>, tensor<32x1xf32> -> tensor<2x32xf32>
  func.return %y1, %y2 : tensor<2x32xf32>, tensor<2x32xf32>
}
