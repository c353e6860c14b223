"""Tone detection (app/audio/tones.py): DTMF to ITU-T Q.24 limits, call-progress cadences, SIT
causes; everything through 8 kHz G.711 mu-law and pushed as RTP delivers it (20 ms frames)."""

from __future__ import annotations

import numpy as np
import pytest

from app.audio.goertzel import GoertzelBank, block_energy, dirichlet
from app.audio.tones import (
    DTMF_DIGITS,
    DTMF_HIGH,
    DTMF_LOW,
    CallProgressDetector,
    DtmfDetector,
    DtmfDigit,
    ToneDetector,
    ToneEvent,
)
from app.media.wavfile import load_audio
from bench.detection.dtmf_sweep import (
    BARESIP_KEYS,
    dtmf_tone,
    heard_digits,
    music_and_speech,
    real_key_presses,
    scan_for_false_tones,
    telephone,
)
from tests.shared_paths import CAPTURES_DIR, require

RATE = 8000
FRAME = 160


def tones(freqs: tuple[float, ...], seconds: float, dbov: float = -23.0) -> np.ndarray:
    """Sine tones, each at ``dbov``."""
    t = np.arange(int(round(seconds * RATE))) / RATE
    return sum(32768 * np.sqrt(2) * 10 ** (dbov / 20) * np.sin(2 * np.pi * f * t) for f in freqs)


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * RATE)))


def noise(seconds: float, dbov: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=int(round(seconds * RATE))) * 32768 * 10 ** (dbov / 20)


def cadence(freqs: tuple[float, ...], on: float, off: float, cycles: int, dbov: float = -23.0) -> np.ndarray:
    return np.concatenate([np.concatenate((tones(freqs, on, dbov), quiet(off))) for _ in range(cycles)])


def framed(tone: np.ndarray, lead: float = 0.05) -> np.ndarray:
    return np.concatenate((quiet(lead), tone, quiet(0.1)))


def digits_heard(pcm: np.ndarray, chunk: int = FRAME) -> list[DtmfDigit]:
    detector = DtmfDetector()
    samples = telephone(pcm)
    found = []
    for start in range(0, len(samples), chunk):
        found.extend(detector.push(samples[start : start + chunk], start / RATE))
    return found + detector.flush()


def events_heard(pcm: np.ndarray, detector: ToneDetector | None = None) -> list[ToneEvent]:
    detector = detector or ToneDetector()
    samples = telephone(pcm)
    found: list[ToneEvent] = []
    for start in range(0, len(samples), FRAME):
        found.extend(detector.push(samples[start : start + FRAME], start / RATE))
    return found + detector.flush()


# -- the Goertzel bank ----------------------------------------------------------------------------


def test_goertzel_bank_reads_a_tone_energy_and_phase():
    bank = GoertzelBank([697.0, 1209.0, 2000.0], 106)
    t = np.arange(3 * 106) / RATE
    blocks = (1000 * np.cos(2 * np.pi * 697.0 * t + 0.3)).reshape(3, 106)
    power = bank.power(blocks)
    energy = block_energy(blocks)

    assert energy == pytest.approx(np.sum(blocks**2, axis=1))
    assert power[:, 0] == pytest.approx(energy, rel=0.03)  # all of the block's energy, at 697 Hz
    assert np.all(power[:, 1:] < 0.01 * energy[:, None])
    phases = np.angle(bank.spectrum(blocks)[:, 0])
    assert phases[0] == pytest.approx(0.3, abs=0.05)  # referred to each block's first sample
    assert np.angle(np.exp(1j * (phases[1] - phases[0]))) == pytest.approx(
        np.angle(np.exp(2j * np.pi * 697.0 * 106 / RATE)), abs=0.05
    )
    direct = blocks @ np.exp(-2j * np.pi * np.outer(np.arange(106), bank.frequencies) / RATE)
    assert bank.spectrum(blocks) == pytest.approx(direct)
    assert bank.spectrum(blocks[:1]) == pytest.approx(direct[:1])
    assert dirichlet(0.07, 106) == pytest.approx(np.sum(np.exp(0.07j * np.arange(106))))
    assert dirichlet(0.0, 106) == pytest.approx(106)


# -- DTMF -----------------------------------------------------------------------------------------


