"""Speech-to-text: the segmenter, local Whisper on real IVR prompts, Deepgram and OpenAI through
their real SDKs against local fakes of their services, and the fallback to the local path."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import numpy as np
import pytest

from app.media.wavfile import load_audio
from app.media.g711 import ulaw_decode, ulaw_encode
from app.speech import (
    MULAW_8K,
    PCM_8K,
    AudioChunk,
    AudioFormat,
    FallbackStt,
    Segmenter,
    SegmenterSettings,
    SttUnavailable,
    Transcript,
    stream,
    stt_from_settings,
)
from app.speech.deepgram_stt import DeepgramStt
from app.speech.openai_stt import OpenAiStt
from app.speech.whisper_local import LocalWhisperStt, WhisperRecognizer
from bench.navigation.speech_bench import load_prompt_transcripts, score
from tests.conftest import REPO
from tests.fakes.deepgram_server import FakeDeepgram, ScriptedUtterance
from tests.fakes.openai_audio_server import AudioHttpError, DropConnection, FakeOpenAiAudio, TranscriptionReply

RATE = 8000
GAP = 1.5  # seconds of silence between prompts


@pytest.fixture(scope="module")
def transcripts(corpus):
    return load_prompt_transcripts(corpus)


def telephone(pcm: np.ndarray) -> np.ndarray:
    return ulaw_decode(ulaw_encode(pcm))


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), dtype=np.int16)


def prompt_sequence(corpus, names: list[str], lead: float = 1.0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Prompts separated by GAP seconds of silence, through mu-law; each prompt's (start, end) in seconds."""
    parts, spans, t = [silence(lead)], [], lead
    for name in names:
        pcm = load_audio(corpus.prompt(name))
        spans.append((t, t + len(pcm) / RATE))
        parts += [pcm, silence(GAP)]
        t += len(pcm) / RATE + GAP
    return telephone(np.concatenate(parts)), spans


def push_frames(stt, pcm: np.ndarray, t0: float) -> None:
    for start in range(0, len(pcm), 160):
        stt.push(pcm[start : start + 160], t0 + start / RATE)


async def collect(stt) -> list[Transcript]:
    return [transcript async for transcript in stt.results()]


def wer(references: list[str], hypotheses: list[str]) -> float:
    scores = [score(r, h) for r, h in zip(references, hypotheses, strict=True)]
    return sum(errors for errors, _ in scores) / sum(words for _, words in scores)


# --- types ------------------------------------------------------------------------------------


def test_audio_chunks_state_their_format_and_convert_exactly():
    pcm = (np.sin(np.arange(800) / 5) * 8000).astype(np.int16)
    mulaw = ulaw_encode(pcm)
    chunk = AudioChunk(mulaw, MULAW_8K, t=3.0)
    assert chunk.duration == pytest.approx(0.1)
    assert chunk.to_mulaw() is mulaw  # mu-law in, the same bytes out: no transcoding
    assert np.array_equal(chunk.to_pcm(), ulaw_decode(mulaw))
    linear = AudioChunk.from_pcm(pcm, t=3.0)
    assert linear.format == PCM_8K and linear.duration == pytest.approx(0.1)
    assert linear.to_mulaw() == mulaw
    stereo = AudioChunk(np.repeat(pcm, 2).astype("<i2").tobytes(), AudioFormat(8000, 2, 2, "pcm_s16le"), 0.0)
    assert np.array_equal(stereo.to_pcm(), pcm)
    with pytest.raises(ValueError, match="1-byte samples"):
        AudioFormat(8000, 2, 1, "mulaw")


def test_wer_scoring_forgives_spelling_conventions_but_not_wrong_words():
    assert score("Press 1 for the 21st floor, # to end.", "press one for the twenty-first floor, pound to end") == (0, 10)
    assert score("Enter your P.M. time and log in.", "Enter your PM time and login") == (0, 7)
    assert score("You're calling after hours", "You are calling after hours.") == (0, 5)
    assert score("Please hold for the next caller", "Please hold for the next color") == (1, 6)
    assert score("press two", "press two now") == (1, 2)


# --- segmenter --------------------------------------------------------------------------------


