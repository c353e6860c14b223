"""The menu corpus benchmark: does the navigator press what a person would, on menus it never saw?

``bench/navigation/menus/`` holds 210 menus of 21 industries, written the way companies word
them, each with requests in a caller's own words and the key path a person would take. Here a
navigator walks each request through its menu as text (the transcript a perfect STT would give):

- it hears the prompt up to the first ``...`` (where the menu waits for input); after it keys
  the caller's data it hears the next part as a new prompt; when it listens on (a short
  ``Wait``) the prompt goes on with the next part; a key with a submenu leads into it;
- its steps are compared with the corpus's paths: keys exactly; a data entry matches a data
  step (which field the menu asked for is the parser's business, counted apart); a ``Say`` matches
  a ``say:`` step; a long ``Wait`` or a hold report matches ``<wait>``;
- the vault holds every field the corpus asks for except the full card number, which the app
  never enters: those requests are reported apart.

What the navigator hears of each prompt part is up to a *hearing* function (``Hearing``: part text
in, transcript out). The default, ``clean_text``, is the text itself; the spoken variant
(``bench.navigation.spoken_menus``) passes what the local STT made of the part as spoken by a voice.

Scores are per industry (the folds: a navigator tuned on some industries is judged on the
others), their mean and the worst. ``FROZEN_INDUSTRIES`` are never scored while developing;
``--frozen`` scores them (once, at the end of the work).

    python -m bench.navigation.menu_corpus              # all but the frozen industries
    python -m bench.navigation.menu_corpus --frozen     # the frozen ones
    python -m bench.navigation.menu_corpus --rules-only # the word rules alone, for comparison
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.ivr.menu import parse_menu
from app.ivr.navigator import (
    WAIT_THROUGH_SECONDS,
    EnterUserData,
    NavigationContext,
    Navigator,
    PressDigits,
    ReportHold,
    RequestUserData,
    Say,
    Turn,
    Wait,
)

MENUS_DIR = Path(__file__).resolve().parent / "menus"
RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
# Chosen once, at random (random.Random(2026).sample of the sorted industry names, 4), before
# any navigator was run on the corpus. Never used to diagnose.
FROZEN_INDUSTRIES = ("credit-cards", "mortgage-loans", "telecom-mobile", "universities")
MAX_DECISIONS = 10
TRAILING_SILENCE_SECONDS = 4.0  # the prompt has ended: the menu waits for the caller
SECONDS_PER_TURN = 15.0
NEVER_ENTERED = ("<card_number>",)
# The vault's name for each data step of the corpus.
VAULT_FIELDS = {
    "<account_number>": "account_number", "<phone_number>": "callback_number", "<zip_code>": "zip_code",
    "<date_of_birth>": "date_of_birth", "<member_id>": "member_id", "<last_four_ssn>": "last_four_ssn",
    "<policy_number>": "policy_number", "<confirmation_number>": "confirmation_number",
    "<tracking_number>": "tracking_number", "<order_number>": "order_number",
    "<prescription_number>": "prescription_number",
}  # fmt: skip


Hearing = Callable[[str], str]
"""What the caller hears of one prompt part (its text as written in the corpus): the transcript."""


def clean_text(part: str) -> str:
    """A perfect STT: the part as written."""
    return part


def heard_transcript(parts: Iterable[str], hear: Hearing = clean_text) -> str:
    """The transcript of consecutive prompt parts: each one as heard, joined (parts heard as nothing drop out)."""
    return " ".join(text for text in (hear(part).strip() for part in parts) if text)


@dataclass(frozen=True)
class Level:
    prompt: str
    submenus: dict[str, Level]

    @property
    def parts(self) -> list[str]:
        """The prompt as heard between the points where the menu waits for input."""
        return [p.strip() for p in re.split(r"\.\.\.|\u2026", self.prompt) if p.strip()]


@dataclass(frozen=True)
class Request:
    text: str
    paths: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class CorpusMenu:
    id: str
    industry: str
    company: str
    shapes: tuple[str, ...]
    root: Level
    requests: tuple[Request, ...]


def _level(node: dict[str, Any]) -> Level:
    return Level(node["prompt"], {str(k): _level(v) for k, v in (node.get("submenus") or {}).items()})


def load_corpus(directory: Path = MENUS_DIR) -> list[CorpusMenu]:
    menus = []
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for m in data["menus"]:
            requests = tuple(
                Request(r["text"], tuple(tuple(str(s) for s in p) for p in r["paths"]), r.get("note", ""))
                for r in m["requests"]
            )
            menus.append(CorpusMenu(m["id"], data["industry"], m["company"], tuple(m.get("shapes", ())), _level(m), requests))
    return menus


@dataclass
class Walk:
    """What the navigator did with one request."""

    steps: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)  # (data step expected, field entered)


def _is_data(step: str) -> bool:
    return step.startswith("<") and step != "<wait>"


def step_matches(expected: str, taken: str) -> bool:
    if expected == taken:
        return True
    if _is_data(expected) and _is_data(taken):
        return True
    if expected.startswith("say:") and taken.startswith("say:"):
        return True
    return False


def path_matches(expected: Iterable[str], taken: list[str]) -> bool:
    expected = list(expected)
    return len(expected) == len(taken) and all(step_matches(e, t) for e, t in zip(expected, taken))


async def walk(navigator: Navigator, menu: CorpusMenu, request: Request, hear: Hearing = clean_text) -> Walk:
    """Navigate ``request`` through ``menu``, each prompt part as ``hear`` gives it (see the module docstring)."""
    available = {name: "both" for name in VAULT_FIELDS.values()}
    level, start, heard = menu.root, 0, 1  # the transcript is parts[start:heard]
    history: list[Turn] = []
    selections: list[str] = []
    result = Walk()
    for turn in range(MAX_DECISIONS):
        parts = level.parts
        transcript = heard_transcript(parts[start:heard], hear)
        ctx = NavigationContext(
            intent=request.text,
            transcript=transcript,
            menu=parse_menu(transcript, trailing_silence_seconds=TRAILING_SILENCE_SECONDS),
            history=list(history),
            previous_selections=list(selections),
            available_data=dict(available),
            attempt=1 + sum(1 for t in history if t.transcript == transcript),
            elapsed_seconds=turn * SECONDS_PER_TURN,
        )
        decision = await navigator.decide(ctx)
        action = decision.action
        result.reasons.append(decision.reason)
        history.append(Turn(transcript, action, turn * SECONDS_PER_TURN))
        match action:
            case PressDigits(digits=digits):
                selections.append(digits)
                result.steps.append(digits)
                if digits not in level.submenus:
                    return result
                level, start, heard = level.submenus[digits], 0, 1
            case EnterUserData(field=name):
                step = next((s for s, f in VAULT_FIELDS.items() if f == name), f"<{name}>")
                result.steps.append(step)
                result.fields.append((step, name))
                if heard < len(parts):  # the menu reads on after the input: a new prompt
                    start, heard = heard, heard + 1
            case Say(text=text):
                selections.append(text.lower())
                result.steps.append(f"say:{text}")
                return result
            case RequestUserData(field=name):
                available[name] = "both"  # the user answers: ask again
            case Wait(seconds=seconds) if seconds < WAIT_THROUGH_SECONDS and heard < len(parts):
                heard += 1  # the menu reads on
            case Wait(seconds=seconds) if seconds >= WAIT_THROUGH_SECONDS:
                result.steps.append("<wait>")
                return result
            case ReportHold():
                result.steps.append("<wait>")
                return result
            case Wait():
                pass  # nothing more to hear: the menu repeats
            case _:
                result.steps.append(f"<{type(action).__name__}>")
                return result
    result.steps.append("<gave up>")
    return result


@dataclass(frozen=True)
class Outcome:
    menu: str
    industry: str
    request: str
    expected: tuple[tuple[str, ...], ...]
    taken: tuple[str, ...]
    correct: bool
    never_entered: bool  # the path keys a full card number: not scored
    note: str
    reasons: tuple[str, ...]


async def run(navigator: Navigator, menus: list[CorpusMenu], hear: Hearing = clean_text) -> list[Outcome]:
    outcomes = []
    for menu in menus:
        for request in menu.requests:
            w = await walk(navigator, menu, request, hear)
            never = any(step in NEVER_ENTERED for path in request.paths for step in path)
            outcomes.append(
                Outcome(
                    menu.id, menu.industry, request.text, request.paths, tuple(w.steps),
                    any(path_matches(p, w.steps) for p in request.paths), never, request.note, tuple(w.reasons),
                )
            )  # fmt: skip
    return outcomes


def report(outcomes: list[Outcome]) -> dict[str, Any]:
    scored = [o for o in outcomes if not o.never_entered]
    by_industry: dict[str, dict[str, Any]] = {}
    for industry in sorted({o.industry for o in scored}):
        mine = [o for o in scored if o.industry == industry]
        first_step = [o for o in mine if o.taken and any(step_matches(p[0], o.taken[0]) for p in o.expected)]
        no_fit = [o for o in mine if o.note.startswith("no department fits")]
        by_industry[industry] = {
            "requests": len(mine),
            "correct_percent": 100.0 * sum(o.correct for o in mine) / len(mine),
            "first_step_percent": 100.0 * len(first_step) / len(mine),
            "no_fit_correct_percent": 100.0 * sum(o.correct for o in no_fit) / len(no_fit) if no_fit else None,
        }
    values = [v["correct_percent"] for v in by_industry.values()]
    return {
        "requests": len(scored),
        "menus": len({o.menu for o in scored}),
        "never_entered_requests": len(outcomes) - len(scored),
        "pooled_correct_percent": 100.0 * sum(o.correct for o in scored) / max(1, len(scored)),
        "mean_correct_percent": statistics.fmean(values) if values else 0.0,
        "worst_correct_percent": min(values) if values else 0.0,
        "worst_industry": min(by_industry, key=lambda k: by_industry[k]["correct_percent"]) if by_industry else None,
        "by_industry": by_industry,
    }


def markdown(rep: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# Menu corpus: the right key on menus nobody tuned on",
        "",
        f"Navigator `{meta['navigator']}`, commit `{meta['commit']}`, {meta['at']}; industries: {meta['split']}. "
        f"{rep['menus']} menus, {rep['requests']} requests scored ({rep['never_entered_requests']} that key a full "
        "card number, which the app never enters, are left out). A request is right when every step matches a path "
        "a person would take.",
        "",
        "| industry | requests | right path | right first step | right when no department fits |",
        "|---|---|---|---|---|",
    ]
    for name, v in rep["by_industry"].items():
        nf = "n/a" if v["no_fit_correct_percent"] is None else f"{v['no_fit_correct_percent']:.0f}%"
        lines.append(f"| {name} | {v['requests']} | {v['correct_percent']:.1f}% | {v['first_step_percent']:.1f}% | {nf} |")
    lines += [
        f"| **mean** | | {rep['mean_correct_percent']:.1f}% | | |",
        f"| **worst** ({rep['worst_industry']}) | | {rep['worst_correct_percent']:.1f}% | | |",
        f"| pooled | {rep['requests']} | {rep['pooled_correct_percent']:.1f}% | | |",
        "",
        f"Decision time, cold (the model embeds the request and every option of the menu, as for a menu heard "
        f"for the first time), one thread: median {meta['decision_ms_median']} ms, p90 {meta['decision_ms_p90']} ms, "
        f"max {meta['decision_ms_max']} ms over {meta['decisions']} decisions. Memory the navigator added to a "
        f"process that runs onnxruntime already (as the app does for Silero VAD): its model loaded and run: {meta['memory_added_mb']} MB.",
        "",
    ]
    return "\n".join(lines)


class Timed:
    """A navigator that times each decision, cold: the model's vector cache is emptied first, so
    every decision embeds its request and all of the menu's options (a menu heard for the first time)."""

    def __init__(self, navigator: Any) -> None:
        self.navigator = navigator
        self.name = navigator.name
        self.seconds: list[float] = []

    async def decide(self, ctx: NavigationContext) -> Any:
        forget = getattr(self.navigator.meaning, "forget", None)
        if forget is not None:
            forget()
        started = time.perf_counter()
        decision = await self.navigator.decide(ctx)
        self.seconds.append(time.perf_counter() - started)
        return decision