def test_all_sixteen_digits_are_heard_with_their_times_and_level():
    parts, starts = [quiet(0.1)], []
    for digit in DTMF_DIGITS:
        starts.append(sum(len(p) for p in parts) / RATE)
        parts += [dtmf_tone(digit, 0.1), quiet(0.1)]
    found = digits_heard(np.concatenate(parts))

    assert "".join(d.digit for d in found) == DTMF_DIGITS
    for digit, start in zip(found, starts, strict=True):
        assert digit.t_start == pytest.approx(start, abs=0.01)
        assert digit.t_end == pytest.approx(start + 0.1, abs=0.01)
        assert digit.level_dbov == pytest.approx(-17.0, abs=1.0)  # two tones at -20 dBov
        assert not digit.echo


@pytest.mark.parametrize(
    ("relative", "hz", "accepted"),
    [(0.015, 2.0, True), (-0.015, -2.0, True), (0.035, 0.0, False), (-0.035, 0.0, False)],
)
@pytest.mark.parametrize("tone", ["row", "column", "both"])
def test_frequency_deviation_at_the_q24_limits(relative, hz, accepted, tone):
    """Q.24: operate within 1.5% + 2 Hz, never operate at 3.5% off."""
    for digit in DTMF_DIGITS:
        pcm = framed(dtmf_tone(digit, offset=relative, shift_hz=hz, tones=tone))
        assert heard_digits(pcm) == (digit if accepted else ""), digit


@pytest.mark.parametrize(("twist_db", "accepted"), [(8.0, True), (-4.0, True), (10.0, False), (-6.0, False)])
def test_twist_limits(twist_db, accepted):
    """The column tone may be 8 dB stronger than the row tone (normal twist) or 4 dB weaker (reverse)."""
    for digit in DTMF_DIGITS:
        assert heard_digits(framed(dtmf_tone(digit, twist_db=twist_db))) == (digit if accepted else ""), digit


@pytest.mark.parametrize(("milliseconds", "accepted"), [(40, True), (23, False), (20, False)])
def test_signal_duration(milliseconds, accepted):
    """Q.24: tones of 40 ms operate, 23 ms and shorter never; at every alignment with the receiver's blocks."""
    for digit in DTMF_DIGITS:
        for lead_samples in (400, 413, 426, 440):
            pcm = framed(dtmf_tone(digit, milliseconds / 1000), lead=lead_samples / RATE)
            assert heard_digits(pcm) == (digit if accepted else ""), (digit, lead_samples)


def test_a_40_ms_pause_separates_digits_and_a_10_ms_break_does_not():
    assert heard_digits(framed(np.concatenate((dtmf_tone("5", 0.06), quiet(0.04), dtmf_tone("5", 0.06))))) == "55"
    assert (
        heard_digits(framed(np.concatenate((dtmf_tone("5", 0.05), quiet(0.01), dtmf_tone("5", 0.05, phase=2.0)))))
        == "5"
    )
    assert heard_digits(framed(np.concatenate((dtmf_tone("1", 0.06), dtmf_tone("9", 0.06))))) == "19"


@pytest.mark.parametrize("snr_db", [20, 12, 10])
def test_digits_in_white_noise(snr_db):
    for index, digit in enumerate(DTMF_DIGITS):
        pcm = framed(dtmf_tone(digit))
        pcm = pcm + noise(len(pcm) / RATE, -20 + 10 * np.log10(2) - snr_db, seed=index)  # two tones at -20 dBov
        assert heard_digits(pcm) == digit, digit


def test_noise_alone_gives_no_digit():
    for index, dbov in enumerate((-60.0, -40.0, -20.0, -6.0)):
        assert heard_digits(noise(5.0, dbov, seed=index)) == ""


def test_signal_level_limits():
    assert heard_digits(framed(dtmf_tone("7", dbov=-40.0))) == "7"
    assert heard_digits(framed(dtmf_tone("7", dbov=-50.0))) == ""


def test_harmonics_single_tones_and_chords_are_rejected():
    """A voice or an instrument has harmonics; a single tone or three tones are no key press."""
    digit, row, column = "5", DTMF_LOW[1], DTMF_HIGH[1]
    key = dtmf_tone(digit, 0.1)
    assert heard_digits(framed(key + tones((2 * row, 2 * column), 0.1, dbov=-26.0))) == ""
    assert heard_digits(framed(key + tones((2 * row, 2 * column), 0.1, dbov=-45.0))) == digit
    for freq in DTMF_LOW + DTMF_HIGH:
        assert heard_digits(framed(tones((freq,), 0.2, dbov=-20.0))) == ""
    assert heard_digits(framed(tones((DTMF_LOW[0], DTMF_LOW[2], DTMF_HIGH[0]), 0.2, dbov=-20.0))) == ""


