"""Where the cross-validated benchmark's audio comes from: a manifest of items grouped by source.

A manifest lists recordings (8 kHz mono int16 WAV, or codec2 ``.raw``) with the source they
come from (``group``: one announcement voice, one music package, one speaker, one noise
recording). The group is the unit of the folds: a group is never split between folds, so a
fold's score is on voices, music and people the other folds never heard.

Two sources of manifests:

- the wide corpus, fetched by its own script into ``$HOLDSLAYER_WIDE_CORPUS_DIR`` (default
  ``~/.cache/holdslayer/corpus-wide``) with ``manifest.json``::

      {"version": 1, "items": [{"id": ..., "kind": "announcement|music|speech|noise",
        "group": "voice:...", "path": "relative/to/the/manifest.wav", "seconds": 3.2, ...}]}

- ``base_manifest(corpus)``: the same manifest built in memory from the base corpus (one
  Asterisk voice whose prompts are split by script, the five MOH tracks, the codec2
  speakers; no noise recordings: the conditions then synthesise their noise).

``load_sources("auto")`` takes the wide manifest when it exists, else the base adapter.
Items may carry ``parts`` (several paths played back to back: "the estimated hold time is" +
"5" + "minutes"); a plain ``path`` is one part.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.sim.corpus import Corpus, ensure_corpus

KINDS = ("announcement", "music", "speech", "noise")
FOLD_KINDS = ("announcement", "music", "speech")  # every fold needs groups of these
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Item:
    id: str
    kind: str
    group: str
    parts: tuple[Path, ...]  # absolute paths, played back to back
    seconds: float | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Manifest:
    name: str  # "base" or the manifest path
    items: tuple[Item, ...]

    def by_kind(self, kind: str) -> list[Item]:
        return [i for i in self.items if i.kind == kind]

    def groups(self, kind: str) -> list[str]:
        return sorted({i.group for i in self.items if i.kind == kind})

    def items_of(self, group: str) -> list[Item]:
        return [i for i in self.items if i.group == group]

    def fingerprint(self) -> str:
        """Which items (ids and groups) the manifest holds: changes when the corpus does."""
        digest = hashlib.sha256()
        for item in sorted(self.items, key=lambda i: i.id):
            digest.update(f"{item.id}\t{item.kind}\t{item.group}\n".encode())
        return digest.hexdigest()[:16]


class ManifestError(ValueError):
    pass


def load_manifest(path: str | Path) -> Manifest:
    """Read a ``manifest.json``; paths are relative to its directory."""
    path = Path(path).expanduser()
    data = json.loads(path.read_text())
    if data.get("version") != MANIFEST_VERSION:
        raise ManifestError(f"{path}: manifest version {data.get('version')!r}, expected {MANIFEST_VERSION}")
    root = path.parent
    items = []
    seen: set[str] = set()
    for raw in data["items"]:
        kind, group, ident = raw.get("kind"), raw.get("group"), raw.get("id")
        if kind not in KINDS or not group or not ident:
            raise ManifestError(f"{path}: item {raw!r} needs id, group and a kind among {KINDS}")
        if ident in seen:
            raise ManifestError(f"{path}: duplicate id {ident!r}")
        seen.add(ident)
        parts = raw.get("parts") or [raw["path"]]
        meta = {k: v for k, v in raw.items() if k not in ("id", "kind", "group", "path", "parts", "seconds")}
        items.append(Item(ident, kind, group, tuple(root / p for p in parts), raw.get("seconds"), meta))
    return Manifest(str(path), tuple(items))


def wide_corpus_dir() -> Path:
    env = os.environ.get("HOLDSLAYER_WIDE_CORPUS_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "holdslayer" / "corpus-wide"


# -- the base corpus as a manifest --------------------------------------------------------------

# One studio voice (Allison) speaks every Asterisk prompt: the voice axis cannot be
# cross-validated on the base corpus. Its prompts are split by *script* (what a PBX says in
# that situation), so that at least the words and the prompt lengths differ between folds.
BASE_ANNOUNCEMENT_SCRIPTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "queue": (
        ("queue-periodic-announce",),
        ("queue-youarenext",),
        ("queue-callswaiting",),
        ("queue-holdtime", "digits/5", "queue-minutes"),
        ("queue-thereare", "digits/3"),
        ("queue-quantity1", "digits/4", "queue-quantity2"),
    ),
    "connect": (
        ("pls-hold-while-try",),
        ("one-moment-please",),
        ("followme/pls-hold-while-try",),
        ("followme/status",),
        ("priv-introsaved",),
    ),
    "busy": (
        ("all-circuits-busy-now",),
        ("tt-allbusy",),
        ("ss-noservice",),
        ("please-try-call-later",),
        ("cannot-complete-as-dialed",),
    ),
    "menu": (
        ("basic-pbx-ivr-main",),
        ("dir-intro",),
        ("agent-user",),
        ("conf-waitforleader",),
    ),
    "thanks": (
        ("queue-thankyou",),
        ("demo-congrats",),
        ("auth-thankyou",),
        ("check-number-dial-again",),
        ("privacy-unident",),
    ),
}

# codec2-examples: one group per person (a speaker's coded copies with them). Left out as in
# dataset.py: copies and concatenations (hts1a, hts2a, hts.raw, all.wav, ve9qrp_10s), signals
# that are not speech (david4, vk2tpm_004, sine and modem files).
BASE_SPEAKERS: dict[str, tuple[tuple[str, bool], ...]] = {
    # speaker: ((file, spontaneous), ...)
    "kristoff": (("kristoff.raw", True),),
    "cq_ref": (("cq_ref.raw", True),),
    "ve9qrp": (("ve9qrp.wav", True),),
    "vk5qi": (("vk5qi.wav", True),),
    "g3plx": (("g3plx.raw", True),),
    "hts1": (("hts1.raw", False),),
    "hts2": (("hts2.raw", False),),
    "forig": (("forig.raw", False), ("f2400.raw", False)),
    "morig": (("morig.raw", False), ("m2400.raw", False)),
    "big_dog": (("big_dog.raw", False),),
    "mmt1": (("mmt1.raw", False),),
    "cross": (("cross.raw", False),),
}


def base_manifest(corpus: Corpus) -> Manifest:
    items: list[Item] = []
    for script, prompts in BASE_ANNOUNCEMENT_SCRIPTS.items():
        for parts in prompts:
            name = "+".join(p.replace("/", "-") for p in parts)
            items.append(
                Item(
                    f"announcement/asterisk-allison/en/{name}",
                    "announcement",
                    f"voice:asterisk-allison/{script}",
                    tuple(corpus.prompt(p) for p in parts),
                    meta={"family": "asterisk", "language": "en", "long": name in _LONG_PROMPTS},
                )
            )
    for track in corpus.moh_tracks():
        items.append(Item(f"music/opsound/{track.stem}", "music", f"music:opsound/{track.stem}", (track,)))
    for speaker, files in BASE_SPEAKERS.items():
        for name, spontaneous in files:
            items.append(
                Item(
                    f"speech/codec2/{Path(name).stem}",
                    "speech",
                    f"speaker:codec2-{speaker}",
                    (corpus.speech(name),),
                    meta={"spontaneous": spontaneous, "language": "en"},
                )
            )
    return Manifest("base", tuple(items))


_LONG_PROMPTS = {"basic-pbx-ivr-main", "demo-congrats"}


@functools.lru_cache(maxsize=4)
def load_sources(source: str = "auto") -> Manifest:
    """``auto`` (the wide manifest when present, else base), ``base``, ``wide``, or a manifest path."""
    if source in ("auto", "wide"):
        path = wide_corpus_dir() / "manifest.json"
        if not path.exists() and (wide_corpus_dir() / "full" / "manifest.json").exists():
            path = wide_corpus_dir() / "full" / "manifest.json"  # the full tier, as fetch_corpus.py --wide lays it out
        if path.exists():
            return load_manifest(path)
        if source == "wide":
            raise ManifestError(f"no wide corpus manifest at {path}")
        source = "base"
    if source == "base":
        return base_manifest(ensure_corpus())
    if source.startswith("base:"):
        return base_manifest(Corpus(Path(source[5:])))
    return load_manifest(source)
