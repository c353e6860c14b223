"""One JSON conversion for call events, analysis and benchmark reports."""

import json
from datetime import timezone
from enum import Enum

import numpy as np

from app.audio.types import AudioClass
from app.clock import utc_now, utc_now_iso
from app.jsonable import event_jsonable, jsonable


class _Colour(Enum):
    RED = "red"


def test_numpy_values_tuples_and_enums_become_plain_json():
    value = {
        1: np.float32(0.5),
        "n": np.int64(3),
        "ok": np.bool_(True),
        "seq": (np.arange(2), [AudioClass.MUSIC, _Colour.RED]),
        "none": None,
        "other": object,
    }
    out = jsonable(value)
    assert out == {"1": 0.5, "n": 3, "ok": True, "seq": [[0, 1], ["MUSIC", "red"]], "none": None, "other": str(object)}
    assert type(out["n"]) is int and type(out["ok"]) is bool and type(out["1"]) is float
    json.dumps(out)  # raises if anything is left that JSON cannot hold


def test_floats_are_kept_whole_unless_asked_and_events_round_to_four_digits():
    assert jsonable(np.float64(0.123456789)) == 0.123456789
    assert jsonable([1 / 3], float_digits=2) == [0.33]
    assert event_jsonable({"confidence": np.float64(0.123456789), "n": np.int32(7), "x": True}) == {
        "confidence": 0.1235,
        "n": 7,
        "x": True,
    }


def test_utc_now_is_aware_utc_and_the_iso_form_has_milliseconds():
    now = utc_now()
    assert now.tzinfo is timezone.utc
    stamp = utc_now_iso()
    assert stamp.endswith("+00:00") and len(stamp.split("T")[1].split("+")[0]) == len("12:00:00.000")