def test_chunk_size_does_not_change_what_is_heard():
    pcm = np.concatenate([np.concatenate((dtmf_tone(d, 0.07), quiet(0.05))) for d in "159#D"])
    heard = [
        [(d.digit, round(d.t_start, 6), round(d.t_end, 6)) for d in digits_heard(pcm, chunk)]
        for chunk in (FRAME, 37, 8000)
    ]
    assert [digit for digit, _, _ in heard[0]] == list("159#D")
    assert heard[1] == heard[0]
    assert heard[2] == heard[0]


def test_digits_this_app_sent_are_flagged_as_echo():
    detector = DtmfDetector()
    samples = telephone(
        np.concatenate(
            (
                quiet(0.5),
                dtmf_tone("1", 0.1),
                quiet(0.1),
                dtmf_tone("3", 0.1),
                quiet(0.5),
                dtmf_tone("9", 0.1),
                quiet(3.0),
                dtmf_tone("1", 0.1),
                quiet(0.2),
            )
        )
    )
    found = []
    for start in range(0, len(samples), FRAME):
        if start == int(0.4 * RATE):
            detector.expect_echo("123")  # sent now; "2" never comes back (a lost echo)
        found.extend(detector.push(samples[start : start + FRAME], 50.0 + start / RATE))

    assert [(d.digit, d.echo) for d in found] == [("1", True), ("3", True), ("9", False), ("1", False)]
    assert found[0].t_start == pytest.approx(50.5, abs=0.01)  # the caller's stream clock


def test_flush_reports_a_digit_still_sounding():
    detector = DtmfDetector()
    assert detector.push(telephone(np.concatenate((quiet(0.1), dtmf_tone("A", 0.2)))), 0.0) == []
    assert [d.digit for d in detector.flush()] == ["A"]


@pytest.mark.corpus
def test_real_key_presses_of_the_corpus(corpus):
    """baresip's key recordings (44.1 kHz, resampled); ``soundroute.wav`` is '#'."""
    assert real_key_presses(corpus) == {key: key for key in BARESIP_KEYS}


@pytest.mark.corpus
def test_no_false_tone_over_all_the_music_and_speech_of_the_corpus(corpus):
    """Every hold music track and IVR prompt and the codec2 recordings of people, whole."""
    files = music_and_speech(corpus)
    scan = scan_for_false_tones(files, frame_samples=RATE)  # 1 s chunks: the same decisions, faster

    assert {kind for kind, _ in files} == {"music", "prompt", "speech"}
    assert len(files) > 500
    assert scan["hours"] > 0.75
    assert scan["events"] == []


# -- call-progress tones --------------------------------------------------------------------------

LEAD = 0.3


def only(events: list[ToneEvent]) -> ToneEvent:
    assert len(events) == 1, events
    return events[0]


def test_north_american_ringback_and_when_it_stops():
    detector = ToneDetector()
    audio = np.concatenate((quiet(LEAD), cadence((440.0, 480.0), 2.0, 4.0, 2)))
    event = only(events_heard(audio, detector=detector))

    assert (event.kind, event.region) == ("ringback", "na")
    assert event.t == pytest.approx(LEAD, abs=0.03)
    assert event.detail["decided_at"] - LEAD <= 1.2
    assert detector.current == event  # still ringing: 4 s of the last off period heard

    samples = telephone(np.concatenate((quiet(0.7), noise(0.5, -20.0))))
    now = LEAD + 12.0
    for start in range(0, len(samples), FRAME):
        detector.push(samples[start : start + FRAME], now + start / RATE)
        if start / RATE < 0.5:
            assert detector.current == event, start
    assert detector.current is None  # 4.6 s of quiet, then someone answers


def test_answer_during_the_ringback_pause_ends_the_ringback():
    detector = ToneDetector()
    events_heard(
        np.concatenate((quiet(LEAD), tones((440.0, 480.0), 2.0), quiet(1.0), noise(0.3, -20.0))), detector=detector
    )
    assert detector.current is None


