"""Checks of a wide-corpus manifest (``manifest.json``) and of the files it lists."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from app.media.wavfile import read_wav

KINDS = ("announcement", "music", "speech", "noise")
GROUP_PREFIX = {"announcement": "voice:", "music": "music:", "speech": "speaker:", "noise": "noise:"}
COMMON_FIELDS = {"id": str, "kind": str, "group": str, "path": str, "seconds": (int, float),
                 "package": str, "licence": str, "rms_dbfs": (int, float)}
KIND_FIELDS: dict[str, dict[str, Any]] = {
    "announcement": {"family": str, "language": str, "text": str},
    "music": {"genre": str, "vocal": bool, "spoken_words": bool},
    "speech": {"spontaneous": bool, "language": str, "style": str},
    "noise": {"noise_kind": str},
}
SECONDS_RANGE = {"announcement": (0.3, 60.0), "music": (30.0, 180.5), "speech": (0.3, 180.5), "noise": (1.0, 180.5)}
SILENT_DBFS = -60.0


def problems(manifest: dict[str, Any], root: Path | None = None, *, check_audio: bool = True) -> list[str]:
    """Every way ``manifest`` breaks the format (empty: valid). With ``root``, the files are read too:
    8 kHz mono int16, the stated length, not silent."""
    found: list[str] = []
    if manifest.get("version") != 1:
        found.append(f"version is {manifest.get('version')!r}, not 1")
    items = manifest.get("items")
    if not isinstance(items, list) or not items:
        return found + ["no items"]
    seen: set[str] = set()
    group_kind: dict[str, set[str]] = defaultdict(set)
    for n, item in enumerate(items):
        where = f"item {n} ({item.get('id', '?')})"
        kind = item.get("kind")
        if kind not in KINDS:
            found.append(f"{where}: kind {kind!r}")
            continue
        for name, types in {**COMMON_FIELDS, **KIND_FIELDS[kind]}.items():
            if not isinstance(item.get(name), types) or item.get(name) in ("",):
                if not (name == "text" and item.get(name) == "" and item.get("family") == "asterisk"):
                    found.append(f"{where}: field {name!r} missing or of the wrong type")
        if item.get("id") in seen:
            found.append(f"{where}: duplicate id")
        seen.add(item.get("id"))
        if not str(item.get("id", "")).startswith(f"{kind}/"):
            found.append(f"{where}: id does not start with {kind}/")
        group = item.get("group", "")
        if not isinstance(group, str) or not group.startswith(GROUP_PREFIX[kind]):
            found.append(f"{where}: group {group!r} should start with {GROUP_PREFIX[kind]}")
        group_kind[group].add(kind)
        low, high = SECONDS_RANGE[kind]
        seconds = item.get("seconds")
        if isinstance(seconds, (int, float)) and not low <= seconds <= high:
            found.append(f"{where}: {seconds} s outside {low}-{high} s")
        path = item.get("path", "")
        if isinstance(path, str) and (path.startswith("/") or ".." in Path(path).parts):
            found.append(f"{where}: path {path!r} leaves the corpus")
        if root is not None and check_audio and isinstance(path, str):
            found += _check_audio(Path(root) / path, item, where)
    for group, kinds in group_kind.items():
        if len(kinds) > 1:
            found.append(f"group {group} holds several kinds {sorted(kinds)}")
    return found


def _check_audio(path: Path, item: dict[str, Any], where: str) -> list[str]:
    if not path.is_file():
        return [f"{where}: {path} missing"]
    audio = read_wav(path)
    out = []
    if audio.sample_rate != 8000:
        out.append(f"{where}: {audio.sample_rate} Hz")
    if audio.pcm.ndim != 1 or str(audio.pcm.dtype) != "int16":
        out.append(f"{where}: not mono int16")
    seconds = len(audio.pcm) / max(1, audio.sample_rate)
    if abs(seconds - float(item.get("seconds", -1))) > 0.01:
        out.append(f"{where}: {seconds:.3f} s on disk, {item.get('seconds')} in the manifest")
    pcm = audio.pcm.astype("float64")
    rms = (pcm**2).mean() ** 0.5 if len(pcm) else 0.0
    if rms <= 0 or 20 * __import__("math").log10(rms / 32768.0) < SILENT_DBFS:
        out.append(f"{where}: silent")
    return out


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """Counts per kind: items, groups, seconds, languages; and the music flags."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        items = [i for i in manifest["items"] if i["kind"] == kind]
        out[kind] = {
            "items": len(items),
            "groups": len({i["group"] for i in items}),
            "seconds": round(sum(i["seconds"] for i in items), 1),
        }
        if kind in ("announcement", "speech"):
            out[kind]["languages"] = sorted({i["language"] for i in items})
    music = [i for i in manifest["items"] if i["kind"] == "music"]
    out["music"]["vocal_groups"] = sorted({i["group"] for i in music if i["vocal"]})
    out["music"]["spoken_words_groups"] = sorted({i["group"] for i in music if i["spoken_words"]})
    speech = [i for i in manifest["items"] if i["kind"] == "speech"]
    out["speech"]["spontaneous_groups"] = sorted({i["group"] for i in speech if i["spontaneous"]})
    return out
