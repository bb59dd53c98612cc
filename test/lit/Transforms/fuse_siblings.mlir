// RUN: lutc-opt %s --split-input-file -p lut-fuse-siblings | filecheck %s
// RUN: lutc-opt %s --split-input-file -p 'lut-fuse-siblings{max_n=96}' | filecheck %s --check-prefix=CAP

// Q/K/V read one table: one GEMM over the concatenated weights (the later members' weight
// chains move above the first GEMM), and column slices replace the three results.
// CHECK-LABEL: func.func @qkv
// CHECK:         %p3 = lut.bitplanes %q3
// CHECK-NEXT:    %s3 = lut.weight "s3"
// CHECK-NEXT:    %codes = tensor.concat dim(1) %p1, %p2, %p3 : (tensor<4x64x32xi8>, tensor<4x32x32xi8>, tensor<4x32x32xi8>) -> tensor<4x128x32xi8>
// CHECK-NEXT:    %scales = tensor.concat dim(0) %s1, %s2, %s3 : (tensor<64x4xf32>, tensor<32x4xf32>, tensor<32x4xf32>) -> tensor<128x4xf32>
// CHECK-NEXT:    %y1_y2_y3 = lut.mma %table, %sums, %codes, %scales as <w4, g32, mirrored> : !lut.table<3x32x8xi8, sg4>, tensor<3x4xf32>, tensor<4x128x32xi8>, tensor<128x4xf32> -> tensor<3x128xf32>
// CHECK-NEXT:    %y1 = tensor.extract_slice %y1_y2_y3[0, 0] [3, 64] [1, 1] : tensor<3x128xf32> to tensor<3x64xf32>
// CHECK-NEXT:    %y2 = tensor.extract_slice %y1_y2_y3[0, 64] [3, 32] [1, 1] : tensor<3x128xf32> to tensor<3x32xf32>
// CHECK-NEXT:    %y3 = tensor.extract_slice %y1_y2_y3[0, 96] [3, 32] [1, 1] : tensor<3x128xf32> to tensor<3x32xf32>
// CHECK-NOT:     lut.mma
// With max_n=96 the first two merge (64 + 32) and the third stays alone.
// CAP-LABEL: func.func @qkv
// CAP:         lut.mma {{.*}} -> tensor<3x96xf32>
// CAP:         lut.mma {{.*}} -> tensor<3x32xf32>
func.func @qkv(%x: tensor<3x128xf32>) -> (tensor<3x64xf32>, tensor<3x32xf32>, tensor<3x32xf32>) {
  %q1 = lut.weight "q1" : tensor<64x128xi8>
  %s1 = lut.weight "s1" : tensor<64x4xf32>
  %table, %sums = lut.precompute %x sums 32 : tensor<3x128xf32> -> !lut.table<3x32x8xi8, sg4>, tensor<3x4xf32>
  %p1 = lut.bitplanes %q1 as <w4, g32, mirrored> : tensor<64x128xi8> -> tensor<4x64x32xi8>
  %y1 = lut.mma %table, %sums, %p1, %s1 as <w4, g32, mirrored> : !lut.table<3x32x8xi8, sg4>, tensor<3x4xf32>, tensor<4x64x32xi8>, tensor<64x4xf32> -> tensor<3x64xf32>
  %q2 = lut.weight "q2" : tensor<32x128xi8>
  %s2 = lut.weight "s2" : tensor<32x4xf32>
  %p2 = lut.bitplanes %q2 as <w4, g32, mirrored> : tensor<32x128xi8> -> tensor<4x32x32xi8>
  %y2 = lut.mma %table, %sums, %p2, %s2 as <w4, g32, mirrored> : !lut.table<3x32x8xi8, sg4>, tensor<3x4xf32>, tensor<4x32x32xi8>, tensor<32x4xf32> -> tensor<3x32xf32>
  %q3 = lut.weight "q3" : tensor<32x128xi8>
  %s3 = lut.weight "s3" : tensor<32x4xf32>
  %p3 = lut.bitplanes %q3 as <w4, g32, mirrored> : tensor<32x128xi8> -> tensor<4x32x32xi8>
  %y3 = lut.mma %table, %sums, %p3, %s3 as <w4, g32, mirrored> : !lut.table<3x32x8xi8, sg4>, tensor<3x4xf32>, tensor<4x32x32xi8>, tensor<32x4xf32> -> tensor<3x32xf32>
  func.return %y1, %y2, %y3 : tensor<3x64xf32>, tensor<3x32xf32>, tensor<3x32xf32>
}

// -----

// Different formats, or codes that are not weights (an argument), stay separate GEMMs.
// CHECK-LABEL: func.func @not_siblings
// CHECK-NOT:     tensor.concat
// CHECK-COUNT-2: lut.mma
func.func @not_siblings(%x: tensor<1x128xf32>, %pa: tensor<2x32x32xi8>) -> (tensor<1x32xf32>, tensor<1x32xf32>) {
  %sa = lut.weight "sa" : tensor<32x2xf32>
  %qb = lut.weight "qb" : tensor<32x128xi8>
  %sb = lut.weight "sb" : tensor<32x4xf32>
  %table, %sums = lut.precompute %x sums 32 : tensor<1x128xf32> -> !lut.table<1x32x8xi8, sg4>, tensor<1x4xf32>
  %sums64 = tensor.empty() : tensor<1x2xf32>
  %ya = lut.mma %table, %sums64, %pa, %sa as <w2, g64, mirrored> : !lut.table<1x32x8xi8, sg4>, tensor<1x2xf32>, tensor<2x32x32xi8>, tensor<32x2xf32> -> tensor<1x32xf32>
  %pb = lut.bitplanes %qb as <w4, g32, mirrored> : tensor<32x128xi8> -> tensor<4x32x32xi8>
  %yb = lut.mma %table, %sums, %pb, %sb as <w4, g32, mirrored> : !lut.table<1x32x8xi8, sg4>, tensor<1x4xf32>, tensor<4x32x32xi8>, tensor<32x4xf32> -> tensor<1x32xf32>
  func.return %ya, %yb : tensor<1x32xf32>, tensor<1x32xf32>
}
