"""Is the speech on the line a recording or a live person? Independent cues, two stages.

Pure and streaming: the pipeline feeds one observation per 20 ms frame (level, Silero
probability, spectrum) and one per analysis window (its class), and says when the app itself
speaks into the call (``our_speech_started`` / ``our_speech_ended``). Out come decisions:

- ``HumanSuspected``: fast, and cheap when wrong. Speech on hold that no veto explains (below)
  may be a person: the session greets them at once. Any cue, or ``suspect_speech_seconds`` of
  unvetoed speech, raises it (0.4-0.6 s after the first word); so does a shorter word ("hi?",
  ``min_speech_seconds`` or more) and then ``suspect_quiet_seconds`` of quiet: someone may be
  waiting for an answer.
- ``HumanRetracted``: the suspicion was wrong: music came back, a veto came up, the words
  stopped and nothing followed.
- ``HumanDetected``: sure, once per hold; it rings the user. A **reply** to our words (speech
  that begins as our words end, after a talker who let us speak: a recording carries on
  regardless), the **transcript** of a person, a talker **waiting on their own line** (a line cue
  and then turn-taking or a pause that waits for an answer), or a **long wait**: words and then
  ``long_wait_seconds`` with nothing coming back (no music, no more words: on hold, music or
  the next announcement follows a recording).

Why this is hard: on real holds the first speech after music is far more often an announcement
than a person, and ringing the user is revoked never, so it must be right; missing the person
loses the whole hold. What tells them apart is the *line* the words come on and how the talker
behaves; every cue rests on a property of a telephone line or of a conversation, not on the
level or timing of a particular file. The line cues fit the recordings they were tuned on better
than the world (voices and studios never heard pass for a line now and then): alone they only
raise a suspicion.

Line floors. A person's line, when it is quiet, sits on a **line floor**: steady, noise-like
(the mean spectrum of its frames has no tonal peaks: hiss, room and line noise of any colour
average out to their smooth envelope, ~3.5 dB x sqrt(frames) of spread left,
``features.tonality_db``; the held notes and chords of soft music keep theirs), audible (an
open microphone is louder than a PBX's digital path, ``live_floor_min_dbov``, and than the
floor learned in the hold's own gaps) and well under the voice. Or the line is **gated**: a
noise suppressor switches it to exact digital silence and back at speech level, within a frame
each way; a recording edited to digital silence fades into most of its pauses and comes out of
all of them through its own faint noise (210 digital pauses of the train prompts at three
levels and four frame offsets: 13 entered hard, none left hard).

The cues:

- **Channel change** (``live_floor``). An announcement comes from the same PBX path as the
  music. A person's headset line opens on its own line floor *before the first word*. The
  run's lead-in must settle on a line floor entered by a *step* (the hold's sound cut, a click,
  digital silence, or a quieter floor before it): a floor the levels slide down into is the
  hold's own sound dying away. It must have lasted ``long_lead_frames``, or come back in the
  pauses between the words that follow: ``pause_floor_frames`` of them, in pauses of
  ``pause_min_frames`` or more (a voice's dips are shorter), before a word of
  ``word_min_seconds`` (music's first frames may pass for one) or in a quiet after the last word
  that has lasted ``tail_is_line_seconds`` (before, it may be a recording's tail, on the floor
  its file began with), noise-like by themselves (the
  dips of a voice or soft music under an announcement's pauses may reach the same level) and,
  with the lead, as many frames as a long lead that are noise-like together (a few frames'
  tonality says little). An open microphone's floor fills every pause: a run that has fallen
  to digital silence since its first word is a gate's or a PBX's chain of files. A loud line's
  floor may be loud next to a soft first syllable: once the voice is known to be louder, the
  lead-in is cut again against it. A floor within ``recording_floor_db`` of an announcement
  already heard on this call (its lead-in's or its pauses', learned once the music came back
  after it) is that studio's, not a line's: a short lead is measured with its pauses for this.
- **Noise-suppressed line** (``gated_line``). The line opened on digital silence and its gate
  then switched off and on between words (``gate_closures``), in most of its digital pauses;
  the gate may open on the word's soft first frames, too few for a floor.
  A cut to silence after which nothing comes back proves nothing: a PBX stopping a file or
  music cutting out looks the same. A run that opened otherwise needs its newest pause to be
  digital silence and ``gate_closures_after_pause``.
- **Turn-taking** (``turn_taking``). One unbroken pause of ``turn_pause_seconds`` *on the
  talker's line* (a line floor, or a gate's silence entered by a closure: the PBX's digital gap
  or faint floor between two prompts of a chain is no one's line) after ``min_speech_seconds``
  of words, and then a reply that Silero holds for ``reply_min_speech_seconds`` (music coming
  back may pass for speech for a few steps).
- **Waiting for a reply** (``waiting_for_reply``): after a short utterance, a silence of
  ``waiting_seconds`` or more that is one line floor from its start (not soft music, not digital
  silence turning into music, not music sliding away), or a gate's silence on a line that has
  shown its gate between words too.
- **Transcript** (``transcript``), when speech-to-text is on: "hi, this is ...", "how can I
  help" speak for a person; "your call is important", "press 1", "estimated wait" for a
  recording (a veto).
- **Reply** (``reply``): the app spoke (a greeting, "are you there?"); the far end did not talk
  over it after ``yield_grace_seconds`` (our own echo is removed before it reaches here, see
  ``app.audio.echo``; a word begun over ours counts from its first loud frame, and one still
  going as ours drew to an end means no one waited for us), and words began within
  ``reply_early_seconds`` before to ``reply_window_seconds`` after its end, and lasted
  ``reply_min_speech_seconds``. Words that begin later, up to ``late_reply_seconds`` (a slow
  person, a long line), answer us from the ``late_replies_needed``-th time on one run: a
  recording's next sentence may follow our words that late once, not each time. Such an
  answer rings once it has ended in a pause that waits for us (``_answered_us``), or at once,
  ``yielded_reply_seconds`` into it, when the talker was still speaking as we began and stopped
  for us: its last word came ``min_reaction_seconds`` or more into ours (no one reacts sooner to
  a voice heard over the line; a sentence that ended before that ended on its own, as a
  recording's short sentence does when our opener happens to fall in its pause). Two
  contingencies, stopping for us and answering as we end, are as strong as the answer's end.

Runs: a run is a stretch of speech with its pauses. "Quiet" is relative to the voice heard in
the last 2 s (``PAUSE_BELOW_PEAK_DB`` under its loudest frame, and always under
``QUIET_MAX_DBOV``), so a noisy line's floor is a floor. Silero is late on some voices (up to
``SILERO_LAG_FRAMES``) and may miss a first syllable and the dip after it, so a word starts
after the newest long enough pause that little enough sound follows; its verdict also trails a
word into the quiet after it and may flicker on in a pause, so pauses are measured from the last
loud frame of a word. When speech resumes after a pause whose floor differs from the run's
earlier pauses (another line floor, or digital silence after pauses that never reached it) a new
talker has the line: the utterance starts a run of its own, so that the vetoes of an
announcement do not carry over to the person who speaks right after it.

Vetoes, any one of which blocks a decision: **music under the speech** (a bed: steady harmonic
structure in the quieter frames), **music resuming** (``music_resume_seconds`` of loud sound
that Silero does not call speech since the last word: the run was an announcement, its
fingerprint is kept), **repetition** (the newest ``fingerprint_seconds`` match a recording heard
earlier in the call, ``app.audio.fingerprint``) and **recording phrases** in the transcript. The
bed and repetition describe what the line carries now: they are judged on the newest stretch
every ``check_every_frames`` (half as often while one holds) and at every new utterance.
"""
from __future__ import annotations

import functools
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.audio.features import (
    PAUSE_BELOW_PEAK_DB,
    FrameFeatures,
    harmonic_steadiness,
    pause_steadiness,
    tonality_db,
)
from app.audio.fingerprint import Match, RecordingMemory, landmarks
from app.audio.stats import median, percentile
from app.audio.types import AudioClass, Decision, HumanDetected, HumanRetracted, HumanSuspected

