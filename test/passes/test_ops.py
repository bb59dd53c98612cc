"""The ops and attributes the passes add: they print, parse back, and their verifiers say
what is wrong."""

import pytest
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError, VerifyException

from lutc.compiler.context import make_context

ROUNDTRIP = """\
builtin.module {
  func.func @main(%x: tensor<2x64xf32>, %q: tensor<40x64xi8>, %s: tensor<40x2xf32>, %z: tensor<40x2xf32>, %g: tensor<64xf32>) -> (tensor<2x40xf32>, tensor<2x64xf32>) {
    %planes = lut.bitplanes %q as <w3, g32, zp, mirrored> : tensor<40x64xi8> -> tensor<3x40x16xi8>
    %c = lut.mirror_codes %planes : tensor<3x40x16xi8> -> tensor<3x40x16xi8>
    %s2 = lut.mirror_scales %s : tensor<40x2xf32> -> tensor<40x2xf32>
    %z2 = lut.mirror_zeros %z as <w3, g32, zp> : tensor<40x2xf32> -> tensor<40x2xf32>
    %p = lut.pack %c : tensor<3x40x16xi8> -> tensor<2x16x48xi8>
    %ps = lut.pack_scales %s2 : tensor<40x2xf32> -> tensor<2x2x32xf32>
    %pz = lut.pack_scales %z2 : tensor<40x2xf32> -> tensor<2x2x32xf32>
    %e = tensor.empty() : tensor<2x64xf32>
    %h, %table, %sums = lut.fused_precompute sums 32 : tensor<2x64xf32>, !lut.table<2x16x8xi8, sg16>, tensor<2x2xf32> {
      %0 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x, %g : tensor<2x64xf32>, tensor<64xf32>) outs(%e : tensor<2x64xf32>) {
      ^bb0(%a : f32, %b : f32, %o : f32):
        %m = arith.mulf %a, %b : f32
        linalg.yield %m : f32
      } -> tensor<2x64xf32>
      lut.yield %0 : tensor<2x64xf32>
    }
    %y = lut.packed_mma %table, %sums, %p, %ps, %pz as <w3, g32, zp, mirrored> {tile = #lut.tile<m2, n64, k64, vec_lut>} : !lut.table<2x16x8xi8, sg16>, tensor<2x2xf32>, tensor<2x16x48xi8>, tensor<2x2x32xf32>, tensor<2x2x32xf32> -> tensor<2x40xf32>
    func.return %y, %h : tensor<2x40xf32>, tensor<2x64xf32>
  }
}"""


def parse(text: str):
    module = Parser(make_context(), text).parse_module()
    module.verify()
    return module


def test_roundtrip():
    module = parse(ROUNDTRIP)
    printed = str(module)
    assert str(parse(printed)) == printed
    assert "#lut.tile<m2, n64, k64, vec_lut>" in printed


def body(ops: str, args: str = "%x: tensor<1x64xf32>") -> str:
    return f"func.func @main({args}) {{\n{ops}\n  func.return\n}}"


@pytest.mark.parametrize("ops, args, message", [
    ('%p = lut.pack %c : tensor<2x40x16xi8> -> tensor<2x16x48xi8>', "%c: tensor<2x40x16xi8>",
     r"expects packed weights of shape \[2, 16, 32\] but got \[2, 16, 48\]"),
    ('%p = lut.pack_scales %s : tensor<40x2xf32> -> tensor<40x2xf32>', "%s: tensor<40x2xf32>",
     r"expects packed scales of shape \[2, 2, 32\]"),
    ('%y = lut.mirror_zeros %z as <w2, g32, mirrored> : tensor<4x2xf32> -> tensor<4x2xf32>',
     "%z: tensor<4x2xf32>", "non-mirrored format"),
    ('%y = lut.mirror_scales %s : tensor<4x2xf32> -> tensor<4x3xf32>', "%s: tensor<4x2xf32>",
     "expects its result to have the type of its scales"),
    ('%y = lut.packed_mma %t, %s, %p, %ps as <w2, g64> : !lut.table<1x16x8xf32>, tensor<1x1xf32>, '
     'tensor<1x16x32xi8>, tensor<1x1x32xf32> -> tensor<1x32xf32>',
     "%t: !lut.table<1x16x8xf32>, %s: tensor<1x1xf32>, %p: tensor<1x16x32xi8>, %ps: tensor<1x1x32xf32>",
     "is not mirrored and needs 16-entry tables but got 8-entry tables"),
])
def test_verifier_messages(ops, args, message):
    with pytest.raises(VerifyException, match=message):
        parse(body(ops, args))


@pytest.mark.parametrize("attr, message", [
    ("#lut.tile<m2, n64>", "needs all of mN, nN and kN"),
    ("#lut.tile<m2, n64, k64, blocked>", "unknown tile word 'blocked'"),
])
def test_tile_syntax_errors(attr, message):
    with pytest.raises(ParseError, match=message):
        parse(body(f'%y = "test.op"() {{tile = {attr}}} : () -> ()'))


def test_tile_verifier():
    with pytest.raises(VerifyException, match="multiple of 32 weight rows"):
        parse(body('"test.op"() {tile = #lut.tile<m2, n40, k64, per_token>} : () -> ()'))
