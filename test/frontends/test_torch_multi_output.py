"""Multi-output ATen ops (issue 11.10): an unused output (max.dim's indices) needs no lowering;
a used unsupported one is a one-line error naming the output and the op."""

from __future__ import annotations

import pytest
import torch

from lutc.compiler.frontends.torch_importer import import_exported_program
from lutc.compiler.interp.interpret import run_module
from lutc.runtime.errors import LutcError

from .conftest import max_abs


class AbsMaxScale(torch.nn.Module):
    def forward(self, x):
        return x / x.abs().max(dim=-1, keepdim=True).values


class ArgMax(torch.nn.Module):
    def forward(self, x):
        return x.max(dim=-1).indices


def test_unused_indices_of_max_dim():
    x = torch.randn(2, 8)
    im = import_exported_program(torch.export.export(AbsMaxScale(), (x,)))
    out = run_module(im.module, im.weights, [x.numpy()])[0]
    assert max_abs(out, AbsMaxScale()(x).numpy()) == 0.0


def test_used_indices_of_max_dim_are_one_line():
    with pytest.raises(LutcError, match=r"output 1 of aten.max is used"):
        import_exported_program(torch.export.export(ArgMax(), (torch.randn(2, 8),)))