def test_segmenter_cuts_a_prompt_sequence_at_its_pauses_on_the_call_timeline(corpus):
    names = ["queue-thankyou", "agent-pass", "all-circuits-busy-now"]
    pcm, spans = prompt_sequence(corpus, names)
    t0 = 1000.0
    segmenter = Segmenter()
    utterances = []
    for start in range(0, len(pcm), 160):
        utterances += segmenter.push(pcm[start : start + 160], t0 + start / RATE)
    utterances += segmenter.flush()

    assert len(utterances) == len(names)
    for utterance, (start, end) in zip(utterances, spans, strict=True):
        # The pre-roll starts it a little before the first word, never after it.
        assert t0 + start - 0.35 <= utterance.t_start <= t0 + start + 0.05
        assert t0 + end - 0.1 <= utterance.t_end <= t0 + end + 0.4
        assert not utterance.forced_cut
        assert utterance.pcm.dtype == np.int16 and len(utterance.pcm) == round(utterance.duration * RATE)


def test_segmenter_splits_long_speech_at_a_quiet_point_and_drops_blips(corpus):
    long_prompt = telephone(np.concatenate([silence(0.5), load_audio(corpus.prompt("basic-pbx-ivr-main")), silence(1.0)]))
    segmenter = Segmenter(SegmenterSettings(max_segment=8.0, cut_search=2.0))
    pieces = segmenter.push(long_prompt, 0.0) + segmenter.flush()
    assert len(pieces) >= 3
    assert all(p.duration <= 8.0 + 1e-9 for p in pieces)
    assert all(p.forced_cut for p in pieces[:-1]) and not pieces[-1].forced_cut
    for before, after in zip(pieces, pieces[1:]):
        assert after.t_start == pytest.approx(before.t_end)  # nothing lost at a cut

    one_word = telephone(np.concatenate([silence(0.5), load_audio(corpus.prompt("digits/1")), silence(1.0)]))
    assert len(Segmenter().push(one_word, 0.0)) == 1
    picky = Segmenter(SegmenterSettings(min_speech=1.0))
    assert picky.push(one_word, 0.0) + picky.flush() == []


# --- local Whisper ----------------------------------------------------------------------------


def test_local_whisper_transcribes_ivr_prompts_through_mulaw(corpus, transcripts):
    names = ["basic-pbx-ivr-main", "queue-periodic-announce", "agent-alreadyon", "vm-review"]
    recognizer = WhisperRecognizer.shared()
    heard = []
    for name in names:
        pcm = telephone(load_audio(corpus.prompt(name)))
        transcript = recognizer.transcribe(pcm, t_start=60.0)
        assert transcript is not None and transcript.is_final
        starts = [w.t_start for w in transcript.words]
        assert starts == sorted(starts)
        assert 60.0 <= transcript.words[0].t_start and transcript.words[-1].t_end <= 60.0 + len(pcm) / RATE + 0.1
        assert 0.0 < transcript.confidence <= 1.0
        heard.append(transcript.text)
    assert wer([transcripts[n] for n in names], heard) <= 0.08


async def test_local_stt_streams_utterances_without_blocking_the_event_loop(corpus, transcripts):
    names = ["queue-periodic-announce", "agent-pass"]
    pcm, spans = prompt_sequence(corpus, names)
    t0 = 500.0
    stt = LocalWhisperStt()
    ticks = 0

    async def heartbeat():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    beating = asyncio.create_task(heartbeat())
    results = asyncio.create_task(collect(stt))
    push_frames(stt, pcm, t0)
    ticks_before = ticks
    await stt.finish()  # both utterances are transcribed in a worker thread from here
    beating.cancel()
    finals = await asyncio.wait_for(results, 30)
    await stt.close()

    assert ticks - ticks_before >= 3, "the event loop was blocked while Whisper ran"
    assert [t.is_final for t in finals] == [True, True]
    assert wer([transcripts[n] for n in names], [t.text for t in finals]) <= 0.1
    for transcript, (start, end) in zip(finals, spans, strict=True):
        assert t0 + start - 0.4 <= transcript.t_start <= t0 + start + 0.6
        assert t0 + end - 0.6 <= transcript.t_end <= t0 + end + 0.4
        assert all(t0 + start - 0.4 <= w.t_start <= w.t_end <= t0 + end + 0.4 for w in transcript.words)


