"""CPU cost per held call of ``AudioPipeline``: microseconds per 20 ms frame, on one core.

Two inputs of 90 s each, through G.711 and fed one 20 ms frame at a time as the hearing room
does: ``hold`` (the hold music ``moh:macroform-the_simplicity``, with an announcement every
45 s: Silero listens on most of its frames, for its soft passages) and ``speech`` (people
talking and an IVR prompt, one after the other). The best of ``--repeat`` runs is reported:
the machine may be shared.

    python -m bench.pipeline_cost [--seconds 90] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np

from app.audio.pipeline import AudioPipeline
from app.media.g711 import ulaw_decode, ulaw_encode
from app.media.wavfile import load_audio
from app.sim.corpus import ensure_corpus

RATE = 8000
FRAME = 160


def inputs(seconds: float) -> dict[str, np.ndarray]:
    corpus = ensure_corpus()
    load = lambda ref: load_audio(corpus.resolve(ref))  # noqa: E731
    n = int(seconds * RATE)
    hold = np.resize(load("moh:macroform-the_simplicity"), n).copy()
    announcement = load("prompt:queue-thankyou")
    for start in range(10 * RATE, n, 45 * RATE):
        piece = announcement[: n - start]
        hold[start : start + len(piece)] = piece
    talk = np.concatenate([load("speech:kristoff.raw"), load("speech:cq_ref.raw"), load("prompt:queue-periodic-announce")])
    speech = np.resize(talk, n)
    return {name: ulaw_decode(ulaw_encode(pcm.astype(np.int16))) for name, pcm in (("hold", hold), ("speech", speech))}


def frame_cost(pcm: np.ndarray, profile: cProfile.Profile | None = None) -> float:
    """CPU seconds per frame of one pipeline over ``pcm``."""
    pipeline = AudioPipeline()
    pipeline.reset_for_hold()
    frames = [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]
    start = time.process_time()
    if profile:
        profile.enable()
    for i, frame in enumerate(frames):
        pipeline.push(frame, i * FRAME / RATE)
    if profile:
        profile.disable()
    return (time.process_time() - start) / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one run of each input")
    args = parser.parse_args()
    for name, pcm in inputs(args.seconds).items():
        if args.profile:
            profile = cProfile.Profile()
            frame_cost(pcm, profile)
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        best = min(frame_cost(pcm) for _ in range(args.repeat))
        print(f"{name:7s} {best * 1e6:6.1f} us/frame  {best / (FRAME / RATE) * 100:.2f}% of a core per call")


if __name__ == "__main__":
    main()
