// RUN: lutc-opt %s --split-input-file --verify-diagnostics --parsing-diagnostics | filecheck %s

// lut.attention's verifier names what it expects and what it got.

func.func @kv_heads(%q: tensor<1x4x3x8xf32>, %k: tensor<1x3x5x8xf32>, %v: tensor<1x3x5x8xf32>) -> tensor<1x4x3x8xf32> {
  // CHECK: 'lut.attention' op expects the query heads (4) to be a multiple of the kv heads (3)
  %o = lut.attention %q, %k, %v {scale = 1.0 : f32, causal = 0 : i64, sliding_window = 0 : i64, softcap = 0.0 : f32} : tensor<1x4x3x8xf32>, tensor<1x3x5x8xf32>, tensor<1x3x5x8xf32> -> tensor<1x4x3x8xf32>
  func.return %o : tensor<1x4x3x8xf32>
}

// -----

func.func @mask_shape(%q: tensor<2x4x3x8xf32>, %k: tensor<2x2x5x8xf32>, %v: tensor<2x2x5x8xf32>, %m: tensor<5x3xf32>) -> tensor<2x4x3x8xf32> {
  // CHECK: 'lut.attention' op expects a mask of shape [3, 5] or [2, 3, 5] but got [5, 3]
  %o = lut.attention %q, %k, %v mask %m {scale = 1.0 : f32, causal = 0 : i64, sliding_window = 0 : i64, softcap = 0.0 : f32} : tensor<2x4x3x8xf32>, tensor<2x2x5x8xf32>, tensor<2x2x5x8xf32>, tensor<5x3xf32> -> tensor<2x4x3x8xf32>
  func.return %o : tensor<2x4x3x8xf32>
}

// -----

func.func @window_without_causal(%q: tensor<4x3x8xf32>, %k: tensor<4x5x8xf32>, %v: tensor<4x5x8xf32>) -> tensor<4x3x8xf32> {
  // CHECK: 'lut.attention' op expects a sliding window >= 0 that comes with causal attention, got window 2 with causal 0
  %o = lut.attention %q, %k, %v {scale = 1.0 : f32, causal = 0 : i64, sliding_window = 2 : i64, softcap = 0.0 : f32} : tensor<4x3x8xf32>, tensor<4x5x8xf32>, tensor<4x5x8xf32> -> tensor<4x3x8xf32>
  func.return %o : tensor<4x3x8xf32>
}

// -----

func.func @head_dim(%q: tensor<1x4x3x8xf32>, %k: tensor<1x2x5x4xf32>, %v: tensor<1x2x5x4xf32>) -> tensor<1x4x3x8xf32> {
  // CHECK: 'lut.attention' op expects k of shape [B, KVH, Skv, D] with q's batch and D = 8 but got [1, 2, 5, 4]
  %o = lut.attention %q, %k, %v {scale = 1.0 : f32, causal = 0 : i64, sliding_window = 0 : i64, softcap = 0.0 : f32} : tensor<1x4x3x8xf32>, tensor<1x2x5x4xf32>, tensor<1x2x5x4xf32> -> tensor<1x4x3x8xf32>
  func.return %o : tensor<1x4x3x8xf32>
}

// -----

// lut.kv_attention: the cache is f32 or f16, nothing else.
func.func @kv_cache_type(%q: tensor<2x4x8xf32>, %k: tensor<2x2x8xf32>, %v: tensor<2x2x8xf32>, %c: tensor<3x2x2x16x8xf64>, %pos: tensor<2xi64>, %rows: tensor<1xi64>) -> tensor<2x4x8xf32> {
  // CHECK: 'lut.kv_attention' op expects an f32 or f16 cache
  %o = lut.kv_attention %q, %k, %v, %c, %pos, %rows {layer = 1 : i64, scale = 0.125 : f32, sliding_window = 0 : i64, softcap = 0.0 : f32} : (tensor<2x4x8xf32>, tensor<2x2x8xf32>, tensor<2x2x8xf32>, tensor<3x2x2x16x8xf64>, tensor<2xi64>, tensor<1xi64>) -> tensor<2x4x8xf32>
  func.return %o : tensor<2x4x8xf32>
}

// -----

func.func @kv_query_type(%q: tensor<2x4x8xf16>, %k: tensor<2x2x8xf32>, %v: tensor<2x2x8xf32>, %c: tensor<3x2x2x16x8xf16>, %pos: tensor<2xi64>, %rows: tensor<1xi64>) -> tensor<2x4x8xf16> {
  // CHECK: 'lut.kv_attention' op expects f32 q
  %o = lut.kv_attention %q, %k, %v, %c, %pos, %rows {layer = 1 : i64, scale = 0.125 : f32, sliding_window = 0 : i64, softcap = 0.0 : f32} : (tensor<2x4x8xf16>, tensor<2x2x8xf32>, tensor<2x2x8xf32>, tensor<3x2x2x16x8xf16>, tensor<2xi64>, tensor<1xi64>) -> tensor<2x4x8xf16>
  func.return %o : tensor<2x4x8xf16>
}
