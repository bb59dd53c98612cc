// RUN: lutc-opt %s --split-input-file -p lut-lower-mpgemm,lut-symmetrize,lut-quantize-table,lut-pack-weights | filecheck %s

// 5..8-bit codes lower like 1..4-bit ones: B bit planes of the same 4-activation tables.
// GGUF Q8_0: 8-bit codes, group 32, implicit zero point 128 (mirrored: 2*128 + 1 - 256 = 1).
// CHECK-LABEL: func.func @q8_0
// CHECK:         %table, %sums = lut.precompute %x sums 32 : tensor<2x128xf32> -> !lut.table<2x32x8xi8, sg4>, tensor<2x4xf32>
// CHECK-NEXT:    %planes = lut.bitplanes %q as <w8, g32, mirrored> : tensor<64x128xi8> -> tensor<8x64x32xi8>
// 8-bit codes on int8 tables take the code-byte layout (lut-pack-weights).
// CHECK:         %planes_packed = lut.pack_code_bytes %planes as <w8, g32, mirrored> : tensor<8x64x32xi8> -> tensor<2x32x128xi8>
// CHECK:         %y = lut.packed_mma %table, %sums, %planes_packed, %s_sym_packed as <w8, g32, mirrored> {code_bytes} : !lut.table<2x32x8xi8, sg4>, tensor<2x4xf32>, tensor<2x32x128xi8>, tensor<2x4x32xf32> -> tensor<2x64xf32>
func.func @q8_0(%x: tensor<2x128xf32>) -> tensor<2x64xf32> {
  %s = lut.weight "l0.s" : tensor<64x4xf32>
  %q = lut.weight "l0.q" : tensor<64x128xi8>
  %w = lut.dequantize %q, %s as <w8, g32> : tensor<64x128xi8>, tensor<64x4xf32> -> tensor<64x128xf32>
  %e = tensor.empty() : tensor<128x64xf32>
  %wt = linalg.transpose ins(%w : tensor<64x128xf32>) outs(%e : tensor<128x64xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<2x64xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e2 : tensor<2x64xf32>) -> tensor<2x64xf32>
  %y = linalg.matmul ins(%x, %wt : tensor<2x128xf32>, tensor<128x64xf32>) outs(%f : tensor<2x64xf32>) -> tensor<2x64xf32>
  func.return %y : tensor<2x64xf32>
}

// -----

// Q6_K's codes: 6 bits, group 16 with explicit zero points; the default per-table scale
// divides the weight group; 6 planes = 96 packed bytes per (block, table).
// CHECK-LABEL: func.func @q6_k
// CHECK:         lut.precompute %x sums 16 : tensor<1x64xf32> -> !lut.table<1x16x8xi8, sg4>, tensor<1x4xf32>
// CHECK-NEXT:    %planes = lut.bitplanes %q as <w6, g16, zp, mirrored> : tensor<32x64xi8> -> tensor<6x32x16xi8>
// CHECK:         lut.pack %planes : tensor<6x32x16xi8> -> tensor<1x16x96xi8>
// CHECK:         lut.packed_mma {{.*}} as <w6, g16, zp, mirrored>
func.func @q6_k(%x: tensor<1x64xf32>) -> tensor<1x32xf32> {
  %s = lut.weight "l0.s" : tensor<32x4xf32>
  %z = lut.weight "l0.z" : tensor<32x4xf32>
  %q = lut.weight "l0.q" : tensor<32x64xi8>
  %w = lut.dequantize %q, %s, %z as <w6, g16, zp> : tensor<32x64xi8>, tensor<32x4xf32>, tensor<32x4xf32> -> tensor<32x64xf32>
  %e = tensor.empty() : tensor<64x32xf32>
  %wt = linalg.transpose ins(%w : tensor<32x64xf32>) outs(%e : tensor<64x32xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<1x32xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e2 : tensor<1x32xf32>) -> tensor<1x32xf32>
  %y = linalg.matmul ins(%x, %wt : tensor<1x64xf32>, tensor<64x32xf32>) outs(%f : tensor<1x32xf32>) -> tensor<1x32xf32>
  func.return %y : tensor<1x32xf32>
}
