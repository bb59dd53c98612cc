// RUN: lutc-opt %s -p lut-lower-mpgemm,lut-symmetrize,lut-quantize-table,lut-fuse-precompute,lut-tile,lut-pack-weights | filecheck %s

// The default pass order on a normalized activation read by two 2-bit projections: one
// symmetrized int8 table, built inside the producer, read by two packed, tiled GEMMs.
// CHECK-LABEL: func.func @norm_two_projections
// CHECK:         %h, %table, %sums = lut.fused_precompute sums 64 : tensor<2x128xf32>, !lut.table<2x32x8xi8, sg4>, tensor<2x2xf32> {
// CHECK:           linalg.generic
// CHECK:           lut.yield
// CHECK-NOT:     lut.precompute
// CHECK:         %{{.*}} = lut.bitplanes %qa as <w2, g64, mirrored>
// CHECK-NEXT:    %{{.*}} = lut.mirror_scales %sa
// CHECK-NEXT:    %{{.*}} = lut.pack %{{.*}} : tensor<2x32x32xi8> -> tensor<1x32x32xi8>
// CHECK-NEXT:    %{{.*}} = lut.pack_scales %{{.*}} : tensor<32x2xf32> -> tensor<1x2x32xf32>
// CHECK-NEXT:    %a = lut.packed_mma %table, %sums, {{.*}} as <w2, g64, mirrored> {tile = #lut.tile<m{{[0-9]+}}, n32, k{{[0-9]+}}, per_token>}
// CHECK:         %b = lut.packed_mma %table, %sums, {{.*}} as <w2, g64, mirrored> {tile = #lut.tile<
// CHECK-NOT:     lut.mma
func.func @norm_two_projections(%x: tensor<2x128xf32>, %g: tensor<128xf32>) -> (tensor<2x32xf32>, tensor<2x32xf32>) {
  %e = tensor.empty() : tensor<2x128xf32>
  %h = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x, %g : tensor<2x128xf32>, tensor<128xf32>) outs(%e : tensor<2x128xf32>) {
  ^bb0(%v: f32, %w: f32, %o: f32):
    %p = arith.mulf %v, %w : f32
    linalg.yield %p : f32
  } -> tensor<2x128xf32>
  %qa = lut.weight "a.q" : tensor<32x128xi8>
  %sa = lut.weight "a.s" : tensor<32x2xf32>
  %wa = lut.dequantize %qa, %sa as <w2, g64> : tensor<32x128xi8>, tensor<32x2xf32> -> tensor<32x128xf32>
  %ea = tensor.empty() : tensor<128x32xf32>
  %wta = linalg.transpose ins(%wa : tensor<32x128xf32>) outs(%ea : tensor<128x32xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<2x32xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e2 : tensor<2x32xf32>) -> tensor<2x32xf32>
  %a = linalg.matmul ins(%h, %wta : tensor<2x128xf32>, tensor<128x32xf32>) outs(%f : tensor<2x32xf32>) -> tensor<2x32xf32>
  %qb = lut.weight "b.q" : tensor<32x128xi8>
  %sb = lut.weight "b.s" : tensor<32x2xf32>
  %wb = lut.dequantize %qb, %sb as <w2, g64> : tensor<32x128xi8>, tensor<32x2xf32> -> tensor<32x128xf32>
  %eb = tensor.empty() : tensor<128x32xf32>
  %wtb = linalg.transpose ins(%wb : tensor<32x128xf32>) outs(%eb : tensor<128x32xf32>) permutation = [1, 0]
  %b = linalg.matmul ins(%h, %wtb : tensor<2x128xf32>, tensor<128x32xf32>) outs(%f : tensor<2x32xf32>) -> tensor<2x32xf32>
  func.return %a, %b : tensor<2x32xf32>, tensor<2x32xf32>
}
