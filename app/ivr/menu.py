"""Menu understanding: what a phone-menu transcript offers and asks for. Pure: text in, values out.

``parse_menu(transcript, trailing_silence_seconds)`` reads one prompt (everything heard since the
last action: the session accumulates the menu as it is read) and returns a ``Menu``:

- ``options``: every choice offered, by key ("press 1 for billing", "for billing, press 1",
  "to speak with a representative press 0", "press 1 to ..., or 2 to ...", "para español oprima
  nueve") or by voice ("say billing or press 1", "you can say things like billing or sales"),
  each with a normalised label and a kind (topic, operator, other, callback, language, repeat,
  back).
- ``data_requests``: what the menu asks the caller to enter or say (account number, ZIP code,
  date of birth, last four of the SSN or card, callback number, member ID, PIN, ...), with the
  terminator ("followed by the pound key"), the expected length and the date layout.
- ``complete``: the menu has been read to its end, so acting now will not cut it short. True on a
  closing phrase ("to repeat these options", "or stay on the line", an operator option last),
  or when the transcript ends on a finished option/question and ``trailing_silence_seconds``
  (silence since the prompt ended) reached ``SETTLED_SILENCE_SECONDS``, or after
  ``GIVE_UP_SILENCE_SECONDS`` of silence whatever was heard.
- ``is_hold_message`` (a queue announcement, perhaps offering a callback), ``open_question``
  (a speech menu: "briefly tell me why you're calling"), ``invalid_input`` ("that is not a valid
  option"), ``sounds_human`` ("this is Dana, how can I help you?").

It is built for speech-to-text output: no reliance on punctuation or case, numbers as digits or
words, "pound"/"hash"/"star"/"asterisk", accents dropped ("español" == "espanol").

``same_menu(a, b)`` says whether two prompts are the same menu heard again (keys and labels, or
the text), tolerant of STT noise and of one hearing being cut short.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from enum import Enum

SETTLED_SILENCE_SECONDS = 1.5  # after a finished option: longer than the pauses between options
GIVE_UP_SILENCE_SECONDS = 3.0  # whatever was heard, the menu is waiting for us by now
PROMPT_MIN_SPEECH_SECONDS = 0.5  # a prompt has been heard: more than a click or a breath


def prompt_finished(spoken_seconds: float, quiet_seconds: float) -> bool:
    """The one rule for "the menu has finished": something was said since we started
    listening (``spoken_seconds`` of activity) and the line has been quiet since for
    ``SETTLED_SILENCE_SECONDS``."""
    return spoken_seconds > PROMPT_MIN_SPEECH_SECONDS and quiet_seconds >= SETTLED_SILENCE_SECONDS


class OptionKind(str, Enum):
    TOPIC = "topic"  # a department or subject: billing, claims, ...
    OPERATOR = "operator"  # a person: representative, agent, operator, customer service
    OTHER = "other"  # "all other questions", "anything else"
    CALLBACK = "callback"  # "press 1 for a callback" / "to have us call you back"
    LANGUAGE = "language"  # "para español oprima nueve"
    REPEAT = "repeat"  # "to repeat these options"
    BACK = "back"  # "to return to the main menu", "previous menu"


@dataclass(frozen=True)
class MenuOption:
    key: str | None  # DTMF to send: "1", "0", "*", "#", or several digits ("600"); None: say it
    spoken: str | None  # what to say instead ("say billing" -> "billing"); None: keys only
    label: str  # normalised description: "billing", "speak with a representative"
    language: str | None = None  # ISO 639-1 code of a language choice ("es"), else None
    kind: OptionKind = OptionKind.TOPIC
    text: str = ""  # the phrase it was read from (a substring of Menu.text)


@dataclass(frozen=True)
class DataRequest:
    field: str  # vault field name: account_number, zip_code, date_of_birth, last_four_ssn, ...
    modes: frozenset[str]  # how the menu accepts it: {"dtmf"}, {"speech"} or both
    terminator: str | None = None  # "#" for "followed by the pound key"
    length: int | None = None  # digits expected when the menu says so ("last four", "five digit")
    date_format: str | None = None  # for dates: "MMDDYYYY", "MMDDYY", "YYYYMMDD", "DDMMYYYY"
    optional: bool = False  # "if you know your account number, enter it now"
    text: str = ""  # the sentence it was read from


@dataclass(frozen=True)
class Menu:
    options: tuple[MenuOption, ...]
    data_requests: tuple[DataRequest, ...]
    complete: bool  # read to the end: safe to act on
    is_hold_message: bool  # a queue announcement, not a menu ("all of our representatives are busy")
    open_question: bool = False  # a speech menu: "briefly tell me why you're calling"
    invalid_input: bool = False  # "that is not a valid option", "sorry, I didn't understand"
    sounds_human: bool = False  # "hi, this is Dana, how can I help you?"
    stay_on_line: bool = False  # "for anything else, please stay on the line": waiting reaches a person
    text: str = ""  # the transcript, normalised (lower case, no accents)

    def option_for_key(self, key: str) -> MenuOption | None:
        return next((option for option in self.options if option.key == key), None)

    def options_of_kind(self, kind: OptionKind) -> tuple[MenuOption, ...]:
        return tuple(option for option in self.options if option.kind is kind)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(option.key for option in self.options if option.key is not None)

    @property
    def is_empty(self) -> bool:
        """Nothing to act on: no option, no request, no question (a greeting, a hold message)."""
        return not self.options and not self.data_requests and not self.open_question


# ---------------------------------------------------------------------------- normalising


def normalize_text(text: str) -> str:
    """Lower case, accents dropped, quotes and ellipses removed, one space between words.

    Sentence punctuation stays (it helps to split options) but nothing relies on it.
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"[\u2018\u2019`]", "'", text)
    text = re.sub(r"[\"\u201c\u201d]|'(?=\s|$)|(?<=\s)'|^'", " ", text)
    text = re.sub(r"\.{2,}|\u2026", " ", text)  # "press 1 for... billing": not a sentence end
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)
    text = re.sub(r"\s*([.,;:?!])", r"\1 ", text)
    return re.sub(r"\s+", " ", text).strip()


