"""Learning a call flow from an ended call and saving it: the one way, for the call manager
(a call that found its own way) and the API (``POST /api/call-flows/learn``).

The rules that pick what a call teaches:

- The flow it continues: the one the call followed, else the number's usable flow, else the
  number's newest stale flow (a stale flow is no longer chosen for calls, but it is what a new
  call to that number re-learns, so its versions and outcome counts carry on).
- A new flow's id: ``flow_id_for(company, number)``, unless a flow of that id exists already (the
  company's flow for another of its numbers): that one is kept and the new one is named by its
  number too (``acme-bank-18005550100``).

``continued_flow`` and ``new_flow_id`` are pure; ``learn_and_save`` reads and writes the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.calls.events import EventData, FlowLearned
from app.ivr.flow import CallFlow
from app.ivr.learner import CallFlowLearner, LearnError, discoveries_from_events, flow_id_for
from app.phone import digits_only

__all__ = ["FlowStore", "Learned", "LearnError", "continued_flow", "learn_and_save", "new_flow_id"]


class FlowStore(Protocol):
    """What learning needs of the store (``app.store.Store`` has it; tests pass a fake)."""

    def find_flow_for_number(self, number: str) -> CallFlow | None: ...

    def list_flows(self, company: str | None = None, tag: str | None = None, stale: bool | None = None) -> list[CallFlow]: ...

    def get_flow(self, flow_id: str) -> CallFlow | None: ...

    def upsert_flow(self, flow: CallFlow) -> None: ...

    def set_flow_stale(self, flow_id: str, stale: bool = True) -> bool: ...


Emit = Callable[[EventData], None]  # emit(FlowLearned(...)) onto the call's events


@dataclass(frozen=True)
class Learned:
    flow: CallFlow
    merged: bool  # True: a new version of an existing flow; False: a new flow

    def event(self) -> FlowLearned:
        return FlowLearned(
            flow_id=self.flow.id, version=self.flow.version, steps=[step.id for step in self.flow.steps], merged=self.merged
        )


def continued_flow(number: str, usable: CallFlow | None, stale: Iterable[CallFlow]) -> CallFlow | None:
    """The flow a call to ``number`` adds to: its usable flow, else its newest stale one, else None."""
    if usable is not None:
        return usable
    return max((flow for flow in stale if flow.phone_number == number), key=lambda flow: flow.version, default=None)


def new_flow_id(company: str, number: str, stored_ids: Container[str]) -> str:
    """The id of a new flow, given the ids of stored flows (those of its namesakes are enough)."""
    flow_id = flow_id_for(company, number)
    if flow_id in stored_ids:
        # The company's flow for another of its numbers: keep it, and name this one by its number too.
        return f"{flow_id}-{digits_only(number)}"
    return flow_id


async def learn_and_save(
    store: FlowStore,
    events: Sequence[dict[str, Any]],
    *,
    number: str,
    company: str,
    intent: str,
    flow: CallFlow | None = None,
    emit: Emit | None = None,
    learner: CallFlowLearner | None = None,
) -> Learned:
    """Learn from a call's journal, store the flow (usable again) and emit FLOW_LEARNED.

    ``number``: normalised; ``flow``: the flow the call followed, if any. Raises ``LearnError``
    when the call teaches nothing; then nothing is stored and nothing emitted.
    """
    learner = learner or CallFlowLearner()
    discoveries, outcome = discoveries_from_events(list(events))
    existing = flow
    if existing is None:
        usable = await asyncio.to_thread(store.find_flow_for_number, number)
        stale = [] if usable is not None else await asyncio.to_thread(store.list_flows, stale=True)
        existing = continued_flow(number, usable, stale)
    if existing is not None:
        learned = learner.merge_discoveries(existing, discoveries, outcome=outcome, intent=intent)
    else:
        namesake = await asyncio.to_thread(store.get_flow, flow_id_for(company, number))
        flow_id = new_flow_id(company, number, {namesake.id} if namesake is not None else set())
        learned = learner.build_flow(discoveries, number, company, intent, outcome=outcome, flow_id=flow_id)
    await asyncio.to_thread(store.upsert_flow, learned)
    await asyncio.to_thread(store.set_flow_stale, learned.id, False)
    result = Learned(learned, merged=existing is not None)
    if emit is not None:
        emit(result.event())
    return result
