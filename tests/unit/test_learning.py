"""Learning and saving a flow (app.calls.learning): the rules the manager and the API share.

The store is an in-memory fake with the same semantics as ``Store`` for flows: a stale flow is
not found for its number, and storing a flow makes it usable again only through set_flow_stale.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app.calls.events import FlowLearned
from app.calls.learning import LearnError, continued_flow, learn_and_save, new_flow_id
from app.ivr.flow import CallFlow
from tests.unit.test_learner import ADVOCATE_MENU, MAIN_MENU, Journal

NUMBER = "18005550199"


def _flow(flow_id: str, number: str = NUMBER, version: int = 1, company: str = "Globex") -> CallFlow:
    return CallFlow(
        id=flow_id, name=flow_id, company=company, phone_number=number, version=version,
        steps=[{"id": "hold", "type": "HOLD"}, {"id": "transfer", "type": "TRANSFER"}],
    )  # fmt: skip


class FakeFlowStore:
    def __init__(self, *flows: CallFlow, stale: tuple[str, ...] = ()) -> None:
        self.flows = {flow.id: flow for flow in flows}
        self.stale = set(stale)

    def find_flow_for_number(self, number):
        usable = [f for f in self.flows.values() if f.phone_number == number and f.id not in self.stale]
        return max(usable, key=lambda f: f.version, default=None)

    def list_flows(self, company=None, tag=None, stale=None):
        return [f for f in self.flows.values() if stale is None or (f.id in self.stale) == stale]

    def get_flow(self, flow_id):
        return self.flows.get(flow_id)

    def upsert_flow(self, flow):
        self.flows[flow.id] = flow

    def set_flow_stale(self, flow_id, stale=True):
        (self.stale.add if stale else self.stale.discard)(flow_id)
        return flow_id in self.flows


def _explored(call_id: str = "c1") -> list[dict]:
    return (
        Journal(call_id)
        .menu("explore", MAIN_MENU, seconds=21.4).press("explore", "2")
        .menu("explore", ADVOCATE_MENU, seconds=9).press("explore", "1")
        .hold().human().ended()
    ).events  # fmt: skip


# ---------------------------------------------------------------------------- the pure rules


def test_the_usable_flow_is_continued_before_any_stale_one():
    usable, stale = _flow("globex", version=1), _flow("old", version=5)
    assert continued_flow(NUMBER, usable, [stale]) is usable


def test_without_a_usable_flow_the_newest_stale_flow_of_the_number_is_continued():
    stale = [_flow("v2", version=2), _flow("v3", version=3), _flow("other", number="18005550000", version=9)]
    assert continued_flow(NUMBER, None, stale).id == "v3"
    assert continued_flow("18005550123", None, stale) is None


def test_a_new_flow_is_named_by_its_company_or_its_number():
    assert new_flow_id("Globex Corp.", NUMBER, set()) == "globex-corp"
    assert new_flow_id("", "+1 800", set()) == "number-1800"


def test_a_new_flow_whose_name_is_taken_is_named_by_its_number_too():
    assert new_flow_id("Globex", "+18005550199", {"globex"}) == "globex-18005550199"


# ---------------------------------------------------------------------------- learn and save


async def test_a_first_call_stores_a_usable_flow_and_emits_flow_learned():
    store, emitted = FakeFlowStore(), []
    learned = await learn_and_save(
        store, _explored(), number=NUMBER, company="Globex", intent="billing",
        emit=emitted.append,
    )  # fmt: skip
    assert learned.merged is False and learned.flow.version == 1
    assert store.find_flow_for_number(NUMBER) == learned.flow == store.flows["globex"]
    assert [s.dtmf for s in learned.flow.steps] == ["2", "1", None, None]
    assert emitted == [FlowLearned(flow_id="globex", version=1, steps=["menu_1", "menu_2", "hold", "transfer"], merged=False)]


async def test_a_stale_flow_is_relearned_as_its_next_version_and_usable_again():
    store = FakeFlowStore(_flow("globex", version=3), stale=("globex",))
    learned = await learn_and_save(store, _explored(), number=NUMBER, company="Globex", intent="billing")
    assert learned.merged is True and learned.flow.id == "globex" and learned.flow.version == 4
    assert "globex" not in store.stale and store.find_flow_for_number(NUMBER).version == 4


async def test_the_flow_the_call_followed_is_the_one_it_updates():
    followed, usable = _flow("followed", version=2), _flow("usable", version=7)
    store = FakeFlowStore(followed, usable, stale=("followed",))
    learned = await learn_and_save(store, _explored(), number=NUMBER, company="", intent="billing", flow=followed)
    assert (learned.flow.id, learned.flow.version, learned.merged) == ("followed", 3, True)
    assert store.flows["usable"] == usable


async def test_the_company_flow_of_another_number_is_kept():
    other = _flow("globex", number="18005550000")
    store = FakeFlowStore(other)
    learned = await learn_and_save(store, _explored(), number=NUMBER, company="Globex", intent="billing")
    assert learned.flow.id == f"globex-{NUMBER}" and learned.merged is False
    assert store.flows["globex"] == other


async def test_a_call_that_teaches_nothing_stores_and_emits_nothing():
    store, emitted = FakeFlowStore(), []
    with pytest.raises(LearnError):
        await learn_and_save(
            store, Journal("c1").ended().events, number=NUMBER, company="Globex", intent="billing",
            emit=emitted.append,
        )  # fmt: skip
    assert store.flows == {} and emitted == []


# ---------------------------------------------------------------------------- editing a flow


def test_an_edit_is_the_next_version_and_keeps_the_history():
    created = datetime(2026, 1, 1, tzinfo=timezone.utc)
    stored = _flow("globex", version=4).model_copy(update={"created_at": created, "success_count": 3, "fail_count": 1})
    now = created + timedelta(days=30)
    edited = _flow("globex", version=1).model_copy(update={"name": "renamed"}).edit_of(stored, now)
    assert (edited.name, edited.version, edited.success_count, edited.fail_count) == ("renamed", 5, 3, 1)
    assert (edited.created_at, edited.updated_at) == (created, now)
    assert _flow("globex", version=9).edit_of(stored, now).version == 9  # a higher version given is kept


def test_a_first_edit_is_stored_as_given():
    flow = _flow("new", version=2)
    assert flow.edit_of(None) is flow
