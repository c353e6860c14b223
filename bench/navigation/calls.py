"""Navigation benchmark: whole calls from the app to the simulated PBX's navigation companies.

    .venv/bin/python -m bench.navigation                         # offline navigator, every intent
    .venv/bin/python -m bench.navigation --navigator openai      # needs HOLDSLAYER_OPENAI_API_KEY
    .venv/bin/python -m bench.navigation --first-intent-only     # one intent per company (quick)

Every company of ``app/sim/scenarios/nav-*.yaml`` is called once per intent with that intent and
the user data the scenario lists, by the real app (REST-less: the call manager directly) over
real ARI and RTP, with no call flow stored: the navigator finds the way. Then the learned flows
are put to the test: a second call to each company must follow its flow (every key from the
flow, none from the navigator) to the same destination; and the company whose menu changed
(``changed/nav-changed-v2.yaml``) is installed in the PBX and called again: the flow must be
found stale, the call must still reach the destination by exploring, and the flow re-learned.

Measured per call: reached the destination (the scenario's node for that intent is on the
company's path), wrong inputs (selections made beyond the menus on the company's way to the
destination), time from answer to hold (the company entering a hold node), and the navigator
decisions made. A call is ended once the destination's hold music has been heard (the agent is
the hold detector's business, measured by bench/detection).

Writes ``bench/results/navigation[-NAVIGATOR].json`` and ``.md``; speech-to-text WER and the TTS
round trip are ``bench/navigation/speech_bench.py`` (``speech.md``), summarised here if present.
"""

from __future__ import annotations

import asyncio
import json
from fnmatch import fnmatch
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.calls.models import FINAL_STATUSES, CallRequest
from app.config import Settings
from app.runtime import HoldSlayer
from app.sim import SimConfig, SimulatedPBX, UserPhoneConfig, load_scenarios
from app.sim.scenario import Scenario, load_scenario_file

log = logging.getLogger(__name__)

SCENARIOS_DIR = Path(__file__).resolve().parents[2] / "app" / "sim" / "scenarios"
CHANGED_DIR = SCENARIOS_DIR / "changed"
USER_PHONE = "PJSIP/userphone"
CALL_TIMEOUT = 180.0
HOLD_NODE_KINDS = ("hold",)
INPUT_NODE_KINDS = ("menu", "collect")


@dataclass
class CallResult:
    company: str
    number: str
    intent: str
    destination: str
    kind: str  # "explore", "replay" or "changed"
    reached: bool
    path: list[str]
    selections: int  # keys / words / entries the app sent
    needed: int  # menus and entries on the company's way to the destination
    navigator_decisions: int  # selections chosen by a navigator (not by a stored flow)
    seconds_to_hold: float | None
    status: str
    detail: str
    mismatch: bool = False
    learned_version: int | None = None

    @property
    def wrong_inputs(self) -> int:
        return max(0, self.selections - self.needed)

    @property
    def route(self) -> list[str]:
        """The path up to the destination: what navigation chose. What follows it (a short queue
        ending in an agent before the call is hung up) depends on how fast hold was heard."""
        if self.destination not in self.path:
            return self.path
        return self.path[: self.path.index(self.destination) + 1]


@dataclass
class SuiteResult:
    navigator: str
    calls: list[CallResult] = field(default_factory=list)

    def of(self, kind: str) -> list[CallResult]:
        return [call for call in self.calls if call.kind == kind]

    def success_rate(self, kind: str = "explore") -> float:
        calls = self.of(kind)
        return sum(call.reached for call in calls) / len(calls) if calls else 0.0


def navigation_scenarios(only: str = "*") -> dict[str, Scenario]:
    """The navigation companies (``nav-*.yaml``, or ``nav-ONLY.yaml``), by number."""
    scenarios = (load_scenario_file(path) for path in sorted(SCENARIOS_DIR.glob(f"nav-{only}.yaml")))
    return {scenario.number: scenario for scenario in scenarios}