_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
    "cero": "0", "uno": "1", "dos": "2", "tres": "3", "cuatro": "4", "cinco": "5", "seis": "6",
    "siete": "7", "ocho": "8", "nueve": "9",
}  # fmt: skip
_SYMBOL_WORDS = {
    "star": "*", "asterisk": "*", "estrella": "*", "*": "*",
    "pound": "#", "hash": "#", "numeral": "#", "#": "#", "number sign": "#", "pound sign": "#",
    "hash sign": "#", "pound key": "#", "hash key": "#", "star key": "*",
}  # fmt: skip
_NUMBER_WORDS = {**{w: int(d) for w, d in _DIGIT_WORDS.items() if w != "oh"}, "ten": 10, "eleven": 11, "twelve": 12}

_DIGIT_WORD = "|".join(sorted(_DIGIT_WORDS, key=len, reverse=True))
_KEY = (
    rf"(?:\d{{1,6}}(?!\d)|[*#]|(?:{_DIGIT_WORD})(?:\s+hundred)?\b|number sign\b|pound sign\b|hash sign\b"
    r"|star\b|asterisk\b|estrella\b|pound\b|hash\b|numeral\b)"
)
_VERB = (
    r"(?:press(?:ing)?|dial(?:ing)?|push(?:ing)?|hit|select|choose|touch|tap|"
    r"oprima|oprime|marque|marca|presione|presiona|pulse|pulsa|appuyez\s+sur|composez)"
)
_MENTION = re.compile(
    rf"\b{_VERB}\s+(?:on\s+)?(?:the\s+|le\s+|la\s+|el\s+)?(?:number\s+|tecla\s+|numero\s+)?(?P<key>{_KEY})"
    r"(?:\s+(?:key|button|sign))?(?:\s+(?:on\s+your\s+(?:telephone\s+|phone\s+)?keypad))?"
    r"(?:\s+(?:now|ahora|at\s+any\s+time))?"
)
# After a first "press 1 to ...": ", 2 to ...", "or 8 to exit", "4 or 6 to ..."
_CONTINUATION = re.compile(rf"(?:[,;]\s*|\bor\s+)(?P<key>{_KEY})(?:\s+or\s+{_KEY})?(?=\s*,?\s*(?:to|for|if)\b)")
_TERMINATOR = re.compile(
    r"\b(?:followed\s+by|then\s+press|and\s+then\s+press|and\s+press|then|ending\s+with|end\s+with)\s+"
    r"(?:the\s+)?(?P<key>pound|hash|number sign|#|star|asterisk|\*)(?:\s*,?\s*(?:or\s+hash\s+)?(?:key|sign|button))?"
)


# What speech-to-text makes of a key after "press" when it mishears it (seen with Whisper on
# synthetic and narrow-band voices): "press to to pay" (two), "press for for billing" (four),
# "press free" (three), "press want" (one), "press by for" (five), "prep one" (press). Only
# where the word cannot be the label: the key's own "to"/"for"/"if" follows it.
_HEARD_KEYS = (
    (re.compile(rf"\b(?:prep|pref|preff|preft|prepped|pray)\s+(?=(?:{_DIGIT_WORD}|\d)\b)"), "press "),
    (re.compile(rf"\b({_VERB})\s+(?:to|too),?\s+(?=(?:to|for|if)\b)"), r"\1 2 "),
    (re.compile(rf"\b({_VERB})\s+for,?\s+(?=(?:to|for|if)\b)"), r"\1 4 "),
    (re.compile(rf"\b({_VERB})\s+by,?\s+(?=(?:to|for|if)\b)"), r"\1 5 "),
    (re.compile(rf"\b({_VERB})\s+free\b"), r"\1 3"),
    (re.compile(rf"\b({_VERB})\s+(?:want|won),?\s+(?=(?:to|for|if)\b)"), r"\1 1 "),
)


def repair_heard_keys(text: str) -> str:
    """Keys speech-to-text turned into look-alike words, put back (normalised text in and out)."""
    for pattern, replacement in _HEARD_KEYS:
        text = pattern.sub(replacement, text)
    return text


def key_symbol(spoken_key: str) -> str:
    """ "one" -> "1", "pound" -> "#", "six hundred" -> "600", "12" -> "12"."""
    words = spoken_key.split()
    if words[0] in _DIGIT_WORDS:
        digit = _DIGIT_WORDS[words[0]]
        return digit + "00" if len(words) > 1 and words[1] == "hundred" else digit
    joined = " ".join(words)
    return _SYMBOL_WORDS.get(joined, _SYMBOL_WORDS.get(words[0], joined))


# ---------------------------------------------------------------------------- options


_CONNECTIVE = re.compile(r"^(?:for|to|if|when|para|pour|about|regarding|otherwise)\b")
_CONNECTIVE_ANYWHERE = re.compile(r"\b(?:for|to|if|para|pour)\b")
_LABEL_LEAD = re.compile(
    r"^(?:(?:if\s+you(?:'re|\s+are)\s+(?:calling|phoning)\s+(?:about|for|to|regarding|in\s+regards?\s+to|with)"
    r"|if\s+you(?:'d|\s+would)\s+like(?:\s+to)?|if\s+you\s+(?:want|wish|need)(?:\s+to)?"
    r"|if\s+you\s+have(?:\s+an?)?(?:\s+questions?\s+(?:about|regarding))?|if\s+you(?:'re|\s+are)"
    r"|for|to|if|when|para|pour|about|regarding|otherwise|please|a|an|the|your|our|le|la|el)\s+)+"
)
_LABEL_TAIL = re.compile(r"(?:\s+(?:now|please|or|and|at\s+any\s+time|ahora))+$")
_DANGLING = frozenset(
    "for to press dial or and the a an your of with if para oprima marque about please say enter by "
    "followed then is are at from".split()
)