FRAME_SECONDS = 0.02
SPEECH_PROB = 0.5  # a Silero step at or above this is speech
ZERO_DBOV = -90.0  # digital silence (mu-law's smallest step is about -78 dBov)
# A frame this quiet belongs to a floor, not to a voice, however soft the voice; louder floors
# count as quiet when they lie PAUSE_BELOW_PEAK_DB under the voice, up to LOUD_MIN_DBOV.
QUIET_MAX_DBOV = -40.0
LOUD_MIN_DBOV = -30.0
# The hold channel's own floor shows in gaps this quiet (music's soft passages are louder).
HOLD_GAP_MAX_DBOV = -58.0
# Silero's verdict trails a new word's first loud frames by up to this many frames (a soft or
# noisy onset, a voice right after music); more sound than this before it is no word onset.
SILERO_LAG_FRAMES = 25
# A voice frame above this falling straight to digital silence is a noise gate closing.
GATE_FROM_DBOV = -56.0
# Frames kept before a run: its lead-in, and the frames before it (a step or a fade).
HISTORY_FRAMES = 100
LEAD_MAX_FRAMES = 90
# A word's soft first frames lie this far over the floor they rise from, at least.
SOFT_ONSET_STEP_DB = 8.0
# The newest frames of a floor that its tonality is measured on.
TONALITY_FRAMES = 25
# What is quiet is judged against the loudest frame of the last 2 s.
VOICE_MEMORY_FRAMES = 100
# Held notes: the harmonic steadiness of music (the classifier's line between speech and music).
MUSIC_MIN_STEADINESS = 0.12
# The hold's own sound as a spectral shape (band levels around their mean), learned from loud
# frames outside speech while on hold. Sound in a pause that has this shape is the music coming
# back, even without held notes (electronic music, pads); a busy room or voices behind the
# talker, which have no held notes either, do not have it.
HOLD_SHAPE_EDGES_HZ = np.geomspace(250.0, 3500.0, 13)
HOLD_SHAPE_MIN_DBOV = -45.0
HOLD_SHAPE_LEARN = 0.01  # per frame: the last few seconds of music weigh most
HOLD_SHAPE_MIN_CORRELATION = 0.85
# Far-end speech counts as the talker's (talking over us, a reply) at this level, and no more
# than this far under the loudest frame of the talker's words.
FOREGROUND_MIN_DBOV = -50.0
FOREGROUND_BELOW_PEAK_DB = 15.0
# Floors of announcements remembered per call (two per announcement: its lead-in's, its pauses').
RECORDING_FLOORS_KEPT = 16


@dataclass(frozen=True)
class HumanSettings:
    live_floor_min_dbov: float = -64.0  # an open microphone's floor; a PBX's digital path is quieter
    live_floor_max_dbov: float = -30.0
    floor_steady_db: float = 4.0  # floor frames lie within this of their median
    floor_steady_share: float = 0.8  # of a pause's frames (the last word's decay may take the rest)
    floor_max_trend_db: float = 2.0  # between the first and last thirds of a floor
    floor_max_tonality: float = 5.0  # tonality_db x sqrt(frames): noise of any colour gives 3.5, 99.5% under 5
    fade_max_above_floor_db: float = 12.0  # levels sliding down through this band above a floor fade into it
    lead_floor_frames: int = 5  # 100 ms of floor: a pause that shows a new line
    short_lead_frames: int = 3  # the least floor before a first word, if the pauses confirm it
    long_lead_frames: int = 10  # a lead this long needs no pause to confirm it (train lets a prompt through at 6, held-out at 8)
    pause_floor_frames: int = 5  # frames of the words' pauses on a shorter lead's floor
    tail_is_line_seconds: float = 0.5  # quiet after the last word this long is no recording's tail
    word_min_seconds: float = 0.3  # of loud sound after a pause, before it counts as one between words
    pause_min_frames: int = 3  # a pause between words; a voice's dips to the floor are shorter
    above_hold_floor_db: float = 3.0
    recording_floor_db: float = 2.0  # a floor this close to a known recording's is that recording's
    gate_closures: int = 1  # between words, on a line that opened on digital silence
    gate_closures_after_pause: int = 2  # on a line that opened otherwise and fell to digital silence since
    min_decision_seconds: float = 0.4  # after the first word
    min_speech_seconds: float = 0.3
    turn_pause_seconds: float = 0.8
    reply_min_speech_seconds: float = 0.3
    waiting_seconds: float = 1.8
    max_waiting_run_seconds: float = 10.0  # a short utterance waits; an announcement runs on
    music_resume_seconds: float = 0.6  # loud non-speech this long since the last word: music is back
    run_end_quiet_seconds: float = 10.0
    bed_min_steadiness: float = 0.15
    check_every_frames: int = 25  # bed and fingerprint checks (the costly ones)
    decide_every_frames: int = 5
    utterance_pause_seconds: float = 0.2  # a pause this long may hand over to another source
    fingerprint_seconds: float = 1.5  # the run's last stretch matched against known recordings
    # Two stages (see the module docstring): suspect fast, ring when sure.
    suspect_speech_seconds: float = 0.4  # of unvetoed speech on hold: maybe a person
    suspect_quiet_seconds: float = 1.0  # ... or quiet this long after a shorter word: someone may wait for us
    # After our words end, a reply begins within this as we hear it: a person's 0.2-1.0 s (more
    # to a voice they did not expect), and the line's round trip (0.1-0.5 s) on top.
    reply_window_seconds: float = 1.5
    # A reply begun later than that, up to this, is a person's slow answer or a recording's next
    # sentence; from the second such on one run, it counts (a recording resumes on its own clock,
    # not twice in step with our words).
    late_reply_seconds: float = 2.0
    late_replies_needed: int = 2
    reply_early_seconds: float = 0.3  # ... or this much before (a person anticipates the end)
    reply_max_seconds: float = 4.0  # an answer ends within this; a recording talks on
    reply_end_quiet_seconds: float = 0.7  # ... and waits for us (longer than music takes to show it is back)
    # A longer answer ("thanks for calling, this is Dana, can I have your account number?") must
    # wait longer: a recording's sentences pause for under a second and music comes back after.
    long_answer_max_seconds: float = 15.0
    long_answer_quiet_seconds: float = 2.0
    yield_grace_seconds: float = 0.6  # a talker who hears us begin stops within this
    talked_over_max_frames: int = 5  # far-end speech frames during our words that still count as yielding
    # A talker who stops for us does so this long after we begin at the soonest: a reaction to a
    # voice takes ~0.2 s, and the line's round trip comes on top.
    min_reaction_seconds: float = 0.2
    yielded_reply_seconds: float | None = 0.3  # ... and answers rings this far into the answer (None: at its end)
    sure_wait_seconds: float = 2.0  # quiet on the talker's line after words a line cue found
    # Quiet after suspected words with nothing coming back: someone waits. Longer than a music-on-hold
    # source takes to restart after an announcement (up to 5 s seen), shorter than a person's patience.
    long_wait_seconds: float = 7.0
    long_wait_min_speech_seconds: float = 0.3


HUMAN_PHRASES = re.compile(
    r"\b(this is \w+|my name is|speaking|how (can|may) i (help|assist)|what can i do for you|"
    r"thank(s| you) for (holding|waiting)|sorry (for|about) the wait|are you there|hello\?)",
    re.IGNORECASE,
)
RECORDING_PHRASES = re.compile(
    r"\b(your call is (very )?important|press (\d|one|two|three|four|five|six|seven|eight|nine|zero|star|pound)|"
    r"estimated (wait|hold)|(calls?|callers?) (ahead|waiting)|next available|please (stay on the line|continue to hold|hold)|"
    r"all (of )?our (agents|representatives)|in the order (it was|they were) received|for quality|"
    r"you are (now )?(caller|number))",
    re.IGNORECASE,
)


@dataclass
class _OurWords:
    """Something the app said into the call, on the detector's time axis."""

    t_start: float
    t_end: float | None = None  # still speaking
    talked_over: int = 0  # far-end speech frames (not our echo) after the yield grace
    yielded_t: float | None = None  # the far end's newest loud speech frame inside the yield grace
    words_over_us: list[float] = field(default_factory=list)  # onsets of the far end's words begun after it
    heard: list[float] = field(default_factory=list)  # times of the far end's loud speech frames after it

    def yielded(self, settings: HumanSettings) -> bool:
        """The far end was talking as we began and stopped for us: its words went on into the
        yield grace (no reaction is faster than ``min_reaction_seconds``), then did not talk over us."""
        return (
            self.yielded_t is not None
            and self.yielded_t >= self.t_start + settings.min_reaction_seconds
            and self.talked_over <= settings.talked_over_max_frames
        )


@dataclass(frozen=True)
class _Lead:
    """The quiet before an utterance's first loud frame."""

    levels: np.ndarray
    spectra: np.ndarray  # rows aligned with ``levels``


@dataclass
class _Reply:
    """Words after a long pause, waiting to prove they are speech (not music coming back)."""

    speech_frames_at_start: int
    turn: bool  # the pause was on the talker's line
    to_us: bool  # they began right after our words, having let us speak


