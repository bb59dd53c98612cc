// RUN: lutc-opt %s --split-input-file --verify-diagnostics --parsing-diagnostics | filecheck %s

// Weight codes of 5..8 bits print and parse; the codes tensor has B planes.
// CHECK-LABEL: func.func @w8
// CHECK:         lut.mma %t, %sums, %p, %s as <w8, g32, mirrored> : !lut.table<1x64x8xi8, sg32>, tensor<1x8xf32>, tensor<8x64x64xi8>, tensor<64x8xf32> -> tensor<1x64xf32>
func.func @w8(%t: !lut.table<1x64x8xi8, sg32>, %sums: tensor<1x8xf32>, %p: tensor<8x64x64xi8>, %s: tensor<64x8xf32>) -> tensor<1x64xf32> {
  %o = lut.mma %t, %sums, %p, %s as <w8, g32, mirrored> : !lut.table<1x64x8xi8, sg32>, tensor<1x8xf32>, tensor<8x64x64xi8>, tensor<64x8xf32> -> tensor<1x64xf32>
  func.return %o : tensor<1x64xf32>
}

// -----

// CHECK-LABEL: func.func @w5_planes
// CHECK:         lut.bitplanes %q as <w5, g64, zp> : tensor<64x256xi8> -> tensor<5x64x64xi8>
func.func @w5_planes(%q: tensor<64x256xi8>) -> tensor<5x64x64xi8> {
  %p = lut.bitplanes %q as <w5, g64, zp> : tensor<64x256xi8> -> tensor<5x64x64xi8>
  func.return %p : tensor<5x64x64xi8>
}

// -----

func.func @w8_needs_8_planes(%t: !lut.table<1x64x16xf32>, %sums: tensor<1x4xf32>, %c: tensor<6x64x64xi8>, %s: tensor<64x4xf32>) -> tensor<1x64xf32> {
  // CHECK: 'lut.mma' op expects codes of shape [8, 64, 64] but got [6, 64, 64]
  %o = lut.mma %t, %sums, %c, %s as <w8, g64> : !lut.table<1x64x16xf32>, tensor<1x4xf32>, tensor<6x64x64xi8>, tensor<64x4xf32> -> tensor<1x64xf32>
  func.return %o : tensor<1x64xf32>
}

// -----

func.func @w9(%q: tensor<8x64xi8>, %s: tensor<8x2xf32>) -> tensor<8x64xf32> {
  // CHECK: weight bit width must be 1..8, got 9
  %w = lut.dequantize %q, %s as <w9, g32> : tensor<8x64xi8>, tensor<8x2xf32> -> tensor<8x64xf32>
  func.return %w : tensor<8x64xf32>
}