class NavigationSuite:
    """One simulated PBX and one app for a whole run; calls to different companies run together."""

    def __init__(
        self, navigator: str = "offline", *, jobs: int = 3, only: str = "*", settings: dict[str, Any] | None = None
    ) -> None:
        self.navigator = navigator
        self.only = only
        self.jobs = jobs
        self.extra_settings = settings or {}
        self.result = SuiteResult(navigator)
        self._tmp = tempfile.TemporaryDirectory(prefix="holdslayer-navbench-")

    async def __aenter__(self) -> NavigationSuite:
        tmp = Path(self._tmp.name)
        (tmp / "flows").mkdir()
        user = {USER_PHONE: UserPhoneConfig(answer_after=0.5, hangup_after=3.0, speech="prompt:hello")}
        self.pbx = SimulatedPBX(SimConfig(scenarios=load_scenarios(), user_phones=user))
        await self.pbx.start()
        settings = Settings(
            **{
                "ari_url": self.pbx.ari_url,
                "database_url": f"sqlite:///{tmp / 'calls.db'}",  # extra settings may name another
                "recordings_dir": tmp / "recordings",
                "flows_dir": tmp / "flows",
                "user_devices": {"sip_phone": USER_PHONE},
                "dial_timeout": 10,
                "user_answer_timeout": 5.0,
                "navigator": self.navigator,
                **self.extra_settings,
            }
        )
        self.app = HoldSlayer(settings)
        await self.app.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.app.stop()
        await self.pbx.stop()
        self._tmp.cleanup()

    # ------------------------------------------------------------------ calls

    async def call(self, scenario: Scenario, intent_index: int, kind: str) -> CallResult:
        """Call the company with one of its intents; end the call once its hold is heard."""
        intent = scenario.intents[intent_index]
        before = len(self.pbx.company_calls)
        started = time.monotonic()
        call_id = await self.app.manager.start_call(
            CallRequest(number=scenario.number, intent=intent.intent, user_data=dict(intent.user_data))
        )
        session = self.app.manager.session(call_id)
        assert session is not None
        log_entry = None
        answered_at = hold_at = None
        deadline = started + CALL_TIMEOUT
        while time.monotonic() < deadline and session.status not in FINAL_STATUSES:
            log_entry = log_entry or next(
                (c for c in self.pbx.company_calls[before:] if c.number == scenario.number), None
            )
            types = {event["type"] for event in session.events}
            if answered_at is None and "CALL_ANSWERED" in types:
                answered_at = time.monotonic()
            if hold_at is None and log_entry is not None and _in_hold(scenario, log_entry.path):
                hold_at = time.monotonic()
            if hold_at is not None and ({"HOLD_DETECTED", "HUMAN_DETECTED"} & types):
                break  # the menus are behind us: the rest is the detector's job
            await asyncio.sleep(0.2)
        if session.status not in FINAL_STATUSES:
            await self.app.manager.hangup(call_id, "navigation benchmark: destination queue reached")
        await self.app.manager.wait(call_id)
        log_entry = log_entry or next((c for c in self.pbx.company_calls[before:] if c.number == scenario.number), None)
        path = list(log_entry.path) if log_entry else []
        events = session.events
        sent = [e["data"] for e in events if e["type"] in ("IVR_DTMF_SENT", "IVR_SPEECH_SENT")]
        learned = [e["data"] for e in events if e["type"] == "FLOW_LEARNED"]
        return CallResult(
            company=scenario.name,
            number=scenario.number,
            intent=intent.intent,
            destination=intent.destination,
            kind=kind,
            reached=intent.destination in path,
            path=path,
            selections=len(sent),
            needed=_inputs_on_the_way(scenario, path, intent.destination),
            navigator_decisions=sum(1 for d in sent if d.get("navigator") not in (None, "flow")),
            seconds_to_hold=None if hold_at is None or answered_at is None else round(hold_at - answered_at, 1),
            status=session.status.value,
            detail=_last_detail(events),
            mismatch=any(e["type"] == "FLOW_MISMATCH" for e in events),
            learned_version=learned[-1]["version"] if learned else None,
        )

    async def explore_all(self, *, first_intent_only: bool = False) -> None:
        """Every company, every intent, with no flow (each company's first intent last, so the
        flow it teaches is the one replayed)."""
        scenarios = navigation_scenarios(self.only)
        semaphore = asyncio.Semaphore(self.jobs)

        async def company(scenario: Scenario) -> None:
            order = [0] if first_intent_only else [*range(1, len(scenario.intents)), 0]
            for index in order:
                self._forget_flow(scenario.number)  # each intent explores from scratch
                async with semaphore:
                    self.result.calls.append(await self.call(scenario, index, "explore"))

        await asyncio.gather(*(company(s) for s in scenarios.values()))

    async def replay_all(self) -> None:
        """A second call to each company, its first intent, following the flow the first taught."""
        semaphore = asyncio.Semaphore(self.jobs)

        async def company(scenario: Scenario) -> None:
            async with semaphore:
                self.result.calls.append(await self.call(scenario, 0, "replay"))

        await asyncio.gather(*(company(s) for s in navigation_scenarios(self.only).values()))

    async def changed_menu(self) -> None:
        """The company whose menu changed since its flow was learned: a call falls back and
        re-learns, the next one follows the new flow."""
        changed = [p for p in sorted(CHANGED_DIR.glob("nav-*.yaml")) if fnmatch(p.stem, f"nav-{self.only}*")]
        for path in changed:
            scenario = load_scenario_file(path)
            self.pbx.install_scenario(scenario)
            self.result.calls.append(await self.call(scenario, 0, "changed"))
            self.result.calls.append(await self.call(scenario, 0, "changed-replay"))

    def _forget_flow(self, number: str) -> None:
        store = self.app.store
        while (flow := store.find_flow_for_number(number)) is not None:
            store.delete_flow(flow.id)


