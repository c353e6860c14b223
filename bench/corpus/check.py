"""``python -m bench.corpus.check [full|sample] [--vad]``: validate a fetched tier and print its counts.

Reads every file (8 kHz mono int16, stated length, not silent), prints items/groups/seconds
per kind and one line per group; ``--vad`` adds Silero VAD's speech fraction per group (the
share of 32 ms steps at p >= 0.5, state reset every 10 s), a programmatic listen-check: speech
and announcements should be mostly speech, music mostly not (unless vocal or spoken words).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import numpy as np

from app.media.wavfile import read_wav
from bench.corpus.fetch import MARKER, load_manifest, tier_dir
from bench.corpus.manifest import problems, summary

VAD_CHUNK = 80000  # 10 s


def speech_fraction(pcm: np.ndarray) -> float:
    from app.audio.vad import SileroStream

    stream = SileroStream(reseed_after_quiet=None)
    probabilities: list[float] = []
    for start in range(0, len(pcm), VAD_CHUNK):
        stream.reset()
        probabilities += stream.push(pcm[start : start + VAD_CHUNK])
    return float(np.mean(np.array(probabilities) >= 0.5)) if probabilities else 0.0


def main(argv: list[str]) -> int:
    tier = next((a for a in argv if not a.startswith("--")), "full")
    root = tier_dir(tier)
    manifest = load_manifest(tier)
    found = problems(manifest, root)
    for line in found[:50]:
        print("PROBLEM", line)
    print(json.dumps(summary(manifest), indent=1))
    marker = json.loads((root / MARKER).read_text(encoding="utf-8"))
    print({k: marker[k] for k in ("download_bytes", "download_seconds", "wall_seconds", "items", "bytes_on_disk")})
    groups: dict[str, list[dict]] = defaultdict(list)
    for item in manifest["items"]:
        groups[item["group"]].append(item)
    vad = "--vad" in argv
    for group in sorted(groups):
        items = groups[group]
        seconds = sum(i["seconds"] for i in items)
        rms = np.mean([i["rms_dbfs"] for i in items])
        extra = ""
        if vad:
            fractions = [speech_fraction(read_wav(root / i["path"]).pcm) for i in items]
            extra = f" vad {np.mean(fractions):.2f} (min {min(fractions):.2f} max {max(fractions):.2f})"
        language = ",".join(sorted({i.get("language", "") for i in items} - {""}))
        print(f"{group:45s} {len(items):4d} items {seconds:8.1f} s rms {rms:6.1f} dBFS {language}{extra}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
