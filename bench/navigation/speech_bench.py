"""Speech benchmark: local Whisper's word error rate on the IVR prompt corpus, and the TTS round trip.

    .venv/bin/python -m bench.navigation.speech_bench              # every spoken prompt
    .venv/bin/python -m bench.navigation.speech_bench --subset 60  # a deterministic 60-prompt subset
    .venv/bin/python -m bench.navigation.speech_bench --rescore    # score the stored texts again

STT: every prompt of ``asterisk-core-sounds-en-wav`` that has a spoken transcript in
``core-sounds-en.txt.gz`` (tones, silences and noises are left out; bracketed notes such as
"at [@]" are cut from the reference), with 0.5 s of silence on each side, through 8 kHz G.711
mu-law, as a call hears it. Two paths:
  - ``pipeline``: what a call runs: 20 ms frames into ``LocalWhisperStt`` (the VAD segmenter
    cuts utterances, Whisper transcribes each), all final transcripts joined;
  - ``direct``: the whole prompt given to Whisper at once (the recogniser alone).
WER = (substitutions + deletions + insertions) / reference words, summed over the corpus,
after normalising both sides (``normalize_words``: lower case, no punctuation, numbers and
ordinals spelled out, ``#`` "pound", ``*`` "star", contractions expanded) and joining compounds
written apart on one side only ("touch tone" / "touchtone"). The isolated-word families
(digits, letters, the spelling alphabet: single words with no context) are also left out in a
second figure. Real-time factor = wall time / audio time on one thread (``cpu_threads=1``),
measured on a machine shared with other jobs: an upper bound.

TTS round trip: menu-like sentences spoken by Piper (8 kHz), through mu-law, transcribed by
the pipeline above; WER against the sentences, and Piper's real-time factor.

Writes ``bench/results/speech.json`` and ``speech.md`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from app.clock import utc_now
from app.media.wavfile import load_audio
from app.sim.corpus import Corpus, ensure_corpus
from app.media.g711 import ulaw_decode, ulaw_encode

REPO = Path(__file__).resolve().parents[2]
WER_TARGET = 0.08
PAD_SECONDS = 0.5

MENU_SENTENCES = (
    "Thank you for calling Acme Bank.",
    "For billing questions, press one.",
    "For technical support, press two.",
    "To speak with a representative, press zero.",
    "Please enter your account number followed by the pound key.",
    "If you know your party's extension, you may dial it at any time.",
    "For all other questions, please stay on the line.",
    "Please say or enter your ten digit phone number.",
    "Your call is important to us. Please stay on the line.",
    "To hear these options again, press the star key.",
    "I would like to speak with an agent about my bill.",
    "Briefly tell me why you are calling today.",
)

# --- text normalisation and WER ---------------------------------------------------------------

_ONES = (
    "zero one two three four five six seven eight nine ten "
    "eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINALS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip
_SPELLING = {"ok": "okay", "voicemail": "voice mail", "e-mail": "email"}
_CONTRACTIONS = (("n't", " not"), ("'re", " are"), ("'ll", " will"), ("'ve", " have"), ("'m", " am"), ("let's", "let us"))


def number_words(n: int) -> str:
    """Cardinal English words for 0 <= n < 10**9 ("twenty four", "one thousand two hundred five")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in ((10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            return f"{number_words(head)} {name}" + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError("unreachable")


def _ordinal(words: str) -> str:
    *head, last = words.split()
    if last in _ORDINALS:
        last = _ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*head, last])


def _spell_number(digits: str) -> str:
    if len(digits) >= 10:  # a phone or account number: read digit by digit
        return " ".join(_ONES[int(d)] for d in digits)
    return number_words(int(digits))


