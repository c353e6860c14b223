"""A call's transcript from its events: menus heard, keys pressed, words said, nothing else."""

from __future__ import annotations

from app.calls import events as ev
from app.calls.events import CallEvent
from app.calls.transcript import TranscriptLine, render_transcript, transcript_lines


def _event(data: ev.EventData, at: str = "2026-12-06T10:00:00+00:00") -> dict:
    return CallEvent("c1", data, at).to_dict()


EVENTS = [
    _event(ev.CallAnswered()),
    _event(
        ev.IvrMenuDetected(step_id="main", transcript=" Press 2 for billing. ", t_start=0, t_end=3, heard_seconds=3, listened_seconds=4),
        "2026-12-06T10:00:03+00:00",
    ),
    _event(ev.IvrMenuDetected(step_id="quiet", transcript="", t_start=3, t_end=4, heard_seconds=0, listened_seconds=1)),
    _event(ev.IvrDtmfSent(step_id="main", digits="2", purpose="selection"), "2026-12-06T10:00:04+00:00"),
    _event(ev.IvrSpeechSent(step_id="acct", text="<account_number>", seconds=1.2, purpose="user_data")),
    _event(ev.HoldProgress(hold_seconds=4)),
    _event(ev.AgentGreeted(line="greeting", text="Hi, thanks for picking up!", t=30, seconds=1.4)),
    _event(ev.HumanProbe(text="Hello? Are you there?", t=40, seconds=1.1)),
]


def test_menus_keys_and_words_in_order_and_nothing_else():
    lines = transcript_lines(EVENTS)
    assert [(line.speaker, line.kind, line.text) for line in lines] == [
        ("company", "menu", "Press 2 for billing."),
        ("us", "dtmf", "2"),
        ("us", "speech", "<account_number>"),
        ("us", "greeting", "Hi, thanks for picking up!"),
        ("us", "probe", "Hello? Are you there?"),
    ]
    assert lines[0].step_id == "main" and lines[0].at == "2026-12-06T10:00:03+00:00"


def test_rendered_as_one_line_each_with_the_clock():
    text = render_transcript(transcript_lines(EVENTS[:4]))
    assert text == "10:00:03 company said: Press 2 for billing.\n10:00:04 we pressed: 2\n"


def test_an_empty_transcript_says_so():
    assert render_transcript([]) == "(nothing said or pressed yet)\n"
    assert render_transcript([TranscriptLine("not a time", "us", "dtmf", "1")]) == "not a time we pressed: 1\n"
