// RUN: lutc-opt %s --split-input-file -p lut-lower-mpgemm | filecheck %s

// x @ dequantize(W)^T becomes bitplanes + precompute + mma; the dequantize is gone.
// CHECK-LABEL: func.func @linear_w2
// CHECK-NEXT:    %s = lut.weight "l0.s" : tensor<64x4xf32>
// CHECK-NEXT:    %z = lut.weight "l0.z" : tensor<64x4xf32>
// CHECK-NEXT:    %q = lut.weight "l0.q" : tensor<64x256xi8>
// CHECK-NEXT:    %planes = lut.bitplanes %q as <w2, g64, zp> : tensor<64x256xi8> -> tensor<2x64x64xi8>
// CHECK-NEXT:    %table, %sums = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x16xf32>, tensor<3x4xf32>
// CHECK-NEXT:    %y = lut.mma %table, %sums, %planes, %s, %z as <w2, g64, zp> : {{.*}} -> tensor<3x64xf32>
// CHECK-NEXT:    func.return %y : tensor<3x64xf32>
func.func @linear_w2(%x: tensor<3x256xf32>) -> tensor<3x64xf32> {
  %s = lut.weight "l0.s" : tensor<64x4xf32>
  %z = lut.weight "l0.z" : tensor<64x4xf32>
  %q = lut.weight "l0.q" : tensor<64x256xi8>
  %w = lut.dequantize %q, %s, %z as <w2, g64, zp> : tensor<64x256xi8>, tensor<64x4xf32>, tensor<64x4xf32> -> tensor<64x256xf32>
  %e = tensor.empty() : tensor<256x64xf32>
  %wt = linalg.transpose ins(%w : tensor<64x256xf32>) outs(%e : tensor<256x64xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<3x64xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e2 : tensor<3x64xf32>) -> tensor<3x64xf32>
  %y = linalg.matmul ins(%x, %wt : tensor<3x256xf32>, tensor<256x64xf32>) outs(%f : tensor<3x64xf32>) -> tensor<3x64xf32>
  func.return %y : tensor<3x64xf32>
}

// -----

// A per-tensor (ternary) scale: the sums cover all of K.
// CHECK-LABEL: func.func @ternary_per_tensor
// CHECK: lut.precompute %x sums 128 : tensor<1x128xf32> -> !lut.table<1x32x16xf32>, tensor<1x1xf32>
// CHECK: lut.mma {{.*}} as <ternary, g128> :
func.func @ternary_per_tensor(%x: tensor<1x128xf32>) -> tensor<1x16xf32> {
  %s = lut.weight "s" : tensor<16x1xf32>
  %q = lut.weight "q" : tensor<16x128xi8>
  %w = lut.dequantize %q, %s as <ternary, g128> : tensor<16x128xi8>, tensor<16x1xf32> -> tensor<16x128xf32>
  %e = tensor.empty() : tensor<128x16xf32>
  %wt = linalg.transpose ins(%w : tensor<16x128xf32>) outs(%e : tensor<128x16xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<1x16xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e2 : tensor<1x16xf32>) -> tensor<1x16xf32>
  %y = linalg.matmul ins(%x, %wt : tensor<1x128xf32>, tensor<128x16xf32>) outs(%f : tensor<1x16xf32>) -> tensor<1x16xf32>
  func.return %y : tensor<1x16xf32>
}

// -----

// Float x float matmuls (attention, float layers) stay as they are.
// CHECK-LABEL: func.func @float_matmul
// CHECK-NOT:   lut.
// CHECK:       linalg.matmul
func.func @float_matmul(%x: tensor<3x256xf32>, %w: tensor<256x64xf32>) -> tensor<3x64xf32> {
  %zero = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<3x64xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e2 : tensor<3x64xf32>) -> tensor<3x64xf32>
  %y = linalg.matmul ins(%x, %w : tensor<3x256xf32>, tensor<256x64xf32>) outs(%f : tensor<3x64xf32>) -> tensor<3x64xf32>
  func.return %y : tensor<3x64xf32>
}

// -----

// A matmul that accumulates into a non-zero init is not a plain mpGEMM: left alone.
// CHECK-LABEL: func.func @accumulating
// CHECK-NOT:   lut.mma
// CHECK:       linalg.matmul
func.func @accumulating(%x: tensor<1x64xf32>, %acc: tensor<1x8xf32>) -> tensor<1x8xf32> {
  %s = lut.weight "s" : tensor<8x1xf32>
  %q = lut.weight "q" : tensor<8x64xi8>
  %w = lut.dequantize %q, %s as <w4, g64> : tensor<8x64xi8>, tensor<8x1xf32> -> tensor<8x64xf32>
  %e = tensor.empty() : tensor<64x8xf32>
  %wt = linalg.transpose ins(%w : tensor<8x64xf32>) outs(%e : tensor<64x8xf32>) permutation = [1, 0]
  %y = linalg.matmul ins(%x, %wt : tensor<1x64xf32>, tensor<64x8xf32>) outs(%acc : tensor<1x8xf32>) -> tensor<1x8xf32>
  func.return %y : tensor<1x8xf32>
}
