"""Fetch and render the wide corpus into its cache: 8 kHz mono int16 WAV plus ``manifest.json``.

``ensure_wide_corpus(tier)`` (``full`` or ``sample``, see ``sources``):

1. installs the tier's tools with ``apt-get install`` if missing (sox, espeak-ng, flite,
   festival and its voices, openmpt123, fluidsynth with fluid-soundfont-gm; root needed
   only then);
2. makes sure the base corpus is there (``app.sim.corpus.ensure_corpus``; read only: nothing is
   ever written under it);
3. downloads the tier's data packages (``apt-get download``) and unpacks them
   (``dpkg-deb -x``) into a staging directory;
4. renders the scripted announcements with every voice, decodes and cuts the music (tracks
   of at least 30 s, at most 180 s kept), extracts the speech files and noise beds, copies the
   base corpus's prompts, hold music and speakers, and writes every item as 8 kHz mono int16
   WAV under ``$HOLDSLAYER_WIDE_CORPUS_DIR/TIER`` (default
   ``~/.cache/holdslayer/corpus-wide/TIER``) with ``manifest.json`` and each package's
   ``copyright`` under ``licences/``.

The tier is built aside (``.TIER.partial``) and renamed into place when complete, with a
marker (``wide-corpus.json``: package versions, download size, wall time); a second call
finds the marker and does nothing. Rendering parameters are fixed (sox without dither, in
repeatable mode; Piper without noise; openmpt123 without dither; fluidsynth at fixed gain),
so the same packages give the same files.
"""

from __future__ import annotations

import fnmatch
import gzip
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from app.media.wavfile import load_audio, read_wav, write_wav
from app.sim.corpus import default_corpus_dir, ensure_corpus, exclusive_lock
from bench.corpus import script, sources
from bench.corpus.sources import (
    MAX_TRACK_SECONDS,
    MIDI_EXTENSIONS,
    MIN_TRACK_SECONDS,
    TRACKER_EXTENSIONS,
    MusicSource,
    NoiseSource,
    SpeechSource,
    Tier,
    Voice,
)

RATE = 8000
MARKER = "wide-corpus.json"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SILENT_DBFS = -60.0  # an item quieter than this (RMS) is dropped as silent
MAX_SPEECH_SECONDS = 60.0
MAX_NOISE_SECONDS = 180.0
NOISE_MIN_SECONDS = 1.0
NOISE_MAX_FILES = 8
TYPING_SECONDS = 60.0
COMPRESSED_MIN_BYTES = 100_000  # an Ogg/MP3 under this is a sound effect, not a 30 s piece
PIPER_SENTENCE_PAUSE = 0.25


class WideCorpusError(RuntimeError):
    """The wide corpus could not be fetched or rendered."""