@dataclass
class _Mention:
    start: int
    end: int
    key: str
    pre: str = ""  # label read before the key ("for billing, press 1")
    pre_clean: bool = False  # it starts at a clause start with a connective
    post: str = ""  # label read after the key ("press 1 for billing")
    post_clean: bool = False


_EMERGENCY_NUMBERS = frozenset({"911", "112", "999", "000"})
_HANG_UP_FIRST = re.compile(r"\bhang\s+up\s+and\s*$")


def _find_mentions(text: str) -> list[_Mention]:
    terminators = [m.span() for m in _TERMINATOR.finditer(text)]
    found: list[_Mention] = []
    for match in _MENTION.finditer(text):
        found.append(_Mention(match.start(), match.end(), key_symbol(match.group("key"))))
    if found:
        first = found[0].start
        for match in _CONTINUATION.finditer(text):
            if match.start() > first:
                found.append(_Mention(match.start("key"), match.end(), key_symbol(match.group("key"))))
    found.sort(key=lambda m: m.start)
    mentions: list[_Mention] = []
    for mention in found:
        if mentions and mention.start < mentions[-1].end:
            continue
        if any(start <= mention.start < end for start, end in terminators):
            continue  # "followed by the pound key": how to finish an entry, not a choice
        if mention.key in _EMERGENCY_NUMBERS or _HANG_UP_FIRST.search(text, 0, mention.start):
            continue  # "if this is an emergency, hang up and dial 911": never a menu choice
        mentions.append(mention)
    return mentions


def _strip_region(piece: str) -> str:
    return piece.strip(" ,;:")


def _pre_candidate(piece: str) -> tuple[str, bool]:
    """The label a clause ending right before a key gives, and whether it is a clean one."""
    piece = _strip_region(piece)
    if not piece:
        return "", False
    if "," in piece:
        after_comma = _strip_region(piece.rsplit(",", 1)[1])
        if _CONNECTIVE.match(after_comma):
            return after_comma, True
    if _CONNECTIVE.match(piece):
        return piece, True
    connectives = list(_CONNECTIVE_ANYWHERE.finditer(piece))
    if connectives:
        return piece[connectives[-1].start() :], False
    return (piece, False) if len(piece.split()) <= 3 else ("", False)


# A comma then one of these starts a new clause: "press 1 to accept, otherwise, please hold".
_NEW_CLAUSE = re.compile(r",\s*(?:otherwise|please|thank|if|you|para|or\s+(?:stay|remain|hang|hold|wait))\b")


def _post_candidate(piece: str) -> tuple[str, bool]:
    piece = _strip_region(_NEW_CLAUSE.split(piece, 1)[0])
    if _CONNECTIVE.match(piece):
        return piece, True
    return "", False


_STRONG = re.compile(r"[.?!;:]")
_FOREIGN_CLAUSE = re.compile(r"\b(?:para|pour)\b")


def _assign_labels(text: str, mentions: list[_Mention]) -> None:
    """Give each key mention the label before or after it.

    The text between two keys belongs to the first ("press 1 for billing") or to the second
    ("for billing, press 1"). A sentence break right after a key or between two clauses settles
    it, and so do commas between two clauses; otherwise the style that labels the most keys
    cleanly over the whole menu (a sentence break right before a key does not settle it: speech
    to text ends sentences where the voice pauses).
    """
    bounds = [0] + [pos for m in mentions for pos in (m.start, m.end)] + [len(text)]
    regions = [text[bounds[2 * i] : bounds[2 * i + 1]] for i in range(len(mentions) + 1)]
    shared: list[tuple[int, str]] = []  # (index of the mention after the region, text)
    for index, region in enumerate(regions):
        before = mentions[index - 1] if index > 0 else None
        after = mentions[index] if index < len(mentions) else None
        strong_pieces = _STRONG.split(region)
        if before is None or after is None:
            if after is not None:
                after.pre, after.pre_clean = _pre_candidate(strong_pieces[-1])
                said_last = next((p for p in reversed(strong_pieces) if _strip_region(p)), "")
                if not after.pre and _pre_candidate(said_last)[1]:
                    after.pre, after.pre_clean = _pre_candidate(said_last)  # "To sales. Press 1."
            if before is not None:
                before.post, before.post_clean = _post_candidate(strong_pieces[0])
            continue
        pieces = [_strip_region(piece) for piece in strong_pieces]
        said = [piece for piece in pieces if piece]
        if len(pieces) > 1 and said and (not pieces[0] or len(said) >= 2):
            # "press 1. For sales, press 2" / "press 1 for billing. For sales, press 2": a break
            # right after a key, or between two clauses, settles whose label is whose.
            if pieces[0]:
                before.post, before.post_clean = _post_candidate(pieces[0])
            after.pre, after.pre_clean = _pre_candidate(said[-1])
            continue
        # One clause before the next key ("..., press 2, for accounting. Press 3"): speech-to-text
        # puts full stops and commas where the voice pauses, so which key it labels is the
        # menu's style...
        region = said[0] if said else ""
        weak = [_strip_region(p) for p in region.split(",")]
        head, tail = weak[0], weak[-1]
        if len(weak) > 1 and head and tail:
            post, post_clean = _post_candidate(head)
            pre, pre_clean = _pre_candidate(tail)
            if post_clean and pre_clean:
                # ...unless it holds two: "press 1 for billing, for sales press 2".
                before.post, before.post_clean = post, post_clean
                after.pre, after.pre_clean = pre, pre_clean
                continue
        region = _strip_region(region.replace(",", " "))
        foreign = _FOREIGN_CLAUSE.search(region)
        if foreign and foreign.start() > 0:  # "press 1 for english para espanol oprima 2"
            before.post, before.post_clean = _post_candidate(region[: foreign.start()])
            after.pre, after.pre_clean = _pre_candidate(region[foreign.start() :])
            continue
        shared.append((index, region))
    if not shared:
        return

    def style_score(post_style: bool) -> int:
        score = 0
        shared_at = dict(shared)
        for index, mention in enumerate(mentions):
            labels = []
            if mention.pre:
                labels.append(2 if mention.pre_clean else 1)
            if mention.post:
                labels.append(2 if mention.post_clean else 1)
            text_here = shared_at.get(index + 1) if post_style else shared_at.get(index)
            if text_here:
                label, clean = (_post_candidate if post_style else _pre_candidate)(text_here)
                if label:
                    labels.append(2 if clean else 1)
            # Two clean labels for one key means one of them belongs to a neighbour: the style
            # that reads it so is misreading the menu ("to sales, press 1, to support, press 2").
            score += max(labels, default=0) - (1 if labels.count(2) >= 2 else 0)
        return score

    post_style = style_score(True) >= style_score(False)
    for index, text_between in shared:
        if post_style:
            mention = mentions[index - 1]
            mention.post, mention.post_clean = _post_candidate(text_between)
        else:
            mention = mentions[index]
            mention.pre, mention.pre_clean = _pre_candidate(text_between)


