"""VAD on the corpus: how much of each kind of audio Silero and WebRTC call speech, the deafness
of one long Silero stream and the re-seeding policies against it, and what the VAD costs.

``python -m bench.detection.vad_bench [--json PATH]`` prints the tables (a minute or two);
``measure(corpus)`` returns the numbers. Everything passes through G.711 mu-law first, as a call
hears it. "Active" steps or frames are those within ``ACTIVE_BELOW_PEAK_DB`` of the clip's loud
ones (its 95th percentile level): the words of a prompt, not the silence around them.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from app.audio.vad import FRAME_SAMPLES, SILERO_STEP_SAMPLES, SileroStream, SileroVad, Vad, WebRtcGate
from app.media.wavfile import load_audio
from app.sim.corpus import Corpus, ensure_corpus
from app.media.g711 import ulaw_decode, ulaw_encode

RATE = 8000
SPEECH_THRESHOLD = 0.5
ACTIVE_BELOW_PEAK_DB = 20.0
AGGRESSIVENESS = (0, 1, 2, 3)
HOLD_SECONDS = 300.0
PERSON_SECONDS = 12.0
# Real people (codec2-examples): talking spontaneously, and reading sentences.
PEOPLE = ("kristoff.raw", "vk5qi.wav", "cq_ref.raw", "ve9qrp.wav")
READING_PEOPLE = (
    "g3plx.raw", "hts1.raw", "hts2.raw", "big_dog.raw", "cross.raw", "forig.raw", "morig.raw", "mmt1.raw"
)
ANNOUNCEMENTS = (
    "queue-periodic-announce",
    "queue-thankyou",
    "queue-youarenext",
    "queue-holdtime",
    "queue-callswaiting",
    "pls-hold-while-try",
    "one-moment-please",
    "tt-allbusy",
    "all-circuits-busy-now",
)
# (re-seed after this many quiet seconds, warm-up seconds); the default is (8, 1).
POLICIES: tuple[tuple[float | None, float], ...] = (
    (None, 0.0), (8.0, 0.0), (8.0, 1.0), (8.0, 2.0), (15.0, 1.0)
)


def telephone(pcm: np.ndarray) -> np.ndarray:
    return ulaw_decode(ulaw_encode(np.asarray(pcm, dtype=np.int16)))


def line_noise(seconds: float, dbov: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = np.convolve(rng.normal(size=int(seconds * RATE)), [1.0, 0.7, 0.4], mode="same")
    noise *= 32768.0 * 10 ** (dbov / 20) / np.sqrt(np.mean(noise * noise))
    return np.clip(np.round(noise), -32768, 32767).astype(np.int16)


def active_blocks(pcm: np.ndarray, block: int) -> np.ndarray:
    count = len(pcm) // block
    blocks = np.asarray(pcm[: count * block], dtype=np.float64).reshape(count, block) / 32768.0
    level_db = 10.0 * np.log10(np.maximum(np.mean(blocks * blocks, axis=1), 1e-12))
    if count == 0:
        return np.zeros(0, dtype=bool)
    return level_db >= np.percentile(level_db, 95) - ACTIVE_BELOW_PEAK_DB


def frames_of(pcm: np.ndarray) -> list[np.ndarray]:
    return [pcm[i : i + FRAME_SAMPLES] for i in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]


def _share(parts: list[np.ndarray]) -> float:
    joined = np.concatenate(parts) if parts else np.zeros(0)
    return float(np.mean(joined)) if len(joined) else float("nan")


# -- speech share per kind of audio -------------------------------------------------------------


@dataclass(frozen=True)
class CategoryActivity:
    """Share of 32 ms Silero steps >= 0.5 and of 20 ms frames the WebRTC VAD passes."""

    category: str
    files: int
    seconds: float
    silero: float  # SileroStream, default policy
    silero_active: float
    facade: float  # the Vad facade: Silero only where its WebRTC gate passes
    webrtc: dict[int, float]  # aggressiveness -> share of all frames
    webrtc_active: dict[int, float]


def category_activity(category: str, clips: Iterable[np.ndarray]) -> CategoryActivity:
    """Each clip through mu-law and fresh detectors."""
    silero: list[np.ndarray] = []
    silero_active: list[np.ndarray] = []
    facade: list[np.ndarray] = []
    webrtc: dict[int, list[np.ndarray]] = {a: [] for a in AGGRESSIVENESS}
    webrtc_active: dict[int, list[np.ndarray]] = {a: [] for a in AGGRESSIVENESS}
    files, samples = 0, 0
    for clip in clips:
        pcm = telephone(clip)
        files, samples = files + 1, samples + len(pcm)
        speech = np.array(SileroStream().push(pcm)) >= SPEECH_THRESHOLD
        silero.append(speech)
        silero_active.append(speech[active_blocks(pcm, SILERO_STEP_SAMPLES)])
        facade.append(_facade_speech_steps(pcm))
        frames = frames_of(pcm)
        active = active_blocks(pcm, FRAME_SAMPLES)
        for aggressiveness in AGGRESSIVENESS:
            gate = WebRtcGate(aggressiveness)
            verdicts = np.array([gate.is_speech(frame) for frame in frames], dtype=bool)
            webrtc[aggressiveness].append(verdicts)
            webrtc_active[aggressiveness].append(verdicts[active])
    return CategoryActivity(
        category=category,
        files=files,
        seconds=samples / RATE,
        silero=_share(silero),
        silero_active=_share(silero_active),
        facade=_share(facade),
        webrtc={a: _share(v) for a, v in webrtc.items()},
        webrtc_active={a: _share(v) for a, v in webrtc_active.items()},
    )


def _facade_speech_steps(pcm: np.ndarray) -> np.ndarray:
    """Per Silero step, whether the facade reported speech (read at the frame that completed the step)."""
    vad = Vad()
    verdicts = []
    for index, frame in enumerate(frames_of(pcm)):
        steps_before = vad.silero.steps
        result = vad.push(frame, index * FRAME_SAMPLES / RATE)
        if vad.silero.steps > steps_before:
            verdicts.append(result.speech_prob >= SPEECH_THRESHOLD)
    return np.array(verdicts, dtype=bool)


def _prompts_but_silences(prompts: Path) -> Iterable[np.ndarray]:
    return (load_audio(path) for path in sorted(prompts.rglob("*.wav")) if path.parent.name != "silence")


def corpus_categories(corpus: Corpus) -> list[tuple[str, Callable[[], Iterable[np.ndarray]]]]:
    prompts = corpus.prompts_dir
    silences = prompts / "silence"
    return [
        *[(f"moh:{track.stem}", lambda track=track: [load_audio(track)]) for track in corpus.moh_tracks()],
        ("announcements", lambda: [load_audio(corpus.prompt(name)) for name in ANNOUNCEMENTS]),
        ("all prompts", lambda: _prompts_but_silences(prompts)),
        ("people talking", lambda: [load_audio(corpus.speech(name)) for name in PEOPLE]),
        ("people reading", lambda: [load_audio(corpus.speech(name)) for name in READING_PEOPLE]),
        ("silence files", lambda: [load_audio(path) for path in sorted(silences.glob("*.wav"))]),
        ("line noise -60 dBov", lambda: [line_noise(60.0, -60.0)]),
        ("line noise -45 dBov", lambda: [line_noise(60.0, -45.0)]),
    ]


# -- deafness after a long hold, and the re-seeding policies ------------------------------------


@dataclass(frozen=True)
class HoldThenPerson:
    person: str
    track: str
    pcm: np.ndarray  # music then the person, through mu-law
    first_step: int  # the person's first Silero step (the music is a whole number of steps)

    def person_alone(self) -> np.ndarray:
        return self.pcm[self.first_step * SILERO_STEP_SAMPLES :]


def holds_then_people(corpus: Corpus, hold_seconds: float = HOLD_SECONDS) -> list[HoldThenPerson]:
    tracks = corpus.moh_tracks()
    sessions = []
    for index, person in enumerate(PEOPLE):
        track = tracks[index % len(tracks)]
        music = np.resize(load_audio(track), int(hold_seconds * RATE))  # wraps round, as MOH does
        music = music[: len(music) // SILERO_STEP_SAMPLES * SILERO_STEP_SAMPLES]
        speech = load_audio(corpus.speech(person))[: int(PERSON_SECONDS * RATE)]
        pcm = telephone(np.concatenate([music, speech]))
        sessions.append(HoldThenPerson(person, track.stem, pcm, len(music) // SILERO_STEP_SAMPLES))
    return sessions


@dataclass(frozen=True)
class Hearing:
    """How Silero hears a person: mean probability, share of steps >= 0.5, first step >= 0.5 (s)."""

    mean: float
    share: float
    onset_seconds: float

    @classmethod
    def of(cls, probabilities: np.ndarray) -> Hearing:
        above = np.flatnonzero(probabilities >= SPEECH_THRESHOLD)
        onset = float((above[0] + 1) * SILERO_STEP_SAMPLES / RATE) if len(above) else float("inf")
        return cls(float(probabilities.mean()), float(np.mean(probabilities >= SPEECH_THRESHOLD)), onset)


@dataclass(frozen=True)
class DeafnessRow:
    person: str
    track: str
    hold_seconds: float
    fresh: Hearing  # the person alone, fresh stream
    continuous: Hearing  # after the hold in one stream, never re-seeded
    reseeded: Hearing  # after the hold in one stream, default policy


def never_reseeded() -> SileroStream:
    return SileroStream(reseed_after_quiet=None)


def deafness(sessions: list[HoldThenPerson]) -> list[DeafnessRow]:
    rows = []
    for session in sessions:
        def after_hold(stream: SileroStream) -> Hearing:
            return Hearing.of(np.array(stream.push(session.pcm))[session.first_step :])

        rows.append(
            DeafnessRow(
                person=session.person,
                track=session.track,
                hold_seconds=session.first_step * SILERO_STEP_SAMPLES / RATE,
                fresh=Hearing.of(np.array(never_reseeded().push(session.person_alone()))),
                continuous=after_hold(never_reseeded()),
                reseeded=after_hold(SileroStream()),
            )
        )
    return rows


@dataclass(frozen=True)
class PolicyRow:
    """One re-seeding policy: false speech over all the hold music, people after a long hold."""

    reseed_after_quiet: float | None
    reseed_warmup: float
    music_speech_steps: int  # steps >= 0.5 over every opsound track, each in one stream
    music_speech_steps_per_hour: float
    person_mean_loss: float  # fresh minus after-hold mean probability, averaged over the people
    inferences_per_step: float  # on the music


def reseed_policies(corpus: Corpus, sessions: list[HoldThenPerson]) -> list[PolicyRow]:
    tracks = [telephone(load_audio(track)) for track in corpus.moh_tracks()]
    music_seconds = sum(len(track) for track in tracks) / RATE
    fresh = [np.mean(never_reseeded().push(s.person_alone())) for s in sessions]
    rows = []
    for after_quiet, warmup in POLICIES:
        policy = {"reseed_after_quiet": after_quiet, "reseed_warmup": warmup}
        speech_steps, runs, steps = 0, 0, 0
        for track in tracks:
            stream = SileroStream(**policy)
            speech_steps += int(np.sum(np.array(stream.push(track)) >= SPEECH_THRESHOLD))
            runs, steps = runs + stream.model_runs, steps + stream.steps
        policy = {"reseed_after_quiet": after_quiet, "reseed_warmup": warmup}
        after_hold = [np.mean(SileroStream(**policy).push(s.pcm)[s.first_step :]) for s in sessions]
        rows.append(
            PolicyRow(
                reseed_after_quiet=after_quiet,
                reseed_warmup=warmup,
                music_speech_steps=speech_steps,
                music_speech_steps_per_hour=speech_steps * 3600.0 / music_seconds,
                person_mean_loss=float(np.mean(np.array(fresh) - np.array(after_hold))),
                inferences_per_step=runs / steps,
            )
        )
    return rows


# -- cost ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostRow:
    """CPU time (process time, one thread) per second of audio pushed in 20 ms frames."""

    what: str
    audio: str
    ms_per_audio_second: float
    inferences_per_step: float | None  # Silero runs per 32 ms step, warm-ups included (None: no Silero)

    @property
    def core_percent(self) -> float:
        return self.ms_per_audio_second / 10.0


def cost(corpus: Corpus) -> list[CostRow]:
    SileroVad.shared()  # loaded outside the timing
    tracks = corpus.moh_tracks()
    hold = [
        load_audio(tracks[0])[: 120 * RATE],
        load_audio(corpus.prompt("queue-periodic-announce")),
        load_audio(tracks[1])[: 60 * RATE],
    ]
    audios = (
        ("hold (music + announcement)", telephone(np.concatenate(hold))),
        ("people talking", telephone(np.concatenate([load_audio(corpus.speech(name)) for name in PEOPLE]))),
        ("open line, noise -50 dBov", telephone(line_noise(60.0, -50.0))),
        ("digital silence", np.zeros(60 * RATE, dtype=np.int16)),
    )
    rows = []
    for audio, pcm in audios:
        frames = frames_of(pcm)
        seconds = len(frames) * FRAME_SAMPLES / RATE
        stream, gate, vad = SileroStream(), WebRtcGate(), Vad()
        detectors: tuple[tuple[str, Callable[[np.ndarray], object], SileroStream | None], ...] = (
            ("Silero stream", stream.push, stream),
            ("WebRTC gate", gate.is_speech, None),
            ("Vad facade", lambda frame: vad.push(frame, 0.0), vad.silero),
        )
        for what, push, silero in detectors:
            started = time.process_time()
            for frame in frames:
                push(frame)
            elapsed = time.process_time() - started
            inferences = None if silero is None else silero.model_runs / max(silero.steps, 1)
            rows.append(CostRow(what, audio, elapsed * 1000.0 / seconds, inferences))
    return rows


# -- all of it ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VadBenchResult:
    activity: list[CategoryActivity]
    deafness: list[DeafnessRow]
    policies: list[PolicyRow]
    cost: list[CostRow]

    def as_dict(self) -> dict:
        return {
            "activity": [asdict(row) for row in self.activity],
            "deafness": [asdict(row) for row in self.deafness],
            "reseed_policies": [asdict(row) for row in self.policies],
            "cost": [asdict(row) | {"core_percent": row.core_percent} for row in self.cost],
        }


def measure(corpus: Corpus) -> VadBenchResult:
    sessions = holds_then_people(corpus)
    return VadBenchResult(
        activity=[category_activity(name, clips()) for name, clips in corpus_categories(corpus)],
        deafness=deafness(sessions),
        policies=reseed_policies(corpus, sessions),
        cost=cost(corpus),
    )


def print_tables(result: VadBenchResult) -> None:
    print(f"\nShare called speech: Silero 32 ms steps >= {SPEECH_THRESHOLD}, WebRTC 20 ms frames (0-3)")
    print(
        f"{'category':32} {'files':>5} {'secs':>5} {'silero':>6} {'active':>6} {'facade':>6}"
        f"  {'webrtc (all)':>19}  {'webrtc (active)':>19}"
    )
    for row in result.activity:
        webrtc = " ".join(f"{row.webrtc[a]:.2f}" for a in AGGRESSIVENESS)
        webrtc_active = " ".join(f"{row.webrtc_active[a]:.2f}" for a in AGGRESSIVENESS)
        print(
            f"{row.category:32} {row.files:5d} {row.seconds:5.0f} {row.silero:6.3f} {row.silero_active:6.3f}"
            f" {row.facade:6.3f}  {webrtc:>19}  {webrtc_active:>19}"
        )

    hold = result.deafness[0].hold_seconds
    print(f"\nDeafness: a person after {hold:.0f} s of hold music in one Silero stream")
    print("(mean probability / share of steps >= 0.5 / first step >= 0.5 in seconds)")
    print(f"{'person':14} {'track':28} {'fresh':>19} {'never re-seeded':>19} {'default policy':>19}")
    for row in result.deafness:
        cells = [
            f"{hearing.mean:.2f} / {hearing.share:.2f} / {hearing.onset_seconds:.2f}"
            for hearing in (row.fresh, row.continuous, row.reseeded)
        ]
        print(f"{row.person:14} {row.track:28} {cells[0]:>19} {cells[1]:>19} {cells[2]:>19}")

    print(f"\nRe-seeding policies: false speech over all the hold music; the people after {hold:.0f} s of it")
    print(
        f"{'re-seed after':>14} {'warm-up':>8} {'music steps >= 0.5':>19} {'per hour':>9}"
        f" {'mean prob. lost':>16} {'inferences/step':>16}"
    )
    for policy in result.policies:
        after = "never" if policy.reseed_after_quiet is None else f"{policy.reseed_after_quiet:g} s"
        print(
            f"{after:>14} {policy.reseed_warmup:7g}s {policy.music_speech_steps:19d}"
            f" {policy.music_speech_steps_per_hour:9.0f} {policy.person_mean_loss:16.3f}"
            f" {policy.inferences_per_step:16.2f}"
        )

    print("\nCost: CPU time per second of audio, 20 ms frames, one thread")
    for row in result.cost:
        runs = row.inferences_per_step
        inferences = "" if runs is None else f"  {runs:.2f} inferences/step"
        print(
            f"  {row.what:14} {row.audio:28} {row.ms_per_audio_second:5.2f} ms/s"
            f" ({row.core_percent:.3f}% of a core){inferences}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="VAD on the recording corpus: speech shares, deafness, cost")
    parser.add_argument("--json", type=Path, help="also save the numbers to this file")
    args = parser.parse_args(argv)
    result = measure(ensure_corpus())
    print_tables(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.as_dict(), indent=1))


if __name__ == "__main__":
    main()
