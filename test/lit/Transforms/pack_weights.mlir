// RUN: lutc-opt %s --split-input-file -p lut-pack-weights | filecheck %s
// RUN: lutc-opt %s --split-input-file -p 'lut-pack-weights{code-bytes=false}' | filecheck %s --check-prefix=PLANES

// Bit planes, scales and zero points go through the runtime's block layout; the GEMM reads
// them packed and keeps its attributes.
// CHECK-LABEL: func.func @w2_zero_points
// CHECK:         %planes_packed = lut.pack %planes : tensor<2x64x64xi8> -> tensor<2x64x32xi8>
// CHECK-NEXT:    %s_packed = lut.pack_scales %s : tensor<64x4xf32> -> tensor<2x4x32xf32>
// CHECK-NEXT:    %z_packed = lut.pack_scales %z : tensor<64x4xf32> -> tensor<2x4x32xf32>
// CHECK-NEXT:    %y = lut.packed_mma %table, %sums, %planes_packed, %s_packed, %z_packed as <w2, g64, zp, mirrored> {tile = #lut.tile<m2, n64, k256, per_token>} : !lut.table<3x64x8xi8, sg32>, tensor<3x4xf32>, tensor<2x64x32xi8>, tensor<2x4x32xf32>, tensor<2x4x32xf32> -> tensor<3x64xf32>
// CHECK-NOT:     lut.mma
func.func @w2_zero_points(%x: tensor<3x256xf32>) -> tensor<3x64xf32> {
  %q = lut.weight "q" : tensor<64x256xi8>
  %s = lut.weight "s" : tensor<64x4xf32>
  %z = lut.weight "z" : tensor<64x4xf32>
  %planes = lut.bitplanes %q as <w2, g64, zp, mirrored> : tensor<64x256xi8> -> tensor<2x64x64xi8>
  %table, %sums = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x8xi8, sg32>, tensor<3x4xf32>
  %y = lut.mma %table, %sums, %planes, %s, %z as <w2, g64, zp, mirrored> {tile = #lut.tile<m2, n64, k256, per_token>} : !lut.table<3x64x8xi8, sg32>, tensor<3x4xf32>, tensor<2x64x64xi8>, tensor<64x4xf32>, tensor<64x4xf32> -> tensor<3x64xf32>
  func.return %y : tensor<3x64xf32>
}

// -----

// N = 40 is not a multiple of the 32-row block: 2 blocks, the last one padded. Odd bit widths
// pack 16 * B bytes per block and table.
// CHECK-LABEL: func.func @w3_padded_rows
// CHECK:         lut.pack %p : tensor<3x40x16xi8> -> tensor<2x16x48xi8>
// CHECK-NEXT:    lut.pack_scales %s : tensor<40x2xf32> -> tensor<2x2x32xf32>
// CHECK-NEXT:    lut.packed_mma {{.*}} as <w3, g32> : !lut.table<1x16x16xf32>, tensor<1x2xf32>, tensor<2x16x48xi8>, tensor<2x2x32xf32> -> tensor<1x40xf32>
func.func @w3_padded_rows(%x: tensor<1x64xf32>, %p: tensor<3x40x16xi8>, %s: tensor<40x2xf32>) -> tensor<1x40xf32> {
  %table, %sums = lut.precompute %x sums 32 : tensor<1x64xf32> -> !lut.table<1x16x16xf32>, tensor<1x2xf32>
  %y = lut.mma %table, %sums, %p, %s as <w3, g32> : !lut.table<1x16x16xf32>, tensor<1x2xf32>, tensor<3x40x16xi8>, tensor<40x2xf32> -> tensor<1x40xf32>
  func.return %y : tensor<1x40xf32>
}

// -----

// Nothing to pack outside lut.mma.
// CHECK-LABEL: func.func @no_gemm
// CHECK-NOT:     lut.pack
func.func @no_gemm(%x: tensor<1x64xf32>) -> tensor<1x64xf32> {
  func.return %x : tensor<1x64xf32>
}

// -----

// 8-bit codes on int8 tables: one byte per code (mirroring undone), 128 bytes per block and
// table, and the GEMM marked `code_bytes` (the runtime's int8-activation kernel at every M).
// CHECK-LABEL: func.func @w8_code_bytes
// code-bytes=false: bit planes for 8-bit codes too.
// PLANES-LABEL: func.func @w8_code_bytes
// PLANES:         lut.pack %planes : tensor<8x40x16xi8> -> tensor<2x16x128xi8>
// PLANES-NOT:     code_bytes
// PLANES-LABEL: func.func @w8_planes_stay
// CHECK:         %planes_packed = lut.pack_code_bytes %planes as <w8, g32, mirrored> : tensor<8x40x16xi8> -> tensor<2x16x128xi8>
// CHECK-NEXT:    %s_packed = lut.pack_scales %s : tensor<40x2xf32> -> tensor<2x2x32xf32>
// CHECK-NEXT:    %y = lut.packed_mma %table, %sums, %planes_packed, %s_packed as <w8, g32, mirrored> {code_bytes} : !lut.table<1x16x8xi8, sg4>, tensor<1x2xf32>, tensor<2x16x128xi8>, tensor<2x2x32xf32> -> tensor<1x40xf32>
func.func @w8_code_bytes(%x: tensor<1x64xf32>, %planes: tensor<8x40x16xi8>, %s: tensor<40x2xf32>) -> tensor<1x40xf32> {
  %table, %sums = lut.precompute %x sums 32 : tensor<1x64xf32> -> !lut.table<1x16x8xi8, sg4>, tensor<1x2xf32>
  %y = lut.mma %table, %sums, %planes, %s as <w8, g32, mirrored> : !lut.table<1x16x8xi8, sg4>, tensor<1x2xf32>, tensor<8x40x16xi8>, tensor<40x2xf32> -> tensor<1x40xf32>
  func.return %y : tensor<1x40xf32>
}

// -----

// 8-bit codes keep their bit planes where tables are read: f32 tables (the lossless mode) and
// the Vec-LUT tile strategy.
// CHECK-LABEL: func.func @w8_planes_stay
// CHECK:         lut.pack %p : tensor<8x40x16xi8> -> tensor<2x16x128xi8>
// CHECK:         lut.packed_mma {{.*}} as <w8, g32> : !lut.table<1x16x16xf32>
// CHECK:         lut.pack %p : tensor<8x40x16xi8> -> tensor<2x16x128xi8>
// CHECK:         lut.packed_mma {{.*}} as <w8, g32> {tile = #lut.tile<m64, n256, k64, vec_lut>} : !lut.table<1x16x16xi8, sg4>
// CHECK-NOT:     code_bytes
func.func @w8_planes_stay(%x: tensor<1x64xf32>, %p: tensor<8x40x16xi8>, %s: tensor<40x2xf32>) -> (tensor<1x40xf32>, tensor<1x40xf32>) {
  %t, %sums = lut.precompute %x sums 32 : tensor<1x64xf32> -> !lut.table<1x16x16xf32>, tensor<1x2xf32>
  %y = lut.mma %t, %sums, %p, %s as <w8, g32> : !lut.table<1x16x16xf32>, tensor<1x2xf32>, tensor<8x40x16xi8>, tensor<40x2xf32> -> tensor<1x40xf32>
  %tq, %sq = lut.precompute %x sums 32 : tensor<1x64xf32> -> !lut.table<1x16x16xi8, sg4>, tensor<1x2xf32>
  %v = lut.mma %tq, %sq, %p, %s as <w8, g32> {tile = #lut.tile<m64, n256, k64, vec_lut>} : !lut.table<1x16x16xi8, sg4>, tensor<1x2xf32>, tensor<8x40x16xi8>, tensor<40x2xf32> -> tensor<1x40xf32>
  func.return %y, %v : tensor<1x40xf32>, tensor<1x40xf32>
}