def clean_label(raw: str) -> str:
    """ "for billing, say billing or" -> "billing"; "if you're calling about your bill" -> "bill"."""
    label = re.split(r"\b(?:or\s+)?(?:say|diga)\b", raw)[0]
    label = re.sub(r"[.,;:?!]", " ", label)
    label = re.sub(r"\s+", " ", label).strip()
    previous = None
    while previous != label:
        previous = label
        label = _LABEL_LEAD.sub("", label + " ").strip()
        label = _LABEL_TAIL.sub("", label).strip()
    if label in ("you", "it", "this", "that"):
        return ""
    if not label and re.match(r"^\s*otherwise\b", raw):
        return "otherwise"  # "otherwise, press pound": the way past an optional question
    return label


def _best_label(mention: _Mention) -> tuple[str, str]:
    """(label, the raw phrase it came from) for one key mention."""
    candidates = []
    if mention.post:
        # "..., press 1. Otherwise, please stay on the line": what to do instead, not this key's
        # label, unless nothing else names the key ("otherwise, press pound").
        otherwise = bool(re.match(r"otherwise\b", mention.post))
        candidates.append((0 if otherwise and mention.pre_clean else 2 if mention.post_clean else 1, 1, mention.post))
    if mention.pre:
        candidates.append((2 if mention.pre_clean else 1, 0, mention.pre))
    for _, _, raw in sorted(candidates, reverse=True):
        label = clean_label(raw)
        if label:
            return label, raw
    return "", ""


# "say billing", "say 'representative' at any time"; not "say your account number" nor "say or enter"
_SAY = re.compile(
    r"(?<!you )(?<!we )(?<!they )(?<!\bi )\b(?:say|diga)\s+"
    r"(?!(?:your|the|it|a|an|or|and|something|things|what|why|how|in|briefly|after|at|each|like|such|yes\s+or\s+no)\b)"
    r"(?P<words>[a-z0-9'#*]+(?:\s+(?!(?:or|and|now|at|to|for|if|please|when|then)\b)[a-z0-9']+){0,3})"
)
# "you can say things like billing, sales or support"; "for example, ..." only in a speech menu
_SAY_LIST = re.compile(
    r"\b(?:(?:you\s+can\s+|just\s+)?say\s+(?:things\s+|something\s+)?(?:like|such\s+as)|you\s+can\s+say"
    r"|(?P<example>for\s+example|e\.?\s*g\.?)|choose\s+from)\s*,?\s+(?P<items>[^.?!;]+)"
)
_KEYED = re.compile(rf"\b{_VERB}\b|\d")


def _spoken_options(
    text: str, mentions: list[_Mention], open_question: bool
) -> tuple[dict[int, str], list[tuple[str, str]]]:
    """Spoken alternatives: {mention index: words}, and spoken-only options [(words, label)]."""
    attached: dict[int, str] = {}
    only: list[tuple[str, str]] = []
    for match in _SAY_LIST.finditer(text):
        items = match.group("items")
        if (match.group("example") and not open_question) or _KEYED.search(items):
            continue  # an example of an entry, or "you can say billing or press 1" (handled below)
        items = re.sub(r"^(?:you\s+can\s+)?say\s+(?:things\s+like\s+)?", "", items)
        for item in re.split(r",|\bor\b|\band\b", items):
            item = clean_label(item)
            if item and len(item.split()) <= 4:
                only.append((item, item))
    listed = {words for words, _ in only}
    for match in _SAY.finditer(text):
        words = _LABEL_TAIL.sub("", match.group("words")).strip()
        if not words or words in listed:
            continue
        start, end = match.span()
        sentence_start = max(text.rfind(p, 0, start) for p in ".?!;") + 1
        following = next((i for i, m in enumerate(mentions) if m.start >= end), None)
        if following is not None and re.fullmatch(r"[\s,]*or[\s,]*", text[end : mentions[following].start]):
            attached.setdefault(following, words)  # "say billing or press 1"
            continue
        preceding = next((i for i in reversed(range(len(mentions))) if mentions[i].end <= start), None)
        if (
            preceding is not None
            and mentions[preceding].end >= sentence_start
            and re.search(r"\bor\s*$", text[mentions[preceding].end : start])
            and not any(start > m.start > mentions[preceding].end for m in mentions)
        ):
            attached.setdefault(preceding, words)  # "press 1 or say billing", "press 1 for billing or say billing"
            continue
        pre, clean = _pre_candidate(text[sentence_start:start])  # "for billing, say billing"
        only.append((words, (clean_label(pre) if clean else "") or words))
    return attached, only