def normalize_words(text: str) -> list[str]:
    """Words to compare: lower case, punctuation and hyphens dropped, contractions expanded,
    digits and ordinals spelled out, dotted initialisms joined ("P.M." and "PM" are "pm")."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"\b([a-z])\.(?=[a-z]\b)", r"\1", text)  # p.m. -> pm, u.s. -> us
    text = text.replace("can't", "can not").replace("won't", "will not")
    for contraction, expanded in _CONTRACTIONS:
        text = text.replace(contraction, expanded)
    for spelling, canonical in _SPELLING.items():
        text = re.sub(rf"\b{re.escape(spelling)}\b", canonical, text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = text.replace("#", " pound ").replace("*", " star ").replace("%", " percent ").replace("&", " and ")
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: " " + _ordinal(number_words(int(m.group(1)))) + " ", text)
    text = re.sub(r"\d+", lambda m: " " + _spell_number(m.group(0)) + " ", text)
    text = text.replace("'", "")
    text = re.sub(r"[^a-z\u00c0-\u024f]+", " ", text)
    return text.split()


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance over words: substitutions + deletions + insertions."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp_word in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return previous[-1]


def join_split_compounds(words: list[str], vocabulary: set[str]) -> list[str]:
    """Join neighbours whose concatenation is a word of the other side ("touch tone" / "touchtone",
    "log in" / "login"): a compound written apart is not two recognition errors."""
    joined: list[str] = []
    i = 0
    while i < len(words):
        if i + 1 < len(words) and words[i] + words[i + 1] in vocabulary:
            joined.append(words[i] + words[i + 1])
            i += 2
        else:
            joined.append(words[i])
            i += 1
    return joined


def score(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word errors, reference words) after ``normalize_words`` and ``join_split_compounds``."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    errors = word_errors(join_split_compounds(ref, set(hyp)), join_split_compounds(hyp, set(ref)))
    return errors, len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    errors, words = score(reference, hypothesis)
    return errors / max(1, words)


def clean_reference(text: str) -> str:
    """A published transcript without its notes about sounds ("[@]", "(simple tone sound plays)", "<beep>")."""
    return re.sub(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>", " ", text).strip()


def load_prompt_transcripts(corpus: Corpus) -> dict[str, str]:
    """Prompt name -> published transcript, for the prompts that are speech and have a file."""
    transcripts = {}
    with gzip.open(corpus.transcripts_file, "rt", encoding="utf-8") as lines:
        for line in lines:
            name, sep, text = line.partition(":")
            if not sep or line.startswith(";"):
                continue
            text = clean_reference(text)
            if not normalize_words(text) or not (corpus.prompts_dir / f"{name.strip()}.wav").is_file():
                continue
            transcripts[name.strip()] = text
    return transcripts


def deterministic_subset(names: list[str], size: int | None) -> list[str]:
    """Every k-th name in sorted order (a fixed spread over all prompt families)."""
    names = sorted(names)
    if size is None or size >= len(names):
        return names
    step = len(names) / size
    return [names[int(i * step)] for i in range(size)]


def telephone(pcm: np.ndarray) -> np.ndarray:
    """What the far end of a call hears: G.711 mu-law at 8 kHz."""
    return ulaw_decode(ulaw_encode(pcm))


# --- runs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptResult:
    name: str
    reference: str
    pipeline_text: str
    direct_text: str
    audio_seconds: float
    pipeline_seconds: float
    direct_seconds: float


@dataclass(frozen=True)
class RoundTripResult:
    sentence: str
    heard: str
    speech_seconds: float
    synthesis_seconds: float


async def transcribe_pipeline(pcm: np.ndarray, recognizer: Any, t0: float = 0.0) -> str:
    """The call path: 20 ms frames into LocalWhisperStt; final transcripts joined."""
    from app.speech.whisper_local import LocalWhisperStt

    stt = LocalWhisperStt(recognizer.settings, recognizer=recognizer)
    collected: list[str] = []

    async def collect() -> None:
        async for transcript in stt.results():
            if transcript.is_final:
                collected.append(transcript.text)

    collector = asyncio.create_task(collect())
    for start in range(0, len(pcm), 160):
        stt.push(pcm[start : start + 160], t0 + start / 8000)
        if start % 8000 == 0:
            await asyncio.sleep(0)  # let the worker start on finished utterances, as a live call would
    await stt.finish()
    await collector
    await stt.close()
    return " ".join(collected)


async def run_stt(
    corpus: Corpus, names: list[str], transcripts: dict[str, str], recognizer: Any, progress: bool
) -> list[PromptResult]:
    results = []
    pad = np.zeros(int(PAD_SECONDS * 8000), dtype=np.int16)
    for i, name in enumerate(names, 1):
        pcm = telephone(np.concatenate([pad, load_audio(corpus.prompt(name)), pad]))
        started = time.perf_counter()
        pipeline_text = await transcribe_pipeline(pcm, recognizer)
        pipeline_seconds = time.perf_counter() - started
        started = time.perf_counter()
        direct = recognizer.transcribe(pcm, 0.0)
        direct_seconds = time.perf_counter() - started
        result = PromptResult(
            name=name,
            reference=transcripts[name],
            pipeline_text=pipeline_text,
            direct_text=direct.text if direct is not None else "",
            audio_seconds=len(pcm) / 8000,
            pipeline_seconds=pipeline_seconds,
            direct_seconds=direct_seconds,
        )
        results.append(result)
        if progress and (i % 25 == 0 or i == len(names)):
            print(f"  stt {i}/{len(names)}", file=sys.stderr, flush=True)
    return results


async def run_round_trip(recognizer: Any) -> list[RoundTripResult]:
    from app.speech.piper_tts import PiperSettings, PiperTts

    voice = PiperTts(PiperSettings())
    voice.synthesize("Warm up.", cache=False)  # loading the voice is not synthesis time
    results = []
    pad = np.zeros(int(PAD_SECONDS * 8000), dtype=np.int16)
    for sentence in MENU_SENTENCES:
        started = time.perf_counter()
        speech = voice.synthesize(sentence, cache=False)
        synthesis_seconds = time.perf_counter() - started
        heard = await transcribe_pipeline(telephone(np.concatenate([pad, speech, pad])), recognizer)
        results.append(
            RoundTripResult(
                sentence=sentence,
                heard=heard,
                speech_seconds=len(speech) / 8000,
                synthesis_seconds=synthesis_seconds,
            )
        )
    return results


# --- report -----------------------------------------------------------------------------------


# Prompt families that are isolated words (digits, letters, the spelling alphabet), not sentences.
WORD_FAMILIES = ("digits/", "letters/", "phonetic/")


def build_report(
    stt: list[PromptResult], round_trip: list[RoundTripResult], run: dict[str, Any]
) -> dict[str, Any]:
    """Scores (computed here, from the texts) and the run's facts (``run``: date, commit, settings)."""
    prompts = []
    for r in stt:
        pipeline_errors, words = score(r.reference, r.pipeline_text)
        direct_errors, _ = score(r.reference, r.direct_text)
        prompts.append({**asdict(r), "reference_words": words, "pipeline_errors": pipeline_errors, "direct_errors": direct_errors})
    sentences = [p for p in prompts if not p["name"].startswith(WORD_FAMILIES)]
    trips = []
    for r in round_trip:
        errors, words = score(r.sentence, r.heard)
        trips.append({**asdict(r), "reference_words": words, "errors": errors})
    audio = sum(p["audio_seconds"] for p in prompts)

    def wer(rows: list[dict[str, Any]], key: str) -> float:
        return sum(row[key] for row in rows) / max(1, sum(row["reference_words"] for row in rows))

    return {
        **run,
        "stt": {
            "prompts": len(prompts),
            "reference_words": sum(p["reference_words"] for p in prompts),
            "audio_seconds": round(audio, 1),
            "pipeline": {"wer": wer(prompts, "pipeline_errors"), "rtf": sum(p["pipeline_seconds"] for p in prompts) / audio},
            "direct": {"wer": wer(prompts, "direct_errors"), "rtf": sum(p["direct_seconds"] for p in prompts) / audio},
            "sentences_only": {
                "prompts": len(sentences),
                "pipeline_wer": wer(sentences, "pipeline_errors"),
                "direct_wer": wer(sentences, "direct_errors"),
            },
            "prompts_without_errors": sum(p["pipeline_errors"] == 0 for p in prompts),
            "worst": sorted((p for p in prompts if p["pipeline_errors"]), key=lambda p: -p["pipeline_errors"])[:15],
        },
        "round_trip": {
            "sentences": len(trips),
            "reference_words": sum(t["reference_words"] for t in trips),
            "wer": wer(trips, "errors"),
            "piper_rtf": sum(t["synthesis_seconds"] for t in trips) / max(1e-9, sum(t["speech_seconds"] for t in trips)),
            "results": trips,
        },
        "target": {"wer": WER_TARGET},
        "per_prompt": prompts,
    }