@dataclass
class _Run:
    """One stretch of speech (pauses allowed) and what is known about its source."""

    onset_t: float
    lead: _Lead  # of the newest utterance
    first_lead: _Lead  # the run's own: how its line opened
    first_lead_shape: dict[str, Any] | None = None  # its floor, once measured ({} for none)
    # The frames before the first word and the quiet threshold the lead-in was cut with: a voice
    # louder than its first syllables makes a loud line's floor quiet after all (``_relead``).
    before: _Lead | None = None
    lead_quiet_max: float = QUIET_MAX_DBOV
    levels: list[float] = field(default_factory=list)
    spectra: list[np.ndarray] = field(default_factory=list)
    zcr: list[float] = field(default_factory=list)
    peak_dbov: float = -120.0
    speech_frames: int = 0
    last_speech_t: float = 0.0
    quiet_since: float | None = None
    loud_since_speech: int = 0  # loud frames Silero does not call speech since the last word
    silences: list[int] = field(default_factory=list)  # indices in ``levels`` where digital silence began
    closures: list[int] = field(default_factory=list)  # those of them entered from speech level
    reopened: set[int] = field(default_factory=set)  # those of them left to speech level
    turns: int = 0
    reply: _Reply | None = None
    bed: bool = False
    bed_steadiness: float = 0.0
    repeat: Match | None = None
    recording_phrase: str | None = None
    human_phrase: str | None = None
    answer_started_t: float | None = None  # words that began as ours ended (see ``_answered_us``)
    answer_after_yield: bool = False  # ... from a talker who stopped for our words
    # When what we said began, for each of our utterances that words began late after (``_answers_us``).
    late_replies: list[float] = field(default_factory=list)
    line_cue: bool = False  # a line cue (live floor, gate) fired on this run
    suspected: bool = False  # a HumanSuspected stands for this run
    retracted: bool = False  # ... was withdrawn by a veto: not again before a new utterance
    frames_seen: int = 0
    utterance_start: int = 0  # index in ``levels`` of the newest utterance (after a pause)
    last_speech_index: int | None = None  # index in ``levels`` of the newest speech frame
    last_word_index: int = -1  # index of the newest loud speech frame (Silero's hangover is not a word)
    prior_floor_dbov: float | None = None  # the floor of the earlier run's pauses it split from
    split_from_run: bool = False  # began as a new channel after a pause in an earlier run
    # Split from a suspected run nothing withdrew: the same talker may go on (a gate, a changing
    # room), so what waits on their words counts theirs from before the split too.
    talker_suspected: bool = False
    talker_speech_frames: int = 0  # speech frames of the suspected runs it split from
    voice: deque[float] = field(default_factory=lambda: deque(maxlen=VOICE_MEMORY_FRAMES))  # newest speech frames' levels

    def add(self, level: float, spectrum: np.ndarray, zcr: float) -> None:
        self.levels.append(level)
        self.spectra.append(spectrum)
        self.zcr.append(zcr)

    def age(self, t: float) -> float:
        return t - self.onset_t

    @property
    def quiet_max_dbov(self) -> float:
        """Quiet next to the voice heard lately (an announcement earlier in the run may have been
        louder than the person speaking now)."""
        return quiet_max_dbov(max(self.levels[-VOICE_MEMORY_FRAMES:], default=-120.0))

    @property
    def pause_max_dbov(self) -> float:
        """Quiet between words: next to the voice of the talker's latest words, however long ago
        (a pause longer than the voice memory is still a pause: a loud line's floor under a talker
        who waits for our answer must not turn into a word when the memory runs out)."""
        return max(self.quiet_max_dbov, quiet_max_dbov(max(self.voice, default=-120.0)))

    def inner_closures(self) -> int:
        """Pauses between words that a gate made: digital silence entered *and* left at speech
        level within a frame (a gate switches the line off and on with the voice), if the line
        behaves as gated: a gate cuts into every pause, where a recording edited to digital
        silence fades into most of its own and out of all of them (through its own faint noise)."""
        closures = sum(1 for c in self.closures if c < self.last_word_index and c in self.reopened)
        silences = sum(1 for c in self.silences if c < self.last_word_index)
        return closures if 2 * closures > silences else 0

    def silence_start(self, end: int) -> int:
        """Where the digital silence that runs up to frame ``end`` began (``end`` if none does)."""
        start = end
        while start > 0 and self.levels[start - 1] < ZERO_DBOV:
            start -= 1
        return start


def quiet_max_dbov(voice_peak_dbov: float) -> float:
    """The loudest level of a pause or floor next to a voice whose loud frames reach this peak."""
    return max(QUIET_MAX_DBOV, min(voice_peak_dbov - PAUSE_BELOW_PEAK_DB, LOUD_MIN_DBOV))


def word_onset(levels: np.ndarray, quiet_max: float, min_pause: int, rise_db: float) -> tuple[int, int] | None:
    """(first quiet frame, first loud frame) of the pause before the word whose newest frame ends
    ``levels``. Silero may miss a word's first syllable and the dip after it, so the pause is the
    newest stretch of at least ``min_pause`` quiet frames that no more than SILERO_LAG_FRAMES
    loud frames follow (failing that, the longest shorter one); None when there is none (music,
    or a word Silero has been hearing all along), or when the newest frame is no word at all:
    quiet, and not rising ``rise_db`` out of the frames before it (Silero's verdict flickering
    on in a pause)."""
    newest = levels[-1]
    if newest < quiet_max and (len(levels) < 2 or newest <= median(levels[-6:-1]) + rise_db):
        return None
    shorter: tuple[int, int] | None = None
    # The newest frame is the word's, loud or not: Silero has just called it speech.
    i = len(levels) - 1
    loud = 1
    while i > 0:
        if levels[i - 1] >= quiet_max:
            loud += 1
            if loud > SILERO_LAG_FRAMES:
                break
            i -= 1
            continue
        j = i
        while j > 0 and levels[j - 1] < quiet_max:
            j -= 1
        if i - j >= min_pause:
            return j, i
        if shorter is None or i - j > shorter[1] - shorter[0]:
            shorter = (j, i)
        i = j
    return shorter


def lead_end(levels: np.ndarray, steady_db: float, min_floor_frames: int) -> int:
    """Where a lead-in proper ends: the word's soft first frames may lie under the quiet
    threshold, rising out of the floor, or coming through a gate right after digital silence
    (too few frames for a floor)."""
    count = len(levels)
    stretch = count
    while stretch > 0 and levels[stretch - 1] >= ZERO_DBOV:
        stretch -= 1
    if stretch == count:
        return count
    if count - stretch < min_floor_frames:
        return stretch if stretch > 0 else count
    end = count
    while end > stretch + 1 and levels[end - 1] > median(levels[max(stretch, end - 6) : end - 1]) + steady_db:
        end -= 1  # rising above the frames before it: the word has begun
    # A word may also begin on a soft plateau (a breath, an "h") a step above the floor, too
    # short to be a floor itself: the floor is the one it stepped up from.
    plateau = stretch + floor_start(levels[stretch:end], steady_db)
    if 0 < end - plateau < min_floor_frames and plateau - stretch >= min_floor_frames:
        before = median(levels[max(stretch, plateau - 2 * min_floor_frames) : plateau])
        if median(levels[plateau:end]) > before + SOFT_ONSET_STEP_DB:
            end = plateau
    return end


def gate_opened(lead: np.ndarray, min_floor_frames: int) -> tuple[bool, int]:
    """Whether a lead-in ends in digital silence, and how many frames of it. The word's soft
    first frames may follow it, quiet next to the voice yet through the gate: fewer than a
    floor's ``min_floor_frames`` (the first of them partly gated)."""
    zero = lead < ZERO_DBOV
    if not zero.any():
        return False, 0
    last_zero = int(np.flatnonzero(zero)[-1])
    zeros = 0
    while last_zero - zeros >= 0 and zero[last_zero - zeros]:
        zeros += 1
    return zeros >= 2 and len(lead) - 1 - last_zero < min_floor_frames, zeros


