"""Plain JSON values from what the audio code produces: one conversion for events, reports and analysis."""

from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np

EVENT_FLOAT_DIGITS = 4  # evidence in call events: enough to read, short enough to store per window


def jsonable(value: Any, *, float_digits: int | None = None) -> Any:
    """``value`` with numpy scalars and arrays, tuples and enums turned into JSON values.

    Dict keys become strings; anything else JSON cannot hold becomes its ``str``.
    ``float_digits``: round every float to that many digits (None: keep them whole).
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v, float_digits=float_digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, float_digits=float_digits) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), float_digits=float_digits)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        return value if float_digits is None else round(value, float_digits)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def event_jsonable(value: Any) -> Any:
    """Detector evidence as a call event carries it (floats rounded to ``EVENT_FLOAT_DIGITS``)."""
    return jsonable(value, float_digits=EVENT_FLOAT_DIGITS)
