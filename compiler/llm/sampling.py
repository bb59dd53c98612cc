"""Choosing the next token from logits: greedy, or temperature / top-k / top-p sampling."""

from __future__ import annotations

import numpy as np

from lutc.compiler.llm.value_checks import is_integer, is_number
from lutc.runtime.errors import LutcError


def check_sampling(temperature: float, top_k: int, top_p: float, seed: int | None = None) -> None:
    """Raises LutcError for an out-of-range option, naming it."""
    for name, value in (("temperature", temperature), ("top_p", top_p)):
        if not is_number(value, finite=False):  # NaN and inf fail the range checks below
            raise LutcError(f"{name} must be a number, got {value!r}")
    if not is_integer(top_k):
        raise LutcError(f"top_k must be a number (an integer), got {top_k!r}")
    if seed is not None and (not is_integer(seed) or seed < 0):
        raise LutcError(f"seed must be a non-negative integer, got {seed!r}")
    if not temperature >= 0:
        raise LutcError(f"temperature must be >= 0, got {temperature}")
    if top_k < 0:
        raise LutcError(f"top_k must be >= 0 (0: off), got {top_k}")
    if not 0 < top_p <= 1:
        raise LutcError(f"top_p must be in (0, 1], got {top_p}")


def next_token(logits: np.ndarray, temperature: float, top_k: int, top_p: float,
               rng: np.random.Generator) -> int:
    """logits: f32 [V]. temperature 0 → argmax (greedy, the lowest id on ties, like torch).
    Otherwise softmax(logits / temperature) restricted to the top_k most likely tokens (0: all)
    and to the smallest set whose probability reaches top_p (nucleus sampling, Holtzman et
    al. 2020), renormalized, then one draw from `rng`."""
    if not np.isfinite(logits).all():
        raise LutcError("the model computed non-finite logits (NaN or inf): its weights or "
                        "config hold non-finite or out-of-range values")
    if temperature == 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    order = np.argsort(-z, kind="stable")
    if top_k:
        order = order[:top_k]
    p = np.exp(z[order] - z[order[0]])
    p /= p.sum()
    if top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(p), top_p) + 1)
        order, p = order[:keep], p[:keep] / p[:keep].sum()
    return int(order[rng.choice(len(order), p=p)])
