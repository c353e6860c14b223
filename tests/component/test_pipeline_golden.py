"""The pipeline's outputs over a fixed set of varied calls are exactly those recorded.

Speed-ups of ``app.audio`` must not change what the detector says: every classification, hold
and human decision (times, confidences, evidence) and tone event is compared with the record in
``pipeline_golden.json`` bit for bit (floats unrounded). An intended change of behaviour
re-records it: ``python -m bench.pipeline_golden --write``.
"""

from __future__ import annotations

import json

import pytest

from bench.pipeline_golden import GOLDEN_PATH, first_difference, record


@pytest.fixture(scope="module")
def fresh(corpus):
    return json.loads(json.dumps(record(corpus)))  # through JSON, as the record was written


@pytest.mark.corpus
@pytest.mark.timeout(300)
def test_every_output_is_identical_to_the_record(fresh):
    expected = json.loads(GOLDEN_PATH.read_text())
    assert first_difference(expected, fresh) is None, first_difference(expected, fresh)


@pytest.mark.corpus
def test_the_record_covers_every_kind_of_output(fresh):
    kinds = {output["type"] for call in fresh.values() for output in call["outputs"]}
    assert kinds >= {"Classification", "HoldDetected", "HumanSuspected", "HumanRetracted", "HumanDetected", "ToneEvent"}
    assert sum(call["echo_frames"] for call in fresh.values()) > 0
    assert sum(call["concealed_frames"] for call in fresh.values()) > 0


def test_a_difference_in_the_last_bit_of_a_float_is_found():
    expected = {"call": {"outputs": [{"type": "Classification", "confidence": 0.1 + 0.2}]}}
    actual = {"call": {"outputs": [{"type": "Classification", "confidence": 0.3}]}}
    assert first_difference(expected, actual) == "/call/outputs[0]/confidence: 0.30000000000000004 != 0.3"
    assert first_difference(expected, json.loads(json.dumps(expected))) is None
