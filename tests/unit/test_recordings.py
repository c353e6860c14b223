"""The recordings room of a call (``app.calls.recordings``), with a fake ARI host and real files.

The app's side (far end, what the app said, the two mixed) is written as the far end is heard;
the bridged conversation is Asterisk's, recorded, stopped, fetched and deleted over ARI. Nothing
that fails here may stop the call: it is counted and the rest goes on.
"""

from __future__ import annotations

import asyncio
import io
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from app.audio.tones import ToneDetector
from app.calls import events as ev
from app.calls.hearing import Hearing
from app.calls.legs import Legs, MediaPorts
from app.calls.models import CallRequest, RecordingChannel
from app.calls.recordings import MASK_HZ, Recordings
from app.calls.steps import FlowSteps, Media
from app.config import Settings
from app.devices import Device
from app.media.recorder import StreamingWavWriter
from app.media.wavfile import read_wav
from tests.fakes.ari_host import FakeAriHost
from tests.unit.test_call_rooms import RecordingHandoff, ScriptedDetector, context

FRAME = 160


def wav_bytes(seconds: float, value: int = 300) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.full(round(seconds * 8000), value, "<i2").tobytes())
    return out.getvalue()


def room(tmp_path: Path, **fake) -> tuple[Recordings, FakeAriHost, list[ev.CallEvent]]:
    ctx, published = context("c1")
    ari = FakeAriHost(**fake)
    legs = Legs(ctx, ari, MediaPorts("127.0.0.1", 40000, 40100))  # type: ignore[arg-type]
    recordings = Recordings(ctx, legs, failures=Counter())
    recordings.start(tmp_path / "rec")
    return recordings, ari, published


def saved(published: list[ev.CallEvent]) -> dict[RecordingChannel, ev.RecordingSaved]:
    return {e.data.channel: e.data for e in published if isinstance(e.data, ev.RecordingSaved)}


def frame(value: int) -> np.ndarray:
    return np.full(FRAME, value, np.int16)


def words(frames: int) -> list[np.ndarray]:
    return [(1000 + np.arange(FRAME) + 7 * i).astype(np.int16) for i in range(frames)]


async def test_the_far_end_what_we_said_and_the_mix_line_up_sample_for_sample(tmp_path):
    recordings, _, published = room(tmp_path)
    for _ in range(50):  # 1 s of the far end before we speak
        recordings.heard(frame(5))
    said = words(10)
    for i, pcm in enumerate(said):
        recordings.sent(pcm, i == 0)
        recordings.heard(frame(5))
    for _ in range(40):
        recordings.heard(frame(5))
    await recordings.finish()

    files = saved(published)
    assert list(files) == [RecordingChannel.FAR_END, RecordingChannel.APP, RecordingChannel.MIXED]
    assert files[RecordingChannel.FAR_END].path == str(tmp_path / "rec" / "c1.wav")
    assert files[RecordingChannel.APP].path == str(tmp_path / "rec" / "c1.app.wav")
    assert files[RecordingChannel.MIXED].path == str(tmp_path / "rec" / "c1.mixed.wav")
    assert {f.seconds for f in files.values()} == {2.0}
    far, ours, mixed = (read_wav(files[c].path).pcm for c in RecordingChannel if c in files)
    assert len(far) == len(ours) == len(mixed) == 100 * FRAME
    spoken = np.concatenate(said)
    assert not ours[: 50 * FRAME].any() and not ours[60 * FRAME :].any()
    assert np.array_equal(ours[50 * FRAME : 60 * FRAME], spoken)
    assert np.array_equal(mixed, far + ours)


async def test_the_far_end_is_recorded_frame_by_frame_through_the_hearing(tmp_path):
    recordings, _, published = room(tmp_path)
    hearing = Hearing(recordings.ctx, ScriptedDetector([]))  # type: ignore[arg-type]
    hearing.handoff = RecordingHandoff()  # type: ignore[assignment]
    hearing.recordings = recordings
    for value in (100, -100, 50):
        hearing.hear(frame(value))
    await recordings.finish()
    audio = read_wav(saved(published)[RecordingChannel.FAR_END].path)
    assert len(audio.pcm) == 480 and audio.pcm[0] == 100 and audio.pcm[-1] == 50


