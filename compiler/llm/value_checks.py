"""Type tests for values that come from users and model configs (Python or numpy scalars):
a bool is never taken for a number, and a number must be finite where that is asked."""

from __future__ import annotations

import math
import numbers

import numpy as np


def is_integer(value) -> bool:
    """An int or numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_number(value, finite: bool = True) -> bool:
    """An int or float (Python or numpy), not a bool; finite unless `finite=False`."""
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and (not finite or math.isfinite(value)))