def rss_mb() -> float:
    """This process's resident memory (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.navigation.menu_corpus", description=__doc__.splitlines()[0])
    parser.add_argument("--frozen", action="store_true", help="score the frozen industries (once)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--misses", type=int, default=0, help="print this many wrong walks")
    parser.add_argument("--rules-only", action="store_true", help="the offline navigator without the meaning model")
    args = parser.parse_args(argv)
    from app.ivr.navigator import OfflineNavigator

    menus = [m for m in load_corpus() if (m.industry in FROZEN_INDUSTRIES) == args.frozen]
    import onnxruntime  # noqa: F401 - the app loads it for Silero VAD in any case: not the navigator's cost

    before_mb = rss_mb()
    navigator = OfflineNavigator(meaning=None) if args.rules_only else OfflineNavigator()
    timed = Timed(navigator)
    started = time.monotonic()
    outcomes = asyncio.run(run(timed, menus))
    model_mb = rss_mb() - before_mb
    rep = report(outcomes)
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=MENUS_DIR, capture_output=True, text=True)
    meta = {
        "navigator": navigator.name + (" (word rules only)" if navigator.meaning is None else f" ({navigator.meaning.name})"),
        "commit": commit.stdout.strip() or "unknown",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "split": "frozen" if args.frozen else "development (all but the frozen)",
        "wall_seconds": round(time.monotonic() - started, 1),
        "decisions": len(timed.seconds),
        "decision_ms_median": round(1000 * statistics.median(timed.seconds), 2),
        "decision_ms_p90": round(1000 * sorted(timed.seconds)[int(0.9 * len(timed.seconds))], 2),
        "decision_ms_max": round(1000 * max(timed.seconds), 2),
        "memory_added_mb": round(model_mb, 1),
    }
    stem = "navigation-menus" + ("-frozen" if args.frozen else "") + ("-rules" if args.rules_only else "")
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(rep, meta)
    (args.out / f"{stem}.md").write_text(text)
    detail = [o.__dict__ for o in outcomes]
    (args.out / f"{stem}.json").write_text(json.dumps({**meta, **rep, "outcomes": detail}, indent=1, default=list))
    sys.stdout.write(text)
    for o in [o for o in outcomes if not o.correct and not o.never_entered][: args.misses]:
        print(f"\n{o.menu}: {o.request!r}\n  expected {o.expected}\n  took     {o.taken}\n  because  {o.reasons}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