async def test_a_call_where_the_app_said_nothing_keeps_only_the_far_end(tmp_path):
    recordings, _, published = room(tmp_path)
    for _ in range(20):
        recordings.heard(frame(5))
    await recordings.finish()
    assert list(saved(published)) == [RecordingChannel.FAR_END]
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == ["c1.wav"]


async def test_values_from_the_vault_are_kept_as_a_tone_never_as_themselves(tmp_path):
    recordings, _, published = room(tmp_path)
    recordings.heard(frame(0))
    secret = words(5)
    with recordings.masked():
        for i, pcm in enumerate(secret):
            recordings.sent(pcm, i == 0)
            recordings.heard(frame(0))
    for _ in range(20):
        recordings.heard(frame(0))
    recordings.keys("4321", on_ms=100, off_ms=100, masked=True)
    for _ in range(60):
        recordings.heard(frame(0))
    recordings.keys("7", on_ms=100, off_ms=100)
    for _ in range(30):
        recordings.heard(frame(0))
    await recordings.finish()

    ours = read_wav(saved(published)[RecordingChannel.APP].path).pcm
    masked_speech = ours[FRAME : 6 * FRAME]
    assert not np.isin(np.concatenate(secret), ours[: 26 * FRAME]).any(), "not a sample of the words is kept"
    spectrum = np.abs(np.fft.rfft(masked_speech.astype(float)))
    assert np.argmax(spectrum) * 8000 / len(masked_speech) == pytest.approx(MASK_HZ, abs=10)
    detector = ToneDetector()
    keys = [
        e.detail["digit"]
        for start in range(0, len(ours), FRAME)
        for e in detector.push(ours[start : start + FRAME], start / 8000)
        if e.kind == "dtmf"
    ]
    assert keys == ["7"], "the vault's keys are tones no decoder reads; the others are the keys"
    slots = [ours[26 * FRAME + i * 1600 : 26 * FRAME + i * 1600 + 800] for i in range(4)]
    assert all(np.sqrt(np.mean(slot.astype(float) ** 2)) > 1000 for slot in slots), "one tone per masked key"


async def test_keys_the_flow_presses_reach_the_app_track(tmp_path):
    ctx, published = context("c1")
    ari = FakeAriHost()
    legs = Legs(ctx, ari, MediaPorts("127.0.0.1", 40000, 40100))  # type: ignore[arg-type]
    recordings = Recordings(ctx, legs)
    hearing = Hearing(ctx, ScriptedDetector([]))  # type: ignore[arg-type]
    hearing.detector.expect_dtmf_echo = lambda digits, now: None  # type: ignore[attr-defined]
    steps = FlowSteps(
        ctx, legs, hearing, RecordingHandoff(), Media(),  # type: ignore[arg-type]
        settings=Settings(user_devices={"sip_phone": "PJSIP/phone"}), request=CallRequest(number="8005550100"),
        device="sip_phone", tts=None, recordings=recordings,
        devices={"sip_phone": Device("sip_phone", "PJSIP/phone", is_default=True)}.get,
    )  # fmt: skip
    await steps.send_dtmf("9", "menu")
    await steps.send_dtmf("1", "account", masked=True)
    assert recordings.track.said_samples == 2 * 800


async def test_the_bridged_conversation_is_recorded_stopped_fetched_and_deleted(tmp_path):
    recordings, ari, published = room(tmp_path, recording_audio=wav_bytes(3.5))
    following = asyncio.create_task(recordings.legs.follow(ari.queue))
    name, bridge = "hs-c1-bridged", "hs-c1-main"
    await recordings.record_bridge()
    await recordings.stop_bridge()
    await recordings.bridge_finished(timeout=2.0)
    assert recordings.legs.recording_states[name] == "done"
    following.cancel()
    await recordings.finish()

    assert ari.names() == ["bridge_record", "stop_recording", "stored_recording_chunks", "delete_stored_recording"]
    assert ari.requests[0] == ("bridge_record", (bridge, name, {"format": "wav", "if_exists": "overwrite"}))
    bridged = saved(published)[RecordingChannel.BRIDGED]
    assert (bridged.path, bridged.seconds) == (str(tmp_path / "rec" / "c1.bridged.wav"), 3.5)
    assert Path(bridged.path).read_bytes() == wav_bytes(3.5)
    assert ari.stored == {}, "deleted from Asterisk once fetched"
    assert recordings.failures == Counter()


