"""Text-to-speech: resampling, Piper's voice at 8 kHz, the round trip through local Whisper, and
OpenAI TTS through the real SDK against a local fake of the service, with the fallback to Piper."""

from __future__ import annotations

import asyncio
import struct
import threading

import numpy as np
import pytest

from app.media.g711 import ulaw_decode, ulaw_encode
from app.speech import FallbackTts, TtsError, resample, tts_from_settings
from app.speech.openai_tts import OpenAiTts, decode_wav
from app.speech.piper_tts import PiperTts
from app.speech.tts import RenderCancelled
from app.speech.whisper_local import LocalWhisperStt
from bench.navigation.speech_bench import score
from tests.fakes.openai_audio_server import AudioHttpError, DropConnection, FakeOpenAiAudio, two_tone_signal

RATE = 8000


def tone_level_db(pcm: np.ndarray, frequency: float, rate: int = RATE, amplitude: float = 8000.0) -> float:
    """Level of one sinusoid in ``pcm`` relative to ``amplitude``, in dB (edges skipped)."""
    x = pcm.astype(np.float64)[200:-200]
    t = (np.arange(len(x)) + 200) / rate
    return 20 * np.log10(2 * abs(np.mean(x * np.exp(-2j * np.pi * frequency * t))) / amplitude + 1e-12)


def dbfs(pcm: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) / 32768)


@pytest.fixture(scope="module")
def piper():
    return PiperTts.shared()


@pytest.mark.parametrize("rate", [22050, 24000])
def test_resampling_to_8k_keeps_the_band_and_does_not_fold_back_the_rest(rate):
    t = np.arange(rate) / rate
    signal = (8000 * np.sin(2 * np.pi * 1000 * t) + 8000 * np.sin(2 * np.pi * 5000 * t)).astype(np.int16)
    out = resample(signal, rate, RATE)
    assert len(out) == RATE
    assert abs(tone_level_db(out, 1000)) < 0.1
    assert tone_level_db(out, RATE - 5000) < -60  # 5 kHz would alias to 3 kHz without the low-pass
    up = resample(out, RATE, 16000)
    assert len(up) == 16000 and abs(tone_level_db(up, 1000, rate=16000)) < 0.1


def test_piper_speaks_a_sentence_at_8k_with_a_sane_length_and_level(piper):
    sentence = "To speak with a representative, please press zero now."
    pcm = piper.synthesize(sentence)
    seconds = len(pcm) / RATE
    words = len(sentence.split())
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert 0.2 * words <= seconds <= 0.6 * words
    assert -30 <= dbfs(pcm) <= -12
    assert np.abs(pcm.astype(np.int32)).max() < 32767  # headroom: nothing clipped
    power = np.abs(np.fft.rfft(pcm.astype(np.float64))) ** 2
    frequencies = np.fft.rfftfreq(len(pcm), 1 / RATE)
    assert power[(frequencies >= 80) & (frequencies < 3400)].sum() > 0.95 * power.sum()  # a voice
    assert power[frequencies >= 3800].sum() < 0.001 * power.sum()  # the low-pass left nothing at the edge

    hits = piper.cache_hits
    again = piper.synthesize("  To speak with a representative,  please press zero now. ")
    assert again is pcm and piper.cache_hits == hits + 1  # same words, same cached audio
    assert not again.flags.writeable
    assert piper.synthesize(sentence, cache=False) is not pcm


def test_a_fresh_piper_voice_says_a_line_the_same_way_every_time():
    """The voice samples noise; its seed makes a process's lines repeatable (a benchmark run, a
    test), where an unseeded voice draws new prosody each time it loads."""
    from app.speech.piper_tts import PiperSettings

    line = "Hi, thanks for picking up!"
    first = PiperTts(PiperSettings()).synthesize(line)
    second = PiperTts(PiperSettings()).synthesize(line)
    assert np.array_equal(first, second)
    other_seed = PiperTts(PiperSettings(seed=1)).synthesize(line)
    assert not np.array_equal(first, other_seed)


