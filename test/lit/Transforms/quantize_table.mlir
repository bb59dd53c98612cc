// RUN: lutc-opt %s --split-input-file -p lut-quantize-table | filecheck %s
// RUN: lutc-opt %s --split-input-file -p 'lut-quantize-table{scale-group=16}' | filecheck %s --check-prefix=SG16
// RUN: lutc-opt %s --split-input-file -p 'lut-quantize-table{scale-group=32}' | filecheck %s --check-prefix=SG32

// f32 tables become int8 tables with one scale per 32 activations (the default).
// CHECK-LABEL: func.func @default_scale_group
// CHECK-NEXT:    %table, %sums = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x8xi8, sg4>, tensor<3x4xf32>
// CHECK-NEXT:    %y = lut.mma %table, %sums, %planes, %s as <w2, g64, mirrored> : !lut.table<3x64x8xi8, sg4>,
// SG32-LABEL:  func.func @default_scale_group
// SG32:          !lut.table<3x64x8xi8, sg32>
// SG16-LABEL:  func.func @default_scale_group
// SG16:          !lut.table<3x64x8xi8, sg16>
func.func @default_scale_group(%x: tensor<3x256xf32>, %planes: tensor<2x64x64xi8>, %s: tensor<64x4xf32>) -> tensor<3x64xf32> {
  %table, %sums = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x8xf32>, tensor<3x4xf32>
  %y = lut.mma %table, %sums, %planes, %s as <w2, g64, mirrored> : !lut.table<3x64x8xf32>, tensor<3x4xf32>, tensor<2x64x64xi8>, tensor<64x4xf32> -> tensor<3x64xf32>
  func.return %y : tensor<3x64xf32>
}

// -----

// A weight group of 48: 32 does not divide it, the largest multiple of 4 <= 64 that does is 48.
// CHECK-LABEL: func.func @group_48
// CHECK:         !lut.table<1x48x16xi8, sg4>
// SG32-LABEL:  func.func @group_48
// SG32:          !lut.table<1x48x16xi8, sg48>
// SG16-LABEL:  func.func @group_48
// SG16:          !lut.table<1x48x16xi8, sg16>
func.func @group_48(%x: tensor<1x192xf32>, %planes: tensor<4x32x48xi8>, %s: tensor<32x4xf32>) -> tensor<1x32xf32> {
  %table, %sums = lut.precompute %x sums 48 : tensor<1x192xf32> -> !lut.table<1x48x16xf32>, tensor<1x4xf32>
  %y = lut.mma %table, %sums, %planes, %s as <w4, g48> : !lut.table<1x48x16xf32>, tensor<1x4xf32>, tensor<4x32x48xi8>, tensor<32x4xf32> -> tensor<1x32xf32>
  func.return %y : tensor<1x32xf32>
}

// -----

// A weight group of 68 = 4 x 17: only one scale per table (4 activations) divides it.
// CHECK-LABEL: func.func @group_68
// CHECK:         !lut.table<1x34x16xi8, sg4>
// SG32-LABEL:  func.func @group_68
// SG32:          !lut.table<1x34x16xi8, sg4>
func.func @group_68(%x: tensor<1x136xf32>, %planes: tensor<1x32x34xi8>, %s: tensor<32x2xf32>) -> tensor<1x32xf32> {
  %table, %sums = lut.precompute %x sums 68 : tensor<1x136xf32> -> !lut.table<1x34x16xf32>, tensor<1x2xf32>
  %y = lut.mma %table, %sums, %planes, %s as <w1, g68> : !lut.table<1x34x16xf32>, tensor<1x2xf32>, tensor<1x32x34xi8>, tensor<32x2xf32> -> tensor<1x32xf32>
  func.return %y : tensor<1x32xf32>
}

// -----

// One scale for all of K (ternary per-tensor): any scale group works, the requested one is kept.
// CHECK-LABEL: func.func @per_tensor
// CHECK:         !lut.table<1x32x8xi8, sg4>
// SG32-LABEL:  func.func @per_tensor
// SG32:          !lut.table<1x32x8xi8, sg32>
func.func @per_tensor(%x: tensor<1x128xf32>, %planes: tensor<2x16x32xi8>, %s: tensor<16x1xf32>) -> tensor<1x16xf32> {
  %table, %sums = lut.precompute %x sums 128 : tensor<1x128xf32> -> !lut.table<1x32x8xf32>, tensor<1x1xf32>
  %y = lut.mma %table, %sums, %planes, %s as <ternary, g128, mirrored> : !lut.table<1x32x8xf32>, tensor<1x1xf32>, tensor<2x16x32xi8>, tensor<16x1xf32> -> tensor<1x16xf32>
  func.return %y : tensor<1x16xf32>
}

// -----

// Already int8 tables are left alone.
// CHECK-LABEL: func.func @already_int8
// CHECK:         !lut.table<1x16x8xi8, sg64>
// SG32-LABEL:  func.func @already_int8
// SG32:          !lut.table<1x16x8xi8, sg64>
func.func @already_int8(%x: tensor<1x64xf32>, %planes: tensor<2x32x16xi8>, %s: tensor<32x1xf32>) -> tensor<1x32xf32> {
  %table, %sums = lut.precompute %x sums 64 : tensor<1x64xf32> -> !lut.table<1x16x8xi8, sg64>, tensor<1x1xf32>
  %y = lut.mma %table, %sums, %planes, %s as <w2, g64, mirrored> : !lut.table<1x16x8xi8, sg64>, tensor<1x1xf32>, tensor<2x32x16xi8>, tensor<32x1xf32> -> tensor<1x32xf32>
  func.return %y : tensor<1x32xf32>
}
