"""split / chunk / unbind and as_strided where it is a plain view (issue 11.15), vs eager."""

from __future__ import annotations

import pytest
import torch

from lutc.compiler.frontends.torch_importer import import_exported_program
from lutc.compiler.interp.interpret import run_module
from lutc.runtime.errors import LutcError

from .conftest import max_abs


def _vs_eager(fn, *shapes):
    class M(torch.nn.Module):
        def forward(self, *xs):
            return fn(*xs)

    xs = tuple(torch.randn(*s) for s in shapes)
    im = import_exported_program(torch.export.export(M(), xs))
    out = run_module(im.module, im.weights, [x.numpy() for x in xs])[0]
    ref = fn(*xs).numpy()
    assert out.shape == ref.shape
    assert max_abs(out, ref) <= 1e-6


def _glu(x):
    a, b = x.chunk(2, -1)
    return a * torch.sigmoid(b)


def test_chunk_glu():
    _vs_eager(_glu, (2, 8))


def test_uneven_split_and_unused_part():
    _vs_eager(lambda x: torch.split(x, [3, 1, 2], dim=1)[2] * 2, (2, 6, 4))
    _vs_eager(lambda x: torch.cat(torch.split(x, 4, dim=0)[::-1], 0), (10, 3))


def test_unbind():
    _vs_eager(lambda x: x.unbind(1)[0] - x.unbind(1)[2], (2, 3, 4))


@pytest.mark.parametrize("size,stride,offset", [
    ((4, 6), (6, 1), 0),      # a reshape
    ((3, 4), (4, 1), 8),      # a block from an offset
    ((6, 4), (1, 6), 0),      # a transposed view
])
def test_as_strided_plain_views(size, stride, offset):
    _vs_eager(lambda x: torch.as_strided(x, size, stride, offset) + 0, (4, 6))


def test_as_strided_overlapping_is_one_line():
    class M(torch.nn.Module):
        def forward(self, x):
            return torch.as_strided(x, (3, 4), (1, 1)) + 0

    with pytest.raises(LutcError, match=r"stride=\[1, 1\].*not a plain view"):
        import_exported_program(torch.export.export(M(), (torch.randn(4, 6),)))