_LANGUAGES = {
    "espanol": "es", "spanish": "es", "castellano": "es", "english": "en", "ingles": "en",
    "french": "fr", "francais": "fr", "chinese": "zh", "mandarin": "zh", "cantonese": "zh",
    "vietnamese": "vi", "korean": "ko", "russian": "ru", "portuguese": "pt", "portugues": "pt",
    "arabic": "ar", "tagalog": "tl", "creole": "ht", "polish": "pl", "italian": "it",
    "german": "de", "japanese": "ja", "hindi": "hi",
}  # fmt: skip
_LANGUAGE_WORD = re.compile(r"\b(" + "|".join(_LANGUAGES) + r")\b")
_CALLBACK = re.compile(
    r"\bcall\s*backs?\b|\bcall\s+you\s+back\b|\breturn\s+(?:your\s+)?call\b|\bcall\s+you\s+(?:when|as\s+soon)"
    r"|\bhave\s+(?:us|someone|an?\s+\w+)\s+call\s+you\b|\breceive\s+a\s+call\b|\bkeep\s+your\s+place\s+in\s+line\b"
)
_REPEAT = re.compile(
    r"\brepeat\b|\bhear\s+(?:these|the|this|those|that)\s+(?:options|menu|choices|again|message)|\bhear\s+them\s+again"
    r"|\blisten\s+again\b|\brepetir\b"
)
_BACK = re.compile(
    r"\b(?:main|previous|prior|last|top)\s+menu\b|\bgo\s+back\b|\breturn\s+to\b|\bstart\s+over\b|\bmenu\s+principal\b"
)
_OTHER = re.compile(
    r"\b(?:all|any)\s+other\b|\bother\s+(?:questions?|inquir(?:y|ies)|requests?|issues?|matters?|concerns?|"
    r"services?|options|topics|reasons?|calls?)\b|\b(?:anything|everything|something)\s+else\b|\bmore\s+options\b"
)
_OPERATOR = re.compile(
    r"\b(?:representatives?|operators?|agents?|associates?|advocates?|attendants?|receptionists?|person|someone|"
    r"somebody|human|customer\s+(?:service|care|support)|member\s+of\s+our\s+(?:team|staff)|live\s+\w+)\b"
)
# A menu's way to a person with no key: "for anything else, stay on the line", "or hold for the
# next available agent", "if you don't know it, please hold" (not "please hold while we connect you").
_STAY_ON_LINE = re.compile(
    r"\b(?:stay|remain)\s+on\s+the\s+line\b|\bhold\s+for\s+(?:the|a|an|our|your)\b|"
    r"\bplease\s+hold\b(?!\s+(?:while|as|during))|\bwait\s+for\s+a\s+(?:person|representative|agent)\b"
)
_KEEP_HOLDING = re.compile(
    r"\b(?:continue|keep|remain|stay)\s+(?:holding|waiting|on\s+hold|in\s+(?:the\s+)?(?:queue|line))\b"
)
# Words that say nothing about the topic of an operator option ("speak with a customer advocate").
_OPERATOR_FILLER = frozenset(
    "speak talk with to a an the one of our your reach be connected connect transferred live team member staff "
    "please hold stay on line remain wait waiting for customer service care support representative representatives "
    "operator operators agent agents associate associates advocate advocates attendant receptionist person someone "
    "somebody human available next other all any questions question general help assistance directly get "
    "otherwise in from main".split()
)


def _classify(label: str) -> tuple[OptionKind, str | None]:
    language = _LANGUAGE_WORD.search(label)
    if language:
        return OptionKind.LANGUAGE, _LANGUAGES[language.group(1)]
    if _CALLBACK.search(label):
        return OptionKind.CALLBACK, None
    if _REPEAT.search(label):
        return OptionKind.REPEAT, None
    if _BACK.search(label):
        return OptionKind.BACK, None
    if _KEEP_HOLDING.search(label):
        return OptionKind.OPERATOR, None  # "to continue holding, press 2": the queue for a person
    if _OPERATOR.search(label) and not (set(re.findall(r"[a-z']+", label)) - _OPERATOR_FILLER):
        return OptionKind.OPERATOR, None
    if _OTHER.search(label):
        return OptionKind.OTHER, None
    return OptionKind.TOPIC, None


def _option_span(text: str, mention: _Mention, raw: str) -> tuple[int, int]:
    """Where the option was said: its key and the label that went with it."""
    if raw and raw == mention.post and (at := text.find(raw, mention.end)) >= 0:
        return mention.start, at + len(raw)
    if raw and raw == mention.pre and (at := text.rfind(raw, 0, mention.start)) >= 0:
        return at, mention.end
    return mention.start, mention.end


def _parse_options(text: str, mentions: list[_Mention], open_question: bool) -> tuple[list[MenuOption], int]:
    """The options, and where the last keyed option ends in the text (-1: none)."""
    _assign_labels(text, mentions)
    attached, spoken_only = _spoken_options(text, mentions, open_question)
    options: list[MenuOption] = []
    seen_keys: set[str] = set()
    last_end = -1
    for index, mention in enumerate(mentions):
        if mention.key in seen_keys:
            continue  # the menu read twice in one transcript: keep the first reading
        label, raw = _best_label(mention)
        spoken = attached.get(index)
        if not label and spoken:
            label = spoken
        kind, language = _classify(label)
        if kind is OptionKind.TOPIC and not label and mention.key == "0":
            kind = OptionKind.OPERATOR  # a bare "press 0" is the operator by convention
        seen_keys.add(mention.key)
        start, end = _option_span(text, mention, raw)
        last_end = end if index == len(mentions) - 1 else last_end
        options.append(MenuOption(mention.key, spoken, label, language, kind, text[start:end]))
    seen_spoken = {option.spoken for option in options if option.spoken}
    for words, label in spoken_only:
        if words in seen_spoken:
            continue
        seen_spoken.add(words)
        kind, language = _classify(label)
        options.append(MenuOption(None, words, label, language, kind, f"say {words}"))
    return options, last_end


# ---------------------------------------------------------------------------- data requests