def rescore(report: dict[str, Any]) -> dict[str, Any]:
    """The same run scored again with the current normalisation (no recognition is re-run)."""
    fields = {f for f in PromptResult.__dataclass_fields__}
    stored = [PromptResult(**{k: v for k, v in p.items() if k in fields}) for p in report["per_prompt"]]
    stt = [replace(r, reference=clean_reference(r.reference)) for r in stored if normalize_words(clean_reference(r.reference))]
    trip_fields = {f for f in RoundTripResult.__dataclass_fields__}
    trips = [RoundTripResult(**{k: v for k, v in t.items() if k in trip_fields}) for t in report["round_trip"]["results"]]
    run = {k: report[k] for k in ("date", "commit", "dirty", "whisper", "subset")}
    return build_report(stt, trips, {**run, "rescored": utc_now().isoformat(timespec="seconds")})


def markdown(report: dict[str, Any]) -> str:
    stt, rt = report["stt"], report["round_trip"]
    verdict = "PASS" if stt["pipeline"]["wer"] <= WER_TARGET else "FAIL"
    scope = f"deterministic subset of {report['subset']}" if report["subset"] else "every spoken prompt"
    lines = [
        "# Speech benchmark",
        "",
        f"{report['date']}, commit `{report['commit'][:12]}`{' + uncommitted changes' if report['dirty'] else ''}. "
        f"Whisper `{report['whisper']['model_size']}` {report['whisper']['compute_type']}, "
        f"beam {report['whisper']['beam_size']}, {report['whisper']['cpu_threads']} thread."
        + (f" Scored again on {report['rescored']} from the stored texts." if "rescored" in report else ""),
        "",
        f"## STT: IVR prompts through 8 kHz mu-law ({scope}: {stt['prompts']} prompts, "
        f"{stt['reference_words']} words, {stt['audio_seconds'] / 60:.1f} min)",
        "",
        "| path | WER | real-time factor | target |",
        "|---|---|---|---|",
        f"| pipeline (VAD segmenter + Whisper, as in a call) | {100 * stt['pipeline']['wer']:.2f}% | "
        f"{stt['pipeline']['rtf']:.3f} | WER <= {100 * WER_TARGET:.0f}%: {verdict} |",
        f"| direct (whole prompt to Whisper) | {100 * stt['direct']['wer']:.2f}% | {stt['direct']['rtf']:.3f} | |",
        "",
        f"Without the isolated words ({', '.join(WORD_FAMILIES)}; {stt['sentences_only']['prompts']} prompts left): "
        f"pipeline {100 * stt['sentences_only']['pipeline_wer']:.2f}%, direct {100 * stt['sentences_only']['direct_wer']:.2f}%.",
        "",
        f"Prompts transcribed without an error (pipeline): {stt['prompts_without_errors']} of {stt['prompts']}.",
        "",
        "Prompts with the most errors (pipeline):",
        "",
        "| prompt | words | errors | reference | heard |",
        "|---|---|---|---|---|",
    ]
    for r in stt["worst"][:10]:
        lines.append(
            f"| {r['name']} | {r['reference_words']} | {r['pipeline_errors']} | {r['reference']} | {r['pipeline_text']} |"
        )
    lines += [
        "",
        "## TTS round trip: Piper -> 8 kHz mu-law -> local Whisper "
        f"({rt['sentences']} sentences, {rt['reference_words']} words)",
        "",
        f"WER {100 * rt['wer']:.2f}%, Piper real-time factor {rt['piper_rtf']:.3f} (1 thread).",
        "",
        "| sentence | heard | errors |",
        "|---|---|---|",
    ]
    for r in rt["results"]:
        lines.append(f"| {r['sentence']} | {r['heard']} | {r['errors']} |")
    return "\n".join(lines) + "\n"