# --- Deepgram ---------------------------------------------------------------------------------

SCRIPT = (
    ScriptedUtterance("Press one for billing.", start=0.5, end=1.5),
    ScriptedUtterance("For sales, press two.", start=2.0, end=3.0, ending="utterance_end"),
)


async def test_deepgram_streams_mulaw_through_the_sdk_and_maps_results(corpus):
    pcm = telephone(load_audio(corpus.prompt("basic-pbx-ivr-main"))[: 5 * RATE])
    t0 = 200.0
    async with FakeDeepgram(api_key="dg-key", script=SCRIPT) as fake:
        stt = DeepgramStt("dg-key", url=fake.url, endpointing_ms=300)
        results = asyncio.create_task(collect(stt))
        push_frames(stt, pcm, t0)
        await stt.finish()
        transcripts = await asyncio.wait_for(results, 10)

    [session] = fake.sessions
    assert session.headers["authorization"] == "Token dg-key"
    query = session.query
    assert (query["encoding"], query["sample_rate"], query["channels"]) == ("mulaw", "8000", "1")
    assert (query["interim_results"], query["endpointing"], query["model"]) == ("true", "300", "nova-3")
    assert bytes(session.audio) == ulaw_encode(pcm)  # the call's mu-law, byte for byte
    assert session.control[-1] == {"type": "CloseStream"}

    finals = [t for t in transcripts if t.is_final]
    assert [t.text for t in finals] == ["Press one for billing.", "For sales, press two."]
    first_interim = transcripts[0]
    assert not first_interim.is_final and first_interim.text == "Press one"
    assert transcripts.index(finals[0]) > 0  # interim guesses came first
    billing = finals[0]
    assert billing.t_start == pytest.approx(t0 + 0.5) and billing.t_end == pytest.approx(t0 + 1.5)
    assert [w.text for w in billing.words] == ["Press", "one", "for", "billing."]
    assert billing.words[1].t_start == pytest.approx(t0 + 0.75)
    assert billing.confidence == pytest.approx(0.97)


async def test_deepgram_times_follow_the_call_across_gaps_in_the_audio():
    tone = (np.sin(np.arange(RATE) * 2 * np.pi * 440 / RATE) * 3000).astype(np.int16)
    async with FakeDeepgram(script=[ScriptedUtterance("Please hold.", start=1.2, end=1.8)]) as fake:
        stt = DeepgramStt("test-key", url=fake.url)
        results = asyncio.create_task(collect(stt))
        push_frames(stt, tone, t0=10.0)  # stream seconds 0..1 are call time 10..11
        push_frames(stt, tone, t0=25.0)  # nothing pushed in between: stream 1..2 is call 25..26
        await stt.finish()
        [final] = [t for t in await asyncio.wait_for(results, 10) if t.is_final]
    assert final.t_start == pytest.approx(25.2) and final.t_end == pytest.approx(25.8)


async def test_deepgram_refused_key_is_a_typed_error():
    async with FakeDeepgram(api_key="right") as fake:
        stt = DeepgramStt("wrong", url=fake.url)
        stt.push(silence(0.02), 0.0)
        with pytest.raises(SttUnavailable, match="refused"):
            await asyncio.wait_for(collect(stt), 10)
        await stt.close()
    assert fake.sessions == []


async def test_stream_adapter_sends_mulaw_chunks_as_they_are():
    mulaw = ulaw_encode((np.sin(np.arange(2 * RATE) / 3) * 4000).astype(np.int16))

    async def chunks():
        for start in range(0, len(mulaw), 160):
            yield AudioChunk(mulaw[start : start + 160], MULAW_8K, t=40.0 + start / RATE)

    async with FakeDeepgram(script=[ScriptedUtterance("Goodbye.", start=0.5, end=1.0)]) as fake:
        heard = [t async for t in stream(DeepgramStt("test-key", url=fake.url), chunks())]
    assert bytes(fake.sessions[0].audio) == mulaw
    assert [(t.text, t.t_start) for t in heard if t.is_final] == [("Goodbye.", pytest.approx(40.5))]


