"""One CompiledModel called from several Python threads at once returns, for every call, what
a lone call returns (each thread has its own arena: runtime/model_loader.py). With one shared
arena, 1-30% of these calls (depending on load) returned another call's numbers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lutc.runtime.model_loader import CompiledModel
from test.hostile.conftest import X_SHAPE, compile_mlp

ROWS = 64  # enough work per call that two calls overlap in C
CALLS = 500  # per thread


@pytest.fixture(scope="module")
def wide_mlp(tmp_path_factory):
    return compile_mlp(tmp_path_factory.mktemp("threads"), 1024, ROWS, "w2g16")


def test_concurrent_calls_are_correct(wide_mlp):
    model = CompiledModel(wide_mlp)
    model.set_num_threads(1)  # no pool lock between the two calls: they overlap fully
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((ROWS, X_SHAPE[1])).astype(np.float32) for _ in range(4)]
    expected = [model(x)[0] for x in xs]
    together = threading.Barrier(2)  # both threads enter C at the same moment
    wrong = []

    def worker(k: int) -> None:
        for i in range(CALLS):
            j = (k + i) % len(xs)
            together.wait()
            (y,) = model(xs[j])
            if not np.array_equal(y, expected[j]):
                wrong.append((k, i))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    model.set_num_threads(0)
    assert not wrong, f"{len(wrong)} of {2 * CALLS} concurrent calls returned wrong results"
