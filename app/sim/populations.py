"""Many simulated companies at once, drawn from a seed: holds of 20-90 s with music (one track
or a playlist with gaps), announcements at unpredictable times in several voices (some over the
music), then a person who picks up in one of several ways on one of several kinds of line, and
who is either passive (greets, waits, hangs up when nobody answers) or reactive (answers when
spoken to, says "Hello?" into a silent line, then hangs up).

    from app.sim.populations import generate_population
    companies = generate_population(100, seed=1)          # list[Scenario], numbers 5570000...
    pbx = SimulatedPBX(SimConfig(scenarios={s.number: s for s in companies}))

The same seed always gives the same companies (``Scenario`` objects equal field by field).
People's greetings are real human speech (codec2-examples); what they say with particular
words (answers, "Hello?") and some announcements are spoken by other voices than the app's
(``tts[flite:...]``, ``tts[espeak:...]``, Debian's flite and espeak-ng); no company uses the app's
own voice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.sim.scenario import Scenario

FIRST_NUMBER = 5570000

MUSIC = [
    "moh:macroform-cold_day",
    "moh:macroform-robot_dity",
    "moh:macroform-the_simplicity",
    "moh:manolo_camp-morning_coffee",
    "moh:reno_project-system",
]
# Real people saying something (the words do not matter for a greeting).
GREETINGS = [
    "speech:kristoff.raw",
    "speech:big_dog.raw",
    "speech:hts1a.raw",
    "speech:hts2a.raw",
    "speech:forig.raw",
    "speech:morig.raw",
    "speech:mmt1.raw",
    "speech:cross.raw",
    "speech:f2400.raw",
    "speech:m2400.raw",
    "speech:g3plx.raw",
]
PEOPLE_VOICES = ["flite:slt", "flite:kal", "flite:awb", "flite:rms", "espeak:en-us+f3", "espeak:en-gb", "espeak:en-us+m3"]
ANNOUNCER_VOICES = ["flite:awb", "flite:rms", "flite:slt", "espeak:en-us", "espeak:en-gb+f4"]
ANSWERS = [
    "Yes, I'm here.",
    "Hi, go ahead.",
    "Sure, no problem.",
    "Okay.",
    "Yes?",
    "Hello, yes, I can hear you.",
    "Alright, I'll wait.",
    "Mm-hmm.",
]
HELLOS = ["Hello?", "Hello? Anyone there?", "Hi, are you there?", "Hello, can you hear me?"]
# Hold announcements: recorded (the Asterisk voice) and synthesised texts (several voices).
RECORDED_ANNOUNCEMENTS = [
    ["prompt:queue-thankyou"],
    ["prompt:queue-periodic-announce"],
    ["prompt:queue-callswaiting"],
    ["prompt:queue-youarenext"],
    ["prompt:pls-hold-while-try"],
]
ANNOUNCEMENT_TEXTS = [
    "Thank you for holding. Your call is important to us.",
    "All of our agents are currently assisting other customers. Please stay on the line.",
    "Did you know you can manage your account online, any time?",
    "Your call will be answered in the order it was received.",
    "We appreciate your patience. Someone will be with you shortly.",
]
WELCOMES = [
    ["prompt:pls-hold-while-try"],
    ["tts[flite:awb]:Thank you for calling. Please hold for the next available representative."],
    ["tts[espeak:en-us]:Welcome. All calls may be recorded for quality purposes."],
]
PRE_PICKUP = [
    ["prompt:one-moment-please"],
    ["tts[flite:rms]:Connecting you to an agent now."],
    ["tts[espeak:en-gb+f4]:Your call is being transferred."],
]


def _choice(rng: np.random.Generator, items: list[Any]) -> Any:
    return items[int(rng.integers(len(items)))]


def _round(value: float, digits: int = 2) -> float:
    return round(float(value), digits)


def company(index: int, seed: int, number: int | None = None) -> Scenario:
    """One company of the population ``seed`` (the same arguments give the same company)."""
    rng = np.random.default_rng([seed, index])
    number = FIRST_NUMBER + index if number is None else number
    nodes: dict[str, Any] = {}
    if rng.random() < 0.4:
        nodes["welcome"] = {"kind": "announcement", "audio": _choice(rng, WELCOMES), "then": "queue"}
    nodes["queue"] = _hold(rng)
    nodes["agent"] = agent = _agent(rng)
    kind = "reactive" if agent.get("answers") else "passive"
    return Scenario.model_validate(
        {
            "name": f"Population {seed}-{index:03d} ({kind}, {agent['line']}, {agent['pickup']})",
            "number": str(number),
            "ring_seconds": _round(rng.uniform(0.5, 4.0), 1),
            "answer_pause_seconds": _round(rng.uniform(0.2, 1.0), 1),
            "start": "welcome" if "welcome" in nodes else "queue",
            "nodes": nodes,
        }
    )


def _hold(rng: np.random.Generator) -> dict[str, Any]:
    tracks = list(rng.permutation(MUSIC))
    hold: dict[str, Any] = {
        "kind": "hold",
        "seconds": _round(rng.uniform(20, 90), 1),
        "next": "agent",
    }
    if rng.random() < 0.5:
        hold["music"] = [str(t) for t in tracks[: int(rng.integers(2, 4))]]
        hold["track_gap_seconds"] = _round(rng.uniform(0.4, 2.0), 1)
    else:
        hold["music"] = str(tracks[0])
    if rng.random() < 0.4:
        hold["over_music"] = True
        hold["music_bed_db"] = _round(rng.uniform(-18, -8), 0)
    style = rng.random()
    if style < 0.7:  # unpredictable times, several voices
        text = _choice(rng, ANNOUNCEMENT_TEXTS)
        voices = [str(v) for v in rng.permutation(ANNOUNCER_VOICES)[: int(rng.integers(2, 4))]]
        choices = [[f"tts[{voice}]:{text}"] for voice in voices]
        if rng.random() < 0.6:
            choices.append(_choice(rng, RECORDED_ANNOUNCEMENTS))
        hold["random_announcements"] = {
            "choices": choices,
            "first_after_seconds": [_round(rng.uniform(2, 6), 1), _round(rng.uniform(8, 18), 1)],
            "gap_seconds": [_round(rng.uniform(5, 12), 1), _round(rng.uniform(15, 35), 1)],
            "seed": int(rng.integers(1_000_000)),
        }
    elif style < 0.9:  # a fixed, periodic announcement
        hold["announcements"] = [
            {
                "at_seconds": _round(rng.uniform(3, 15), 1),
                "every_seconds": _round(rng.uniform(15, 40), 1),
                "audio": _choice(rng, RECORDED_ANNOUNCEMENTS),
            }
        ]
    return hold  # (else: music only)


def _agent(rng: np.random.Generator) -> dict[str, Any]:
    line = _choice(rng, ["noise", "noise", "noise", "gated", "gated", "call_centre"])
    pickup = _choice(rng, ["immediate", "immediate", "over_music", "click"])
    voice = _choice(rng, PEOPLE_VOICES)
    greeting = [_choice(rng, GREETINGS)]
    agent: dict[str, Any] = {
        "kind": "agent",
        "greeting": greeting,
        "line": line,
        "pickup": pickup,
        "noise_dbfs": _round(rng.uniform(-66, -50), 0),
        "hangup_if_unanswered_seconds": _round(rng.uniform(8, 14), 1),
        "hangup_after_seconds": 90.0,  # nobody stays on a call for ever
    }
    if line == "call_centre":
        agent["background_dbfs"] = _round(rng.uniform(-50, -40), 0)
    if pickup == "click":
        agent["pickup_gap_seconds"] = _round(rng.uniform(0.3, 2.0), 1)
    elif pickup == "immediate" and rng.random() < 0.5:
        agent["pickup_gap_seconds"] = _round(rng.uniform(0.2, 1.0), 1)
    if pickup == "over_music":
        agent["music_fade_seconds"] = _round(rng.uniform(0.5, 2.5), 1)
    if rng.random() < 0.2:
        agent["announcement"] = _choice(rng, PRE_PICKUP)
    if rng.random() < 0.3:
        agent["echo"] = {"attenuation_db": _round(rng.uniform(15, 30), 0), "delay_ms": _round(rng.uniform(30, 80), 0)}
    if rng.random() < 0.6:  # reactive: answers when spoken to, says hello into the silence
        texts = [str(t) for t in rng.permutation(ANSWERS)[: int(rng.integers(2, 4))]]
        agent["answers"] = [[f"tts[{voice}]:{text}"] for text in texts]
        agent["answer_delay_seconds"] = [0.3, 1.2]
        agent["end_of_turn_seconds"] = _round(rng.uniform(0.6, 0.8), 2)
        agent["hello"] = [f"tts[{voice}]:{_choice(rng, HELLOS)}"]
        agent["hello_after_seconds"] = _round(rng.uniform(3.0, 5.0), 1)
        agent["hellos"] = int(rng.integers(1, 3))
    return agent


def generate_population(count: int, seed: int = 1, first_number: int = FIRST_NUMBER) -> list[Scenario]:
    """``count`` companies drawn from ``seed``, numbered from ``first_number`` on."""
    return [company(index, seed, first_number + index) for index in range(count)]