_LAST_FOUR_OF = r"last\s+(?:4|four)(?:\s+digits)?\s+of\s+(?:your\s+|the\s+)?"
# (field, phrase); the more specific first: "last four of your social" before "social".
_FIELD_PHRASES: tuple[tuple[str, str], ...] = (
    ("last_four_ssn", _LAST_FOUR_OF + r"(?:social(?:\s+security)?(?:\s+number)?|ssn|s\s+s\s+n)\b"),
    ("card_last_four", _LAST_FOUR_OF + r"(?:credit\s+|debit\s+|bank\s+|atm\s+)?card(?:\s+number)?\b"),
    ("ssn", r"\bsocial\s+security(?:\s+number)?\b|\bssn\b|\bs\s+s\s+n\b|\bsocial\b"),
    ("card_number", r"\b(?:(?:credit|debit|bank|atm)\s+)?card\s+number\b"),
    ("account_number", r"\baccount\s+(?:number|#|id|i\s+d|no)\b"),
    ("zip_code", r"\bzip(?:\s*code)?\b|\bpostal\s+code\b"),
    ("date_of_birth", r"\bdate\s+of\s+birth\b|\bbirth\s*date\b|\bbirthday\b|\bdob\b|\bd\s+o\s+b\b"),
    ("callback_number", r"\b(?:call\s*back|(?:home\s+|cell\s+|mobile\s+)?phone|telephone|cell|mobile|contact|daytime)"
                        r"\s+number\b|\bnumber\s+(?:where|at\s+which)\s+(?:we|you)\s+can\s+(?:reach|call)\b"),
    ("member_id", r"\b(?:member(?:ship)?|subscriber)\s+(?:id|i\s+d|number)\b"),
    ("policy_number", r"\bpolicy\s+number\b"),
    ("claim_number", r"\bclaim\s+number\b"),
    ("order_number", r"\border\s+number\b"),
    ("confirmation_number", r"\bconfirmation\s+(?:number|code)\b"),
    ("pin", r"\bpin(?:\s+number|\s+code)?\b|\bpersonal\s+identification\s+number\b|\bpass\s*code\b"),
    ("password", r"\bpassword\b"),
    ("name", r"\byour\s+(?:full\s+|first\s+and\s+last\s+|last\s+|first\s+)?name\b"),
)  # fmt: skip
_FIELD_PATTERNS = tuple((name, re.compile(phrase)) for name, phrase in _FIELD_PHRASES)
_SPEECH_VERB = re.compile(r"\b(?:say|speak|tell\s+(?:me|us)|state|spell)\b")
_DTMF_VERB = re.compile(r"\b(?:enter|key(?:\s+in)?|type|input|punch\s+in|dial|keypad|touch\s*tone)\b")
_ASK_VERB = re.compile(
    r"\b(?:enter|key(?:\s+in)?|type|input|punch\s+in|say|speak|tell\s+(?:me|us)|state|spell|provide|give|"
    r"what\s+is|what's|may\s+i\s+have|can\s+i\s+(?:have|get)|i\s+(?:will\s+)?need|we\s+(?:will\s+)?need|"
    r"please\s+(?:dial|key))\b"
)
_NOT_ASKING = re.compile(r"\bhave\s+(?:your|the)\s+[a-z\s]{0,30}\bready\b|\bnever\s+ask\b|\bwill\s+not\s+ask\b")
_OPTIONAL = re.compile(r"\bif\s+you\s+(?:know|have)\b|\bif\s+(?:available|known)\b|\botherwise\b|\bif\s+you\s+don't\b")
_LENGTH = re.compile(r"\b(\d{1,2}|" + "|".join(_NUMBER_WORDS) + r")[\s-]+digit\b")
_DATE_LENGTHS = (("six", 6), ("6", 6), ("eight", 8), ("8", 8))


def _date_format(sentence: str) -> str:
    """The layout a date request describes; the US default, month day year, when it says none."""
    short_year = bool(re.search(r"\b(?:two|2)\s+digit\s+year\b|\b(?:six|6)\s+digit\b", sentence))
    where = {part: sentence.find(part) for part in ("year", "month", "day")}
    if where["year"] >= 0 and 0 <= where["year"] < where["month"]:
        return "YYYYMMDD"
    if 0 <= where["day"] < where["month"] and (where["year"] < 0 or where["month"] < where["year"]):
        return "DDMMYYYY"
    return "MMDDYY" if short_year else "MMDDYYYY"


def _parse_data_requests(text: str, options: list[MenuOption]) -> list[DataRequest]:
    sentences = [(m.start(), m.group().strip()) for m in re.finditer(r"[^.?!;:]+", text)]
    # "press 1 to enter your account number" offers a choice; it is not the request itself
    option_spans = [
        (at, at + len(option.text))
        for option in options
        if option.key is not None and (at := text.find(option.text)) >= 0
    ]
    requests: dict[str, DataRequest] = {}
    for index, (offset, sentence) in enumerate(sentences):
        if not _ASK_VERB.search(sentence) or _NOT_ASKING.search(sentence):
            continue
        field_offset, field_sentence = offset, sentence
        if index > 0 and re.search(r"\b(?:enter|say)\s+it\b", sentence):
            # the field sits in the sentence before: "if you know your account number. enter it now"
            field_offset, field_sentence = sentences[index - 1]
        following = [sentences[index + 1][1]] if index + 1 < len(sentences) else []
        taken: list[tuple[int, int]] = []
        for name, pattern in _FIELD_PATTERNS:
            for match in pattern.finditer(field_sentence):
                at = field_offset + match.start()
                if any(start <= at < end for start, end in taken + option_spans):
                    continue
                taken.append((at, field_offset + match.end()))
                requests.setdefault(name, _data_request(name, sentence, field_sentence, following))
    return list(requests.values())


