"""The menu corpus benchmark's harness: the corpus is valid, and a walk is scored as a person would."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.navigation.menu_corpus import (
    FROZEN_INDUSTRIES,
    MENUS_DIR,
    VAULT_FIELDS,
    CorpusMenu,
    Level,
    Request,
    load_corpus,
    path_matches,
    report,
    run,
)
from app.ivr.navigator import Decision, EnterUserData, NavigationContext, PressDigits, Say, Wait


def test_the_corpus_is_valid_wide_and_split_by_industry():
    checked = subprocess.run([sys.executable, str(MENUS_DIR / "check.py")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    menus = load_corpus()
    industries = {m.industry for m in menus}
    assert len(menus) >= 150 and len(industries) >= 15
    assert all(len(m.requests) >= 3 for m in menus)
    assert set(FROZEN_INDUSTRIES) < industries


class Scripted:
    """Takes the first path of each request, step by step: a navigator that does what a person would."""

    name = "scripted"

    def __init__(self, menus: list[CorpusMenu]):
        self.paths = {r.text: list(r.paths[0]) for m in menus for r in m.requests}
        self.taken: dict[str, int] = {}

    async def decide(self, ctx: NavigationContext) -> Decision:
        i = self.taken.get(ctx.intent, 0)
        self.taken[ctx.intent] = i + 1
        step = self.paths[ctx.intent][i]
        if step == "<wait>":
            action = Wait(30.0)
        elif step.startswith("say:"):
            action = Say(step[4:])
        elif step.startswith("<"):
            action = EnterUserData(VAULT_FIELDS.get(step, step.strip("<>")), "dtmf")
        else:
            action = PressDigits(step)
        return Decision(action, "scripted", 1.0, self.name)


class AlwaysZero:
    name = "zero"

    async def decide(self, ctx: NavigationContext) -> Decision:
        return Decision(PressDigits("0"), "zero", 1.0, self.name)


@pytest.mark.parametrize("industry", ["banking", "airlines", "health-insurance"])
async def test_a_navigator_that_takes_the_right_path_scores_every_request(industry):
    menus = [m for m in load_corpus() if m.industry == industry]
    outcomes = await run(Scripted(menus), menus)
    rep = report(outcomes)
    assert rep["pooled_correct_percent"] == 100.0, [o for o in outcomes if not o.correct][:2]
    zero = report(await run(AlwaysZero(), menus))
    assert zero["pooled_correct_percent"] < 25.0


async def test_data_entry_moves_on_to_the_rest_of_the_prompt_and_keys_lead_into_submenus():
    menu = CorpusMenu(
        "t-1", "test", "Test Co", (),
        Level("Enter your account number. ... For billing, press 1. For repairs, press 2.",
              {"2": Level("For a phone repair, press 1. For internet repair, press 2.", {})}),
        (Request("my wifi is broken", (("<account_number>", "2", "2"),)),),
    )  # fmt: skip
    heard: list[str] = []

    class Recorder(Scripted):
        async def decide(self, ctx):
            heard.append(ctx.transcript)
            return await super().decide(ctx)

    [outcome] = await run(Recorder([menu]), [menu])
    assert outcome.correct and outcome.taken == ("<account_number>", "2", "2")
    assert heard == [
        "Enter your account number.",
        "For billing, press 1. For repairs, press 2.",
        "For a phone repair, press 1. For internet repair, press 2.",
    ]


def test_steps_match_keys_exactly_and_data_and_speech_by_kind():
    assert path_matches(("<account_number>", "2"), ["<member_id>", "2"])
    assert not path_matches(("2",), ["3"])
    assert not path_matches(("4", "1"), ["4"])
    assert path_matches(("say:seat assignment",), ["say:seats"])
    assert not path_matches(("<wait>",), ["<account_number>"])
