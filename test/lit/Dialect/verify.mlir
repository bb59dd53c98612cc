// RUN: lutc-opt %s --split-input-file --verify-diagnostics --parsing-diagnostics | filecheck %s

// The verifiers name the expected and the actual shape.

func.func @codes_shape(%t: !lut.table<1x64x16xf32>, %sums: tensor<1x4xf32>, %c: tensor<2x64x7xi8>, %s: tensor<64x4xf32>) -> tensor<1x64xf32> {
  // CHECK: 'lut.mma' op expects codes of shape [2, 64, 64] but got [2, 64, 7]
  %o = lut.mma %t, %sums, %c, %s as <w2, g64> : !lut.table<1x64x16xf32>, tensor<1x4xf32>, tensor<2x64x7xi8>, tensor<64x4xf32> -> tensor<1x64xf32>
  func.return %o : tensor<1x64xf32>
}

// -----

func.func @planes_vs_bits(%t: !lut.table<1x64x16xf32>, %sums: tensor<1x4xf32>, %c: tensor<2x64x64xi8>, %s: tensor<64x4xf32>) -> tensor<1x64xf32> {
  // CHECK: 'lut.mma' op expects codes of shape [4, 64, 64] but got [2, 64, 64]
  %o = lut.mma %t, %sums, %c, %s as <w4, g64> : !lut.table<1x64x16xf32>, tensor<1x4xf32>, tensor<2x64x64xi8>, tensor<64x4xf32> -> tensor<1x64xf32>
  func.return %o : tensor<1x64xf32>
}

// -----

func.func @mirrored_needs_8(%t: !lut.table<1x64x16xf32>, %sums: tensor<1x4xf32>, %c: tensor<2x64x64xi8>, %s: tensor<64x4xf32>) -> tensor<1x64xf32> {
  // CHECK: 'lut.mma' op format is mirrored and needs 8-entry tables but got 16-entry tables
  %o = lut.mma %t, %sums, %c, %s as <w2, g64, mirrored> : !lut.table<1x64x16xf32>, tensor<1x4xf32>, tensor<2x64x64xi8>, tensor<64x4xf32> -> tensor<1x64xf32>
  func.return %o : tensor<1x64xf32>
}

// -----

func.func @zeros_missing(%t: !lut.table<1x64x16xf32>, %sums: tensor<1x4xf32>, %c: tensor<2x64x64xi8>, %s: tensor<64x4xf32>) -> tensor<1x64xf32> {
  // CHECK: 'lut.mma' op format has zero points but none were given
  %o = lut.mma %t, %sums, %c, %s as <w2, g64, zp> : !lut.table<1x64x16xf32>, tensor<1x4xf32>, tensor<2x64x64xi8>, tensor<64x4xf32> -> tensor<1x64xf32>
  func.return %o : tensor<1x64xf32>
}

// -----

func.func @scales_shape(%q: tensor<8x64xi8>, %s: tensor<8x3xf32>) -> tensor<8x64xf32> {
  // CHECK: 'lut.dequantize' op expects scales of shape [8, 2] but got [8, 3]
  %w = lut.dequantize %q, %s as <w4, g32> : tensor<8x64xi8>, tensor<8x3xf32> -> tensor<8x64xf32>
  func.return %w : tensor<8x64xf32>
}

// -----

func.func @k_multiple_of_4(%x: tensor<1x66xf32>) -> tensor<1x2xf32> {
  // CHECK: 'lut.precompute' op expects K to be a multiple of 4, got 66
  %t, %s = lut.precompute %x sums 64 : tensor<1x66xf32> -> !lut.table<1x16x16xf32>, tensor<1x2xf32>
  func.return %s : tensor<1x2xf32>
}

// -----

func.func @table_rows(%x: tensor<2x64xf32>) -> tensor<2x1xf32> {
  // CHECK: 'lut.precompute' op expects a table of shape [2, 16, E] but got [1, 16, 16]
  %t, %s = lut.precompute %x sums 64 : tensor<2x64xf32> -> !lut.table<1x16x16xf32>, tensor<2x1xf32>
  func.return %s : tensor<2x1xf32>
}

// -----

func.func @bits(%q: tensor<8x64xi8>, %s: tensor<8x2xf32>) -> tensor<8x64xf32> {
  // CHECK: weight bit width must be 1..8, got 9
  %w = lut.dequantize %q, %s as <w9, g32> : tensor<8x64xi8>, tensor<8x2xf32> -> tensor<8x64xf32>
  func.return %w : tensor<8x64xf32>
}

// -----

func.func @table_entries(%x: tensor<1x64xf32>) -> tensor<1x1xf32> {
  // CHECK: a table has 8 or 16 entries, got 4
  %t, %s = lut.precompute %x sums 64 : tensor<1x64xf32> -> !lut.table<1x16x4xf32>, tensor<1x1xf32>
  func.return %s : tensor<1x1xf32>
}

