"""CompiledModel.set_i8act_kernel reaches the model's own runtime copy (runtime/model_loader.py):
a compiled two-layer MLP (w4g32, 64 token rows: the int8-activation path, 16-row AMX tiles
where the CPU has them) gives the same outputs bit for bit on the AMX and AVX512-VNNI kernels
and the portable C one (its integers and float epilogue in the same order), the model's
runtime reports the kernel set, and a name this CPU cannot run is a LutcError naming it."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from lutc.runtime import kernels
from lutc.runtime.errors import LutcError
from lutc.runtime.model_loader import CompiledModel
from test.hostile.conftest import X_SHAPE, compile_mlp
from test_kernels import runnable

ROWS = 64


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    return CompiledModel(compile_mlp(tmp_path_factory.mktemp("i8act"), 512, ROWS, "w4g32"))


def model_kernel(model) -> str:
    fn = model.lib.lutrt_i8act_kernel_name
    fn.restype = ctypes.c_char_p
    return fn().decode()


def test_set_i8act_kernel_reaches_the_model(mlp):
    names = [n for n in runnable(kernels.set_i8act_kernel, ("amx", "avx512vnni", "c"))
             if n != "none"]
    kernels.set_i8act_kernel(None)
    x = np.random.default_rng(3).standard_normal((ROWS, X_SHAPE[1])).astype(np.float32)
    outs = {}
    try:
        for name in names:
            mlp.set_i8act_kernel(name)
            assert model_kernel(mlp) == name
            (outs[name],) = mlp(x)
    finally:
        mlp.set_i8act_kernel(None)
    assert model_kernel(mlp) == kernels.i8act_kernel_name()  # auto: the same as the Python copy
    for name in names:
        assert np.array_equal(outs[name], outs["c"]), name
    assert np.abs(outs["c"]).max() > 0


def test_set_i8act_kernel_refuses_unknown_names(mlp):
    with pytest.raises(LutcError, match="unknown int8-activation kernel 'sse9'"):
        mlp.set_i8act_kernel("sse9")
    assert model_kernel(mlp) == kernels.i8act_kernel_name()
