// RUN: lutc-opt %s --split-input-file -p lut-symmetrize | filecheck %s

// A 2-bit GEMM with zero points: 8-entry table, mirrored bit planes, s' = s/2, z' = 2z + 1 - 4.
// CHECK-LABEL: func.func @w2_zero_points
// CHECK-NEXT:    %q = lut.weight "q" : tensor<64x256xi8>
// CHECK-NEXT:    %s = lut.weight "s" : tensor<64x4xf32>
// CHECK-NEXT:    %z = lut.weight "z" : tensor<64x4xf32>
// CHECK-NEXT:    %table, %sums = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x8xf32>, tensor<3x4xf32>
// CHECK-NEXT:    %planes = lut.bitplanes %q as <w2, g64, zp, mirrored> : tensor<64x256xi8> -> tensor<2x64x64xi8>
// CHECK-NEXT:    %s_sym = lut.mirror_scales %s : tensor<64x4xf32> -> tensor<64x4xf32>
// CHECK-NEXT:    %z_sym = lut.mirror_zeros %z as <w2, g64, zp> : tensor<64x4xf32> -> tensor<64x4xf32>
// CHECK-NEXT:    %y = lut.mma %table, %sums, %planes, %s_sym, %z_sym as <w2, g64, zp, mirrored> : !lut.table<3x64x8xf32>, {{.*}} -> tensor<3x64xf32>
// CHECK-NEXT:    func.return %y : tensor<3x64xf32>
func.func @w2_zero_points(%x: tensor<3x256xf32>) -> tensor<3x64xf32> {
  %q = lut.weight "q" : tensor<64x256xi8>
  %s = lut.weight "s" : tensor<64x4xf32>
  %z = lut.weight "z" : tensor<64x4xf32>
  %planes = lut.bitplanes %q as <w2, g64, zp> : tensor<64x256xi8> -> tensor<2x64x64xi8>
  %table, %sums = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x16xf32>, tensor<3x4xf32>
  %y = lut.mma %table, %sums, %planes, %s, %z as <w2, g64, zp> : !lut.table<3x64x16xf32>, tensor<3x4xf32>, tensor<2x64x64xi8>, tensor<64x4xf32>, tensor<64x4xf32> -> tensor<3x64xf32>
  func.return %y : tensor<3x64xf32>
}

// -----

// Ternary without zero points: the implicit zero point is the format's, no lut.mirror_zeros.
// CHECK-LABEL: func.func @ternary
// CHECK-NOT:     lut.mirror_zeros
// CHECK:         lut.precompute %x sums 128 : tensor<1x128xf32> -> !lut.table<1x32x8xf32>, tensor<1x1xf32>
// CHECK-NEXT:    lut.bitplanes %q as <ternary, g128, mirrored>
// CHECK-NEXT:    lut.mirror_scales %s
// CHECK-NEXT:    lut.mma {{.*}} as <ternary, g128, mirrored> : !lut.table<1x32x8xf32>
func.func @ternary(%x: tensor<1x128xf32>) -> tensor<1x16xf32> {
  %s = lut.weight "s" : tensor<16x1xf32>
  %q = lut.weight "q" : tensor<16x128xi8>
  %planes = lut.bitplanes %q as <ternary, g128> : tensor<16x128xi8> -> tensor<2x16x32xi8>
  %table, %sums = lut.precompute %x sums 128 : tensor<1x128xf32> -> !lut.table<1x32x16xf32>, tensor<1x1xf32>
  %y = lut.mma %table, %sums, %planes, %s as <ternary, g128> : !lut.table<1x32x16xf32>, tensor<1x1xf32>, tensor<2x16x32xi8>, tensor<16x1xf32> -> tensor<1x16xf32>
  func.return %y : tensor<1x16xf32>
}

// -----

