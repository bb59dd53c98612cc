// RUN: lutc-opt %s --split-input-file -p lut-tile | filecheck %s
// RUN: lutc-opt %s --split-input-file -p 'lut-tile{m=1 n=128 k=256}' | filecheck %s --check-prefix=FORCED
// RUN: lutc-opt %s --split-input-file -p 'lut-tile{strategy=per_token}' | filecheck %s --check-prefix=PERTOKEN
// RUN: lutc-opt %s --split-input-file -p 'lut-tile{vec_lut_min_m=32}' | filecheck %s --check-prefix=VEC

// One token (decode): per-token tables, one table row in registers.
// CHECK-LABEL: func.func @decode_m1
// CHECK:         lut.mma {{.*}} as <w2, g64, mirrored> {tile = #lut.tile<m1, n{{[0-9]+}}, k{{[0-9]+}}, per_token>}
// FORCED-LABEL: func.func @decode_m1
// FORCED:         {tile = #lut.tile<m1, n128, k256, per_token>}
// PERTOKEN-LABEL: func.func @decode_m1
// PERTOKEN:       #lut.tile<m1, n{{[0-9]+}}, k{{[0-9]+}}, per_token>
func.func @decode_m1(%x: tensor<1x1024xf32>, %p: tensor<2x512x256xi8>, %s: tensor<512x16xf32>) -> tensor<1x512xf32> {
  %table, %sums = lut.precompute %x sums 64 : tensor<1x1024xf32> -> !lut.table<1x256x8xi8, sg32>, tensor<1x16xf32>
  %y = lut.mma %table, %sums, %p, %s as <w2, g64, mirrored> : !lut.table<1x256x8xi8, sg32>, tensor<1x16xf32>, tensor<2x512x256xi8>, tensor<512x16xf32> -> tensor<1x512xf32>
  func.return %y : tensor<1x512xf32>
}

// -----

// 64 tokens (prefill): per-token by default (no measured Vec-LUT crossover, tile_cost.py);
// from vec_lut_min_m tokens on, one table across a tile of 64 tokens (Vec-LUT).
// CHECK-LABEL: func.func @prefill_m64
// CHECK:         lut.mma {{.*}} {tile = #lut.tile<m{{[1248]}}, n{{[0-9]+}}, k{{[0-9]+}}, per_token>}
// VEC-LABEL: func.func @prefill_m64
// VEC:         lut.mma {{.*}} {tile = #lut.tile<m64, n{{[0-9]+}}, k{{[0-9]+}}, vec_lut>}
// FORCED-LABEL: func.func @prefill_m64
// FORCED:         {tile = #lut.tile<m1, n128, k256, per_token>}
// PERTOKEN-LABEL: func.func @prefill_m64
// PERTOKEN:       #lut.tile<m{{[1248]}}, n{{[0-9]+}}, k{{[0-9]+}}, per_token>
func.func @prefill_m64(%x: tensor<64x1024xf32>, %p: tensor<2x512x256xi8>, %s: tensor<512x16xf32>) -> tensor<64x512xf32> {
  %table, %sums = lut.precompute %x sums 64 : tensor<64x1024xf32> -> !lut.table<64x256x8xi8, sg32>, tensor<64x16xf32>
  %y = lut.mma %table, %sums, %p, %s as <w2, g64, mirrored> : !lut.table<64x256x8xi8, sg32>, tensor<64x16xf32>, tensor<2x512x256xi8>, tensor<512x16xf32> -> tensor<64x512xf32>
  func.return %y : tensor<64x512xf32>
}

// -----

// A few tokens: per-token tables, table rows for up to 4 tokens in registers; k covers whole
// weight groups. Packed GEMMs are tiled the same way.
// CHECK-LABEL: func.func @small_batch_packed
// CHECK:         lut.packed_mma {{.*}} {tile = #lut.tile<m{{[124]}}, n{{[0-9]+}}, k{{(64|128|192|256)}}, per_token>}
func.func @small_batch_packed(%x: tensor<4x256xf32>, %p: tensor<2x64x32xi8>, %s: tensor<2x4x32xf32>) -> tensor<4x64xf32> {
  %table, %sums = lut.precompute %x sums 64 : tensor<4x256xf32> -> !lut.table<4x64x8xi8, sg32>, tensor<4x4xf32>
  %y = lut.packed_mma %table, %sums, %p, %s as <w2, g64, mirrored> : !lut.table<4x64x8xi8, sg32>, tensor<4x4xf32>, tensor<2x64x32xi8>, tensor<2x4x32xf32> -> tensor<4x64xf32>
  func.return %y : tensor<4x64xf32>
}

// -----

// An existing tile is kept unless options force one.
// CHECK-LABEL: func.func @already_tiled
// CHECK:         {tile = #lut.tile<m2, n64, k64, per_token>}
// FORCED-LABEL: func.func @already_tiled
// FORCED:         {tile = #lut.tile<m1, n128, k256, per_token>}
func.func @already_tiled(%x: tensor<2x64xf32>, %p: tensor<2x32x16xi8>, %s: tensor<32x1xf32>) -> tensor<2x32xf32> {
  %table, %sums = lut.precompute %x sums 64 : tensor<2x64xf32> -> !lut.table<2x16x8xf32>, tensor<2x1xf32>
  %y = lut.mma %table, %sums, %p, %s as <w2, g64, mirrored> {tile = #lut.tile<m2, n64, k64, per_token>} : !lut.table<2x16x8xf32>, tensor<2x1xf32>, tensor<2x32x16xi8>, tensor<32x1xf32> -> tensor<2x32xf32>
  func.return %y : tensor<2x32xf32>
}