@pytest.mark.parametrize(
    ("freqs", "on", "off", "kind", "region", "within"),
    [
        ((480.0, 620.0), 0.5, 0.5, "busy", "na", 1.5),
        ((480.0, 620.0), 0.25, 0.25, "reorder", "na", 0.8),
        ((425.0,), 0.5, 0.5, "busy", "eu", 1.5),
        ((425.0,), 0.25, 0.25, "reorder", "eu", 0.8),
        ((425.0,), 0.2, 0.2, "reorder", "eu", 0.8),
    ],
)
def test_busy_and_reorder(freqs, on, off, kind, region, within):
    detector = ToneDetector()
    event = only(events_heard(np.concatenate((quiet(LEAD), cadence(freqs, on, off, 6), quiet(1.0))), detector=detector))

    assert (event.kind, event.region) == (kind, region)
    assert event.detail["on_seconds"] == pytest.approx(on, abs=0.03)
    assert event.detail["off_seconds"] == pytest.approx(off, abs=0.03)
    assert event.detail["decided_at"] - LEAD <= within
    assert detector.current is None  # the cadence stopped


def test_busy_heard_from_the_middle_of_a_burst():
    event = only(
        events_heard(np.concatenate((tones((480.0, 620.0), 0.2), quiet(0.5), cadence((480.0, 620.0), 0.5, 0.5, 3))))
    )
    assert (event.kind, event.region) == ("busy", "na")
    assert event.detail["decided_at"] <= 2.0


@pytest.mark.parametrize(("on", "off"), [(1.0, 4.0), (1.5, 3.5)])
def test_european_ringback(on, off):
    event = only(events_heard(np.concatenate((quiet(LEAD), cadence((425.0,), on, off, 2)))))
    assert (event.kind, event.region) == ("ringback", "eu")
    assert event.detail["decided_at"] - LEAD <= 2.6


def test_uk_double_ring():
    ring = np.concatenate((tones((400.0, 450.0), 0.4), quiet(0.2), tones((400.0, 450.0), 0.4), quiet(2.0)))
    event = only(events_heard(np.concatenate((quiet(LEAD), ring, ring))))
    assert (event.kind, event.region, event.detail["variant"]) == ("ringback", "eu", "uk")
    assert event.detail["decided_at"] - LEAD <= 1.2


@pytest.mark.parametrize(("freqs", "region", "within"), [((350.0, 440.0), "na", 1.2), ((425.0,), "eu", 3.2)])
def test_dial_tone(freqs, region, within):
    detector = ToneDetector()
    event = only(events_heard(np.concatenate((quiet(LEAD), tones(freqs, 4.0))), detector=detector))
    assert (event.kind, event.region) == ("dialtone", region)
    assert event.detail["decided_at"] - LEAD <= within
    assert detector.current == event


@pytest.mark.parametrize("snr_db", [15, 10])
def test_ringback_and_busy_in_noise(snr_db):
    for freqs, on, off, kind in (((440.0, 480.0), 2.0, 4.0, "ringback"), ((480.0, 620.0), 0.5, 0.5, "busy")):
        audio = np.concatenate((quiet(LEAD), cadence(freqs, on, off, 2)))
        audio = audio + noise(len(audio) / RATE, -20.0 - snr_db, seed=snr_db)
        assert only(events_heard(audio)).kind == kind


def test_a_single_440_hz_note_is_no_call_progress_tone():
    """An A4 held by an instrument, or a call-waiting beep: half of ringback and of dial tone."""
    assert (
        events_heard(np.concatenate((quiet(LEAD), tones((440.0,), 3.0), quiet(0.5), cadence((440.0,), 0.3, 0.3, 6))))
        == []
    )


# Telcordia GR-1162 / ANSI T1.209 codes: (first segment, second segment) -> code, cause, variant.
SIT_TABLE = [
    ((913.8, 0.274), (1370.6, 0.274), "IC", "intercept", None),
    ((985.2, 0.380), (1428.5, 0.380), "NC", "no_circuit", "intra_lata"),
    ((913.8, 0.380), (1370.6, 0.380), "NC", "no_circuit", "inter_lata"),
    ((985.2, 0.380), (1370.6, 0.274), "VC", "vacant_code", None),
    ((913.8, 0.274), (1428.5, 0.380), "RO", "reorder", "intra_lata"),
    ((985.2, 0.274), (1370.6, 0.380), "RO", "reorder", "inter_lata"),
    ((913.8, 0.380), (1428.5, 0.274), "IO", "ineffective_other", None),
]


def sit(
    first: tuple[float, float], second: tuple[float, float], third: tuple[float, float] = (1776.7, 0.380)
) -> np.ndarray:
    return np.concatenate([tones((f,), seconds, dbov=-24.0) for f, seconds in (first, second, third)])