async def test_piper_round_trip_through_mulaw_and_local_whisper(piper):
    sentences = [
        "For billing questions, press one.",
        "Please enter your account number followed by the pound key.",
        "I would like to speak with an agent about my bill.",
    ]
    stt = LocalWhisperStt()
    t, errors, words = 0.0, 0, 0
    results = asyncio.create_task(_finals(stt))
    for sentence in sentences:
        speech = ulaw_decode(ulaw_encode(await piper.synthesize_async(sentence)))
        padded = np.concatenate([np.zeros(RATE // 2, np.int16), speech, np.zeros(RATE, np.int16)])
        stt.push(padded, t)
        t += len(padded) / RATE
    await stt.finish()
    heard = await asyncio.wait_for(results, 30)
    await stt.close()
    assert len(heard) == len(sentences)
    for sentence, text in zip(sentences, heard, strict=True):
        sentence_errors, sentence_words = score(sentence, text)
        errors += sentence_errors
        words += sentence_words
    assert errors / words <= 0.1


async def _finals(stt) -> list[str]:
    return [t.text async for t in stt.results() if t.is_final]


async def test_async_synthesis_runs_in_a_thread(piper):
    ticks = 0

    async def heartbeat():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.002)
            ticks += 1

    beating = asyncio.create_task(heartbeat())
    pcm = await piper.synthesize_async("Thank you for holding. Your call is important to us.", cache=False)
    beating.cancel()
    assert len(pcm) > RATE
    assert ticks >= 3, "the event loop was blocked during synthesis"


def test_a_piper_render_given_up_stops_after_the_sentence_under_way(piper, monkeypatch):
    piper.synthesize("One moment.", cache=False)  # the voice is loaded
    cancel = threading.Event()
    sentences = 0
    speak = piper._voice.phoneme_ids_to_audio

    def given_up_during(*args, **kwargs):
        nonlocal sentences
        sentences += 1
        cancel.set()  # the caller stopped waiting while this sentence is rendered
        return speak(*args, **kwargs)

    monkeypatch.setattr(piper._voice, "phoneme_ids_to_audio", given_up_during)
    with pytest.raises(RenderCancelled):
        piper.synthesize("Thank you for holding. Your call is important to us. Stay on the line.", cache=False, cancel=cancel)
    assert sentences == 1
    with pytest.raises(RenderCancelled):  # one that waited for the voice never begins
        piper.synthesize("Please stay on the line.", cache=False, cancel=cancel)
    assert sentences == 1


@pytest.mark.parametrize("response_format", ["pcm", "wav"])
async def test_openai_tts_through_the_sdk_comes_back_at_8k_without_aliasing(response_format):
    text = "Billing, please."
    async with FakeOpenAiAudio(api_key="oa-key") as fake:
        voice = OpenAiTts("oa-key", base_url=fake.base_url, voice="coral", response_format=response_format)
        pcm = await voice.synthesize_async(text)
    [request] = fake.speech_requests
    assert request.api_key == "oa-key"
    assert request.body == {"model": "gpt-4o-mini-tts", "voice": "coral", "input": text, "response_format": response_format}
    assert len(pcm) == len(two_tone_signal(text)) // 3
    assert abs(tone_level_db(pcm, 1000)) < 0.5
    assert tone_level_db(pcm, 3000) < -50


async def test_openai_tts_failures_are_typed_and_fall_back_to_piper(piper):
    async with FakeOpenAiAudio() as fake:
        fake.script_speech_failures(AudioHttpError(401, "Incorrect API key provided."))
        with pytest.raises(TtsError, match="401"):
            await OpenAiTts("test-key", base_url=fake.base_url).synthesize_async("Hello.")

        fake.script_speech_failures(DropConnection(), DropConnection())  # the try and the SDK's retry
        voice = tts_from_settings("openai", openai_api_key="test-key", openai_base_url=fake.base_url)
        assert isinstance(voice, FallbackTts) and voice.provider == "openai"
        pcm = await voice.synthesize_async("One moment please.")
    assert voice.provider == "piper" and "openai" in (voice.fallback_reason or "")
    assert np.array_equal(pcm, piper.synthesize("One moment please."))


def test_tts_factory_uses_piper_without_a_key():
    assert isinstance(tts_from_settings(), PiperTts)
    assert isinstance(tts_from_settings("openai"), PiperTts)
    with pytest.raises(ValueError, match="unknown TTS provider"):
        tts_from_settings("espeak")  # type: ignore[arg-type]


def test_wav_decoding_accepts_streamed_headers_with_placeholder_sizes():
    samples = (np.arange(-500, 500) * 30).astype("<i2")
    fmt = struct.pack("<HHIIHH", 1, 1, 24000, 48000, 2, 16)
    streamed = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    streamed += b"data" + struct.pack("<I", 0xFFFFFFFF) + samples.tobytes()
    pcm, rate = decode_wav(streamed)
    assert rate == 24000 and np.array_equal(pcm, samples)
    with pytest.raises(TtsError, match="not a WAV"):
        decode_wav(b"ID3\x04mp3 bytes")
