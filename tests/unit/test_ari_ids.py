"""The ``hs-`` prefix: every ARI id a call creates carries it, and only those are swept at start-up."""

from types import SimpleNamespace

from app.calls.models import ARI_ID_PREFIX
from app.calls.session import CallIds
from app.runtime import HoldSlayer


def test_every_id_a_call_creates_carries_the_prefix():
    ids = CallIds("abc123")
    every = ids.all_channels() + ids.all_bridges()
    assert len(set(every)) == len(every) == 8
    assert all(i.startswith(f"{ARI_ID_PREFIX}abc123-") for i in every)


class _FakeAri:
    def __init__(self, channels, bridges):
        self.channels, self.bridges = channels, bridges
        self.hung_up: list[str] = []
        self.destroyed: list[str] = []

    async def list_channels(self):
        return [SimpleNamespace(id=i) for i in self.channels]

    async def list_bridges(self):
        return [SimpleNamespace(id=i) for i in self.bridges]

    async def hangup(self, channel_id, missing_ok=False):
        self.hung_up.append(channel_id)

    async def destroy_bridge(self, bridge_id, missing_ok=False):
        self.destroyed.append(bridge_id)


async def test_the_start_up_sweep_removes_only_what_this_app_created():
    ids = CallIds("old")
    ari = _FakeAri([ids.company, "PJSIP/alice-0001", ids.user], [ids.hold_bridge, "someone-elses-bridge"])
    runtime = object.__new__(HoldSlayer)  # the sweep needs nothing but the ARI client
    runtime.ari = ari
    await runtime._sweep_orphans()
    assert ari.hung_up == [ids.company, ids.user]
    assert ari.destroyed == [ids.hold_bridge]