async def test_a_dying_deepgram_hands_over_to_local_whisper(corpus, transcripts):
    pcm, spans = prompt_sequence(corpus, ["queue-thankyou"], lead=0.5)
    t0 = 300.0
    async with FakeDeepgram(drop_after_seconds=1.0) as fake:
        stt = stt_from_settings("deepgram", deepgram_api_key="test-key", deepgram_url=fake.url)
        assert isinstance(stt, FallbackStt) and stt.provider == "deepgram"
        results = asyncio.create_task(collect(stt))
        push_frames(stt, pcm, t0)
        await asyncio.sleep(0.5)  # the stream dies while audio is still coming
        await stt.finish()
        finals = [t for t in await asyncio.wait_for(results, 30) if t.is_final]
        await stt.close()
    assert stt.provider == "local"
    assert "deepgram" in (stt.fallback_reason or "")
    assert len(finals) == 1
    assert wer([transcripts["queue-thankyou"]], [finals[0].text]) <= 0.2
    assert finals[0].t_start == pytest.approx(t0 + spans[0][0], abs=0.5)  # the replayed audio kept its times


# --- OpenAI -----------------------------------------------------------------------------------


async def test_openai_stt_uploads_each_utterance_as_wav_and_maps_word_times(corpus):
    pcm, spans = prompt_sequence(corpus, ["queue-thankyou", "agent-pass"])
    t0 = 70.0
    async with FakeOpenAiAudio(api_key="oa-key") as fake:
        fake.script_transcriptions(
            TranscriptionReply(
                "Thank you for holding.",
                words=(("Thank", 0.3, 0.5), ("you", 0.5, 0.6), ("for", 0.6, 0.8), ("holding.", 0.8, 1.2)),
            ),
            TranscriptionReply("Please enter your password."),
        )
        stt = OpenAiStt("oa-key", model="whisper-1", base_url=fake.base_url)
        results = asyncio.create_task(collect(stt))
        push_frames(stt, pcm, t0)
        await stt.finish()
        finals = await asyncio.wait_for(results, 10)
        await stt.close()

    assert [t.text for t in finals] == ["Thank you for holding.", "Please enter your password."]
    assert len(fake.transcriptions) == 2
    for upload, (start, end) in zip(fake.transcriptions, spans, strict=True):
        assert (upload.wav_rate, upload.wav_channels, upload.wav_sample_width) == (8000, 1, 2)
        assert end - start <= upload.duration <= end - start + 0.7  # the utterance, with its pre/post roll
        assert (upload.model, upload.response_format, upload.api_key) == ("whisper-1", "verbose_json", "oa-key")
        assert "word" in upload.timestamp_granularities and upload.language == "en"
    first = finals[0]
    utterance_start = first.t_start - 0.3  # the scripted first word starts 0.3 s into the upload
    assert t0 + spans[0][0] - 0.35 <= utterance_start <= t0 + spans[0][0] + 0.05
    assert [w.t_end - utterance_start for w in first.words] == pytest.approx([0.5, 0.6, 0.8, 1.2])
    assert first.confidence == pytest.approx(np.exp(-0.25))


async def test_openai_json_models_give_text_spanning_the_utterance(corpus):
    pcm, spans = prompt_sequence(corpus, ["agent-pass"])
    async with FakeOpenAiAudio() as fake:
        fake.script_transcriptions(TranscriptionReply("Please enter your password."))
        stt = OpenAiStt("test-key", base_url=fake.base_url)
        results = asyncio.create_task(collect(stt))
        push_frames(stt, pcm, 0.0)
        await stt.finish()
        [final] = await asyncio.wait_for(results, 10)
        await stt.close()
    assert fake.transcriptions[0].response_format == "json"
    assert fake.transcriptions[0].model == "gpt-4o-mini-transcribe"
    assert final.words == [] and final.confidence is None
    assert spans[0][0] - 0.35 <= final.t_start <= spans[0][0] + 0.05 and spans[0][1] <= final.t_end <= spans[0][1] + 0.4


