"""Recordings: what a call keeps of its audio, one WAV file per channel (8 kHz, 16-bit mono).

==========  ==========================  =====================================================
channel     file (recordings dir)       what it holds
==========  ==========================  =====================================================
far_end     ``<call id>.wav``           every frame heard from the company (the hold bridge,
                                        then the snoop), by arrival: the detector's timeline,
                                        so an event's ``t`` is seconds into this file
app         ``<call id>.app.wav``       what the app said to the company: speech (TTS), played
                                        recordings, key tones; on the far end's timeline, as
                                        many samples, silence between utterances
mixed       ``<call id>.mixed.wav``     the two above mixed: the call as heard from the app's seat
bridged     ``<call id>.bridged.wav``   the PBX's recording of the main bridge, from the moment
                                        the user is bridged with the person until the end
==========  ==========================  =====================================================

**Why the app's words are recorded here, not by Asterisk.** The app sends every frame of its
speech itself (RTP into the hold bridge); ``RtpEndpoint.on_sent`` tells each one as it leaves,
and ``SpeechTrack`` lays it on the far end's timeline, so the two files line up sample for sample
by construction (the far end's file is written here too, for the same reason). What Asterisk 22
offers does worse: ``POST /channels/{id}/record`` on the externalMedia channel is refused while
it is bridged (409, "the channel is currently bridged") and it is bridged for the whole call; a
``spy=out`` snoop on the company channel records what the company hears, but costs a channel and a
recording for the whole call, carries the user too once bridged, has no clock shared with our
far-end file (it starts when Asterisk starts it), never carries key presses (RFC 4733 is not
audio), and snoops on Local channels have deadlocked with music on hold (capture b2). Key presses
go through ARI, so the app renders their tones where it pressed them.

**The bridged conversation is Asterisk's.** Only Asterisk hears the user and the person mixed:
``POST /bridges/{main}/record`` once both are in the main bridge, stopped at the end, fetched over
ARI (``GET /recordings/stored/{name}/file``: Asterisk's spool may be on another host) and then
deleted from Asterisk. A fetch that fails leaves it there (its name is logged) rather than lose it.

Values from the user's vault that the app says or keys in are never kept: a 1 kHz tone stands in
for them, as in the events, which name them and never show them.

Nothing here may break a call: a failure to write, record, stop, fetch or delete is logged,
counted (``failures``, by kind; ``GET /api/health``) and the call goes on to its final state.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from app.ari.errors import AriError, AriNotFound
from app.audio.tones import dtmf_signal, tone_bursts
from app.calls import events as ev
from app.calls.context import CallContext
from app.calls.legs import Legs
from app.calls.models import RecordingChannel
from app.media.recorder import SpeechTrack, StreamingWavWriter
from app.media.wavfile import WavError, wav_seconds

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
MASK_HZ = 1000.0  # what stands in for a value from the vault (period 8 samples: frames join up)
MASK_DBFS = -20.0
WRITE_BLOCK_SECONDS = 0.5
BRIDGE_FINISH_TIMEOUT = 3.0  # for RecordingFinished after the stop (Asterisk: a few ms)

_APP_SIDE = (RecordingChannel.FAR_END, RecordingChannel.APP, RecordingChannel.MIXED)


def recording_path(directory: Path, call_id: str, channel: RecordingChannel) -> Path:
    suffix = "" if channel is RecordingChannel.FAR_END else f".{channel.value}"
    return directory / f"{call_id}{suffix}.wav"


class Recordings:
    def __init__(self, ctx: CallContext, legs: Legs, *, failures: Counter[str] | None = None) -> None:
        self.ctx = ctx
        self.legs = legs
        self.failures: Counter[str] = failures if failures is not None else Counter()
        self.directory: Path | None = None
        # Files are written half a second at a time (a crash loses at most that): per 20 ms frame,
        # the calls to write three files cost a held call more than anything but its detector.
        self.track = SpeechTrack(SAMPLE_RATE, block_seconds=WRITE_BLOCK_SECONDS)
        self._far_unwritten: list[np.ndarray] = []
        self._writers: dict[RecordingChannel, StreamingWavWriter] = {}
        self._masking = 0
        self._mask = tone_bursts([(MASK_HZ,)], on_ms=20, off_ms=0, level_dbfs=MASK_DBFS)  # one 20 ms frame
        self._stopped = False  # writing failed: the files keep what they had
        self._bridge_started = False
        self._finished = False

    # ------------------------------------------------------------------ the app's side

    def start(self, directory: Path) -> None:
        """Open the far end's, the app's and the mixed file (the far end's first frame is next)."""
        self.directory = Path(directory)
        try:
            for channel in _APP_SIDE:
                self._writers[channel] = StreamingWavWriter(recording_path(self.directory, self.ctx.call_id, channel))
        except OSError as exc:
            self._failed("start", exc)

    def heard(self, pcm: np.ndarray) -> None:
        """One frame of the far end: its own file, and the app's and mixed files in step with it."""
        if not self._writers or self._stopped:
            return
        try:
            self._far_unwritten.append(pcm)
            ours, mixed = self.track.heard(pcm)
            if len(ours):
                self._write_far_end(self._writers[RecordingChannel.FAR_END])
                self._writers[RecordingChannel.APP].write(ours)
                self._writers[RecordingChannel.MIXED].write(mixed)
        except (OSError, ValueError) as exc:
            self._failed("write", exc)

    def _write_far_end(self, writer: StreamingWavWriter) -> None:
        if self._far_unwritten:
            pcm = np.concatenate(self._far_unwritten)
            self._far_unwritten.clear()
            writer.write(pcm)

    def sent(self, pcm: np.ndarray, talkspurt_start: bool) -> None:
        """A frame the app sent the company (``RtpEndpoint.on_sent`` of the hold bridge's endpoint)."""
        if self._masking:
            pcm = np.resize(self._mask, len(pcm))
        self.track.sent(pcm, talkspurt_start=talkspurt_start)

    def keys(self, digits: str, *, on_ms: int, off_ms: int, masked: bool = False) -> None:
        """Keys Asterisk now plays to the company for us (``POST /channels/{id}/dtmf``)."""
        if masked:
            signal = tone_bursts([(MASK_HZ,)] * len(digits), on_ms=on_ms, off_ms=off_ms, level_dbfs=MASK_DBFS)
        else:
            signal = dtmf_signal(digits, on_ms=on_ms, off_ms=off_ms)
        self.track.place(signal)

    @contextlib.contextmanager
    def masked(self) -> Iterator[None]:
        """What is sent meanwhile is a value from the vault: kept as a tone, never as itself."""
        self._masking += 1
        try:
            yield
        finally:
            self._masking -= 1

    # ------------------------------------------------------------------ the bridged conversation

    async def record_bridge(self) -> None:
        """The user and the person are in the main bridge: Asterisk records it from now on."""
        ids = self.legs.ids
        try:
            await self.legs.ari.bridge_record(ids.main_bridge, ids.bridge_recording, format="wav", if_exists="overwrite")
            self._bridge_started = True
        except Exception as exc:  # noqa: BLE001 - the conversation goes on unrecorded
            self._failed("bridge_record", exc)

    async def stop_bridge(self) -> None:
        """The call ends: stop Asterisk's recording (before the bridge goes)."""
        if not self._bridge_started:
            return
        try:
            await self.legs.ari.stop_recording(self.legs.ids.bridge_recording)
        except AriNotFound:
            pass  # it ended already (the bridge went away): stored as it is
        except Exception as exc:  # noqa: BLE001
            self._failed("bridge_stop", exc)

    async def bridge_finished(self, timeout: float = BRIDGE_FINISH_TIMEOUT) -> None:
        """Wait for RecordingFinished (the file is complete then); the events still flow."""
        if not self._bridge_started:
            return
        name = self.legs.ids.bridge_recording
        done = await self.ctx.wait_for(
            lambda: self.legs.recording_states.get(name) not in (None, "queued", "recording", "paused"),
            timeout,
            interruptible=False,
        )
        if not done:
            log.warning("call %s: no RecordingFinished for %s within %.0f s: fetching it anyway", self.ctx.call_id, name, timeout)

    # ------------------------------------------------------------------ the end

    async def finish(self) -> None:
        """Close the files and announce each (RECORDING_SAVED). Once; never raises."""
        if self._finished:
            return
        self._finished = True
        try:
            self._close_app_side()
        except Exception as exc:  # noqa: BLE001
            self._failed("close", exc)
        if self._bridge_started:
            await self._fetch_bridge()

    def _close_app_side(self) -> None:
        if not self._writers:
            return
        writers, self._writers = self._writers, {}
        try:
            if not self._stopped:
                self._write_far_end(writers[RecordingChannel.FAR_END])
                ours, mixed = self.track.flush()
                writers[RecordingChannel.APP].write(ours)
                writers[RecordingChannel.MIXED].write(mixed)
        finally:
            for writer in writers.values():
                writer.close()
        if self.track.dropped_samples:
            log.info("call %s: %d samples sent after the far end's last frame are not in the app's file",
                     self.ctx.call_id, self.track.dropped_samples)  # fmt: skip
        far_end = writers[RecordingChannel.FAR_END]
        self._saved(RecordingChannel.FAR_END, far_end.path, far_end.duration)
        if self.track.said_samples == 0:
            # The app never spoke: its file is silence and the mix is the far end again.
            for channel in (RecordingChannel.APP, RecordingChannel.MIXED):
                writers[channel].path.unlink(missing_ok=True)
            return
        for channel in (RecordingChannel.APP, RecordingChannel.MIXED):
            self._saved(channel, writers[channel].path, writers[channel].duration)

    async def _fetch_bridge(self) -> None:
        name = self.legs.ids.bridge_recording
        if self.legs.recording_states.get(name) == "failed":
            self._failed("bridge_failed", RuntimeError(f"Asterisk reported RecordingFailed for {name}"))
        directory = self.directory or Path(".")
        path = recording_path(directory, self.ctx.call_id, RecordingChannel.BRIDGED)
        partial = path.with_name(path.name + ".part")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as file:
                async for chunk in self.legs.ari.stored_recording_chunks(name):
                    file.write(chunk)
            seconds = wav_seconds(partial)
            os.replace(partial, path)
        except (AriError, OSError, WavError) as exc:
            partial.unlink(missing_ok=True)
            self._failed("bridge_fetch", exc, f"it stays in Asterisk's spool as {name!r}")
            return
        self._saved(RecordingChannel.BRIDGED, path, seconds)
        try:
            await self.legs.ari.delete_stored_recording(name)
        except Exception as exc:  # noqa: BLE001 - fetched: only Asterisk's copy is left behind
            self._failed("bridge_delete", exc)

    def _saved(self, channel: RecordingChannel, path: Path, seconds: float) -> None:
        self.ctx.emit(ev.RecordingSaved(path=str(path), seconds=round(seconds, 2), channel=channel))

    def _failed(self, what: str, exc: BaseException, consequence: str = "") -> None:
        self.failures[what] += 1
        if what == "start":
            for writer in self._writers.values():
                with contextlib.suppress(OSError):
                    writer.close()
            self._writers = {}
        elif what == "write":
            # The app's side stops recording; what was written stays readable (streaming WAV).
            self._stopped = True
            for writer in self._writers.values():
                with contextlib.suppress(OSError):
                    writer.close()
        log.warning("call %s: recording (%s) failed: %s%s", self.ctx.call_id, what, exc, f"; {consequence}" if consequence else "")
