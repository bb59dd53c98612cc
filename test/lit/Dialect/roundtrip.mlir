// RUN: lutc-opt %s | filecheck %s
// RUN: lutc-opt %s | lutc-opt | filecheck %s
// RUN: lutc-opt %s --print-op-generic | lutc-opt | filecheck %s

// CHECK-LABEL: func.func @every_op
func.func @every_op(%x: tensor<3x256xf32>) -> (tensor<3x64xf32>, tensor<3x64xf32>, tensor<64x256xf32>) {
  // CHECK:      %q = lut.weight "l0.q" : tensor<64x256xi8>
  %q = lut.weight "l0.q" : tensor<64x256xi8>
  %s = lut.weight "l0.s" : tensor<64x4xf32>
  %z = lut.weight "l0.z" : tensor<64x4xf32>
  // CHECK:      %w = lut.dequantize %q, %s, %z as <w2, g64, zp> : tensor<64x256xi8>, tensor<64x4xf32>, tensor<64x4xf32> -> tensor<64x256xf32>
  %w = lut.dequantize %q, %s, %z as <w2, g64, zp> : tensor<64x256xi8>, tensor<64x4xf32>, tensor<64x4xf32> -> tensor<64x256xf32>
  // CHECK-NEXT: %p = lut.bitplanes %q as <w2, g64, zp> : tensor<64x256xi8> -> tensor<2x64x64xi8>
  %p = lut.bitplanes %q as <w2, g64, zp> : tensor<64x256xi8> -> tensor<2x64x64xi8>
  // CHECK-NEXT: %t, %sums = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x16xf32>, tensor<3x4xf32>
  %t, %sums = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x16xf32>, tensor<3x4xf32>
  // CHECK-NEXT: %o = lut.mma %t, %sums, %p, %s, %z as <w2, g64, zp> : !lut.table<3x64x16xf32>, tensor<3x4xf32>, tensor<2x64x64xi8>, tensor<64x4xf32>, tensor<64x4xf32> -> tensor<3x64xf32>
  %o = lut.mma %t, %sums, %p, %s, %z as <w2, g64, zp> : !lut.table<3x64x16xf32>, tensor<3x4xf32>, tensor<2x64x64xi8>, tensor<64x4xf32>, tensor<64x4xf32> -> tensor<3x64xf32>
  // CHECK-NEXT: %t8, %sums8 = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x8xi8, sg32>, tensor<3x4xf32>
  %t8, %sums8 = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x8xi8, sg32>, tensor<3x4xf32>
  // CHECK-NEXT: %o8 = lut.mma %t8, %sums8, %p, %s as <ternary, g64, mirrored> : !lut.table<3x64x8xi8, sg32>, tensor<3x4xf32>, tensor<2x64x64xi8>, tensor<64x4xf32> -> tensor<3x64xf32>
  %o8 = lut.mma %t8, %sums8, %p, %s as <ternary, g64, mirrored> : !lut.table<3x64x8xi8, sg32>, tensor<3x4xf32>, tensor<2x64x64xi8>, tensor<64x4xf32> -> tensor<3x64xf32>
  func.return %o, %o8, %w : tensor<3x64xf32>, tensor<3x64xf32>, tensor<64x256xf32>
}

// CHECK-LABEL: func.func @formats
func.func @formats(%q: tensor<8x64xi8>, %s: tensor<8x2xf32>, %s1: tensor<8x1xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) {
  // CHECK: as <w4, g32> :
  %a = lut.dequantize %q, %s as <w4, g32> : tensor<8x64xi8>, tensor<8x2xf32> -> tensor<8x64xf32>
  // CHECK: as <w1, g32> :
  %b = lut.dequantize %q, %s as <w1, g32> : tensor<8x64xi8>, tensor<8x2xf32> -> tensor<8x64xf32>
  // CHECK: as <ternary, g64> :
  %c = lut.dequantize %q, %s1 as <ternary, g64> : tensor<8x64xi8>, tensor<8x1xf32> -> tensor<8x64xf32>
  func.return %a, %b, %c : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>
}