def _data_request(name: str, sentence: str, field_sentence: str, following: list[str]) -> DataRequest:
    speech, dtmf = bool(_SPEECH_VERB.search(sentence)), bool(_DTMF_VERB.search(sentence))
    modes = frozenset({"dtmf", "speech"}) if speech == dtmf else frozenset({"speech"} if speech else {"dtmf"})
    if name == "name":
        modes = frozenset({"speech"})
    # "enter your PIN. then press pound."
    then = following[0] if following and re.match(r"^(?:then|and|followed)\b", following[0]) else ""
    terminator_match = _TERMINATOR.search(f"{sentence} {then}")
    terminator = key_symbol(terminator_match.group("key")) if terminator_match else None
    length = None
    if name in ("last_four_ssn", "card_last_four"):
        length = 4
    elif name == "date_of_birth":  # only a whole-date length: "two digit month" is not one
        lengths = [n for word, n in _DATE_LENGTHS if re.search(rf"\b{word}[\s-]+digit", sentence)]
        length = lengths[0] if lengths else None
    elif length_match := _LENGTH.search(sentence):
        word = length_match.group(1)
        length = int(word) if word.isdigit() else _NUMBER_WORDS[word]
    date_format = _date_format(" ".join([sentence, *following])) if name == "date_of_birth" else None
    if date_format is not None and length is not None:
        date_format = {6: "MMDDYY", 8: date_format if len(date_format) == 8 else "MMDDYYYY"}.get(length, date_format)
    optional = bool(
        _OPTIONAL.search(field_sentence)
        or _OPTIONAL.search(sentence)
        or (following and re.match(r"if\s+you\s+(?:don't|do\s+not)\s+(?:know|have)\b", following[0]))
    )
    return DataRequest(name, modes, terminator, length, date_format, optional, sentence)


# ---------------------------------------------------------------------------- whole prompt

_HOLD = re.compile(
    r"\ball\s+(?:of\s+)?(?:our\s+)?(?:representatives|agents|associates|operators|specialists|team\s+members|advisors"
    r"|lines)\b.{0,40}?\b(?:busy|assisting|helping|serving|unavailable|on\s+other\s+calls|in\s+use)"
    r"|\byour\s+call\s+is\s+(?:very\s+)?important\b|\b(?:stay|remain)\s+on\s+the\s+line\b|\bcontinue\s+to\s+hold\b"
    r"|\banswered\s+in\s+the\s+order\b|\bnext\s+available\s+(?:representative|agent|associate|operator|specialist)\b"
    r"|\b(?:estimated|expected|current|approximate)\s+(?:wait|hold)(?:ing)?\s+time\b|\bcaller\s+number\b"
    r"|\bthank\s+you\s+for\s+(?:your\s+patience|holding|waiting)\b"
    r"|\b(?:higher|high|heavy|unusually\s+high)\s+(?:than\s+(?:normal|usual)\s+)?call\s+volume"
    r"|\bplease\s+hold\b|\bfirst\s+in\s+line\b|\bcallers?\s+ahead\s+of\s+you\b|\bcallers\s+waiting\b|\bhold\s+time\b"
    r"|\byour\s+call\s+(?:will\s+be|is\s+being)\s+(?:answered|transferred|connected)\b|\bminutes?\s+(?:wait|hold)\b"
)
_INVALID = re.compile(
    r"\b(?:that|this|your\s+(?:entry|selection|response))\s+(?:is\s+not|isn't|was\s+not|wasn't|'s\s+not)\s+"
    r"(?:a\s+)?valid\b|\bthat's\s+not\s+(?:a\s+)?valid\b"
    r"|\binvalid\s+(?:option|entry|selection|choice|input|response|extension)\b"
    r"|\b(?:option|entry|selection|choice)\s+is\s+invalid\b"
    r"|\bi\s+(?:did\s+not|didn't|could\s+not|couldn't)\s+(?:understand|get|hear|catch|recognize)\b"
    r"|\bplease\s+try\s+again\b|\bnot\s+recognized\b|\bno\s+(?:entry|selection|response|input)\s+(?:was\s+)?received\b"
    r"|\b(?:we|i)\s+did\s+not\s+receive\s+(?:a|your)\s+(?:response|selection|entry)\b|\bentered\s+an\s+invalid\b"
)
_HUMAN = re.compile(
    r"\b(?:my\s+name\s+is|this\s+is|you'?re\s+speaking\s+(?:with|to)|you\s+are\s+speaking\s+(?:with|to))\s+[a-z]+"
    r"(?:\s+speaking)?[\s,.]+(?:[a-z\s,]{0,30})?\b(?:how|what)\s+(?:can|may|could)\s+i\s+(?:help|assist|do)"
)
_AUTOMATED = re.compile(r"\b(?:automated|virtual|digital)\s+(?:assistant|agent|system|attendant)\b|\brecorded\b")
_OPEN_QUESTION = re.compile(
    r"\b(?:tell\s+me|say|describe|explain)\s+(?:briefly\s+|in\s+a\s+few\s+words\s+)?"
    r"(?:why\s+you(?:'re|\s+are)\s+calling|what\s+you(?:'re|\s+are)\s+calling\s+about"
    r"|the\s+reason\s+(?:for|of)\s+your\s+call|what\s+(?:i|we)\s+can\s+help\s+you\s+with|how\s+(?:i|we)\s+can\s+help)"
    r"|\bhow\s+(?:can|may)\s+(?:i|we)\s+(?:help|assist)\s+you\b|\bwhat\s+can\s+i\s+help\s+you\s+with\b"
    r"|\bwhat\s+(?:are\s+you\s+calling\s+about|is\s+the\s+reason\s+for\s+your\s+call)\b|\bin\s+a\s+few\s+words\b"
)
_CLOSING = re.compile(
    r"\b(?:to\s+)?(?:repeat|hear)\s+(?:this|these|the|those)?\s*(?:menu|options|choices|information|message|again)\b"
    r"|\b(?:or\s+)?(?:stay|remain)\s+on\s+the\s+line\b|\bor\s+(?:simply\s+)?hang\s+up\b|\bat\s+any\s+time\b"
    r"|\b(?:to\s+)?return\s+to\s+the\s+(?:main|previous)\s+menu\b"
    r"|\bfor\s+(?:all\s+)?other\s+(?:questions|inquiries|requests)\b"
)