// One table read by two GEMMs: both are symmetrized, the table stays shared.
// CHECK-LABEL: func.func @shared_table
// CHECK:         %table, %sums = lut.precompute %x sums 64 : tensor<2x128xf32> -> !lut.table<2x32x8xf32>, tensor<2x2xf32>
// CHECK:         lut.mma %table, %sums, {{.*}} as <w4, g64, mirrored>
// CHECK:         lut.mma %table, %sums, {{.*}} as <w1, g64, zp, mirrored>
// CHECK-NOT:     lut.precompute
func.func @shared_table(%x: tensor<2x128xf32>) -> (tensor<2x32xf32>, tensor<2x32xf32>) {
  %qa = lut.weight "qa" : tensor<32x128xi8>
  %sa = lut.weight "sa" : tensor<32x2xf32>
  %qb = lut.weight "qb" : tensor<32x128xi8>
  %sb = lut.weight "sb" : tensor<32x2xf32>
  %zb = lut.weight "zb" : tensor<32x2xf32>
  %pa = lut.bitplanes %qa as <w4, g64> : tensor<32x128xi8> -> tensor<4x32x32xi8>
  %pb = lut.bitplanes %qb as <w1, g64, zp> : tensor<32x128xi8> -> tensor<1x32x32xi8>
  %table, %sums = lut.precompute %x sums 64 : tensor<2x128xf32> -> !lut.table<2x32x16xf32>, tensor<2x2xf32>
  %a = lut.mma %table, %sums, %pa, %sa as <w4, g64> : !lut.table<2x32x16xf32>, tensor<2x2xf32>, tensor<4x32x32xi8>, tensor<32x2xf32> -> tensor<2x32xf32>
  %b = lut.mma %table, %sums, %pb, %sb, %zb as <w1, g64, zp> : !lut.table<2x32x16xf32>, tensor<2x2xf32>, tensor<1x32x32xi8>, tensor<32x2xf32>, tensor<32x2xf32> -> tensor<2x32xf32>
  func.return %a, %b : tensor<2x32xf32>, tensor<2x32xf32>
}

// -----

// Bit planes that are already a weight (folded): the codes are mirrored by lut.mirror_codes.
// CHECK-LABEL: func.func @planes_from_weight
// CHECK:         %planes_sym = lut.mirror_codes %planes : tensor<3x8x16xi8> -> tensor<3x8x16xi8>
// CHECK:         lut.mma %table, %sums, %planes_sym, %s_sym as <w3, g32, mirrored>
func.func @planes_from_weight(%x: tensor<1x64xf32>) -> tensor<1x8xf32> {
  %planes = lut.weight "planes" : tensor<3x8x16xi8>
  %s = lut.weight "s" : tensor<8x2xf32>
  %table, %sums = lut.precompute %x sums 32 : tensor<1x64xf32> -> !lut.table<1x16x16xf32>, tensor<1x2xf32>
  %y = lut.mma %table, %sums, %planes, %s as <w3, g32> : !lut.table<1x16x16xf32>, tensor<1x2xf32>, tensor<3x8x16xi8>, tensor<8x2xf32> -> tensor<1x8xf32>
  func.return %y : tensor<1x8xf32>
}

// -----

// Already symmetrized GEMMs and int8 tables keep their form; a quantized 16-entry table keeps
// its scale group when it is symmetrized.
// CHECK-LABEL: func.func @already_mirrored
// CHECK-NOT:     lut.mirror_scales
// CHECK:         lut.mma {{.*}} as <w2, g64, mirrored> : !lut.table<1x16x8xi8, sg32>
func.func @already_mirrored(%x: tensor<1x64xf32>) -> tensor<1x32xf32> {
  %q = lut.weight "q" : tensor<32x64xi8>
  %s = lut.weight "s" : tensor<32x1xf32>
  %planes = lut.bitplanes %q as <w2, g64, mirrored> : tensor<32x64xi8> -> tensor<2x32x16xi8>
  %table, %sums = lut.precompute %x sums 64 : tensor<1x64xf32> -> !lut.table<1x16x8xi8, sg32>, tensor<1x1xf32>
  %y = lut.mma %table, %sums, %planes, %s as <w2, g64, mirrored> : !lut.table<1x16x8xi8, sg32>, tensor<1x1xf32>, tensor<2x32x16xi8>, tensor<32x1xf32> -> tensor<1x32xf32>
  func.return %y : tensor<1x32xf32>
}

// CHECK-LABEL: func.func @quantized_table
// CHECK:         lut.precompute %x sums 64 : tensor<1x64xf32> -> !lut.table<1x16x8xi8, sg16>
func.func @quantized_table(%x: tensor<1x64xf32>) -> tensor<1x32xf32> {
  %q = lut.weight "q" : tensor<32x64xi8>
  %s = lut.weight "s" : tensor<32x1xf32>
  %planes = lut.bitplanes %q as <w2, g64> : tensor<32x64xi8> -> tensor<2x32x16xi8>
  %table, %sums = lut.precompute %x sums 64 : tensor<1x64xf32> -> !lut.table<1x16x16xi8, sg16>, tensor<1x1xf32>
  %y = lut.mma %table, %sums, %planes, %s as <w2, g64> : !lut.table<1x16x16xi8, sg16>, tensor<1x1xf32>, tensor<2x32x16xi8>, tensor<32x1xf32> -> tensor<1x32xf32>
  func.return %y : tensor<1x32xf32>
}