async def test_a_missing_recording_finished_is_waited_for_a_while_then_fetched_anyway(tmp_path):
    recordings, ari, published = room(tmp_path, recording_audio=wav_bytes(1.0), finish_recordings=False)
    following = asyncio.create_task(recordings.legs.follow(ari.queue))
    await recordings.record_bridge()
    await recordings.stop_bridge()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await recordings.bridge_finished(timeout=0.3)
    assert loop.time() - started >= 0.29
    following.cancel()
    await recordings.finish()
    assert saved(published)[RecordingChannel.BRIDGED].seconds == 1.0


@pytest.mark.parametrize(
    "refused, failure, left_in_asterisk",
    [
        ("bridge_record", "bridge_record", False),
        ("stop_recording", "bridge_stop", False),
        ("stored_recording_chunks", "bridge_fetch", True),
        ("delete_stored_recording", "bridge_delete", True),
    ],
)
async def test_a_refused_recording_request_is_counted_and_the_rest_goes_on(tmp_path, refused, failure, left_in_asterisk):
    recordings, ari, published = room(tmp_path, recording_audio=wav_bytes(2.0), refuse={refused})
    recordings.heard(frame(5))
    await recordings.record_bridge()
    if refused == "stop_recording":
        ari.stored["hs-c1-bridged"] = wav_bytes(2.0)  # it ended with the bridge: stored all the same
    await recordings.stop_bridge()
    await recordings.bridge_finished(timeout=0.05)
    await recordings.finish()

    assert recordings.failures == Counter({failure: 1})
    channels = list(saved(published))
    assert channels[0] is RecordingChannel.FAR_END, "the app's side is kept whatever the PBX did"
    assert (RecordingChannel.BRIDGED in channels) is (refused in ("stop_recording", "delete_stored_recording"))
    assert ("hs-c1-bridged" in ari.stored) is left_in_asterisk
    assert not list((tmp_path / "rec").glob("*.part")), "no half-fetched file is left"


async def test_a_recording_that_stopped_by_itself_is_fetched_without_a_failure(tmp_path):
    recordings, ari, published = room(tmp_path, recording_audio=wav_bytes(2.0))
    await recordings.record_bridge()
    ari.live.clear()  # the bridge went away first: Asterisk ended the recording and stored it
    ari.stored["hs-c1-bridged"] = wav_bytes(2.0)
    await recordings.stop_bridge()  # 404
    await recordings.finish()
    assert recordings.failures == Counter()
    assert RecordingChannel.BRIDGED in saved(published)


async def test_a_file_that_is_no_wav_is_not_kept(tmp_path):
    recordings, ari, published = room(tmp_path, recording_audio=b"<html>proxy error</html>")
    await recordings.record_bridge()
    await recordings.stop_bridge()
    await recordings.finish()
    assert recordings.failures == Counter({"bridge_fetch": 1})
    assert RecordingChannel.BRIDGED not in saved(published)
    assert "hs-c1-bridged" in ari.stored


async def test_a_disk_that_fails_stops_the_recording_not_the_call(tmp_path, monkeypatch):
    recordings, _, published = room(tmp_path)
    # Files are written a block at a time: the first once half a second is final (0.2 s behind
    # the present), i.e. when the 35th frame is heard; the next at the 60th.
    for _ in range(40):
        recordings.heard(frame(5))
    recordings.sent(words(1)[0], True)

    def full(self, pcm):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(StreamingWavWriter, "write", full)
    for _ in range(30):
        recordings.heard(frame(5))  # no exception reaches the hearing
    monkeypatch.undo()
    await recordings.finish()
    assert recordings.failures == Counter({"write": 1})
    assert saved(published)[RecordingChannel.FAR_END].seconds == 0.7, "what was written is kept"


async def test_a_directory_that_cannot_be_created_means_no_recordings_and_a_count(tmp_path):
    (tmp_path / "rec").write_text("a file where the directory should be")
    ctx, published = context("c1")
    recordings = Recordings(ctx, Legs(ctx, FakeAriHost(), MediaPorts("127.0.0.1", 1, 2)))  # type: ignore[arg-type]
    recordings.start(tmp_path / "rec")
    recordings.heard(frame(5))
    await recordings.finish()
    assert recordings.failures == Counter({"start": 1})
    assert saved(published) == {}