def _in_hold(scenario: Scenario, path: list[str]) -> bool:
    return bool(path) and scenario.nodes[path[-1]].kind in HOLD_NODE_KINDS


def _inputs_on_the_way(scenario: Scenario, path: list[str], destination: str) -> int:
    """Menus and entries the company needed answered on its way to the destination: the input
    nodes of the shortest stretch of the path that ends there (a detour adds none)."""
    if destination not in path:
        return sum(1 for node in dict.fromkeys(path) if scenario.nodes[node].kind in INPUT_NODE_KINDS)
    upto = path[: path.index(destination)]
    needed, seen = 0, set()
    for node in reversed(upto):  # walk back from the destination, each node once
        if node in seen:
            continue
        seen.add(node)
        if scenario.nodes[node].kind in INPUT_NODE_KINDS:
            needed += 1
    return needed


def _last_detail(events: list[dict[str, Any]]) -> str:
    ended = [e["data"] for e in events if e["type"] == "CALL_ENDED"]
    return ended[-1].get("detail", "") if ended else ""


# ---------------------------------------------------------------------- report


def summary_rows(result: SuiteResult) -> list[dict[str, Any]]:
    rows = []
    for kind, label in (("explore", "explore (no flow)"), ("replay", "learned flow"), ("changed", "menu changed"),
                        ("changed-replay", "re-learned flow")):  # fmt: skip
        calls = result.of(kind)
        if not calls:
            continue
        holds = sorted(c.seconds_to_hold for c in calls if c.seconds_to_hold is not None)
        rows.append({
            "calls": label,
            "n": len(calls),
            "reached": sum(c.reached for c in calls),
            "success": round(result.success_rate(kind), 3),
            "wrong_inputs": sum(c.wrong_inputs for c in calls),
            "navigator_decisions": sum(c.navigator_decisions for c in calls),
            "median_seconds_to_hold": holds[len(holds) // 2] if holds else None,
        })  # fmt: skip
    return rows


def to_markdown(result: SuiteResult, speech: dict[str, Any] | None, meta: dict[str, Any]) -> str:
    lines = [
        f"# Navigation benchmark ({result.navigator} navigator)",
        "",
        f"{meta['companies']} companies of the simulated PBX, {meta['calls']} calls, commit `{meta['commit']}`, "
        f"{meta['at']}; wall time {meta['wall_seconds']:.0f} s.",
        "",
        "| calls | n | reached the destination | success | wrong inputs | navigator decisions | median s to hold |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary_rows(result):
        lines.append(
            f"| {row['calls']} | {row['n']} | {row['reached']} | {row['success']:.0%} | {row['wrong_inputs']} | "
            f"{row['navigator_decisions']} | {row['median_seconds_to_hold']} |"
        )
    lines += ["", "Every call:", "", "| company | intent | kind | destination | reached | path | inputs (needed) | s to hold | notes |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in sorted(result.calls, key=lambda c: (c.number, c.kind, c.intent)):
        notes = []
        if c.mismatch:
            notes.append("flow mismatch")
        if c.learned_version:
            notes.append(f"learned v{c.learned_version}")
        if not c.reached:
            notes.append(c.detail or c.status)
        lines.append(
            f"| {c.company} | {c.intent} | {c.kind} | {c.destination} | {'yes' if c.reached else '**no**'} | "
            f"{' > '.join(c.path)} | {c.selections} ({c.needed}) | {c.seconds_to_hold} | {'; '.join(notes)} |"
        )
    if speech:
        lines += ["", "Speech (from `bench/results/speech.json`, `python -m bench.navigation.speech_bench`):", ""]
        for key, value in speech.items():
            lines.append(f"- {key}: {value}")
    return "\n".join(lines) + "\n"


def speech_summary(results_dir: Path) -> dict[str, Any] | None:
    path = results_dir / "speech.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    summary = data.get("summary", data)
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str)) and ("wer" in k or "rtf" in k)}


def save(result: SuiteResult, results_dir: Path, meta: dict[str, Any]) -> str:
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = "navigation" if result.navigator == "offline" else f"navigation-{result.navigator}"
    speech = speech_summary(results_dir)
    payload = {"meta": meta, "summary": summary_rows(result), "calls": [asdict(c) | {"wrong_inputs": c.wrong_inputs} for c in result.calls]}
    (results_dir / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    markdown = to_markdown(result, speech, meta)
    (results_dir / f"{stem}.md").write_text(markdown)
    return markdown