@pytest.mark.parametrize(("first", "second", "code", "cause", "variant"), SIT_TABLE)
def test_sit_cause_from_the_first_two_segments(first, second, code, cause, variant):
    audio = np.concatenate((quiet(LEAD), sit(first, second), quiet(0.2), noise(1.0, -25.0)))
    event = only(events_heard(audio))

    assert (event.kind, event.region) == ("sit", None)
    assert (event.detail["code"], event.detail["cause"], event.detail["variant"]) == (code, cause, variant)
    assert event.t == pytest.approx(LEAD, abs=0.03)
    assert event.detail["decided_at"] - LEAD <= 1.1
    assert [f for f, _ in event.detail["segments"]] == [first[0], second[0], 1776.7]
    assert [s for _, s in event.detail["segments"][:2]] == pytest.approx([first[1], second[1]], abs=0.03)


@pytest.mark.parametrize("scale", [0.95, 1.05])
def test_sit_at_its_tolerances(scale):
    """Segment lengths +-5%, frequencies +-0.2% (the North American SIT's limits)."""
    drift = 1.002 if scale > 1 else 0.998
    first, second = (913.8 * drift, 0.274 * scale), (1428.5 * drift, 0.380 * scale)
    event = only(events_heard(np.concatenate((quiet(LEAD), sit(first, second, (1776.7, 0.380 * scale)), quiet(1.0)))))
    assert (event.kind, event.detail["cause"]) == ("sit", "reorder")


def test_an_unassigned_sit_code_is_reported_as_unknown():
    event = only(events_heard(np.concatenate((quiet(LEAD), sit((985.2, 0.274), (1428.5, 0.274)), quiet(1.0)))))
    assert (event.kind, event.detail["cause"]) == ("sit", "unknown")


def test_a_first_segment_cut_short_by_lost_audio_still_names_the_cause():
    # No circuit (high long, high long) with the first 70 ms lost: read "high short, high long",
    # which no SIT is; the only assigned reading is the first segment long.
    event = only(events_heard(np.concatenate((quiet(LEAD), sit((985.2, 0.310), (1428.5, 0.380)), quiet(1.0)))))
    assert (event.kind, event.detail["code"], event.detail["cause"]) == ("sit", "NC", "no_circuit")
    # A short first segment of an assigned code is read as short: intercept stays intercept.
    event = only(events_heard(np.concatenate((quiet(LEAD), sit((913.8, 0.274), (1370.6, 0.274)), quiet(1.0)))))
    assert event.detail["cause"] == "intercept"


def test_call_progress_detector_alone_ignores_dtmf():
    detector = CallProgressDetector()
    samples = telephone(np.concatenate([np.concatenate((dtmf_tone(d, 0.3), quiet(0.1))) for d in DTMF_DIGITS]))
    assert [
        e
        for start in range(0, len(samples), FRAME)
        for e in detector.push(samples[start : start + FRAME], start / RATE)
    ] == []


@pytest.mark.corpus
@pytest.mark.parametrize(("ref", "kind"), [("tone:ringback.wav", "ringback"), ("tone:busy.wav", "busy")])
def test_real_ringback_and_busy_recordings(corpus, ref, kind):
    event = only(events_heard(load_audio(corpus.resolve(ref)).astype(np.float64)))
    assert (event.kind, event.region) == (kind, "na")


@pytest.mark.parametrize(
    ("capture", "kind"),
    [
        ("a-create-dial-early-media.wav", "ringback"),
        ("c-unanswered-and-failed.noanswer.wav", "ringback"),
        ("c-unanswered-and-failed.busy.wav", "busy"),
        ("c-unanswered-and-failed.notinservice.wav", None),
        ("c-unanswered-and-failed.allcircuitsbusy.wav", None),
    ],
)
def test_asterisk_captures(capture, kind):
    """What Asterisk 22 sent through externalMedia: its own ringback and busy (US tones); the
    not-in-service and all-circuits-busy announcements carry no SIT."""
    detector = ToneDetector()
    events = events_heard(load_audio(require(CAPTURES_DIR / capture)).astype(np.float64), detector=detector)
    if kind is None:
        assert events == []
    else:
        assert [(e.kind, e.region) for e in events] == [(kind, "na")]
        assert events[0].detail["decided_at"] - max(events[0].t, 0.0) <= (1.2 if kind == "ringback" else 1.5)
    if capture.startswith("a-"):
        assert detector.current is None  # the far end's early media (a recording) followed the ringing
