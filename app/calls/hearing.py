"""Hearing: the far end's audio in, and what it means out as domain events.

Every 20 ms frame of the active source (the hold bridge's externalMedia until the handoff, the
snoop's afterwards) goes to the recordings (``app.calls.recordings``), the activity tracker (is
anyone talking), the speech-to-text of the menus while they are read, and the hold / person
detector. The detector's
outputs become events: tones (a special information tone ends the call), classification windows,
hold, and the person's two stages, which go to the handoff (``app.calls.handoff``) while the call
waits for a person.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from app.audio.activity import ActivityTracker
from app.audio.pipeline import AudioPipeline
from app.audio.tones import ToneEvent
from app.audio.types import Classification, HoldDetected, HumanDetected, HumanRetracted, HumanSuspected
from app.calls import events as ev
from app.calls.context import CallContext
from app.calls.handoff import Handoff, Line
from app.calls.listening import CallListener
from app.calls.models import CallStatus
from app.media.endpoint import RtpEndpoint

if TYPE_CHECKING:
    from app.calls.recordings import Recordings

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000


class Hearing:
    def __init__(self, ctx: CallContext, detector: AudioPipeline) -> None:
        self.ctx = ctx
        self.detector = detector
        self.activity = ActivityTracker()
        self.handoff: Handoff | None = None  # set by the session: it speaks with what we hear
        self.listener: CallListener | None = None  # speech-to-text, for flows that read their menus
        self.transcribing = False
        self.active_source = "hold"  # which RTP stream carries the far end right now
        self.samples_heard = 0
        self.recordings: Recordings | None = None  # set by the session: every frame heard is kept
        self.sit: ToneEvent | None = None  # a special information tone heard before the user was on
        self.connected = False  # the user talks with the agent: tones no longer end the call
        self.hold_heard = False  # hold music since our last key press or answer
        self.in_hold = False  # the HOLD step runs
        self.human: HumanDetected | None = None

    @property
    def media_time(self) -> float:
        """Seconds of far-end audio heard so far (the detector's time axis)."""
        return self.samples_heard / SAMPLE_RATE

    @property
    def waiting_for_person(self) -> bool:
        """On hold (music heard) and no person found yet: the handoff speaks to suspicions."""
        return self.in_hold and self.hold_heard and self.human is None

    def input_sent(self) -> None:
        """Whatever played before our input says nothing about where it led."""
        self.hold_heard = False
        self.detector.restart_hold_detection()

    # ------------------------------------------------------------------ audio in

    async def consume(self, source: str, endpoint: RtpEndpoint) -> None:
        # Frames of the active source are announced to the detector as they arrive, and heard
        # when this task's turn comes: calls whose frames came meanwhile share the work.
        endpoint.on_frame = lambda frame: self._announce(source, frame.pcm)
        async for frame in endpoint.frames():
            if source == self.active_source:
                self.hear(frame.pcm, concealed=frame.concealed)

    def _announce(self, source: str, pcm: np.ndarray) -> None:
        if source == self.active_source:
            self.detector.announce(pcm)

    def hear_what_arrived(self, endpoint: RtpEndpoint | None) -> None:
        """Audio already received but not yet heard (a busy event loop): hear it now."""
        if endpoint is not None:
            for frame in endpoint.take_unread():
                self.hear(frame.pcm, concealed=frame.concealed)

    def hear(self, pcm: np.ndarray, *, concealed: bool = False) -> None:
        """One frame of the far end (``concealed``: made up by the jitter buffer for a lost packet)."""
        t = self.media_time
        self.samples_heard += len(pcm)
        if self.recordings is not None:
            self.recordings.heard(pcm)
        self.activity.push(pcm, t, len(pcm) / SAMPLE_RATE)
        if self.transcribing and self.listener is not None:
            self.listener.push(pcm, t)
        changed = False
        for output in self.detector.push(pcm, t, concealed=concealed):
            changed = True
            if isinstance(output, ToneEvent):
                self.ctx.emit(ev.ToneDetected(kind=output.kind, t=round(output.t, 3), region=output.region, detail=output.detail))
                if output.kind == "sit" and not self.connected:
                    self.sit = output
            elif isinstance(output, Classification):
                self.ctx.emit(
                    ev.AudioClassified(
                        t_start=round(output.t_start, 3),
                        t_end=round(output.t_end, 3),
                        audio_class=output.audio_class.value,
                        confidence=round(output.confidence, 3),
                        features={k: round(float(v), 4) for k, v in output.features.items()},
                    )
                )
            elif isinstance(output, HoldDetected):
                self.hold_heard = True
                self.ctx.emit(ev.HoldDetected(t=round(output.t, 3), confidence=round(output.confidence, 3), evidence=output.evidence))
            elif self.waiting_for_person:
                self._person_decision(output)
        if self.handoff is not None and (self.waiting_for_person or self.ctx.status is CallStatus.TRANSFERRING):
            self.handoff.heard(t, self.detector.far_end_speaking)
        # Waits on the far end's sound (a prompt heard long enough) are woken by every loud frame;
        # on hold the only wait is for the person, an output: music must not wake it 50 times a second.
        if changed or (self.activity.active and not self.waiting_for_person):
            self.ctx.notify()

    def _person_decision(self, output: HumanSuspected | HumanRetracted | HumanDetected) -> None:
        """The detector's two stages: a suspicion is greeted, a detection rings the user."""
        assert self.handoff is not None
        if isinstance(output, HumanSuspected):
            self.ctx.emit(ev.HumanSuspected(t=round(output.t, 3), confidence=round(output.confidence, 3), evidence=output.evidence))
            self.handoff.suspected(output)
        elif isinstance(output, HumanRetracted):
            self.ctx.emit(ev.HumanRetracted(t=round(output.t, 3), suspected_t=round(output.suspected_t, 3), evidence=output.evidence))
            self.handoff.retracted(output)
        elif isinstance(output, HumanDetected):
            self.human = output
            self.handoff.detected(output)

    def said(self, line: Line, text: str, t: float, seconds: float) -> None:
        """The handoff said something to the far end."""
        if line is Line.PROBE:
            self.ctx.emit(ev.HumanProbe(text=text, t=t, seconds=seconds))
        else:
            self.ctx.emit(ev.AgentGreeted(line=line.value, text=text, t=t, seconds=seconds))
