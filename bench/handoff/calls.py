"""Handoff benchmark: whole calls from the app to generated companies whose people react.

    .venv/bin/python -m bench.handoff --calls 100                # HOLDSLAYER_HUMAN_PROBE decides the probe
    .venv/bin/python -m bench.handoff --calls 100 --probe false  # or say it

Each call goes to one company of ``app.sim.populations.generate_population`` (seeded): a hold
of 20-90 s with music, playlists and announcements at unpredictable times in several voices,
then a person who picks up in some way on some kind of line and who is passive (greets, waits,
hangs up after 8-14 s without hearing the caller) or reactive (answers when spoken to, says
"Hello?" into the silence, then hangs up). The real app (call manager, ARI over HTTP and a
websocket, RTP over UDP) places the call; the call is ended once the user's phone rang, or the
person hung up, or the company's line went dead.

Measured per call, from the simulator's logs (``CompanyCallLog``, ``UserCallLog``, one clock:
``time.monotonic()``) and the app's events (first seen by a 50 ms poll):

- lost: the person hung up before the user's phone rang (``lost_person`` says it was for want
  of an answer);
- first word -> ring: from the first voice-level frame of the person's own speech to the PBX
  starting to ring the user's phone;
- false ring: the user's phone rang before the person said a word (a recording, music, an
  announcement taken for a person);
- hold: from the company's answer to the person's first word (or to the ring or the end when
  earlier): false rings are counted per hour of it;
- the app's HUMAN_SUSPECTED / HUMAN_PROBE / HUMAN_DETECTED events, and whether the person heard
  the app at all (``heard_caller_at``).

Writes ``bench/results/handoff.json`` and ``.md`` (``handoff-probe.*`` for the probe run).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.calls.models import FINAL_STATUSES, CallRequest
from app.config import Settings
from app.runtime import HoldSlayer
from app.sim import SimConfig, SimulatedPBX, UserPhoneConfig
from app.sim.farend import CompanyCallLog, UserCallLog
from app.sim.populations import generate_population
from app.sim.scenario import AgentNode, HoldNode, Scenario

log = logging.getLogger(__name__)

USER_PHONE = "PJSIP/userphone"
AFTER_RING_SECONDS = 1.0  # the call is ended this long after the user's phone rang
POLL_SECONDS = 0.05


@dataclass
class HandoffCall:
    number: str
    company: str
    reactive: bool
    line: str
    pickup: str
    echo: bool
    hold_seconds_planned: float
    status: str
    reason: str
    detail: str
    agent_reached: bool
    first_word_at: float | None  # seconds after the company answered (all times below too)
    rung_at: float | None
    agent_hung_up_at: float | None
    lost: bool  # the person hung up before the user's phone rang
    lost_unanswered: bool  # ... because nobody answered them (the person's patience ran out)
    false_ring: bool  # rung before the person's first word
    first_word_to_ring: float | None
    heard_app_at: float | None  # the person first heard the app speak
    hold_seconds: float  # answer -> the person's first word (or ring / end when earlier)
    suspected: int
    first_suspected_at: float | None
    probes: int
    detected_at: float | None
    agent_utterances: list[str]

    @property
    def kind(self) -> str:
        return "reactive" if self.reactive else "passive"


def population(calls: int, seed: int) -> list[Scenario]:
    return generate_population(calls, seed=seed)


class HandoffBench:
    """One simulated PBX (the generated companies) and one app for a whole run."""

    def __init__(self, companies: list[Scenario], *, jobs: int = 8, probe: bool | None = None) -> None:
        self.companies = companies
        self.jobs = jobs
        self.probe = probe
        self.results: list[HandoffCall] = []
        self.media_skipped_seconds = 0.0  # the PBX's 20 ms clock fell behind (an overloaded machine)
        self._tmp = tempfile.TemporaryDirectory(prefix="holdslayer-handoffbench-")

    async def __aenter__(self) -> HandoffBench:
        tmp = Path(self._tmp.name)
        (tmp / "flows").mkdir()
        user = {USER_PHONE: UserPhoneConfig(answer_after=0.5, hangup_after=5.0, speech="prompt:hello")}
        self.pbx = SimulatedPBX(SimConfig(scenarios={s.number: s for s in self.companies}, user_phones=user, seed=1))
        await self.pbx.start()
        # Everything the companies say is rendered before the first call (not on the first call's line).
        refs = set().union(*(s.tts_refs() | s.audio_refs() for s in self.companies))
        assert self.pbx.audio is not None
        await self.pbx.audio.prepare(refs)
        extra: dict[str, Any] = {} if self.probe is None else {"human_probe": self.probe}
        settings = Settings(
            ari_url=self.pbx.ari_url,
            database_url=f"sqlite:///{tmp / 'calls.db'}",
            recordings_dir=tmp / "recordings",
            flows_dir=tmp / "flows",
            user_devices={"sip_phone": USER_PHONE},
            dial_timeout=10,
            user_answer_timeout=5.0,
            navigator="offline",
            **extra,
        )
        self.settings = settings
        self.app = HoldSlayer(settings)
        await self.app.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.pbx.media is not None:
            self.media_skipped_seconds = round(self.pbx.media.skipped_seconds, 2)
        await self.app.stop()
        await self.pbx.stop()
        self._tmp.cleanup()

    async def run(self) -> list[HandoffCall]:
        semaphore = asyncio.Semaphore(self.jobs)

        async def one(scenario: Scenario, delay: float) -> None:
            await asyncio.sleep(delay)  # the first calls do not all start in the same second
            async with semaphore:
                try:
                    self.results.append(await self.call(scenario))
                except Exception:
                    log.exception("call to %s failed", scenario.number)

        await asyncio.gather(*(one(s, 0.7 * i if i < self.jobs else 0) for i, s in enumerate(self.companies)))
        return self.results

    async def call(self, scenario: Scenario) -> HandoffCall:
        manager = self.app.manager
        call_id = await manager.start_call(CallRequest(number=scenario.number, intent="talk to a person"))
        session = manager.session(call_id)
        assert session is not None
        seen: dict[int, float] = {}  # event index -> when the poll first saw it
        company: CompanyCallLog | None = None
        user: UserCallLog | None = None
        hold = next(n for n in scenario.nodes.values() if isinstance(n, HoldNode))
        deadline = time.monotonic() + 60 + hold.seconds + 120
        ending_at: float | None = None
        while time.monotonic() < deadline and session.status not in FINAL_STATUSES:
            now = time.monotonic()
            for index in range(len(seen), len(session.events)):
                seen[index] = now
            company = company or next((c for c in self.pbx.company_calls if c.channel_id == session.ids.company), None)
            user = user or next((u for u in self.pbx.user_calls if u.channel_id == session.ids.user), None)
            if ending_at is None and user is not None and user.dialled_at is not None:
                ending_at = now + AFTER_RING_SECONDS
            if company is not None and company.end_cause is not None and ending_at is None:
                ending_at = now + 0.5  # the company hung up: the app ends the call by itself
            if ending_at is not None and now >= ending_at:
                break
            await asyncio.sleep(POLL_SECONDS)
        if session.status not in FINAL_STATUSES:
            await manager.hangup(call_id, "handoff benchmark: outcome known")
        await manager.wait(call_id)
        company = company or next((c for c in self.pbx.company_calls if c.channel_id == session.ids.company), None)
        user = user or next((u for u in self.pbx.user_calls if u.channel_id == session.ids.user), None)
        return self._result(scenario, session, seen, company, user)

    @staticmethod
    def _result(scenario, session, seen, company, user) -> HandoffCall:
        agent = next(n for n in scenario.nodes.values() if isinstance(n, AgentNode))
        hold = next(n for n in scenario.nodes.values() if isinstance(n, HoldNode))
        answered = company.answered_at if company is not None else None

        def rel(moment: float | None) -> float | None:
            return None if moment is None or answered is None else round(moment - answered, 3)

        events = session.events
        types = [e["type"] for e in events]
        ended = [e["data"] for e in events if e["type"] == "CALL_ENDED"]
        first_word = rel(company.agent_first_word_at) if company else None
        rung = rel(user.dialled_at) if user else None
        hung_up = rel(company.agent_hung_up_at) if company else None
        lost = hung_up is not None and (rung is None or hung_up < rung)
        false_ring = rung is not None and (first_word is None or rung < first_word)
        end = rel(company.ended_at) if company else None
        hold_end = min(x for x in (first_word, rung, end, 0.0 if answered is None else None) if x is not None) if any(
            x is not None for x in (first_word, rung, end)
        ) else 0.0
        suspected_times = [rel(seen[i]) for i, t in enumerate(types) if t == "HUMAN_SUSPECTED" and i in seen]
        detected = [rel(seen[i]) for i, t in enumerate(types) if t == "HUMAN_DETECTED" and i in seen]
        return HandoffCall(
            number=scenario.number,
            company=scenario.name,
            reactive=bool(agent.answers),
            line=agent.line,
            pickup=agent.pickup,
            echo=agent.echo is not None,
            hold_seconds_planned=hold.seconds,
            status=session.status.value,
            reason=ended[-1].get("reason", "") if ended else "",
            detail=ended[-1].get("detail", "") if ended else "",
            agent_reached=bool(company and company.reached_agent),
            first_word_at=first_word,
            rung_at=rung,
            agent_hung_up_at=hung_up,
            lost=lost,
            lost_unanswered=lost and bool(company and company.lost_person),
            false_ring=false_ring,
            first_word_to_ring=None if false_ring or rung is None or first_word is None else round(rung - first_word, 3),
            heard_app_at=rel(company.heard_caller_at) if company else None,
            hold_seconds=max(0.0, hold_end),
            suspected=types.count("HUMAN_SUSPECTED"),
            first_suspected_at=suspected_times[0] if suspected_times else None,
            probes=types.count("HUMAN_PROBE"),
            detected_at=detected[0] if detected else None,
            agent_utterances=[u.what for u in company.utterances] if company else [],
        )


# ---------------------------------------------------------------------- report


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q * (len(values) - 1))))], 2)


def summarise(calls: list[HandoffCall]) -> dict[str, Any]:
    def block(subset: list[HandoffCall]) -> dict[str, Any]:
        reached = [c for c in subset if c.first_word_at is not None]
        latencies = [c.first_word_to_ring for c in subset if c.first_word_to_ring is not None]
        hold_hours = sum(c.hold_seconds for c in subset) / 3600
        false_rings = sum(c.false_ring for c in subset)
        suspected_after_word = [
            c.first_suspected_at - c.first_word_at
            for c in subset
            if c.first_suspected_at is not None and c.first_word_at is not None and c.first_suspected_at >= c.first_word_at
        ]
        return {
            "calls": len(subset),
            "person_spoke": len(reached),
            "persons_lost": sum(c.lost for c in subset),
            "lost_rate": round(sum(c.lost for c in subset) / len(reached), 3) if reached else None,
            "lost_unanswered": sum(c.lost_unanswered for c in subset),
            "rung_after_person": len(latencies),
            "first_word_to_ring_median": _quantile(latencies, 0.5),
            "first_word_to_ring_p90": _quantile(latencies, 0.9),
            "false_rings": false_rings,
            "hold_hours": round(hold_hours, 3),
            "false_rings_per_hold_hour": round(false_rings / hold_hours, 2) if hold_hours else None,
            "person_heard_the_app": sum(c.heard_app_at is not None for c in subset),
            "human_suspected_events": sum(c.suspected for c in subset),
            "calls_with_suspected": sum(c.suspected > 0 for c in subset),
            "suspected_after_first_word_median": _quantile(suspected_after_word, 0.5),
            "probes": sum(c.probes for c in subset),
        }

    return {
        "all": block(calls),
        "passive": block([c for c in calls if not c.reactive]),
        "reactive": block([c for c in calls if c.reactive]),
    }


def to_markdown(calls: list[HandoffCall], meta: dict[str, Any]) -> str:
    summary = summarise(calls)
    lines = [
        f"# Handoff benchmark (human probe {'on' if meta['human_probe'] else 'off'})",
        "",
        f"{meta['calls']} calls to {meta['calls']} generated companies (population seed {meta['seed']}), "
        f"{meta['jobs']} at a time, commit `{meta['commit']}`, {meta['at']}; wall time {meta['wall_seconds']:.0f} s"
        + (f"; the PBX's media clock skipped {meta['media_skipped_seconds']} s (load)." if meta.get("media_skipped_seconds") else "."),
        "",
        "| people | calls | person spoke | lost | lost (nobody answered) | rung after the person | first word -> ring median s | p90 s | false rings | hold h | false rings / hold h | heard the app | HUMAN_SUSPECTED (calls) | probes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in summary.items():
        lines.append(
            f"| {name} | {row['calls']} | {row['person_spoke']} | {row['persons_lost']} | {row['lost_unanswered']} | "
            f"{row['rung_after_person']} | {row['first_word_to_ring_median']} | {row['first_word_to_ring_p90']} | "
            f"{row['false_rings']} | {row['hold_hours']} | {row['false_rings_per_hold_hour']} | "
            f"{row['person_heard_the_app']} | {row['human_suspected_events']} ({row['calls_with_suspected']}) | {row['probes']} |"
        )
    lines += [
        "",
        "Lost: the person hung up before the user's phone rang. First word -> ring: from the first voice-level",
        "frame of the person's own speech to the PBX ringing the user. False ring: rung before the person spoke.",
        "Hold: the company's answer to the person's first word (or the ring, or the end, when earlier).",
        "",
        "Every call (times in s after the company answered):",
        "",
        "| number | people | line | pickup | echo | hold | first word | rung | person hung up | heard the app | suspected | detected | outcome |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in sorted(calls, key=lambda c: c.number):
        outcome = "**lost**" if c.lost else "**false ring**" if c.false_ring else "rung" if c.rung_at is not None else c.reason
        lines.append(
            f"| {c.number} | {c.kind} | {c.line} | {c.pickup} | {'yes' if c.echo else ''} | {c.hold_seconds_planned} | "
            f"{c.first_word_at} | {c.rung_at} | {c.agent_hung_up_at} | {c.heard_app_at} | {c.suspected} | "
            f"{c.detected_at} | {outcome} |"
        )
    return "\n".join(lines) + "\n"


def save(calls: list[HandoffCall], results_dir: Path, meta: dict[str, Any], stem: str) -> str:
    import json

    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "summary": summarise(calls), "calls": [asdict(c) for c in calls]}
    (results_dir / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    markdown = to_markdown(calls, meta)
    (results_dir / f"{stem}.md").write_text(markdown)
    return markdown


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