def _git_state() -> tuple[str, bool]:
    """The checked-out commit and whether the tree has uncommitted changes (read-only git)."""
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout

        commit, status = git("rev-parse", "HEAD").strip(), git("status", "--porcelain")
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, bool(status.strip())


async def run_benchmark(subset: int | None, beam_size: int, progress: bool) -> dict[str, Any]:
    from app.speech.whisper_local import WhisperRecognizer, WhisperSettings

    corpus = ensure_corpus()
    transcripts = load_prompt_transcripts(corpus)
    names = deterministic_subset(list(transcripts), subset)
    settings = WhisperSettings(beam_size=beam_size)
    recognizer = WhisperRecognizer(settings)
    recognizer.load()
    stt = await run_stt(corpus, names, transcripts, recognizer, progress)
    round_trip = await run_round_trip(recognizer)
    commit, dirty = _git_state()
    run = {
        "date": utc_now().isoformat(timespec="seconds"),
        "commit": commit,
        "dirty": dirty,
        "whisper": {k: str(v) for k, v in asdict(settings).items()},
        "subset": subset,
    }
    return build_report(stt, round_trip, run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.navigation.speech_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=None, help="a deterministic subset of N prompts")
    parser.add_argument("--beam", type=int, default=5, help="Whisper beam size (default 5)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--rescore", action="store_true", help="score OUT/speech.json again without running")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.rescore:
        report = rescore(json.loads((args.out / "speech.json").read_text()))
    else:
        report = asyncio.run(run_benchmark(args.subset, args.beam, progress=not args.quiet))
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    (args.out / "speech.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    (args.out / "speech.md").write_text(text)
    print(text)
    return 0 if report["stt"]["pipeline"]["wer"] <= WER_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
