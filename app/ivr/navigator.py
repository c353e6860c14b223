"""The navigator protocol: how the call session asks "what do we do with this prompt?".

Every navigator (offline, OpenAI, Anthropic, ...) implements::

    class Navigator(Protocol):
        name: str
        async def decide(self, ctx: NavigationContext) -> Decision: ...

The session calls ``decide`` once per prompt it heard (a stretch of IVR speech that ended in a
pause), and also when a ``Wait`` it was told to do runs out. It then carries out
``decision.action``:

=========================================  =================================================
action                                     what the session does
=========================================  =================================================
``PressDigits(digits)``                    sends the DTMF (``0-9 * # A-D``), then listens.
``Say(text)``                              speaks ``text`` (TTS) into the call, then listens.
``Wait(seconds)``                          keeps listening; asks again when a new prompt ends
                                           or ``seconds`` pass with nothing new.
``RequestUserData(field, question)``       asks the user ``question`` through the event stream;
                                           the call waits (bounded) for the answer, which goes
                                           into the vault; then the session asks again.
``EnterUserData(field, mode)``             takes the value of ``field`` from the vault and keys
                                           it (``"dtmf"``, with the terminator the menu asked
                                           for) or speaks it (``"speech"``). Navigators never
                                           see values, only field names.
``ReportHold()``                           this is a hold queue: hand over to hold handling.
``ReportHuman()``                          a live person answered: hand over to the transfer.
``ReportStuck(reason)``                    navigation cannot go on: the session gives up.
=========================================  =================================================

The context is plain data (``NavigationContext``):

- ``intent``: what the user wants, in their words.
- ``transcript``: the latest prompt, as STT heard it; ``menu``: ``parse_menu`` of it (with the
  trailing silence the session measured), so every navigator sees the same options.
- ``history``: earlier turns of this call, oldest first, one per decision: the prompt as it was
  heard then and the action carried out (``Wait`` included; ``None`` when nothing was done).
  The current prompt is not in it.
- ``previous_selections``: every ``PressDigits.digits`` / ``Say.text`` sent so far, in order.
- ``available_data``: field -> ``"dtmf" | "speech" | "both"``: what the vault may disclose and
  how. Names only, never values. A field missing here may be asked of the user
  (``RequestUserData``), except the never-enter fields (``app.ivr.vault.NEVER_ENTER_FIELDS``).
- ``attempt``: how many times this same menu has been heard in this call (1: the first time).
- ``elapsed_seconds``: since navigation started.
- ``warnings``: loop/stuck observations from ``app.ivr.loops.LoopDetector`` (e.g. "pressed 2 at
  this menu and it came back"), for navigators to take into account.

A ``Decision`` carries the action, a one-line reason (shown to the user and stored with the
discoveries), a confidence in [0, 1] and the navigator's name. ``decide`` must not raise for
ordinary situations: when unsure it returns ``Wait`` or ``ReportStuck``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from app.ivr.meaning import MeaningModel, load_meaning_model, similarities
from app.ivr.menu import GIVE_UP_SILENCE_SECONDS, Menu, MenuOption, OptionKind, parse_menu, same_menu
from app.ivr.vault import NEVER_ENTER_FIELDS, describe_field, question_for

EntryMode = Literal["dtmf", "speech"]
ENTRY_MODES: tuple[str, ...] = ("dtmf", "speech")

_DIGITS = re.compile(r"^[0-9*#A-D]{1,32}$")


@dataclass(frozen=True)
class PressDigits:
    digits: str

    def __post_init__(self) -> None:
        if not _DIGITS.match(self.digits):
            raise ValueError(f"not DTMF digits (0-9 * # A-D, 1-32 of them): {self.digits!r}")


@dataclass(frozen=True)
class Say:
    text: str

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("nothing to say")


@dataclass(frozen=True)
class Wait:
    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"wait must be positive seconds, not {self.seconds!r}")


@dataclass(frozen=True)
class RequestUserData:
    field: str
    question: str


@dataclass(frozen=True)
class EnterUserData:
    field: str
    mode: EntryMode

    def __post_init__(self) -> None:
        if self.mode not in ENTRY_MODES:
            raise ValueError(f"mode must be one of {ENTRY_MODES}, not {self.mode!r}")


@dataclass(frozen=True)
class ReportStuck:
    reason: str


@dataclass(frozen=True)
class ReportHold:
    pass


@dataclass(frozen=True)
class ReportHuman:
    pass


Action = PressDigits | Say | Wait | RequestUserData | EnterUserData | ReportStuck | ReportHold | ReportHuman

_ACTION_TYPES: dict[str, type] = {
    "press_digits": PressDigits,
    "say": Say,
    "wait": Wait,
    "request_user_data": RequestUserData,
    "enter_user_data": EnterUserData,
    "report_stuck": ReportStuck,
    "report_hold": ReportHold,
    "report_human": ReportHuman,
}
_ACTION_NAMES: dict[type, str] = {kind: name for name, kind in _ACTION_TYPES.items()}


def action_name(action: Action) -> str:
    """The snake_case name of an action (also the LLM tool name): ``press_digits``, ``say``, ..."""
    return _ACTION_NAMES[type(action)]


def action_to_dict(action: Action) -> dict[str, Any]:
    """``{"action": "press_digits", "digits": "2"}``: for events, discoveries and storage."""
    return {"action": action_name(action), **vars(action)}


def action_from_dict(data: dict[str, Any]) -> Action:
    """Inverse of ``action_to_dict``; raises ValueError on an unknown action or bad fields."""
    fields = dict(data)
    name = fields.pop("action", None)
    kind = _ACTION_TYPES.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ValueError(f"unknown action {name!r}; known: {', '.join(_ACTION_TYPES)}")
    try:
        return kind(**fields)
    except TypeError as exc:
        raise ValueError(f"bad fields for {name}: {exc}") from None


def describe_action(action: Action | None) -> str:
    """Short human text: ``pressed 2``, ``said "billing"``, ``entered account_number (dtmf)``."""
    match action:
        case None:
            return "did nothing"
        case PressDigits(digits=digits):
            return f"pressed {digits}"
        case Say(text=text):
            return f"said {text!r}"
        case Wait(seconds=seconds):
            return f"waited {seconds:g} s"
        case RequestUserData(field=name):
            return f"asked the user for {name}"
        case EnterUserData(field=name, mode=mode):
            return f"entered {name} ({mode})"
        case ReportStuck(reason=reason):
            return f"reported stuck: {reason}"
        case ReportHold():
            return "reported hold"
        case ReportHuman():
            return "reported a live person"
    raise TypeError(f"not an action: {action!r}")


def selection_of(action: Action | None) -> str | None:
    """What a selection action chose (digits or words), for ``previous_selections``; else None."""
    match action:
        case PressDigits(digits=digits):
            return digits
        case Say(text=text):
            return text
    return None


@dataclass(frozen=True)
class Turn:
    """One earlier prompt and what was done in response (None: nothing, the prompt just ended)."""

    transcript: str
    action: Action | None
    elapsed_seconds: float = 0.0  # when the prompt ended, since navigation started


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    confidence: float
    navigator: str

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], not {self.confidence!r}")


@dataclass(frozen=True)
class NavigationContext:
    intent: str
    transcript: str
    menu: Menu
    history: list[Turn] = field(default_factory=list)
    previous_selections: list[str] = field(default_factory=list)
    available_data: dict[str, str] = field(default_factory=dict)
    attempt: int = 1
    elapsed_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


@runtime_checkable
class Navigator(Protocol):
    name: str

    async def decide(self, ctx: NavigationContext) -> Decision: ...


# ============================================================================ offline navigator
#
# No keys, no network: options are matched to the intent by words (stemmed) and by a table of
# department synonyms; when nothing fits, the usual ways to a person are tried in turn, never
# repeating a choice that already brought the same menu back.

_STOPWORDS = frozenset(
    "i i'm im me my mine a an the to for of and or is are am was be been being with on in at by from about it its "
    "this that these those please you your you're our we us have has had do does did want wanted would like need "
    "needs can could should will shall just some any get got make so if then there here what which who how why when "
    "calling call called phone".split()
)
# Words that appear in many labels and intents and say little about the department.
_GENERIC = frozenset(
    "account service question questions information info help number customer inquiry inquiries request issue "
    "problem general existing current other option options department speak talk check status new".split()
)
_GENERIC_WEIGHT = 0.3
_COVERED_WEIGHT = 0.5

# Department -> phrases that point to it. Phrases are matched on stems, so "bills", "billing" and
# "billed" are all "bill".
SYNONYMS: dict[str, tuple[str, ...]] = {
    "billing": ("bill", "billing", "payment", "pay", "invoice", "balance", "charge", "statement", "autopay",
                "due date", "owe", "fee", "late fee", "overcharge", "receivable", "past due", "debt",
                "account balance", "make a payment"),
    "balance": ("balance", "owe", "how much", "amount due", "account balance"),
    "payment": ("pay", "payment", "make a payment", "autopay", "automatic payment", "pay my bill", "pay online"),
    "charges": ("charge", "overcharge", "dispute", "don't recognize", "do not recognize", "unrecognized",
                "charged twice", "double charged", "wrong amount", "too high", "so high", "fee"),
    "tech_support": ("technical", "tech", "technical support", "support", "internet", "wifi", "wi fi", "connection",
                     "connectivity", "router", "modem", "not working", "broken", "troubleshoot", "repair",
                     "stopped working", "slow", "error", "down", "no service", "cable", "tv", "television", "signal",
                     "equipment", "trouble", "offline", "can't connect", "cannot connect", "no internet", "device",
                     "won't turn on", "not turning on", "screen", "cracked", "dropped", "frozen"),
    "outage": ("outage", "power outage", "power out", "no power", "lights out", "down", "is out", "are out",
               "went out", "service interruption", "power", "electricity", "blackout"),
    "sales": ("sales", "buy", "purchase", "new account", "new service", "sign up", "open an account", "open account",
              "open a new account", "upgrade", "plan", "faster", "change my plan", "better plan", "pricing", "price",
              "quote", "new customer", "subscribe", "add a line", "partnership", "establish", "offer", "deal",
              "product", "shop"),
    "cancel": ("cancel", "cancellation", "disconnect", "terminate", "close my account", "close account",
               "stop service", "end service", "shut off", "unsubscribe", "stop my service", "end my service",
               "switch carriers", "switch providers", "leave", "port my number", "port out"),
    "residential": ("residential", "home", "personal", "house", "household"),
    "business": ("business", "small business", "commercial", "office", "company"),
    "operator": ("representative", "agent", "operator", "customer service", "customer care", "person", "human",
                 "someone", "somebody", "associate", "advocate", "live person", "attendant", "receptionist"),
    "pharmacy": ("pharmacy", "prescription", "refill", "medication", "medicine", "rx", "drug", "pharmacist"),
    "claims": ("claim", "file a claim", "accident", "damage", "collision", "insurance claim", "hit my car", "crash",
               "fender bender", "dent"),
    "roadside": ("roadside", "tow", "towing", "flat tire", "broke down", "broken down", "jump start", "stranded",
                 "dead battery", "locked out of my car"),
    "reservations": ("reservation", "booking", "book", "reserve", "flight", "ticket", "itinerary", "trip", "travel",
                     "seat", "hotel", "check in", "change my flight"),
    "baggage": ("baggage", "bag", "luggage", "suitcase", "lost bag", "lost luggage", "delayed bag", "did not arrive",
                "didn't arrive", "missing bag"),
    "appointments": ("appointment", "schedule", "reschedule", "book an appointment", "visit", "clinic", "see doctor",
                     "checkup", "check up", "patient", "mri", "x ray", "scan", "procedure", "surgery"),
    "providers": ("physician", "doctor", "doctor's office", "provider", "calling from a doctor"),
    "status": ("status", "on time", "delayed", "delay", "arrival", "departure", "gate"),
    "loyalty": ("frequent flyer", "frequent flier", "miles", "mileage", "points", "rewards", "loyalty",
                "member status"),
    "orders": ("order", "shipping", "delivery", "package", "tracking", "shipment", "where is my order", "deliver",
               "shipped", "arrive", "arrived"),
    "returns": ("return", "refund", "exchange", "send back"),
    "cards": ("card", "lost card", "wallet", "gift card", "stolen card", "debit card", "credit card", "activate card",
              "activate", "replace card", "replacement card"),
    "fraud": ("fraud", "unauthorized", "suspicious", "stolen", "identity theft", "scam", "dispute"),
    "moving": ("move", "moving", "relocate", "transfer service", "new address", "change address", "change of address",
               "transfer my service", "buying a house", "new house", "new home", "move in", "start service"),
    "hours": ("hours", "store hours", "hours of operation", "location", "directions", "branch", "are you open",
              "open on", "open today", "open tomorrow", "when do you open", "when do you close",
              "what time do you close", "closing time", "close tonight", "close today"),
    "directory": ("directory", "extension", "dial by name", "company directory"),
    "loans": ("loan", "mortgage", "lending", "auto loan", "refinance", "line of credit"),
    "benefits": ("benefit", "coverage", "eligibility", "covered", "deductible", "insurance"),
    "login": ("password", "login", "log in", "log into", "sign in", "reset password", "username", "locked out",
              "online banking", "website", "app", "online"),
    "nurse": ("nurse", "medical advice", "symptom", "nurse line", "fever", "sick", "pain", "cough", "hurt", "injury",
              "rash", "vomit", "ill"),
    "callback": ("callback", "call back", "call me back", "call me", "return my call", "ring me back",
                 "call you back", "have someone call me"),
}  # fmt: skip
_SPANISH_HINTS = frozenset(
    "spanish espanol castellano quiero hablar necesito factura pagar cuenta por favor mi con".split()
)


def stem(word: str) -> str:
    """A light English stemmer: enough to make "billing", "bills" and "billed" meet."""
    word = word.lower().strip("'").removesuffix("'s")
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ation", "ition", "ment", "ing", "ion", "ed", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]
    return word


_ARTICLES = frozenset({"a", "an", "the", "my", "your", "our"})


def _stems(text: str) -> list[str]:
    """Stems of the words, articles and possessives dropped ("lost my luggage" ~ "lost luggage")."""
    return [stem(word) for word in re.findall(r"[a-z0-9']+", text.lower()) if word not in _ARTICLES]


_GROUP_PHRASES: list[tuple[str, tuple[str, ...]]] = sorted(
    ((group, tuple(_stems(phrase))) for group, phrases in SYNONYMS.items() for phrase in phrases),
    key=lambda item: -len(item[1]),
)
_STEMMED_STOPWORDS = frozenset(stem(w) for w in _STOPWORDS)
_STEMMED_GENERIC = frozenset(stem(w) for w in _GENERIC)


def concepts(text: str) -> dict[str, float]:
    """What a text is about: ``{"g:billing": 2, "overdu": 1, "account": 0.3, ...}``.

    Department groups (``g:``) weigh the number of phrases that point to them (at most 2); the
    other word stems weigh 1, generic words less.
    """
    words = _stems(text)
    weights: dict[str, float] = {}
    covered: set[int] = set()  # positions of words that are part of a department phrase
    for group, phrase in _GROUP_PHRASES:
        length = len(phrase)
        for i in range(len(words) - length + 1):
            if tuple(words[i : i + length]) == phrase:
                key = f"g:{group}"
                weights[key] = min(2.0, weights.get(key, 0.0) + 1.0)
                covered.update(range(i, i + length))
    for index, word in enumerate(words):
        if word in _STEMMED_STOPWORDS or not word:
            continue
        # a word that names a department counts mostly through it; alone it tells options of
        # the same department apart ("questions about a charge" vs "make a payment")
        weight = _GENERIC_WEIGHT if word in _STEMMED_GENERIC else _COVERED_WEIGHT if index in covered else 1.0
        weights[word] = max(weight, weights.get(word, 0.0))
    return weights


def match_score(intent: str, label: str) -> float:
    """How well an option label fits the intent: 0 (nothing in common) and up; >= 0.5 is a match."""
    label_concepts = {c: 1.0 if c.startswith("g:") else w for c, w in concepts(label).items()}
    if not label_concepts:
        return 0.0
    intent_concepts = concepts(intent)
    # a department counts as often as the intent points to it; a word counts once
    shared = sum(min(intent_concepts[c], 2.0) if c.startswith("g:") else label_concepts[c]
                 for c in label_concepts if c in intent_concepts)  # fmt: skip
    return shared / sum(label_concepts.values()) ** 0.5


def _names_this_person(intent: str, option: MenuOption) -> bool:
    """The intent names this way to a person in its own words ("talk to a customer advocate"
    for "to speak with a customer advocate"), not just any person (then the menu's first
    person option is as good as any, see ``_fallback``)."""
    words = {c for c in concepts(intent) if not c.startswith("g:") and c not in _STEMMED_GENERIC}
    return bool(words & set(concepts(option.label or option.spoken or "")))


def wants_callback(intent: str) -> bool:
    return "g:callback" in concepts(intent)


def wants_person(intent: str) -> bool:
    """ "Talk to someone about selling my house": a person first, the topic only if it is clear."""
    return "g:operator" in concepts(intent) or bool(_PERSON_REQUEST.search(intent.lower()))


_PERSON_REQUEST = re.compile(r"\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:someone|somebody|a\s+(?:real\s+)?(?:person|human))\b")


def intent_language(intent: str) -> str:
    """ "es" when the intent is in Spanish or asks for Spanish, else "en"."""
    words = set(re.findall(r"[a-z]+", unicodedata.normalize("NFKD", intent.lower()).encode("ascii", "ignore").decode()))
    if words & {"spanish", "espanol", "castellano"} or len(words & _SPANISH_HINTS) >= 2:
        return "es"
    return "en"


MATCH_THRESHOLD = 0.45  # match_score at which an option counts as the intent's
MEANING_THRESHOLD = 0.2  # cosine at which an option no word rule matched fits (tuned by industry-grouped CV)
PERSON_MEANING_THRESHOLD = 0.45  # ... when the intent asks for a person ("talk to someone about ...")
KEYWORD_WEIGHT = 0.1  # x match_score (at most 2), added to the cosine
MENU_WAIT_SECONDS = 2.0  # a menu still being read: listen a little longer
PROMPT_WAIT_SECONDS = 5.0  # nothing to act on yet (greeting, "please listen carefully")
WAIT_THROUGH_SECONDS = 10.0  # let the menu time out once: many then route to an operator
MAX_HEARINGS = 5  # the same menu this often: give up
MAX_ENTRIES_PER_FIELD = 2  # the menu asks again after we entered a value: one retry, then a person
NAVIGATION_BUDGET_SECONDS = 600.0

# What to say to a speech menu for a department, when saying the intent itself did not work.
_DEPARTMENT_WORDS: dict[str, str] = {
    "billing": "billing", "tech_support": "technical support", "outage": "report an outage", "sales": "sales",
    "cancel": "cancel service", "pharmacy": "pharmacy", "claims": "claims", "reservations": "reservations",
    "baggage": "baggage", "appointments": "appointments", "orders": "order status", "returns": "returns",
    "cards": "card services", "fraud": "fraud", "moving": "moving", "hours": "hours and locations",
    "directory": "directory", "loans": "loans", "benefits": "benefits", "login": "online account help",
    "nurse": "nurse line",
}  # fmt: skip
_SKIP_LABEL = re.compile(r"^otherwise$|\bdon'?t\s+(?:have|know)\b|\bdo\s+not\s+(?:have|know)\b|\bskip\b|\bnot\s+sure\b")
_INTENT_WORDS = 14  # what a speech menu is told, at most
_CONFIRM_LABEL = re.compile(r"\b(?:correct|right|confirm|yes)\b")
_DENY_LABEL = re.compile(r"\b(?:not|incorrect|isn't|wrong|no)\b")
_YES_NO_QUESTION = re.compile(r"\b(?:is\s+(?:that|this)\s+(?:correct|right)|say\s+yes\s+or\s+no)\b")


@dataclass(frozen=True)
class _SeenHere:
    """What earlier hearings of the current menu led to."""

    hearings: int  # including this one
    selections: frozenset[str]  # digits and words sent in answer to this menu
    waited_through: bool  # we let it time out once already
    entered: dict[str, int]  # field -> times entered in answer to this menu
    requested: frozenset[str]  # fields asked of the user anywhere in this call


def ends_hearing(action: Action | None) -> bool:
    """The action answers the prompt; a short ``Wait`` only listens on to the rest of it."""
    return not (isinstance(action, Wait) and action.seconds < WAIT_THROUGH_SECONDS)


def _seen_here(ctx: NavigationContext) -> _SeenHere:
    """Collect, from the history, what happened each time this same menu was heard before."""
    hearings = 1
    selections: set[str] = set()
    waited = False
    entered: dict[str, int] = {}
    requested: set[str] = set()
    for turn in ctx.history:
        if isinstance(turn.action, RequestUserData):
            requested.add(turn.action.field)
        if not same_menu(parse_menu(turn.transcript, GIVE_UP_SILENCE_SECONDS), ctx.menu):
            continue
        if ends_hearing(turn.action):
            hearings += 1
        match turn.action:
            case PressDigits(digits=digits):
                selections.add(digits)
            case Say(text=text):
                selections.add(text.lower())
            case Wait() | None:
                waited = waited or ends_hearing(turn.action)
            case EnterUserData(field=name):
                entered[name] = entered.get(name, 0) + 1
    return _SeenHere(max(hearings, ctx.attempt), frozenset(selections), waited, entered, frozenset(requested))


def _entry_mode(requested: frozenset[str], permission: str) -> EntryMode | None:
    allowed = {"dtmf", "speech"} if permission == "both" else {permission}
    usable = (set(requested) or {"dtmf", "speech"}) & allowed
    if "dtmf" in usable:
        return "dtmf"  # keyed digits are never misheard
    return "speech" if "speech" in usable else None


def _speakable_intent(intent: str) -> str:
    first = re.split(r"(?<=[.!?])\s", intent.strip(), maxsplit=1)[0]
    return " ".join(first.split()[:_INTENT_WORDS]).rstrip(".!?,;")


def _department_word(intent: str) -> str | None:
    groups = [(w, c[2:]) for c, w in concepts(intent).items() if c.startswith("g:") and c[2:] in _DEPARTMENT_WORDS]
    if not groups:
        return None
    best = max(groups, key=lambda item: (item[0], -list(_DEPARTMENT_WORDS).index(item[1])))
    return _DEPARTMENT_WORDS[best[1]]


class OfflineNavigator:
    """Navigates by word matching and the usual ways to a person. Needs no keys and no network.

    In order: a live person -> ReportHuman; a hold message -> ReportHold (or the callback, when
    the intent asks for one); a menu still being read -> Wait; a request for data -> enter it
    from the vault, or ask the user (optional requests are skipped when the vault lacks the
    value); "if this is correct press 1" right after an entry -> confirm; the option that best
    fits the intent (never a language other than the intent's, never a callback unless asked,
    never a choice that already brought this menu back); a speech menu -> say the intent, then
    the department's name; then the ways to a person: an operator option, an "all other
    questions" option, 0, "representative", letting the menu time out; then ReportStuck.

    What failed before comes from ``ctx.history``: every earlier prompt that ``same_menu`` finds
    equal to this one, and what was done in answer to it. Listening on (``Wait`` shorter than
    ``WAIT_THROUGH_SECONDS``) does not count as a hearing.
    """

    name = "offline"

    def __init__(
        self,
        *,
        match_threshold: float = MATCH_THRESHOLD,
        max_hearings: int = MAX_HEARINGS,
        budget_seconds: float = NAVIGATION_BUDGET_SECONDS,
        meaning: MeaningModel | None | Literal["auto"] = "auto",
        meaning_threshold: float = MEANING_THRESHOLD,
        keyword_weight: float = KEYWORD_WEIGHT,
    ) -> None:
        self.match_threshold = match_threshold
        self.max_hearings = max_hearings
        self.budget_seconds = budget_seconds
        self.meaning = load_meaning_model() if meaning == "auto" else meaning
        self.meaning_threshold = meaning_threshold
        self.keyword_weight = keyword_weight

    async def decide(self, ctx: NavigationContext) -> Decision:
        return self.decide_now(ctx)

    def decide_now(self, ctx: NavigationContext) -> Decision:
        """The decision, synchronously (the navigator does no I/O)."""
        menu = ctx.menu
        seen = _seen_here(ctx)
        if menu.sounds_human:
            return self._decision(ReportHuman(), "a person is speaking", 0.7)
        if ctx.elapsed_seconds >= self.budget_seconds:
            stuck = ReportStuck(f"no destination after {ctx.elapsed_seconds:.0f} s of menus")
            return self._decision(stuck, "over budget", 0.9)
        if seen.hearings > self.max_hearings:
            return self._decision(ReportStuck(f"heard the same menu {seen.hearings} times"), "menu loop", 0.9)
        if menu.is_hold_message:
            return self._hold(ctx, seen)
        if not menu.complete:
            return self._decision(Wait(MENU_WAIT_SECONDS), "the menu is still being read", 0.8)
        if menu.is_empty:
            if confirmation := self._confirm_entry(ctx, seen):
                return confirmation
            if seen.hearings >= 3:
                return self._fallback(ctx, seen, "this prompt keeps coming back with no options")
            why = "the last input was not accepted; waiting for the options" if menu.invalid_input else "no options yet"
            return self._decision(Wait(PROMPT_WAIT_SECONDS), why, 0.6)
        return (
            self._answer_requests(ctx, seen)
            or self._confirm_entry(ctx, seen)
            or self._choose_option(ctx, seen)
            or self._answer_open_question(ctx, seen)
            or self._fallback(ctx, seen, "nothing in this menu fits the intent")
        )

    # ---------------------------------------------------------------- steps

    def _hold(self, ctx: NavigationContext, seen: _SeenHere) -> Decision:
        callbacks = [o for o in ctx.menu.options_of_kind(OptionKind.CALLBACK) if not self._tried(o, seen)]
        if callbacks and wants_callback(ctx.intent):
            if not ctx.menu.complete:
                return self._decision(Wait(MENU_WAIT_SECONDS), "a callback offer is still being read", 0.7)
            return self._select(callbacks[0], "the user asked for a callback", 0.85)
        return self._decision(ReportHold(), "a hold announcement", 0.85)

    def _answer_requests(self, ctx: NavigationContext, seen: _SeenHere) -> Decision | None:
        skipped_optional = False
        for request in ctx.menu.data_requests:
            name = request.field
            words = describe_field(name)
            if name in NEVER_ENTER_FIELDS:
                if request.optional:
                    skipped_optional = True
                    continue
                return self._fallback(ctx, seen, f"the menu asks for the {words}, which is never entered")
            permission = ctx.available_data.get(name)
            if permission is None:
                if request.optional:
                    skipped_optional = True
                    continue
                if name in seen.requested:
                    return self._fallback(ctx, seen, f"the user did not give the {words}")
                return self._decision(RequestUserData(name, question_for(name)), f"the menu asks for the {words}", 0.85)
            mode = _entry_mode(request.modes, permission)
            if mode is None:
                return self._fallback(ctx, seen, f"the {words} may not be given by {'/'.join(sorted(request.modes))}")
            if seen.entered.get(name, 0) >= MAX_ENTRIES_PER_FIELD:
                return self._fallback(ctx, seen, f"the {words} was not accepted")
            return self._decision(EnterUserData(name, mode), f"the menu asks for the {words}", 0.9)
        if not skipped_optional:
            return None
        skip = next((o for o in ctx.menu.options if _SKIP_LABEL.search(o.label) and not self._tried(o, seen)), None)
        if skip is not None:
            return self._select(skip, "skipping an optional question the vault cannot answer", 0.7)
        if not ctx.menu.options and not seen.waited_through:
            return self._decision(Wait(WAIT_THROUGH_SECONDS), "an optional question: the menu moves on without it", 0.5)
        return None

    def _confirm_entry(self, ctx: NavigationContext, seen: _SeenHere) -> Decision | None:
        """ "You entered 1 2 3 4 5. If this is correct, press 1": yes, right after we entered it."""
        if not ctx.history or not isinstance(ctx.history[-1].action, EnterUserData):
            return None
        confirm = next(
            (o for o in ctx.menu.options if _CONFIRM_LABEL.search(o.label) and not _DENY_LABEL.search(o.label)), None
        )
        if confirm is not None and not self._tried(confirm, seen):
            return self._select(confirm, "confirming what we entered", 0.8)
        if _YES_NO_QUESTION.search(ctx.menu.text) and "yes" not in seen.selections:
            return self._decision(Say("yes"), "confirming what we entered", 0.7)
        return None

    def _choose_option(self, ctx: NavigationContext, seen: _SeenHere) -> Decision | None:
        options = [o for o in ctx.menu.options if not self._tried(o, seen)]
        language = intent_language(ctx.intent)
        languages = [o for o in options if o.kind is OptionKind.LANGUAGE]
        ours = [o for o in languages if o.language == language]
        only_languages = all(o.kind in (OptionKind.LANGUAGE, OptionKind.REPEAT) for o in ctx.menu.options)
        if ours and (language != "en" or only_languages):
            return self._select(ours[0], f"the user's language ({language})", 0.9)
        if wants_callback(ctx.intent):
            callback = next((o for o in options if o.kind is OptionKind.CALLBACK), None)
            if callback is not None:
                return self._select(callback, "the user asked for a callback", 0.85)
        candidates = [
            o for o in options
            if o.kind is OptionKind.TOPIC or (o.kind is OptionKind.OPERATOR and _names_this_person(ctx.intent, o))
        ]  # fmt: skip
        if not candidates:
            return None
        if self.meaning is not None:
            return self._choose_by_meaning(ctx.intent, candidates)
        scored = [(match_score(ctx.intent, o.label or o.spoken or ""), -index, o) for index, o in enumerate(candidates)]
        score, _, best = max(scored, key=lambda item: (item[0], item[1]))
        if score < self.match_threshold:
            return None
        confidence = min(0.95, 0.45 + 0.3 * score)
        return self._select(best, f'"{best.label}" fits the intent', confidence)

    def _choose_by_meaning(self, intent: str, candidates: list[MenuOption]) -> Decision | None:
        """The option closest in meaning to the intent: sentence embeddings with the word rules'
        score added. When no option shares the intent's words, the closest must be close
        (``meaning_threshold``): a request no department fits goes the way to a person."""
        assert self.meaning is not None
        labels = [o.label or o.spoken or "" for o in candidates]
        cosines = similarities(self.meaning, intent, labels)
        words = np.array([match_score(intent, label) for label in labels])
        scores = cosines + self.keyword_weight * np.minimum(words, 2.0)
        best = int(np.argmax(scores))
        # A caller who asks for a person goes to a department only when it plainly fits.
        threshold = PERSON_MEANING_THRESHOLD if wants_person(intent) else self.meaning_threshold
        if words.max() < self.match_threshold and cosines[best] < threshold:
            return None
        confidence = float(np.clip(0.45 + 0.6 * scores[best], 0.45, 0.95))
        return self._select(candidates[best], f'"{candidates[best].label}" is closest in meaning ({cosines[best]:.2f})', confidence)

    def _answer_open_question(self, ctx: NavigationContext, seen: _SeenHere) -> Decision | None:
        if not ctx.menu.open_question:
            return None
        for text, why, confidence in (
            (_speakable_intent(ctx.intent), "a speech menu: telling it why we call", 0.7),
            (_department_word(ctx.intent), "a speech menu: naming the department", 0.55),
        ):
            if text and text.lower() not in seen.selections:
                return self._decision(Say(text), why, confidence)
        return None

    def _fallback(self, ctx: NavigationContext, seen: _SeenHere, why: str) -> Decision:
        """The ways to a person, each tried once per menu; then give up."""
        menu = ctx.menu
        for kind, reason, confidence in (
            (OptionKind.OPERATOR, "the operator option", 0.6),
            (OptionKind.OTHER, "the catch-all option", 0.5),
        ):
            option = next((o for o in menu.options_of_kind(kind) if not self._tried(o, seen)), None)
            if option is not None:
                return self._select(option, f"{why}: {reason}", confidence)
        if menu.stay_on_line and not seen.waited_through:
            return self._decision(Wait(WAIT_THROUGH_SECONDS), f"{why}: the menu says to stay on the line", 0.5)
        zero = menu.option_for_key("0")
        if zero is not None and zero.kind is OptionKind.TOPIC and not self._tried(zero, seen):
            return self._select(zero, f"{why}: 0, usually a person", 0.4)
        zero_taken = any(o.key == "0" for o in menu.options)
        attempts: list[tuple[Action, str, float]] = []
        if not zero_taken and "0" not in seen.selections:
            attempts.append((PressDigits("0"), "0, the usual operator key", 0.35))
        if "representative" not in seen.selections:
            attempts.append((Say("representative"), 'saying "representative"', 0.3))
        speech_menu = menu.open_question or any(o.key is None for o in menu.options)
        if speech_menu:
            attempts.reverse()
        back = next((o for o in menu.options_of_kind(OptionKind.BACK) if not self._tried(o, seen)), None)
        if back is not None and ctx.history:
            attempts.append((self._selection_action(back), "back to the previous menu", 0.3))
        if not seen.waited_through:
            attempts.append((Wait(WAIT_THROUGH_SECONDS), "letting the menu time out, often a way to a person", 0.3))
        if attempts:
            action, reason, confidence = attempts[0]
            return self._decision(action, f"{why}: {reason}", confidence)
        return self._decision(ReportStuck(f"{why}, and every way to a person was tried"), "out of strategies", 0.8)

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _tried(option: MenuOption, seen: _SeenHere) -> bool:
        return (option.key is not None and option.key in seen.selections) or (
            option.spoken is not None and option.spoken.lower() in seen.selections
        )

    @staticmethod
    def _selection_action(option: MenuOption) -> Action:
        return PressDigits(option.key) if option.key is not None else Say(option.spoken or option.label)

    def _select(self, option: MenuOption, why: str, confidence: float) -> Decision:
        return self._decision(self._selection_action(option), why, confidence)

    def _decision(self, action: Action, reason: str, confidence: float) -> Decision:
        return Decision(action, reason, round(confidence, 3), self.name)