@pytest.mark.parametrize("failure", [AudioHttpError(500, "overloaded"), DropConnection()], ids=["http-500", "dropped"])
async def test_a_failing_openai_hands_over_to_local_whisper(corpus, transcripts, failure):
    pcm, _ = prompt_sequence(corpus, ["agent-pass"], lead=0.5)
    async with FakeOpenAiAudio() as fake:
        fake.script_transcriptions(failure, failure)  # the first try and the SDK's one retry
        stt = stt_from_settings("openai", openai_api_key="test-key", openai_base_url=fake.base_url)
        results = asyncio.create_task(collect(stt))
        push_frames(stt, pcm, 0.0)
        await stt.finish()
        finals = await asyncio.wait_for(results, 30)
        await stt.close()
    assert len(fake.transcriptions) == 2
    assert stt.provider == "local" and "openai" in stt.fallback_reason
    assert len(finals) == 1 and wer([transcripts["agent-pass"]], [finals[0].text]) <= 0.2


def test_importing_the_speech_package_imports_no_vendor_sdk():
    modules = (
        "app.speech, app.speech.whisper_local, app.speech.deepgram_stt, app.speech.openai_stt, "
        "app.speech.piper_tts, app.speech.openai_tts"
    )
    code = f"import sys, {modules}; print(sorted(set(sys.modules) & {set(VENDOR_MODULES)!r}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


VENDOR_MODULES = ("deepgram", "openai", "faster_whisper", "ctranslate2", "huggingface_hub", "piper", "onnxruntime")


def test_factory_degrades_to_local_without_keys():
    assert isinstance(stt_from_settings(), LocalWhisperStt)
    assert isinstance(stt_from_settings("deepgram"), LocalWhisperStt)
    assert isinstance(stt_from_settings("openai", openai_api_key=""), LocalWhisperStt)
    with_key = stt_from_settings("openai", openai_api_key="k")
    assert isinstance(with_key, FallbackStt) and with_key.provider == "openai"
    with pytest.raises(ValueError, match="unknown STT provider"):
        stt_from_settings("sphinx")  # type: ignore[arg-type]


async def test_a_stalled_deepgram_hands_over_to_local_whisper_before_the_stream_ends(corpus, transcripts):
    """Connected but silent: after ``stall_seconds`` of audio with no answer the stream is asked to
    flush (Finalize); no answer to that either and the local recogniser takes over mid-call,
    not when the call closes the stream."""
    pcm, spans = prompt_sequence(corpus, ["queue-thankyou"], lead=0.5)
    t0 = 50.0
    async with FakeDeepgram(hang_after_seconds=0.5) as fake:
        stt = stt_from_settings("deepgram", deepgram_api_key="test-key", deepgram_url=fake.url, timeout=1.0)
        results = asyncio.create_task(collect(stt))
        push_frames(stt, pcm, t0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while stt.provider == "deepgram" and loop.time() < deadline:
            await asyncio.sleep(0.1)
        assert stt.provider == "local", "still waiting on the stalled stream"
        assert "stalled" in (stt.fallback_reason or "")
        assert {"type": "Finalize"} in fake.sessions[0].control
        await stt.finish()
        finals = [t for t in await asyncio.wait_for(results, 30) if t.is_final]
        await stt.close()
    assert len(finals) == 1 and wer([transcripts["queue-thankyou"]], [finals[0].text]) <= 0.2
    assert finals[0].t_start == pytest.approx(t0 + spans[0][0], abs=0.5)


async def test_a_deepgram_that_answers_finalize_is_not_stalled_by_a_long_silence():
    """Music or silence gives Deepgram nothing to say; asked to flush, a live service answers."""
    async with FakeDeepgram() as fake:  # no words scripted: it never speaks unasked
        stt = DeepgramStt("test-key", url=fake.url, stall_seconds=0.5)
        results = asyncio.create_task(collect(stt))
        push_frames(stt, silence(3.0), 0.0)
        await asyncio.sleep(2.0)
        push_frames(stt, silence(3.0), 3.0)
        await asyncio.sleep(1.5)
        await stt.finish()
        transcripts = await asyncio.wait_for(results, 10)  # raises if the stream was called stalled
    session = fake.sessions[0]
    assert session.control.count({"type": "Finalize"}) >= 2 and session.closed_by_client_request
    assert any(m.get("from_finalize") for m in session.sent)
    assert [t for t in transcripts if t.is_final] == []