def default_wide_dir() -> Path:
    env = os.environ.get("HOLDSLAYER_WIDE_CORPUS_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "holdslayer" / "corpus-wide"


def tier_dir(tier: Tier, root: Path | None = None) -> Path:
    return (Path(root) if root else default_wide_dir()) / tier


def is_complete(tier: Tier, root: Path | None = None) -> bool:
    directory = tier_dir(tier, root)
    return (directory / MARKER).is_file() and (directory / MANIFEST).is_file()


def load_manifest(tier: Tier = "full", root: Path | None = None) -> dict[str, Any]:
    return json.loads((tier_dir(tier, root) / MANIFEST).read_text(encoding="utf-8"))


def ensure_wide_corpus(
    tier: Tier = "full", root: Path | None = None, *, quiet: bool = True, workers: int | None = None
) -> Path:
    """Return the tier's directory, fetching and rendering it first if needed.

    Processes that ask at once (a benchmark and the test run, two test workers) take turns on a
    lock file: the first builds the tier, the others wait for it and find it complete."""
    if tier not in sources.TIERS:
        raise WideCorpusError(f"unknown tier {tier!r} (one of {sources.TIERS})")
    base_root = Path(root) if root else default_wide_dir()
    out = base_root / tier
    if is_complete(tier, base_root):
        return out
    _refuse_base_corpus(base_root)
    _check_reserved(tier)
    with exclusive_lock(base_root / f".{tier}.lock"):
        if not is_complete(tier, base_root):
            _build(tier, base_root, quiet=quiet, workers=workers)
    return out


def _build(tier: Tier, base_root: Path, *, quiet: bool, workers: int | None) -> None:
    out = base_root / tier
    started = time.monotonic()
    log = (lambda message: None) if quiet else (lambda message: print(f"wide corpus: {message}", flush=True))
    _install_tools(sources.tool_packages(tier), quiet=quiet, log=log)
    corpus = ensure_corpus(quiet=quiet)
    base_root.mkdir(parents=True, exist_ok=True)
    partial = base_root / f".{tier}.partial"
    staging = base_root / f".{tier}.staging"
    for directory in (partial, staging):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
    try:
        t0 = time.monotonic()
        debs = _download(sources.data_packages(tier), staging / "debs", quiet=quiet)
        download_seconds = time.monotonic() - t0
        download_bytes = sum(deb.stat().st_size for deb in debs)
        log(f"downloaded {len(debs)} packages, {download_bytes / 1e6:.0f} MB in {download_seconds:.0f} s")
        unpacked: dict[str, Path] = {}
        versions: dict[str, str] = {}
        for deb in debs:
            name, version = deb.name.split("_")[:2]
            unpacked[name] = staging / "pkgs" / name
            unpacked[name].mkdir(parents=True)
            versions[name] = urllib.parse.unquote(version)  # an epoch is "%3a" in the file name
        with ThreadPoolExecutor(max_workers=workers or max(1, os.cpu_count() or 1)) as pool:
            # the biggest first: xz unpacking is the slow part, one core per package
            order = sorted(debs, key=lambda deb: -deb.stat().st_size)
            list(pool.map(lambda deb: subprocess.run(
                ["dpkg-deb", "-x", str(deb), str(unpacked[deb.name.split("_")[0]])], check=True), order))
        renderer = _Renderer(tier, partial, staging / "work", unpacked, corpus.root, log)
        items = renderer.run(workers or max(1, os.cpu_count() or 1))
        _copy_licences(partial, unpacked, corpus.root, tier)
        items.sort(key=lambda item: item["id"])
        manifest = {"version": MANIFEST_VERSION, "tier": tier, "rate": RATE, "items": items}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        marker = {
            "tier": tier,
            "packages": versions,
            "tools": {name: _installed_version(name) for name in sources.tool_packages(tier)},
            "download_bytes": download_bytes,
            "download_seconds": round(download_seconds, 1),
            "wall_seconds": round(time.monotonic() - started, 1),
            "items": len(items),
            "bytes_on_disk": sum(p.stat().st_size for p in partial.rglob("*") if p.is_file()),
        }
        (partial / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(partial, out)
        log(f"{len(items)} items in {out} ({marker['wall_seconds']:.0f} s)")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(partial, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Safety and packages


def _refuse_base_corpus(root: Path) -> None:
    base = default_corpus_dir().expanduser().resolve()
    target = root.expanduser().resolve()
    if target == base or base in target.parents or target in base.parents:
        raise WideCorpusError(f"the wide corpus must not live in or around the base corpus ({base}): {target}")


def _check_reserved(tier: Tier) -> None:
    names = set(sources.tool_packages(tier)) | set(sources.data_packages(tier))
    bad = sorted(name for name in names if sources.is_reserved(name))
    if bad:
        raise WideCorpusError(f"reserved packages in the registry: {bad}")


def _installed_version(package: str) -> str | None:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status} ${Version}", package], capture_output=True, text=True
    )
    if result.returncode != 0 or not result.stdout.startswith("install ok installed"):
        return None
    return result.stdout.split()[-1]


def _install_tools(packages: Iterable[str], *, quiet: bool, log: Callable[[str], None]) -> None:
    missing = [name for name in packages if _installed_version(name) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise WideCorpusError(f"these Debian packages are needed (install them as root): {' '.join(missing)}")
    log(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=quiet, check=False)
        result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise WideCorpusError(f"apt-get install failed:\n{result.stderr.strip()[-2000:]}")


def _download(packages: Iterable[str], into: Path, *, quiet: bool) -> list[Path]:
    packages = list(packages)
    into.mkdir(parents=True, exist_ok=True)
    if not packages:
        return []

    def attempt() -> subprocess.CompletedProcess:
        return subprocess.run(["apt-get", "download", *packages], cwd=into, capture_output=True, text=True)

    result = attempt()
    if result.returncode != 0 and os.geteuid() == 0:
        subprocess.run(["apt-get", "update"], capture_output=quiet, check=False)
        result = attempt()
    if result.returncode != 0:
        raise WideCorpusError(f"apt-get download failed:\n{result.stderr.strip()[-2000:]}")
    debs = sorted(into.glob("*.deb"))
    got = {deb.name.split("_")[0] for deb in debs}
    if got != set(packages):
        raise WideCorpusError(f"expected packages {sorted(packages)}, got {sorted(got)}")
    return debs


def _copy_licences(out: Path, unpacked: dict[str, Path], base_root: Path, tier: Tier) -> None:
    target = out / "licences"
    target.mkdir(parents=True, exist_ok=True)
    roots = {name: path for name, path in unpacked.items()}
    for name in sources.BASE_PACKAGES:
        roots[name] = base_root
    for name in sorted(sources.tool_packages(tier)):
        roots.setdefault(name, Path("/"))
    for name, root in sorted(roots.items()):
        copyright_file = root / "usr/share/doc" / name / "copyright"
        if copyright_file.is_file():
            shutil.copyfile(copyright_file, target / f"{name}.copyright")


# ---------------------------------------------------------------------------------------------
# Audio helpers


def _sox_to_wav(src: Path, dst: Path, *, max_seconds: float | None = None) -> None:
    """Decode anything sox reads to 8 kHz mono int16 WAV: repeatable, no dither, guarded gain."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    command = ["sox", "-R", "-D", "-G", "-q", str(src), "-r", str(RATE), "-c", "1", "-b", "16",
               "-e", "signed-integer", str(dst)]
    if max_seconds is not None:
        command += ["trim", "0", f"{max_seconds:g}"]
    subprocess.run(command, check=True, capture_output=True)


def _measure(path: Path) -> tuple[float, float]:
    """(seconds, RMS in dBFS) of an 8 kHz int16 WAV."""
    audio = read_wav(path)
    pcm = audio.pcm.astype(np.float64)
    seconds = len(pcm) / audio.sample_rate
    rms = float(np.sqrt(np.mean(pcm**2))) if len(pcm) else 0.0
    return seconds, (20 * np.log10(rms / 32768.0) if rms > 0 else -200.0)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_").lower() or "x"


def _glob(root: Path, patterns: Iterable[str]) -> list[Path]:
    found: set[Path] = set()
    for pattern in patterns:
        found.update(p for p in root.glob(pattern) if p.is_file())
    return sorted(found, key=lambda p: str(p.relative_to(root)))


# ---------------------------------------------------------------------------------------------
# Rendering


class _Renderer:
    def __init__(
        self,
        tier: Tier,
        out: Path,
        work: Path,
        unpacked: dict[str, Path],
        base_root: Path,
        log: Callable[[str], None],
    ) -> None:
        self.tier = tier
        self.out = out
        self.work = work
        self.unpacked = unpacked
        self.base_root = base_root
        self.log = log
        self.sample = tier == "sample"
        self._piper_lock = threading.Lock()
        self._piper: Any = None
        work.mkdir(parents=True, exist_ok=True)

    def run(self, workers: int) -> list[dict[str, Any]]:
        jobs: list[Callable[[], list[dict[str, Any]]]] = []
        for voice in sources.VOICES:
            if self.tier in voice.tiers:
                jobs.append(lambda voice=voice: self.announcements(voice))
        for music in sources.MUSIC:
            if self.tier in music.tiers:
                jobs.append(lambda music=music: self.music(music))
        jobs.append(self.codec2)
        for speech in sources.SPEECH:
            if self.tier in speech.tiers:
                jobs.append(lambda speech=speech: self.speech(speech))
        for noise in sources.NOISE:
            if self.tier in noise.tiers:
                jobs.append(lambda noise=noise: self.noise(noise))
        items: list[dict[str, Any]] = []
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(lambda job: job(), jobs):
                items.extend(result)
        return items

    # -- helpers

    def _item(self, wav: Path, **fields: Any) -> dict[str, Any] | None:
        seconds, rms = _measure(wav)
        if rms < SILENT_DBFS:
            wav.unlink()
            return None
        return {**fields, "path": str(wav.relative_to(self.out)), "seconds": round(seconds, 3),
                "rms_dbfs": round(rms, 1)}

    def _tmp(self, suffix: str) -> Path:
        handle, name = tempfile.mkstemp(dir=self.work, suffix=suffix)
        os.close(handle)
        return Path(name)

    # -- announcements

    def announcements(self, voice: Voice) -> list[dict[str, Any]]:
        if voice.engine == "asterisk":
            return self.allison(voice)
        lines = script.LINES[voice.language]
        keys = script.SAMPLE_KEYS if self.sample else tuple(lines)
        items = []
        for key in keys:
            text = lines[key]
            raw = self._tmp(".wav")
            try:
                self._synthesise(voice, text, raw)
                wav = self.out / "announcement" / voice.id / voice.language / f"{key}.wav"
                _sox_to_wav(raw, wav)
            finally:
                raw.unlink(missing_ok=True)
            item = self._item(
                wav, id=f"announcement/{voice.id}/{voice.language}/{key}", kind="announcement",
                group=voice.group, family=voice.family, engine=voice.engine, voice=voice.name,
                language=voice.language, text=text, package=voice.packages[-1], licence=voice.licence,
            )
            if item:
                items.append(item)
        self.log(f"{voice.id}: {len(items)} announcements")
        return items

    def _synthesise(self, voice: Voice, text: str, out: Path) -> None:
        if voice.engine == "espeak-ng":
            subprocess.run(["espeak-ng", "-v", voice.name, "-s", "160", "-w", str(out), text],
                           check=True, capture_output=True)
        elif voice.engine == "flite":
            subprocess.run(["flite", "-voice", voice.name, "-t", text, "-o", str(out)],
                           check=True, capture_output=True)
        elif voice.engine == "festival":
            text_file = self._tmp(".txt")
            try:
                text_file.write_bytes(text.encode(voice.text_encoding))
                subprocess.run(["text2wave", "-eval", f"({voice.name})", "-o", str(out), str(text_file)],
                               check=True, capture_output=True)
            finally:
                text_file.unlink(missing_ok=True)
        elif voice.engine == "piper":
            self._piper_say(text, out)
        else:
            raise WideCorpusError(f"unknown engine {voice.engine}")

    def _piper_say(self, text: str, out: Path) -> None:
        from piper.config import SynthesisConfig

        from app.media.wavfile import resample

        with self._piper_lock:
            voice = self._piper_voice()
            config = SynthesisConfig(volume=0.9, noise_scale=0.0, noise_w_scale=0.0)
            chunks = list(voice.synthesize(text, config))
        rate = chunks[0].sample_rate
        pause = np.zeros(round(PIPER_SENTENCE_PAUSE * rate), np.int16)
        parts: list[np.ndarray] = []
        for chunk in chunks:
            if parts:
                parts.append(pause)
            parts.append(resample(chunk.audio_int16_array, chunk.sample_rate, rate))
        write_wav(out, np.concatenate(parts), rate)

    def _piper_voice(self) -> Any:
        if self._piper is None:
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig

            from app.speech.piper_tts import bundled_voice_path

            model = bundled_voice_path()
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            config = PiperConfig.from_dict(json.loads(Path(f"{model}.json").read_text(encoding="utf-8")))
            session = onnxruntime.InferenceSession(str(model), sess_options=options,
                                                   providers=["CPUExecutionProvider"])
            self._piper = PiperVoice(config=config, session=session)
        return self._piper

    def allison(self, voice: Voice) -> list[dict[str, Any]]:
        prompts_dir = self.base_root / "usr/share/asterisk/sounds/en_US_f_Allison"
        transcripts = _allison_transcripts(self.base_root)
        names = sources.ALLISON_SAMPLE if self.sample else sources.ALLISON_PROMPTS
        items = []
        for name in names:
            src = prompts_dir / f"{name}.wav"
            if not src.is_file():
                continue
            wav = self.out / "announcement" / voice.id / "en" / f"{_safe(name)}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            write_wav(wav, load_audio(src), RATE)
            item = self._item(
                wav, id=f"announcement/{voice.id}/en/{_safe(name)}", kind="announcement", group=voice.group,
                family=voice.family, engine=voice.engine, voice=voice.name, language="en",
                text=transcripts.get(name, ""), package=voice.packages[0], licence=voice.licence,
                source_file=f"prompt:{name}",
            )
            if item:
                items.append(item)
        return items

    # -- music

    def music(self, source: MusicSource) -> list[dict[str, Any]]:
        root = self.base_root if source.package in sources.BASE_PACKAGES else self.unpacked[source.package]
        files = _glob(root, source.include)
        spoken = [f for f in files if _matches(f, root, source.spoken_words)]
        files = spoken + [f for f in files if f not in spoken]  # pieces with spoken words first
        limit = min(source.max_tracks, 2) if self.sample else source.max_tracks
        items: list[dict[str, Any]] = []
        for path in files:
            if len(items) >= limit:
                break
            suffix = path.suffix.lower()
            if suffix in (".ogg", ".mp3", ".flac", ".wav", ".oga", ".opus") and path.stat().st_size < COMPRESSED_MIN_BYTES:
                continue
            rel = str(path.relative_to(root))
            name = _safe(str(Path(rel).relative_to(_common_dir(source.include)).with_suffix("")))
            wav = self.out / "music" / source.package / f"{name}.wav"
            try:
                self._render_music(path, wav)
            except subprocess.CalledProcessError as exc:
                self.log(f"{source.package}: cannot render {rel}: {exc.stderr!r:.200}")
                wav.unlink(missing_ok=True)
                continue
            seconds, _ = _measure(wav)
            if seconds < MIN_TRACK_SECONDS:
                wav.unlink()
                continue
            item = self._item(
                wav, id=f"music/{source.package}/{name}", kind="music", group=source.group, genre=source.genre,
                vocal=source.vocal, spoken_words=path in spoken, package=source.package, licence=source.licence,
                source_file=rel, rendering=_music_rendering(suffix),
            )
            if item:
                items.append(item)
        self.log(f"{source.package}: {len(items)} tracks")
        return items

    def _render_music(self, path: Path, wav: Path) -> None:
        suffix = path.suffix.lower()
        if suffix in TRACKER_EXTENSIONS:
            # openmpt123 --render writes FILE.wav next to its input: render a copy in work/.
            module = self._tmp(suffix)
            try:
                shutil.copyfile(path, module)
                subprocess.run(["openmpt123", "--render", "--quiet", "--force", "--samplerate", "22050",
                                "--channels", "1", "--no-float", "--dither", "0", "--end-time",
                                f"{MAX_TRACK_SECONDS:g}", str(module)], check=True, capture_output=True)
                _sox_to_wav(Path(f"{module}.wav"), wav, max_seconds=MAX_TRACK_SECONDS)
            finally:
                module.unlink(missing_ok=True)
                Path(f"{module}.wav").unlink(missing_ok=True)
        elif suffix in MIDI_EXTENSIONS:
            rendered = self._tmp(".wav")
            try:
                subprocess.run(["fluidsynth", "-n", "-i", "-q", "-g", "0.6", "-r", "22050", "-T", "wav",
                                "-F", str(rendered), str(SOUNDFONT), str(path)], check=True, capture_output=True)
                _sox_to_wav(rendered, wav, max_seconds=MAX_TRACK_SECONDS)
            finally:
                rendered.unlink(missing_ok=True)
        else:
            _sox_to_wav(path, wav, max_seconds=MAX_TRACK_SECONDS)

    # -- speech

    def codec2(self) -> list[dict[str, Any]]:
        speech_dir = self.base_root / "usr/share/codec2"
        items = []
        for speaker, files, spontaneous in sources.CODEC2_SPEAKERS:
            if self.sample and speaker not in sources.CODEC2_SAMPLE:
                continue
            for rel in files:
                src = speech_dir / rel
                if not src.is_file():
                    continue
                wav = self.out / "speech" / "codec2-examples" / speaker / f"{_safe(Path(rel).stem)}.wav"
                wav.parent.mkdir(parents=True, exist_ok=True)
                write_wav(wav, load_audio(src), RATE)
                item = self._item(
                    wav, id=f"speech/codec2-examples/{speaker}/{_safe(Path(rel).stem)}", kind="speech",
                    group=f"speaker:codec2-{speaker}", speaker=speaker, spontaneous=spontaneous,
                    style="spontaneous" if spontaneous else "read-sentences", language="en",
                    package="codec2-examples", licence=sources.CODEC2_LICENCE, source_file=f"speech:{Path(rel).name}",
                )
                if item:
                    items.append(item)
        return items

    def speech(self, source: SpeechSource) -> list[dict[str, Any]]:
        root = self.unpacked[source.package]
        by_speaker: dict[str, list[Path]] = {}
        for path in _glob(root, source.include):
            rel = str(path.relative_to(root))
            if source.speaker is None:
                speaker = ""
            else:
                match = re.search(source.speaker, rel)
                if not match:
                    continue
                speaker = match.group("speaker")
            if source.speakers is not None and speaker not in source.speakers:
                continue
            by_speaker.setdefault(speaker, []).append(path)
        speakers = sorted(by_speaker)
        per_group = source.max_per_group
        if self.sample:
            speakers, per_group = speakers[:3], min(per_group, 4)
        items = []
        for speaker in speakers:
            group = f"speaker:{source.package}-{speaker}" if speaker else f"speaker:{source.package}"
            language = source.languages.get(speaker, source.default_language)
            kept = 0
            for path in by_speaker[speaker]:
                if kept >= per_group:
                    break
                rel = str(path.relative_to(root))
                stem = _safe(str(Path(rel).relative_to(_common_dir(source.include)).with_suffix("")))
                wav = self.out / "speech" / source.package / (speaker or "all") / f"{stem}.wav"
                try:
                    _sox_to_wav(path, wav, max_seconds=MAX_SPEECH_SECONDS)
                except subprocess.CalledProcessError:
                    wav.unlink(missing_ok=True)
                    continue
                seconds, _ = _measure(wav)
                if seconds < source.min_seconds:
                    wav.unlink()
                    continue
                item = self._item(
                    wav, id=f"speech/{source.package}/{speaker or 'all'}/{stem}", kind="speech", group=group,
                    speaker=speaker or None, spontaneous=source.spontaneous, style=source.style,
                    language=language, package=source.package, licence=source.licence, source_file=rel,
                )
                if item:
                    items.append(item)
                    kept += 1
        self.log(f"{source.package}: {len(items)} speech files, {len(speakers)} speakers")
        return items

    # -- noise

    def noise(self, source: NoiseSource) -> list[dict[str, Any]]:
        root = self.unpacked[source.package]
        files = _glob(root, source.include)
        if source.render == "typing":
            return self._typing(source, root, files)
        items = []
        for path in files:
            if len(items) >= (2 if self.sample else NOISE_MAX_FILES):
                break
            rel = path.relative_to(root)
            stem = _safe(str(rel.relative_to(_common_dir(source.include)).with_suffix("")))
            wav = self.out / "noise" / source.id / f"{stem}.wav"
            _sox_to_wav(path, wav, max_seconds=MAX_NOISE_SECONDS)
            seconds, _ = _measure(wav)
            if seconds < NOISE_MIN_SECONDS:
                wav.unlink()
                continue
            item = self._item(
                wav, id=f"noise/{source.id}/{stem}", kind="noise", group=source.group, noise_kind=source.kind,
                package=source.package, licence=source.licence, source_file=str(path.relative_to(root)),
            )
            if item:
                items.append(item)
        return items

    def _typing(self, source: NoiseSource, root: Path, files: list[Path]) -> list[dict[str, Any]]:
        """Key press/release recordings (bucklespring: ``SCANCODE-0.wav`` press, ``-1`` release) laid
        out as typing: words of 2-9 keys, 70-260 ms apart, pauses between words and sentences."""
        keys: dict[str, dict[str, np.ndarray]] = {}
        for path in files:
            code, _, direction = path.stem.partition("-")
            tmp = self._tmp(".wav")
            try:
                _sox_to_wav(path, tmp)
                keys.setdefault(code, {})[direction] = read_wav(tmp).pcm.astype(np.float64)
            finally:
                tmp.unlink(missing_ok=True)
        pairs = [(v["0"], v.get("1")) for _, v in sorted(keys.items()) if "0" in v]
        if not pairs:
            return []
        items = []
        for name, seed, pace in (("typing-steady", 1, 1.0), ("typing-bursty", 2, 0.7)):
            rng = np.random.default_rng(seed)
            out = np.zeros(int(TYPING_SECONDS * RATE) + RATE)
            t = 0.3
            while t < TYPING_SECONDS - 1.0:
                for _ in range(int(rng.integers(2, 10))):
                    press, release = pairs[int(rng.integers(len(pairs)))]
                    start = int(t * RATE)
                    out[start:start + len(press)] += press[: len(out) - start]
                    if release is not None:
                        r = start + int(rng.uniform(0.06, 0.12) * RATE)
                        out[r:r + len(release)] += release[: max(0, len(out) - r)]
                    t += rng.uniform(0.07, 0.26) * pace
                t += rng.uniform(0.15, 0.5) if rng.random() < 0.85 else rng.uniform(1.0, 3.0)
            out = out[: int(TYPING_SECONDS * RATE)]
            peak = np.max(np.abs(out)) or 1.0
            pcm = np.round(out * min(1.0, 29000.0 / peak)).astype(np.int16)
            wav = self.out / "noise" / source.id / f"{name}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            write_wav(wav, pcm, RATE)
            item = self._item(
                wav, id=f"noise/{source.id}/{name}", kind="noise", group=source.group, noise_kind=source.kind,
                package=source.package, licence=source.licence, source_file="usr/share/buckle/wav/*.wav",
            )
            if item:
                items.append(item)
        return items


def _matches(path: Path, root: Path, patterns: Iterable[str]) -> bool:
    rel = str(path.relative_to(root))
    return any(fnmatch.fnmatch(rel, pattern) for pattern in patterns)


def _common_dir(patterns: Iterable[str]) -> Path:
    """The longest directory prefix free of wildcards shared by the patterns (names are taken relative to it)."""
    dirs = []
    for pattern in patterns:
        parts = []
        for part in Path(pattern).parts[:-1]:
            if any(c in part for c in "*?["):
                break
            parts.append(part)
        dirs.append(Path(*parts) if parts else Path("."))
    common = Path(os.path.commonpath([str(d) for d in dirs])) if dirs else Path(".")
    return common


def _music_rendering(suffix: str) -> str:
    if suffix in TRACKER_EXTENSIONS:
        return "openmpt123"
    if suffix in MIDI_EXTENSIONS:
        return "fluidsynth+fluid-soundfont-gm"
    return "sox"


def _allison_transcripts(base_root: Path) -> dict[str, str]:
    path = base_root / "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
    if not path.is_file():
        return {}
    out = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            name, sep, text = line.partition(":")
            if sep:
                out[name.strip()] = text.strip()
    return out