// -----

func.func @scale_group(%x: tensor<1x256xf32>) -> tensor<1x4xf32> {
  // CHECK: int8 tables need a scale group that is a multiple of 4 and at most 64 activations (int16 accumulation bound), got 128
  %t, %s = lut.precompute %x sums 64 : tensor<1x256xf32> -> !lut.table<1x64x16xi8, sg128>, tensor<1x4xf32>
  func.return %s : tensor<1x4xf32>
}

// -----

func.func @bitplanes_result(%q: tensor<8x64xi8>) -> tensor<3x8x16xi8> {
  // CHECK: 'lut.bitplanes' op expects result of shape [2, 8, 16] but got [3, 8, 16]
  %p = lut.bitplanes %q as <w2, g32> : tensor<8x64xi8> -> tensor<3x8x16xi8>
  func.return %p : tensor<3x8x16xi8>
}

// -----

func.func @bad_word(%q: tensor<8x64xi8>, %s: tensor<8x2xf32>) -> tensor<8x64xf32> {
  // CHECK: unknown weight-format word 'w2x' (expected wN, ternary, gN, zp, mirrored)
  %w = lut.dequantize %q, %s as <w2x, g32> : tensor<8x64xi8>, tensor<8x2xf32> -> tensor<8x64xf32>
  func.return %w : tensor<8x64xf32>
}

// -----

// The tile lut-tile chose is a declared attribute: anything else under `tile` is rejected.

func.func @tile_not_a_tile(%t: !lut.table<1x64x16xf32>, %sums: tensor<1x4xf32>, %c: tensor<2x64x64xi8>, %s: tensor<64x4xf32>) -> tensor<1x64xf32> {
  // CHECK: Operation does not verify: 64 : i64 should be of base attribute lut.tile
  %o = lut.mma %t, %sums, %c, %s as <w2, g64> {tile = 64 : i64} : !lut.table<1x64x16xf32>, tensor<1x4xf32>, tensor<2x64x64xi8>, tensor<64x4xf32> -> tensor<1x64xf32>
  func.return %o : tensor<1x64xf32>
}

// -----

func.func @packed_tile_not_a_tile(%t: !lut.table<1x64x16xf32>, %sums: tensor<1x4xf32>, %p: tensor<2x64x32xi8>, %s: tensor<2x4x32xf32>) -> tensor<1x64xf32> {
  // CHECK: Operation does not verify: "n64" should be of base attribute lut.tile
  %o = lut.packed_mma %t, %sums, %p, %s as <w2, g64> {tile = "n64"} : !lut.table<1x64x16xf32>, tensor<1x4xf32>, tensor<2x64x32xi8>, tensor<2x4x32xf32> -> tensor<1x64xf32>
  func.return %o : tensor<1x64xf32>
}

// -----

// Code bytes are read through int8 tables' activations only: f32 tables are rejected.
func.func @code_bytes_needs_int8_tables(%t: !lut.table<1x16x16xf32>, %sums: tensor<1x2xf32>, %p: tensor<2x16x128xi8>, %s: tensor<2x2x32xf32>) -> tensor<1x40xf32> {
  // CHECK: 'lut.packed_mma' op with code_bytes needs int8 tables, got !lut.table<1x16x16xf32>
  %o = lut.packed_mma %t, %sums, %p, %s as <w8, g32> {code_bytes} : !lut.table<1x16x16xf32>, tensor<1x2xf32>, tensor<2x16x128xi8>, tensor<2x2x32xf32> -> tensor<1x40xf32>
  func.return %o : tensor<1x40xf32>
}

// -----

// 128 bytes per (block, table) whatever the width: a 4-bit GEMM's 64 are wrong.
func.func @code_bytes_shape(%t: !lut.table<1x16x16xi8, sg4>, %sums: tensor<1x2xf32>, %p: tensor<2x16x64xi8>, %s: tensor<2x2x32xf32>) -> tensor<1x40xf32> {
  // CHECK: 'lut.packed_mma' op expects code bytes of shape [2, 16, 128] but got [2, 16, 64]
  %o = lut.packed_mma %t, %sums, %p, %s as <w4, g32> {code_bytes} : !lut.table<1x16x16xi8, sg4>, tensor<1x2xf32>, tensor<2x16x64xi8>, tensor<2x2x32xf32> -> tensor<1x40xf32>
  func.return %o : tensor<1x40xf32>
}

// -----

// lut.pack_code_bytes takes as many bit planes as its format's width.
func.func @code_bytes_planes(%c: tensor<4x40x16xi8>) -> tensor<2x16x128xi8> {
  // CHECK: 'lut.pack_code_bytes' op expects 8 bit planes (its format) but got 4
  %p = lut.pack_code_bytes %c as <w8, g32> : tensor<4x40x16xi8> -> tensor<2x16x128xi8>
  func.return %p : tensor<2x16x128xi8>
}