def _ends_mid_sentence(text: str, options: list[MenuOption], mentions_end: int) -> bool:
    words = re.findall(r"[a-z0-9'#*]+", text)
    if not words:
        return False
    if words[-1] in _DANGLING and not text.rstrip().endswith((".", "?", "!")):
        return True
    tail = _strip_region(text[mentions_end:])
    last_piece = _strip_region(_STRONG.split(tail)[-1]) if tail else ""
    # "... press 2. for sales" (a label waiting for its key): only when labels come first
    return (
        bool(options)
        and bool(last_piece)
        and tail != last_piece
        and bool(_CONNECTIVE.match(last_piece))
        and any(o.text.startswith(("for", "to", "if", "para")) for o in options)
    )


def parse_menu(transcript: str, trailing_silence_seconds: float | None = None) -> Menu:
    """Read a prompt. ``trailing_silence_seconds``: quiet since it ended (None: unknown, as 0)."""
    text = repair_heard_keys(normalize_text(transcript))
    mentions = _find_mentions(text)
    sounds_human = bool(_HUMAN.search(text)) and not _AUTOMATED.search(text) and not mentions
    open_question = bool(_OPEN_QUESTION.search(text)) and not sounds_human
    options, last_option_end = _parse_options(text, mentions, open_question)
    requests = _parse_data_requests(text, options)
    invalid = bool(_INVALID.search(text))
    unbusy_kinds = {OptionKind.CALLBACK, OptionKind.REPEAT}
    is_hold = (
        bool(_HOLD.search(_without_option_phrases(text, options)))
        and all(option.kind in unbusy_kinds for option in options)
        and not requests
        and not open_question
        and not sounds_human
    )
    mentions_end = mentions[-1].end if mentions else 0
    keyed = [o for o in options if o.key is not None]
    operator_last = (
        bool(keyed) and keyed[-1].key == mentions[-1].key and keyed[-1].kind is OptionKind.OPERATOR
        and not re.search(r"[a-z0-9]", re.sub(r"\bnow\b", "", text[last_option_end:]))
    )  # fmt: skip
    mid_sentence = _ends_mid_sentence(text, options, mentions_end)
    silence = trailing_silence_seconds or 0.0
    last_sentence = _last_sentences(text)
    if mid_sentence:
        complete = silence >= GIVE_UP_SILENCE_SECONDS
    elif _CLOSING.search(last_sentence) or operator_last:
        complete = True
    else:
        complete = silence >= SETTLED_SILENCE_SECONDS
    return Menu(
        options=tuple(options),
        data_requests=tuple(requests),
        complete=complete,
        is_hold_message=is_hold,
        open_question=open_question,
        invalid_input=invalid,
        sounds_human=sounds_human,
        stay_on_line=bool(options or requests) and bool(_STAY_ON_LINE.search(text)),
        text=text,
    )


def _without_option_phrases(text: str, options: list[MenuOption]) -> str:
    for option in options:
        if option.text and option.kind is not OptionKind.CALLBACK:
            text = text.replace(option.text, " ")
    return text


def _last_sentences(text: str) -> str:
    """The final sentence (two when the last is short, as in "Or stay on the line.")."""
    sentences = [s for s in (p.strip() for p in _STRONG.split(text)) if s]
    if not sentences:
        return ""
    tail = sentences[-1]
    if len(tail.split()) < 4 and len(sentences) > 1:
        tail = sentences[-2] + " " + tail
    return tail[-160:]


# ---------------------------------------------------------------------------- repeats

_STOPWORDS = frozenset(
    "a an the to for of and or your you our is are if in on with please press dial now at this that be "
    "calling about".split()
)


def _label_words(label: str) -> frozenset[str]:
    return frozenset(word for word in re.findall(r"[a-z0-9]+", label) if word not in _STOPWORDS)


def _word_heard_again(word: str, others: frozenset[str]) -> bool:
    """STT may shorten or mishear a word between hearings ("tech" / "technical")."""
    return any(
        word == other
        or (min(len(word), len(other)) >= 4 and (word.startswith(other) or other.startswith(word)))
        or difflib.SequenceMatcher(None, word, other).ratio() >= 0.8
        for other in others
    )


def _options_match(a: MenuOption, b: MenuOption) -> bool:
    if a.key != b.key:
        return False
    words_a, words_b = _label_words(a.label), _label_words(b.label)
    if not words_a or not words_b:
        return words_a == words_b or a.key is not None
    shared = sum(1 for word in words_a if _word_heard_again(word, words_b))
    return shared / max(len(words_a), len(words_b)) >= 0.5


def text_similarity(a: str, b: str) -> float:
    """Word-level similarity of two normalised texts, 0..1."""
    words_a, words_b = re.findall(r"[a-z0-9#*']+", a), re.findall(r"[a-z0-9#*']+", b)
    if not words_a and not words_b:
        return 1.0
    return difflib.SequenceMatcher(None, words_a, words_b, autojunk=False).ratio()


def same_menu(a: Menu, b: Menu) -> bool:
    """The same menu heard again: same keys with similar labels, or nearly the same words.

    One hearing may be cut short ("press 1 for billing, press 2 for" vs the whole menu): it is
    the same menu when what both heard agrees.
    """
    if a.options and b.options:
        matched = sum(1 for option in a.options if any(_options_match(option, other) for other in b.options))
        smaller = min(len(a.options), len(b.options))
        larger = max(len(a.options), len(b.options))
        if smaller >= 2 and matched >= 0.66 * smaller and smaller >= 0.5 * larger:
            return True
        if smaller == larger == 1 and matched == 1 and text_similarity(a.text, b.text) >= 0.5:
            return True
    if {r.field for r in a.data_requests} != {r.field for r in b.data_requests}:
        return False
    if a.open_question != b.open_question and not (a.invalid_input or b.invalid_input):
        return False
    return text_similarity(a.text, b.text) >= 0.75
