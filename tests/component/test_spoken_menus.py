"""The spoken menu benchmark: the hearing hook of the corpus walk, its pure helpers, and one real
prompt part through espeak-ng, mu-law and the app's Whisper."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from app.ivr.navigator import NavigationContext
from bench.navigation.menu_corpus import CorpusMenu, Level, Request, clean_text, heard_transcript, load_corpus, run
from bench.navigation.spoken_menus import (
    VOICES_BY_NAME,
    align,
    cache_key,
    engine_version,
    hearing_from,
    key_word_confusions,
    parsed_keys,
    prompt_parts,
    select_menus,
    stt_settings,
    transcribe_all,
)
from tests.component.test_menu_corpus import Scripted

MENU = CorpusMenu(
    "t-1", "test", "Test Co", (),
    Level("Enter your account number. ... For billing, press 1. For repairs, press 2.",
          {"2": Level("For a phone repair, press 1. For internet repair, press 2.", {})}),
    (Request("my wifi is broken", (("<account_number>", "2", "2"),)),),
)  # fmt: skip


class Recorder(Scripted):
    def __init__(self, menus):
        super().__init__(menus)
        self.heard: list[str] = []

    async def decide(self, ctx: NavigationContext):
        self.heard.append(ctx.transcript)
        return await super().decide(ctx)


async def test_by_default_the_walk_hears_the_text_as_written():
    default, explicit = Recorder([MENU]), Recorder([MENU])
    [a] = await run(default, [MENU])
    [b] = await run(explicit, [MENU], clean_text)
    assert default.heard == explicit.heard == [
        "Enter your account number.",
        "For billing, press 1. For repairs, press 2.",
        "For a phone repair, press 1. For internet repair, press 2.",
    ]
    assert a == b and a.correct


async def test_the_walk_hears_what_the_hearing_function_gives():
    def mishear(part: str) -> str:
        return part.replace("press 2", "press to")  # Whisper's "two" as "to"

    navigator = Recorder([MENU])
    [outcome] = await run(navigator, [MENU], mishear)
    assert navigator.heard[1] == "For billing, press 1. For repairs, press to."
    assert navigator.heard[2] == "For a phone repair, press 1. For internet repair, press to."
    assert outcome.taken == ("<account_number>", "2", "2")  # the scripted navigator presses regardless


def test_parts_heard_as_nothing_drop_out_of_the_transcript():
    heard = {"a": "Hello.", "b": "  ", "c": "Press 1."}
    assert heard_transcript(["a", "b", "c"], heard.__getitem__) == "Hello. Press 1."
    assert heard_transcript(["a", "c"]) == "a c"
    assert hearing_from({"x": "y"})("x") == "y"


def test_parts_are_distinct_and_the_limit_takes_the_first_menus_of_each_industry():
    menus = load_corpus()
    few = select_menus(menus, frozen=False, limit=2)
    industries = {m.industry for m in few}
    assert len(few) == 2 * len(industries) and not industries & {"credit-cards", "universities"}
    assert all(m.industry in {"credit-cards", "mortgage-loans", "telecom-mobile", "universities"}
               for m in select_menus(menus, frozen=True, limit=None))  # fmt: skip
    parts = prompt_parts(few)
    assert len(parts) == len(set(parts)) and all(p and "..." not in p for p in parts)
    assert prompt_parts([MENU]) == [
        "Enter your account number.",
        "For billing, press 1. For repairs, press 2.",
        "For a phone repair, press 1. For internet repair, press 2.",
    ]


def test_the_cache_key_changes_with_the_voice_the_text_and_the_stt_settings():
    voice = {"engine": "flite", "voice": "slt", "version": "2.2"}
    stt = {"whisper": {"beam_size": "5"}}
    key = cache_key(voice, "Press 1.", stt)
    assert key == cache_key(dict(voice), "Press 1.", dict(stt))
    assert key != cache_key({**voice, "voice": "kal"}, "Press 1.", stt)
    assert key != cache_key(voice, "Press 2.", stt)
    assert key != cache_key(voice, "Press 1.", {"whisper": {"beam_size": "1"}})


def test_key_words_are_aligned_with_what_was_heard():
    assert align(["a", "b", "c"], ["a", "c"]) == [("a", "a"), ("b", None), ("c", "c")]
    tally = key_word_confusions("For billing, press 4. For claims, press 2.", "For billing press for, for claims, press two.")
    assert tally[("four", "for")] == 1 and tally[("two", "two")] == 1 and tally[("press", "press")] == 2


def test_parse_menu_is_compared_on_text_and_transcript():
    found = parsed_keys("For billing, press 1. For repairs, press 2.", "For billing, press one. For repairs, press to.")
    assert (found["keys"], found["found"], found["same_label"], found["extra"]) == (2, 1, 1, 0)
    # Whisper moves a sentence break and mishears "date": the label and the data request are lost.
    found = parsed_keys(
        "Please enter your date of birth. To continue in English, press 1.",
        "Please enter your state of birth to continue in English. Press 1.",
    )
    assert found == {"keys": 1, "found": 1, "same_label": 0, "no_label": 1, "extra": 0, "spanish_keys": 0,
                     "spanish_found": 0, "data": 1, "data_found": 0, "data_extra": 0}  # fmt: skip
    found = parsed_keys("Para español, oprima nueve. For billing, press 1.", "Pair a spaniel, opera menu. For billing, press 1.")
    assert (found["keys"], found["found"], found["spanish_keys"], found["spanish_found"]) == (2, 1, 1, 0)


def test_a_rerun_reads_transcripts_from_the_cache(tmp_path):
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    voice = VOICES_BY_NAME["flite-kal"]
    voice_key = {"engine": voice.engine, "voice": voice.voice, "version": engine_version(voice.engine)}
    part = "For billing, press 1."
    key = cache_key(voice_key, part, stt_settings())
    record = {"voice": voice_key, "text": part, "heard": "cached words", "audio_seconds": 1.0, "tts_seconds": 0.1,
              "stt_seconds": 0.2}  # fmt: skip
    (tmp_path / f"{key}.json").write_text(json.dumps(record))
    records, facts = transcribe_all([voice], [part], tmp_path, workers=2, progress=False)
    assert records["flite-kal"][part]["heard"] == "cached words"
    assert facts["rendered_now"] == 0 and facts["from_cache"] == 1


def test_a_prompt_part_spoken_by_espeak_through_mulaw_is_heard_by_the_apps_whisper():
    """Real end to end on one short part (a few seconds): espeak-ng -> 8 kHz -> mu-law -> VAD + Whisper."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from app.speech.types import SttUnavailable
    from app.speech.whisper_local import bundled_model_path
    from bench.navigation.spoken_menus import hear_audio, synthesize

    try:
        bundled_model_path()
    except SttUnavailable as error:
        pytest.skip(str(error))
    # espeak-ng's "press 2" is hard for Whisper tiny.en: "Please press 2." comes out as "Please press
    # do.", "Press 2 for billing." as "prep tube armailing" now and then (when Whisper's log-prob is
    # low, faster-whisper falls back to unseeded sampling). This sentence is heard with confidence,
    # so the same each time; the benchmark measures the rest (bench/results/navigation-menus-spoken.md).
    pcm = synthesize(VOICES_BY_NAME["espeak-en-us"], "Press 2 for the billing department.")
    assert 1.0 < len(pcm) / 8000 < 5.0
    heard = hear_audio(pcm)
    assert re.search(r"\bpress (2|two)\b", heard.lower()), heard