def _in_stretches(mask: np.ndarray, min_frames: int) -> np.ndarray:
    """Indices of the True frames of ``mask`` that lie in runs of at least ``min_frames``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    kept = [np.arange(begin, end) for begin, end in zip(edges[::2], edges[1::2]) if end - begin >= min_frames]
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def floor_start(levels: np.ndarray, steady_db: float) -> int:
    """Where the newest stretch of frames within ``steady_db`` of its level begins (one stray
    frame, a click or a breath, does not end it)."""
    if len(levels) == 0:
        return 0
    level = float(median(levels[-5:]))
    i = len(levels)
    while i > 0:
        if abs(levels[i - 1] - level) <= steady_db:
            i -= 1
        elif i >= 2 and abs(levels[i - 2] - level) <= steady_db:
            i -= 2
        else:
            break
    while i < len(levels) and abs(levels[i] - level) > steady_db:
        i += 1  # a stray frame at the very start is not part of it
    return i


@functools.lru_cache(maxsize=8)
def _band_matrix(bins: int, sample_rate: int) -> np.ndarray:
    """bins x bands: which band (``HOLD_SHAPE_EDGES_HZ``) each FFT bin adds to."""
    band = np.digitize(np.fft.rfftfreq(2 * (bins - 1), 1.0 / sample_rate), HOLD_SHAPE_EDGES_HZ) - 1
    bands = len(HOLD_SHAPE_EDGES_HZ) - 1
    return (band[:, None] == np.arange(bands)[None, :]).astype(np.float64)


def band_levels_db(spectra: np.ndarray, sample_rate: int) -> np.ndarray:
    """Band levels (dB, around their mean) of the mean power spectrum of ``spectra`` (frames x bins)."""
    # Called for every frame of music: one frame is its own mean, and a sum over the bands
    # divided by their count is ``mean()`` without its overhead (the same operations, bit for bit).
    power = spectra if spectra.ndim == 1 else spectra.mean(axis=0)
    levels = 10 * np.log10(power @ _band_matrix(len(power), sample_rate) + 1e-9)
    return levels - np.add.reduce(levels) / len(levels)


def shape_correlation(a: np.ndarray, b: np.ndarray) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return 0.0 if denominator == 0.0 else float(np.dot(a, b) / denominator)


class HumanDetector:
    """Fuses the cues into HUMAN_SUSPECTED / HUMAN_RETRACTED and one HUMAN_DETECTED per hold
    (see the module docstring)."""

    def __init__(self, settings: HumanSettings = HumanSettings(), *, sample_rate: int = 8000) -> None:
        self.settings = settings
        self.sample_rate = sample_rate
        self.recordings = RecordingMemory(min_votes=30, min_share=0.08, min_prominence=3.0)
        self._recent: deque[tuple[float, np.ndarray, float]] = deque(maxlen=HISTORY_FRAMES)
        self._hold_floor: deque[float] = deque(maxlen=500)  # quiet frames of the hold's own gaps
        # The floors of announcements heard on this call (music came back after them): the PBX's
        # recordings, often all from one studio, on the hold's own path.
        self._recording_floors: deque[float] = deque(maxlen=RECORDING_FLOORS_KEPT)
        self._hold_shape: np.ndarray | None = None  # the hold music's band levels (``band_levels_db``)
        self._pending_gap: list[float] = []  # quiet frames not yet known to belong to the hold
        self._loud_after_gap = 0
        self.decided = False
        self.on_hold = False
        self.announcements = 0
        self.run: _Run | None = None
        self.suspicion: HumanSuspected | None = None  # standing now, for ``run``
        self._ours: _OurWords | None = None  # the newest thing the app said
        self._out: list[Decision] = []

    # -- lifecycle ------------------------------------------------------------------------

    def reset(self) -> None:
        """A new wait: forget the current run and the decisions; keep known recordings and the hold floor."""
        self._end_run(remember=False)
        self._out.clear()
        self.suspicion = None
        self.decided = False
        self.on_hold = False
        self.announcements = 0

    # -- inputs ---------------------------------------------------------------------------

    def push_frame(
        self, t: float, level: float, speech_prob: float, spectrum: np.ndarray, zcr: float
    ) -> list[Decision]:
        """One 20 ms frame; the decisions it led to (usually none)."""
        self._frame(t, level, speech_prob, spectrum, zcr)
        out, self._out = self._out, []
        return out

    def _frame(self, t: float, level: float, speech_prob: float, spectrum: np.ndarray, zcr: float) -> None:
        s = self.settings
        speech = speech_prob >= SPEECH_PROB
        ours = self._ours
        if speech and ours is not None and ours.t_end is None and level >= self.foreground_min_dbov():
            if t >= ours.t_start + s.yield_grace_seconds:
                ours.talked_over += 1
                ours.heard.append(t)
            else:
                ours.yielded_t = t
        run = self.run
        if run is None:
            if not speech:
                self._observe_gap(level)
                if self.on_hold and level >= HOLD_SHAPE_MIN_DBOV:
                    self._learn_hold_shape(spectrum)
                self._recent.append((level, spectrum, zcr))
                return
            run = self.run = self._start_run(t, level)
            self._words_began(run.onset_t, run.peak_dbov)
            if self._answers_us(run, run.onset_t):
                run.reply = _Reply(0, turn=False, to_us=True)
        run.add(level, spectrum, zcr)
        self._recent.append((level, spectrum, zcr))
        run.frames_seen += 1
        newest = len(run.levels) - 1
        # The gate's frames are not ours: it may close inside the frame before the silence, and
        # open inside the frame after it.
        if level < ZERO_DBOV and newest >= 1 and run.levels[-2] >= ZERO_DBOV:
            run.silences.append(newest)
            if max(run.levels[-3:-1]) >= GATE_FROM_DBOV:
                run.closures.append(newest)
        elif level >= GATE_FROM_DBOV and newest >= 1 and min(run.levels[-3:-1]) < ZERO_DBOV:
            last_zero = newest - 1 if run.levels[-2] < ZERO_DBOV else newest - 2
            run.reopened.add(run.silence_start(last_zero + 1))
        if speech:
            run = self._on_speech(run, t, level)
        else:
            loud = level >= run.quiet_max_dbov
            if loud:
                run.loud_since_speech += 1
                run.quiet_since = None
            elif run.quiet_since is None:
                run.quiet_since = t
            if run.loud_since_speech * FRAME_SECONDS >= s.music_resume_seconds:
                if not self._line_noise_since_words(run):
                    self._announcement_over(t)
                    return
                run.loud_since_speech = 0  # a loud line's own floor in a pause: the talker is still there
                run.quiet_since = run.quiet_since or t  # ... and quiet, for what waits on quiet
            if run.quiet_since is not None and t - self._quiet_from(run) >= s.run_end_quiet_seconds:
                self._end_run(remember=False, t=t, why="the words stopped and nothing followed")
                return
        if self.decided:
            return
        if run.frames_seen % s.check_every_frames == 0:
            # A veto that holds is checked again at half the pace: it is released only when the
            # line has gone on to something else for a while.
            held = run.repeat is not None or run.bed
            self._check_recording(run, recheck=not held or run.frames_seen % (2 * s.check_every_frames) == 0)
        if run.frames_seen % s.decide_every_frames == 0:
            self._judge(run, t + FRAME_SECONDS)

    def on_window(self, audio_class: AudioClass, t_start: float | None = None, t_end: float | None = None) -> None:
        """An analysis window's class. A whole window of music since the run's last word is music
        coming back, however soft (soft music may lie under the quiet threshold of a loud voice)."""
        if audio_class != AudioClass.MUSIC:
            return
        self.on_hold = True
        run = self.run
        # The whole window after the words: a window that still holds their tail may be called
        # music for the loudness swing of a voice trailing off into a line floor.
        if run is not None and t_start is not None and t_end is not None and t_start >= run.last_speech_t + 0.3:
            self._announcement_over(t_end, "music came back (a window of it)")

    def on_transcript(self, text: str, t_start: float, t_end: float) -> None:
        run = self.run
        if run is None or t_end < run.onset_t - 0.5:
            return
        recording = RECORDING_PHRASES.search(text)
        if recording:
            run.recording_phrase = recording.group(0)
            return
        human = HUMAN_PHRASES.search(text)
        if human:
            run.human_phrase = human.group(0)

    def foreground_min_dbov(self) -> float:
        """Speech this loud is the talker's own, not voices behind them (a call centre's babble
        lies well under the agent's voice)."""
        run = self.run
        return FOREGROUND_MIN_DBOV if run is None else max(FOREGROUND_MIN_DBOV, run.peak_dbov - FOREGROUND_BELOW_PEAK_DB)

    def our_speech_started(self, t: float) -> None:
        """The app began to say something into the call at stream time ``t``."""
        self._ours = _OurWords(t)

    def our_speech_ended(self, t: float) -> None:
        """... and stopped at ``t`` (its end, or cut short)."""
        if self._ours is not None and self._ours.t_end is None:
            self._ours.t_end = t

    def _quiet_from(self, run: _Run) -> float:
        """Since when nobody has spoken: the far end's quiet, or our words if they came later (a
        person listens while we speak)."""
        ours = self._ours
        if ours is None or (ours.t_end is not None and ours.t_end <= run.quiet_since):
            return run.quiet_since
        return ours.t_end if ours.t_end is not None else float("inf")

    def _answers_us(self, run: _Run, onset_t: float) -> bool:
        """Words beginning at ``onset_t`` answer us: in time (``_to_us``), or late for the
        ``late_replies_needed``-th time on this run."""
        if self._to_us(onset_t):
            return True
        ours = self._ours
        if ours is None or not self._to_us(onset_t, window=self.settings.late_reply_seconds):
            return False
        if ours.t_start not in run.late_replies:  # one per thing we said, however many words
            run.late_replies.append(ours.t_start)
        return len(run.late_replies) >= self.settings.late_replies_needed

    def _to_us(self, onset_t: float, window: float | None = None) -> bool:
        """Words that begin at ``onset_t`` answer what we said: they begin as our words end (a
        talker who let us speak), not while we speak (a recording carries on regardless).

        Talking over us is counted in loud speech frames after the yield grace, and in words: a
        word the far end began over ours counts from its first loud frame, however late Silero
        calls it speech and however few of its frames are loud. Words begun over ours and still
        going as ours drew to an end (within ``yield_grace_seconds`` of it) mean no one waited
        for us: a recording's next sentence that began as we spoke, paused and went on in the
        reply window. A person who picked up while we spoke and stopped for us has been quiet
        since; an answer may begin ``reply_early_seconds`` before our end."""
        s = self.settings
        ours = self._ours
        if ours is None or ours.t_end is None or ours.talked_over > s.talked_over_max_frames:
            return False
        end_from, end_to = ours.t_end - s.yield_grace_seconds, ours.t_end - s.reply_early_seconds
        over = [onset for onset in ours.words_over_us if onset < end_to]
        if over and (max(over) >= end_from or any(end_from <= heard < end_to for heard in ours.heard)):
            return False
        return end_to <= onset_t <= ours.t_end + (s.reply_window_seconds if window is None else window)

    def _words_began(self, onset_t: float, loudest_dbov: float) -> None:
        """The far end began a word (after a pause, or a run's first) at ``onset_t``; its frames
        so far reach ``loudest_dbov`` (voices behind the talker are no words of theirs)."""
        ours = self._ours
        if (
            ours is not None
            and ours.t_end is None
            and onset_t >= ours.t_start + self.settings.yield_grace_seconds
            and loudest_dbov >= self.foreground_min_dbov()
        ):
            ours.words_over_us.append(onset_t)

    def source_class(self) -> AudioClass:
        """What the current speech is judged to be: LIVE_HUMAN, IVR_PROMPT or SPEECH (undecided)."""
        run = self.run
        if self.decided:
            return AudioClass.LIVE_HUMAN
        if run is None:
            return AudioClass.IVR_PROMPT if self.on_hold else AudioClass.SPEECH
        if run.bed or run.repeat is not None or run.recording_phrase:
            return AudioClass.IVR_PROMPT
        if self._live_floor(run)[0] or self._gated(run)[0]:
            return AudioClass.LIVE_HUMAN
        # On hold, speech after music is far more often an announcement than a person.
        return AudioClass.IVR_PROMPT if self.on_hold else AudioClass.SPEECH

    # -- runs -----------------------------------------------------------------------------

    def _start_run(self, t: float, level: float) -> _Run:
        """Speech began (this frame, which is added next): find the word's first loud frame and
        the quiet lead-in before it."""
        history = list(self._recent)
        levels = np.array([h[0] for h in history] + [level])
        quiet_max = quiet_max_dbov(float(np.max(levels[-SILERO_LAG_FRAMES:])))
        s = self.settings
        # Silero may call speech in the gap after a first syllable: the word is the sound before.
        recent = max(0, len(levels) - SILERO_LAG_FRAMES)
        loud = np.flatnonzero(levels[recent:] >= quiet_max)
        end = recent + int(loud[-1]) + 1 if len(loud) else len(levels)
        onset = word_onset(levels[: max(end, 1)], quiet_max, s.lead_floor_frames, s.floor_steady_db)
        if onset is None:
            start = lead_start = max(0, end - 1 - SILERO_LAG_FRAMES)  # sound all along: no lead-in
        else:
            lead_start, start = max(onset[0], onset[1] - LEAD_MAX_FRAMES), onset[1]
        start = lead_start + lead_end(levels[lead_start:start], s.floor_steady_db, s.lead_floor_frames)
        spectra = np.array([h[1] for h in history[lead_start:start]]) if start > lead_start else np.zeros((0, 0))
        run = _Run(
            onset_t=t - (len(history) - start) * FRAME_SECONDS,
            lead=_Lead(levels[lead_start:start], spectra),
            first_lead=_Lead(levels[lead_start:start], spectra),
            before=_Lead(levels[:start], np.array([h[1] for h in history[:start]])),
            lead_quiet_max=quiet_max,
        )
        # The loud frames already heard belong to the run.
        for level_, spectrum, zcr in history[start:]:
            run.add(level_, spectrum, zcr)
            run.peak_dbov = max(run.peak_dbov, level_)
        self._pending_gap.clear()
        self._loud_after_gap = 0
        return run

    def _on_speech(self, run: _Run, t: float, level: float) -> _Run:
        s = self.settings
        run.peak_dbov = max(run.peak_dbov, level)
        word = self._pause_before_word(run, level)
        if word is not None:
            pause_start, voice_start = word
            pause = (voice_start - pause_start) * FRAME_SECONDS
            if pause >= s.utterance_pause_seconds:
                spoke_enough = run.speech_frames * FRAME_SECONDS >= s.min_speech_seconds
                turn = (
                    pause >= s.turn_pause_seconds
                    and spoke_enough
                    and not run.bed
                    and self._talker_pause(run, pause_start, voice_start)
                )
                talker = run
                pause_t = t - (len(run.levels) - 1 - pause_start) * FRAME_SECONDS
                run = self._new_utterance(run, t, pause_start, voice_start)
                # A new line's first words answer no one on it; a pause we filled with our own
                # words is the reply rule's (what follows it answers us, or carries on regardless).
                turn = turn and run is talker and not self._we_spoke_since(pause_t)
                onset_t = t - (len(run.levels) - 1 - run.utterance_start) * FRAME_SECONDS if run is talker else run.onset_t
                self._words_began(onset_t, max(run.levels[run.utterance_start if run is talker else 0 :]))
                to_us = self._answers_us(run, onset_t)
                if turn or to_us:
                    run.reply = _Reply(run.speech_frames, turn=turn, to_us=to_us)
        run.speech_frames += 1
        run.last_speech_index = len(run.levels) - 1
        if level >= run.pause_max_dbov:
            run.last_word_index = run.last_speech_index
        run.voice.append(level)
        run.last_speech_t = t + FRAME_SECONDS
        run.quiet_since = None
        run.loud_since_speech = 0
        reply = run.reply
        replied = reply is not None and run.speech_frames - reply.speech_frames_at_start
        if reply is not None and replied * FRAME_SECONDS >= s.reply_min_speech_seconds:
            run.turns += int(reply.turn)
            if reply.to_us:
                run.answer_started_t = t - replied * FRAME_SECONDS
                run.answer_after_yield = self._ours is not None and self._ours.yielded(s)
            run.reply = None
        return run

    def _we_spoke_since(self, t: float) -> bool:
        ours = self._ours
        return ours is not None and (ours.t_end is None or ours.t_end > t)

    def _answered_us(self, run: _Run, t: float) -> bool:
        """Words that began as ours ended have ended in their turn: a pause that waits for us
        (no music back: the run goes on), ``reply_end_quiet_seconds`` after at most
        ``reply_max_seconds`` of them, ``long_answer_quiet_seconds`` after a longer answer. A
        person answers and waits; a recording that happened to resume after our words talks on,
        or pauses briefly between its sentences. A talker who stopped for us (``_OurWords.yielded``)
        needs no end: ``yielded_reply_seconds`` of the answer are enough."""
        s = self.settings
        if run.answer_started_t is None:
            return False
        answer_seconds = run.last_speech_t - run.answer_started_t
        if run.answer_after_yield and s.yielded_reply_seconds is not None and answer_seconds >= s.yielded_reply_seconds:
            return True
        if answer_seconds > s.long_answer_max_seconds:
            run.answer_started_t = None  # a monologue, not an answer
            return False
        quiet = s.reply_end_quiet_seconds if answer_seconds <= s.reply_max_seconds else s.long_answer_quiet_seconds
        return run.quiet_since is not None and t - run.last_speech_t >= quiet

    def _pause_before_word(self, run: _Run, level: float) -> tuple[int, int] | None:
        """(first quiet frame, first loud frame) of the pause this speech frame ends, if it is a
        loud frame that ends one. The pause is measured from the last loud frame of a word:
        Silero's verdict trails a word into the quiet after it, and may flicker on in a pause;
        and it is late on a new word, whose first loud frames come before it."""
        quiet_max = run.pause_max_dbov
        stop = run.last_word_index + 1
        if level < quiet_max or stop == 0 or stop >= len(run.levels) - 1:
            return None
        pause_frames = int(round(self.settings.utterance_pause_seconds / FRAME_SECONDS))
        pause = word_onset(np.array(run.levels[stop:]), quiet_max, pause_frames, self.settings.floor_steady_db)
        return None if pause is None else (stop + pause[0], stop + pause[1])

    def _new_utterance(self, run: _Run, t: float, pause_start: int, voice_start: int) -> _Run:
        """Speech again after a pause: the pause is the new utterance's lead-in. A person who
        picks up right after an announcement speaks on a new channel; the cue compares the
        pause with the floor of the run's earlier pauses (the same channel gives the same floor).
        On such a change the utterance starts a run of its own: what was known about the
        earlier speech (a replay, a music bed) says nothing about the new talker."""
        levels = np.array(run.levels)
        s = self.settings
        voice_start = pause_start + lead_end(levels[pause_start:voice_start], s.floor_steady_db, s.lead_floor_frames)
        earlier = levels[run.utterance_start : pause_start]
        prior_floor = self._pause_floor(run, pause_start)
        lead = _Lead(levels[pause_start:voice_start], np.array(run.spectra[pause_start:voice_start]))
        if self._channel_changed(lead, prior_floor, earlier, run.peak_dbov):
            onset = t - (len(levels) - voice_start) * FRAME_SECONDS
            new = _Run(onset_t=onset, lead=lead, first_lead=lead)
            for i in range(voice_start, len(levels)):
                new.add(run.levels[i], run.spectra[i], run.zcr[i])
                new.peak_dbov = max(new.peak_dbov, run.levels[i])
            del run.spectra[pause_start:]  # the earlier talker's recording ends before the pause
            # No retraction: the new talker may be the person, and is suspected on their own.
            self._end_run(remember=False)  # only music coming back proves a recording
            new.prior_floor_dbov = prior_floor
            new.split_from_run = True
            if (run.suspected or run.talker_suspected) and not run.retracted:
                new.talker_suspected = True
                new.talker_speech_frames = run.talker_speech_frames + run.speech_frames
            self.run = new
            return new
        run.lead = lead
        run.utterance_start = voice_start
        run.retracted = False
        self._check_recording(run)  # a new utterance: the vetoes are judged afresh
        return run

    def _pause_floor(self, run: _Run, stop: int, since: int | None = None) -> float | None:
        """The level the run's audible pauses before frame ``stop`` (since its newest utterance,
        or frame ``since``) settle on: the quietest of their steady, noise-like stretches (the
        decays of words, a breath, a hum are no floor, and a hiss of a consonant lies above it).
        None when they went to digital silence or had none."""
        s = self.settings
        since = run.utterance_start if since is None else since
        earlier = np.array(run.levels[since:stop])
        quiet = (earlier < run.peak_dbov - PAUSE_BELOW_PEAK_DB) & (earlier >= ZERO_DBOV)
        if not quiet.any():
            return None
        quietest = float(percentile(earlier[quiet], 5))
        edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
        settled: list[float] = []
        for begin, end in zip(edges[::2], edges[1::2]):
            if end - begin >= s.lead_floor_frames:
                first = begin + floor_start(earlier[begin:end], s.floor_steady_db)
                if end - first < s.lead_floor_frames:
                    continue
                level = float(median(earlier[first:end]))
                spectra = np.array(run.spectra[since + first : since + end])
                if level <= quietest + s.floor_steady_db and self._noise_like(spectra)[0]:
                    settled.append(level)
        return min(settled) if settled else None

    def _channel_changed(self, lead: _Lead, prior_floor: float | None, earlier: np.ndarray, peak_dbov: float) -> bool:
        """The pause before this utterance sits on another line than the run's earlier pauses."""
        s = self.settings
        floor = self._lead_shape(lead, s.lead_floor_frames)
        if floor is not None:
            if not self._line_lead(floor, peak_dbov):
                return False
            if prior_floor is None:
                # No audible pause before: the line is new if the sound before it, this pause's
                # start included, went quieter than it (digital silence, the PBX's faint floor, a
                # fade to below it): that floor was not there then.
                before = np.concatenate([earlier, lead.levels[: floor["floor_start"]]])
                return bool(np.count_nonzero(before < floor["floor_dbov"] - s.above_hold_floor_db) >= 2)
            return abs(floor["floor_dbov"] - prior_floor) >= s.above_hold_floor_db
        if np.count_nonzero(lead.levels < ZERO_DBOV) < s.lead_floor_frames:
            return False
        # A gated line's digital silence after pauses on an audible floor, or after pauses that a
        # music bed filled (quiet, yet never digital silence).
        paused = np.count_nonzero((earlier < quiet_max_dbov(peak_dbov)) & (earlier >= ZERO_DBOV)) >= s.lead_floor_frames
        return prior_floor is not None or (paused and not np.any(earlier < ZERO_DBOV))

    def _observe_gap(self, level: float) -> None:
        """Learn the hold channel's floor from its gaps: a steady quiet stretch that the hold's
        sound (not speech: a run would have started) follows for 200 ms."""
        if ZERO_DBOV <= level < HOLD_GAP_MAX_DBOV:
            if self._loud_after_gap:
                self._pending_gap.clear()
                self._loud_after_gap = 0
            self._pending_gap.append(level)
            del self._pending_gap[:-100]
            return
        if level < ZERO_DBOV:
            self._pending_gap.clear()
            return
        self._loud_after_gap += 1
        if self._loud_after_gap >= 10:
            gap = np.array(self._pending_gap)
            if len(gap) >= 10 and np.std(gap) <= 3.0:
                self._hold_floor.extend(gap.tolist())
            self._pending_gap.clear()
            self._loud_after_gap = 0

    def _announcement_over(self, t: float, why: str = "music came back") -> None:
        self.announcements += 1
        run = self.run
        if run is not None:
            self._learn_recording_floors(run)
        self._end_run(remember=True, t=t, why=why)

    def _learn_recording_floors(self, run: _Run) -> None:
        """Remember the floors an announcement that has just ended might pass off as a line's:
        its pauses', and its lead-in's if long enough to be measured well. Not from a few Silero
        steps in the music, not from pauses a music bed filled, and not when the "music" that
        ended it is a steady noise-like floor (a loud line's, in a long pause: that was a person)."""
        s = self.settings
        if run.speech_frames * FRAME_SECONDS < s.min_speech_seconds or run.bed:
            return
        resumed = max(1, run.loud_since_speech)
        if self._steady_noise(np.array(run.levels[-resumed:]), np.array(run.spectra[-resumed:])) is not None:
            return
        lead = run.first_lead_shape or {}
        if lead.get("noise_like") and not lead.get("entered_by_fade") and lead["lead_floor_frames"] >= s.long_lead_frames:
            self._recording_floors.append(lead["floor_dbov"])
        pauses = self._pause_floor(run, len(run.levels), since=0)
        if pauses is not None:
            self._recording_floors.append(pauses)

    def _end_run(self, *, remember: bool, t: float | None = None, why: str = "") -> None:
        run = self.run
        if run is not None and run.suspected and not self.decided and t is not None:
            self._retract(run, t, why)
        # A run of a few Silero steps in the music is no recording: its landmarks would be the
        # music's, and match whatever plays over it later.
        spoke = run is not None and run.speech_frames * FRAME_SECONDS >= self.settings.min_speech_seconds
        if run is not None and remember and spoke and len(run.spectra) > 10:
            self.recordings.remember(landmarks(np.array(run.spectra[-1500:]), self.sample_rate))
        self.run = None

    def _check_recording(self, run: _Run, *, recheck: bool = True) -> None:
        """The vetoes from the run's newest ``fingerprint_seconds``: they describe what the line
        carries now, so a person who speaks on right after an announcement (on no line its pause
        could tell apart) is not vetoed by it for good. ``recheck=False`` keeps a veto found."""
        s = self.settings
        if len(run.spectra) < 25 or not recheck:
            return
        spectra = np.array(run.spectra[-int(s.fingerprint_seconds / FRAME_SECONDS) :])
        run.repeat = self.recordings.matches(landmarks(spectra, self.sample_rate)) if len(self.recordings) else None
        count = len(spectra)
        frames = FrameFeatures(np.array(run.levels[-count:]), np.array(run.zcr[-count:]), spectra)
        run.bed_steadiness = pause_steadiness(frames, self.sample_rate)
        run.bed = run.bed_steadiness >= s.bed_min_steadiness

    # -- floors ---------------------------------------------------------------------------

    def _hold_floor_dbov(self) -> float | None:
        return float(median(self._hold_floor)) if len(self._hold_floor) >= 10 else None

    def _noise_like(self, spectra: np.ndarray) -> tuple[bool, float]:
        """No tonal peaks in the mean spectrum of these floor frames (a line, not soft music)."""
        newest = spectra[-TONALITY_FRAMES:]
        tonality = tonality_db(newest, self.sample_rate) * np.sqrt(len(newest))
        return bool(tonality <= self.settings.floor_max_tonality), float(tonality)

    def _audible_line_level(self, floor: float, peak_dbov: float) -> bool:
        """Loud enough for an open microphone (and louder than the hold channel), under the voice."""
        s = self.settings
        hold_floor = self._hold_floor_dbov()
        return (
            s.live_floor_min_dbov <= floor <= min(s.live_floor_max_dbov, peak_dbov - PAUSE_BELOW_PEAK_DB)
            and (hold_floor is None or floor >= hold_floor + s.above_hold_floor_db)
        )

    def _lead_shape(self, lead: _Lead, min_frames: int) -> dict[str, Any] | None:
        """The floor the newest audible quiet of a lead-in settles on: its level, length,
        tonality and whether it was faded into; None when it is shorter than ``min_frames``."""
        s = self.settings
        levels = lead.levels
        # The newest unbroken stretch of audible quiet: the line the words came on (before it:
        # the tail of what played, a click, a gap of digital silence).
        audible = levels >= ZERO_DBOV
        stretch = len(levels)
        while stretch > 0 and audible[stretch - 1]:
            stretch -= 1
        if len(levels) - stretch < min_frames:
            return None
        first = stretch + floor_start(levels[stretch:], s.floor_steady_db)
        on_floor = levels[first:]
        if len(on_floor) < min_frames:
            return None
        floor = float(median(on_floor))
        # A fade slides down into the floor through the levels just above it; a cut leaves at
        # most one frame part sound, part floor, and soft music before a cut hovers, not slides.
        sliding: list[float] = []
        for value in levels[max(0, first - 10) : first][::-1]:
            if not floor + s.floor_steady_db < value <= floor + s.fade_max_above_floor_db:
                break
            sliding.append(value)
        noise_like, tonality = self._noise_like(lead.spectra[first:])
        return {
            "floor_dbov": round(floor, 1),
            "floor_start": first,
            "lead_floor_frames": len(on_floor),
            "lead_tonality": round(tonality, 2),
            "noise_like": noise_like,
            "entered_by_fade": bool(len(sliding) >= 2 and sliding[-1] - sliding[0] >= s.floor_steady_db),
        }

    def _line_lead(self, shape: dict[str, Any], peak_dbov: float) -> bool:
        """A lead-in's floor is an open line's: noise-like, stepped into, at a line's level."""
        stepped_in = shape["noise_like"] and not shape["entered_by_fade"]
        return stepped_in and self._audible_line_level(shape["floor_dbov"], peak_dbov)

    def _line_floor(self, levels: np.ndarray, spectra: np.ndarray, peak_dbov: float) -> bool:
        """These quiet frames are one line floor: a steady noise, audible."""
        floor = self._steady_noise(levels, spectra)
        return floor is not None and self._audible_line_level(floor, peak_dbov)

    def _steady_noise(self, levels: np.ndarray, spectra: np.ndarray) -> float | None:
        """The level of these frames if they are one steady noise, whatever its level: no digital
        silence, steady and without a trend (music fading away slides down), noise-like."""
        s = self.settings
        if len(levels) < s.lead_floor_frames or np.any(levels < ZERO_DBOV):
            return None
        floor = float(median(levels))
        on_floor = np.abs(levels - floor) <= s.floor_steady_db
        if np.count_nonzero(on_floor) < s.floor_steady_share * len(levels):
            return None
        third = max(1, len(levels) // 3)
        if abs(float(median(levels[-third:])) - float(median(levels[:third]))) > s.floor_max_trend_db:
            return None
        return floor if self._noise_like(spectra[on_floor])[0] else None

    def _gate_silence(self, run: _Run, start: int, end: int) -> bool:
        """Frames ``start:end`` of the run are a gate's digital silence that began with a closure
        (a frame or two at either edge may hold the rest of the words the gate cut, and Silero's
        verdict may have trailed into the silence before ``start``)."""
        last = end
        while last > start and end - last < 2 and run.levels[last - 1] >= ZERO_DBOV:
            last -= 1
        if last == start or run.levels[last - 1] >= ZERO_DBOV:
            return False
        began = run.silence_start(last)
        return began <= start + 2 and began in run.closures

    def _talker_pause(self, run: _Run, start: int, end: int) -> bool:
        """The pause ``start:end`` of the run sits on the talker's line: a line floor or a gate's
        silence, not the PBX's digital gap or faint floor between two prompts."""
        levels = np.array(run.levels[start:end])
        if self._gate_silence(run, start, end):
            return True
        return self._line_floor(levels, np.array(run.spectra[start:end]), run.peak_dbov)

    # -- cues -----------------------------------------------------------------------------

    def _live_floor(self, run: _Run) -> tuple[bool, dict[str, Any]]:
        s = self.settings
        # The run's own lead-in (its later pauses are the same talker's: a new one splits it),
        # measured once.
        if run.first_lead_shape is None:
            run.first_lead_shape = self._lead_shape(run.first_lead, s.short_lead_frames) or {}
        if run.first_lead_shape.get("lead_floor_frames", 0) < s.long_lead_frames:
            self._relead(run)
        floor = run.first_lead_shape
        if not floor:
            return False, {"lead_floor_frames": int(np.count_nonzero(run.first_lead.levels >= ZERO_DBOV))}
        hold_floor = self._hold_floor_dbov()
        level = floor["floor_dbov"]
        # An open microphone's floor fills every pause: a line that has fallen to digital silence
        # since its first word is a gate's, or a PBX playing files one after the other.
        line = (
            self._line_lead(floor, run.peak_dbov)
            and (run.prior_floor_dbov is None or abs(level - run.prior_floor_dbov) >= s.above_hold_floor_db)
            and not run.silences
        )
        evidence = {
            **{key: value for key, value in floor.items() if key not in ("floor_start", "noise_like")},
            "line_floor": line,
            "hold_floor_dbov": None if hold_floor is None else round(hold_floor, 1),
            "prior_floor_dbov": None if run.prior_floor_dbov is None else round(run.prior_floor_dbov, 1),
        }
        if not line:
            return False, evidence
        if floor["lead_floor_frames"] >= s.long_lead_frames:
            return not self._known_recording_floor(level, evidence), evidence
        # A short lead-in's tonality says little: its floor must come back in the pauses, and be
        # a line's there too (soft music under an announcement's pauses is not, nor are the dips
        # of a voice that happen to reach its level); and lead and pauses together, as many
        # frames as a long lead, must be one noise-like floor.
        levels = np.array(run.levels[: self._words_end(run)])
        pauses = (levels < run.peak_dbov - PAUSE_BELOW_PEAK_DB) & (levels >= ZERO_DBOV)
        on_floor = _in_stretches(pauses & (np.abs(levels - level) <= s.floor_steady_db), s.pause_min_frames)
        evidence["pause_frames_on_floor"] = len(on_floor)
        lead = run.first_lead.spectra[floor["floor_start"] :]
        if len(on_floor) < s.pause_floor_frames or len(lead) + len(on_floor) < s.long_lead_frames:
            return False, evidence
        pause_spectra = np.array([run.spectra[i] for i in on_floor[-TONALITY_FRAMES:]])
        together = np.concatenate([lead, pause_spectra])
        if not (self._noise_like(pause_spectra)[0] and self._noise_like(together)[0]):
            return False, evidence
        # Measured on lead and pauses together: a short lead's few frames may read a dB or two high.
        confirmed = float(median(np.concatenate([run.first_lead.levels[floor["floor_start"] :], levels[on_floor]])))
        return not self._known_recording_floor(confirmed, evidence), evidence

    def _known_recording_floor(self, floor: float, evidence: dict[str, Any]) -> bool:
        """The floor of an announcement already heard on this call (its pauses' or its lead-in's):
        the PBX's recordings, often all from one studio, reach us on one path."""
        close = [known for known in self._recording_floors if abs(floor - known) < self.settings.recording_floor_db]
        if close:
            evidence["recording_floor_dbov"] = round(close[0], 1)
        return bool(close)

    def _words_end(self, run: _Run) -> int:
        """Where the run's pauses *between words* end. A recording file ends on the same floor
        it began with, so the quiet after the last word counts only once it has lasted longer
        than a file's tail before the music returns (``tail_is_line_seconds``); and the music's
        first frames may pass for a word with Silero, so a newest "word" shorter than
        ``word_min_seconds`` does not yet make the quiet before it a pause between words."""
        s = self.settings
        levels = run.levels
        quiet_max = run.quiet_max_dbov
        last = run.last_word_index
        tail = levels[last + 1 :]
        if len(tail) * FRAME_SECONDS >= s.tail_is_line_seconds and max(tail, default=-120.0) < quiet_max:
            return len(levels)
        first = last
        while first > 0 and levels[first - 1] >= quiet_max:
            first -= 1
        if (last - first + 1) * FRAME_SECONDS >= s.word_min_seconds:
            return max(last, 0)
        while first > 0 and levels[first - 1] < quiet_max:
            first -= 1
        return first

    def _relead(self, run: _Run) -> None:
        """Cut the run's lead-in again if its voice has turned out louder than its first
        syllables: quiet is judged against the voice, and a loud line's floor (-40 dBov under a
        -15 dBov voice) is loud next to a soft first syllable. A longer floor replaces the old."""
        s = self.settings
        quiet_max = run.quiet_max_dbov
        if run.before is None or quiet_max <= run.lead_quiet_max + 1.0:
            return
        run.lead_quiet_max = quiet_max
        # The run may have begun on the floor itself (loud next to the first syllable): its
        # frames up to the first one loud next to the voice belong to the lead-in.
        opening = np.array(run.levels[:LEAD_MAX_FRAMES])
        loud = np.flatnonzero(opening >= quiet_max)
        words_at = int(loud[0]) if len(loud) else 0
        levels = np.concatenate([run.before.levels, opening[:words_at]])
        spectra = list(run.before.spectra) + run.spectra[:words_at]
        end = begin = len(levels)
        while begin > 0 and end - begin < LEAD_MAX_FRAMES and ZERO_DBOV <= levels[begin - 1] < quiet_max:
            begin -= 1
        stop = begin + lead_end(levels[begin:end], s.floor_steady_db, s.lead_floor_frames)
        # The digital silence it came out of stays in the lead-in: a few frames after it may be
        # the word's soft beginning through a gate as well as a short floor (``gate_opened``).
        while begin > 0 and stop - begin < LEAD_MAX_FRAMES and levels[begin - 1] < ZERO_DBOV:
            begin -= 1
        lead = _Lead(levels[begin:stop], np.array(spectra[begin:stop]))
        shape = self._lead_shape(lead, s.short_lead_frames)
        if shape and shape["lead_floor_frames"] > run.first_lead_shape.get("lead_floor_frames", 0):
            run.first_lead, run.first_lead_shape = lead, shape

    def _gated(self, run: _Run) -> tuple[bool, dict[str, Any]]:
        """The line opened on digital silence (the run's lead-in ends in zeros, bar the word's
        soft first frames; before them may be anything: the end of an announcement) and
        its gate closed between words. A run that opened otherwise needs its newest pause to be
        digital silence and one closure more: a recording's own digital gap is rarer than one."""
        s = self.settings
        opened, lead_zero = gate_opened(run.first_lead.levels, s.lead_floor_frames)
        needed = s.gate_closures
        if not opened:
            opened, lead_zero = gate_opened(run.lead.levels, s.lead_floor_frames)
            needed = s.gate_closures_after_pause
        closures = run.inner_closures()  # the run is one talker's: a new one would have split it
        return opened and closures >= needed, {"lead_zero_frames": lead_zero, "gate_closures": closures}

    def _waiting(self, run: _Run, quiet_for: float, seconds: float) -> bool:
        """Silent for ``seconds`` since a short utterance, on the talker's line (see the module docstring)."""
        s = self.settings
        if (
            quiet_for < seconds
            or run.last_speech_t - run.onset_t > s.max_waiting_run_seconds
            or run.speech_frames * FRAME_SECONDS < s.min_speech_seconds
        ):
            return False
        # The whole silence since the words is one floor: the person's line, from the start.
        start = max(0, len(run.levels) - int(round(quiet_for / FRAME_SECONDS)))
        if run.inner_closures() >= 1 and self._gate_silence(run, start, len(run.levels)):
            return True  # a gate that closed between words too has closed after the last one
        return self._line_floor(np.array(run.levels[start:]), np.array(run.spectra[start:]), run.peak_dbov)

    def _judge(self, run: _Run, t: float) -> None:
        """Suspect, retract or decide on the run as it stands at ``t``."""
        s = self.settings
        if run.repeat is not None:
            # A recording heard before on this call: no person, whatever else it sounds like.
            if run.suspected:
                self._retract(run, t, "a recording heard before on this line")
            return
        vetoes = self._vetoes(run)
        speech_seconds = run.speech_frames * FRAME_SECONDS
        old_enough = run.age(t) >= s.min_decision_seconds and speech_seconds >= s.min_speech_seconds
        live, live_evidence = self._live_floor(run)
        gated, gated_evidence = self._gated(run)
        quiet_for = 0.0 if run.quiet_since is None else t - run.quiet_since
        cues = {
            "live_floor": old_enough and live,
            "gated_line": old_enough and gated,
            "turn_taking": run.turns > 0,
            "waiting_for_reply": self._waiting(run, quiet_for, s.waiting_seconds),
            "transcript": run.human_phrase is not None,
            "reply": self._answered_us(run, t),
        }
        run.line_cue = run.line_cue or cues["live_floor"] or cues["gated_line"]
        evidence = {
            "speech_onset_t": round(run.onset_t, 3),
            "speech_seconds": round(speech_seconds, 2),
            "live_floor": live_evidence,
            "gated_line": gated_evidence,
            "turns": run.turns,
            "new_talker_after_pause": run.split_from_run,
            "quiet_seconds": round(quiet_for, 2),
            "music_bed_steadiness": round(run.bed_steadiness, 3),
            "known_recordings": len(self.recordings),
            "transcript": run.human_phrase,
            "on_hold": self.on_hold,
            "announcements_before": self.announcements,
        }
        fired = [name for name, on in cues.items() if on]
        enough_speech = (speech_seconds >= s.suspect_speech_seconds and run.age(t) >= s.suspect_speech_seconds) or (
            speech_seconds >= s.min_speech_seconds and quiet_for >= s.suspect_quiet_seconds  # "hi?", and waiting
        )
        if not run.suspected and not run.retracted and not vetoes and (fired or enough_speech):
            run.suspected = True
            self.suspicion = HumanSuspected(
                t=t,
                confidence=min(0.9, 0.5 + 0.1 * len(fired)),
                evidence={"rule": fired[0] if fired else "speech", "cues": fired, **evidence},
            )
            self._out.append(self.suspicion)
        judged = run.suspected or (run.talker_suspected and not run.retracted)
        sure = self._sure(run, cues, quiet_for, t, vetoed=bool(vetoes)) if judged else None
        if sure is None:
            return
        self.decided = True
        self._out.append(
            HumanDetected(
                t=t,
                confidence=min(0.99, 0.8 + 0.05 * len(fired)),
                evidence={
                    "rule": sure,
                    "cues": fired,
                    "suspected_t": None if self.suspicion is None else self.suspicion.t,
                    **evidence,
                },
            )
        )

    def _sure(self, run: _Run, cues: dict[str, bool], quiet_for: float, t: float, *, vetoed: bool) -> str | None:
        """Evidence enough to ring the user: a reply to our words, the words a person says, or a
        talker who waits for an answer on their own line (a line cue and then a pause, or a long
        quiet with nothing coming back). A line cue alone is not enough: recordings in voices
        and studios never heard before pass for a line now and then. A music bed or a scripted
        phrase (``vetoed``) leaves only the reply: no recording answers us, but a person's line
        may hum and a person may say "please hold"."""
        s = self.settings
        if cues["reply"]:
            return "reply"
        if vetoed:
            return None
        if cues["transcript"]:
            return "transcript"
        if run.line_cue and cues["turn_taking"]:
            return "turn_taking"
        if run.line_cue and self._waiting(run, quiet_for, s.sure_wait_seconds):
            return "waiting_for_reply"
        # No words since (a loud line's floor is not quiet, but it is no word either), and the
        # run goes on: music coming back would have ended it.
        talker_speech = (run.speech_frames + run.talker_speech_frames) * FRAME_SECONDS
        if t - run.last_speech_t >= s.long_wait_seconds and talker_speech >= s.long_wait_min_speech_seconds:
            return "long_wait"
        return None

    def _learn_hold_shape(self, spectrum: np.ndarray) -> None:
        shape = band_levels_db(spectrum, self.sample_rate)
        if self._hold_shape is None:
            self._hold_shape = shape
        else:
            self._hold_shape += HOLD_SHAPE_LEARN * (shape - self._hold_shape)

    def _line_noise_since_words(self, run: _Run) -> bool:
        """The loud sound since the last word is not music coming back: a noise (a loud line,
        a fan, a busy room, rain) has no tonal peaks; voices behind the talker have tonal peaks
        but neither the hold music's spectral shape nor its held notes."""
        count = run.loud_since_speech
        spectra = np.array(run.spectra[-count:])
        if self._noise_like(spectra)[0]:
            return True
        if self._hold_shape is not None:
            if shape_correlation(band_levels_db(spectra, self.sample_rate), self._hold_shape) >= HOLD_SHAPE_MIN_CORRELATION:
                return False
        frames = FrameFeatures(np.array(run.levels[-count:]), np.array(run.zcr[-count:]), spectra)
        return harmonic_steadiness(frames, self.sample_rate) < MUSIC_MIN_STEADINESS

    def _vetoes(self, run: _Run) -> list[str]:
        """What speaks for a recording and keeps a suspicion from being raised or made sure."""
        vetoes = []
        if run.bed:
            vetoes.append("music under the words")
        if run.recording_phrase:
            vetoes.append(f"recording phrase: {run.recording_phrase!r}")
        return vetoes

    def _retract(self, run: _Run, t: float, why: str) -> None:
        run.suspected = False
        run.retracted = True
        self._ours = None  # what we said was said to a recording: nothing after it answers it
        suspicion = self.suspicion
        self.suspicion = None
        self._out.append(
            HumanRetracted(
                t=t,
                confidence=0.8,
                suspected_t=suspicion.t if suspicion is not None else run.onset_t,
                evidence={"why": why, "speech_onset_t": round(run.onset_t, 3)},
            )
        )