// The packed-weight ops, the code-byte layout included, print and parse back (generic form too).
// CHECK-LABEL: func.func @packed
// CHECK:      %pp = lut.pack %p8 : tensor<8x40x16xi8> -> tensor<2x16x128xi8>
// CHECK-NEXT: %pb = lut.pack_code_bytes %p8 as <w8, g32, mirrored> : tensor<8x40x16xi8> -> tensor<2x16x128xi8>
// CHECK-NEXT: %ps = lut.pack_scales %s : tensor<40x2xf32> -> tensor<2x2x32xf32>
// CHECK-NEXT: %y = lut.packed_mma %t, %sums, %pb, %ps as <w8, g32, mirrored> {code_bytes} : !lut.table<1x16x8xi8, sg4>, tensor<1x2xf32>, tensor<2x16x128xi8>, tensor<2x2x32xf32> -> tensor<1x40xf32>
func.func @packed(%t: !lut.table<1x16x8xi8, sg4>, %sums: tensor<1x2xf32>, %p8: tensor<8x40x16xi8>, %s: tensor<40x2xf32>) -> (tensor<2x16x128xi8>, tensor<1x40xf32>) {
  %pp = lut.pack %p8 : tensor<8x40x16xi8> -> tensor<2x16x128xi8>
  %pb = lut.pack_code_bytes %p8 as <w8, g32, mirrored> : tensor<8x40x16xi8> -> tensor<2x16x128xi8>
  %ps = lut.pack_scales %s : tensor<40x2xf32> -> tensor<2x2x32xf32>
  %y = lut.packed_mma %t, %sums, %pb, %ps as <w8, g32, mirrored> {code_bytes} : !lut.table<1x16x8xi8, sg4>, tensor<1x2xf32>, tensor<2x16x128xi8>, tensor<2x2x32xf32> -> tensor<1x40xf32>
  func.return %pp, %y : tensor<2x16x128xi8>, tensor<1x40xf32>
}

// lut.kv_attention over an f32 and an f16 KV cache (the op's docstring: the cache's element
// type picks lutrt_attention_kv or lutrt_attention_kv_f16).
// CHECK-LABEL: func.func @kv_attention
// CHECK:      %o = lut.kv_attention %q, %k, %v, %c32, %pos, %rows {layer = 1 : i64, scale = 1.250000e-01 : f32, sliding_window = 0 : i64, softcap = 0.000000e+00 : f32} : (tensor<2x4x8xf32>, tensor<2x2x8xf32>, tensor<2x2x8xf32>, tensor<3x2x2x16x8xf32>, tensor<2xi64>, tensor<1xi64>) -> tensor<2x4x8xf32>
// CHECK-NEXT: %h = lut.kv_attention %q, %k, %v, %c16, %pos, %rows {layer = 2 : i64, scale = 1.250000e-01 : f32, sliding_window = 4 : i64, softcap = 0.000000e+00 : f32} : (tensor<2x4x8xf32>, tensor<2x2x8xf32>, tensor<2x2x8xf32>, tensor<3x2x2x16x8xf16>, tensor<2xi64>, tensor<1xi64>) -> tensor<2x4x8xf32>
func.func @kv_attention(%q: tensor<2x4x8xf32>, %k: tensor<2x2x8xf32>, %v: tensor<2x2x8xf32>, %c32: tensor<3x2x2x16x8xf32>, %c16: tensor<3x2x2x16x8xf16>, %pos: tensor<2xi64>, %rows: tensor<1xi64>) -> (tensor<2x4x8xf32>, tensor<2x4x8xf32>) {
  %o = lut.kv_attention %q, %k, %v, %c32, %pos, %rows {layer = 1 : i64, scale = 0.125 : f32, sliding_window = 0 : i64, softcap = 0.0 : f32} : (tensor<2x4x8xf32>, tensor<2x2x8xf32>, tensor<2x2x8xf32>, tensor<3x2x2x16x8xf32>, tensor<2xi64>, tensor<1xi64>) -> tensor<2x4x8xf32>
  %h = lut.kv_attention %q, %k, %v, %c16, %pos, %rows {layer = 2 : i64, scale = 0.125 : f32, sliding_window = 4 : i64, softcap = 0.0 : f32} : (tensor<2x4x8xf32>, tensor<2x2x8xf32>, tensor<2x2x8xf32>, tensor<3x2x2x16x8xf16>, tensor<2xi64>, tensor<1xi64>) -> tensor<2x4x8xf32>
  func.return %o, %h : tensor<2x4x8xf32>, tensor<2x4x8xf32>
}
