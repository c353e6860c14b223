"""Routes ARI events to per-call ordered queues by the resource ids each call owns.

A call registers its ids (channels, bridges, snoops, playbacks, recording names) *before* the
REST request that creates them, so that events arriving ahead of the REST reply are not lost.
Each id has at most one owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from app.ari.events import AriEvent

log = logging.getLogger(__name__)


class EventRouter:
    def __init__(self, on_unclaimed: Callable[[AriEvent], None] | None = None) -> None:
        self._on_unclaimed = on_unclaimed
        self._queues: dict[str, asyncio.Queue[AriEvent]] = {}
        self._ids_by_owner: dict[str, set[str]] = {}
        self._owner_by_id: dict[str, str] = {}
        self.unclaimed = 0

    def register(self, owner: str, ids: Iterable[str] = ()) -> asyncio.Queue[AriEvent]:
        """Create ``owner``'s queue (unbounded: a call must never lose one of its events)."""
        if owner in self._queues:
            raise ValueError(f"owner {owner!r} is already registered")
        self._queues[owner] = asyncio.Queue()
        self._ids_by_owner[owner] = set()
        try:
            self.add_ids(owner, ids)
        except ValueError:
            self.unregister(owner)
            raise
        return self._queues[owner]

    def add_ids(self, owner: str, ids: Iterable[str]) -> None:
        if owner not in self._queues:
            raise KeyError(f"owner {owner!r} is not registered")
        new_ids = set(ids)
        taken = {rid: self._owner_by_id[rid] for rid in new_ids if self._owner_by_id.get(rid, owner) != owner}
        if taken:
            raise ValueError(f"ids already owned by others: {taken}")
        self._ids_by_owner[owner] |= new_ids
        self._owner_by_id.update(dict.fromkeys(new_ids, owner))

    def remove_ids(self, owner: str, ids: Iterable[str]) -> None:
        """Forget ids of ``owner``; ids it does not own are left alone."""
        owned = self._ids_by_owner.get(owner, set())
        for rid in set(ids) & owned:
            owned.discard(rid)
            del self._owner_by_id[rid]

    def unregister(self, owner: str) -> None:
        """Forget the owner and its ids; later events for them count as unclaimed. Idempotent."""
        for rid in self._ids_by_owner.pop(owner, set()):
            del self._owner_by_id[rid]
        self._queues.pop(owner, None)

    def owner_of(self, resource_id: str) -> str | None:
        return self._owner_by_id.get(resource_id)

    def ids_of(self, owner: str) -> frozenset[str]:
        return frozenset(self._ids_by_owner.get(owner, ()))

    def dispatch(self, event: AriEvent) -> None:
        """Queue the event once for each owner of any of its resources, else hand it to on_unclaimed."""
        owners = {owner for rid in event.resource_ids() if (owner := self._owner_by_id.get(rid)) is not None}
        for owner in owners:
            self._queues[owner].put_nowait(event)
        if owners:
            return
        self.unclaimed += 1
        if self._on_unclaimed is not None:
            try:
                self._on_unclaimed(event)
            except Exception:
                log.exception("on_unclaimed handler failed on %s", event.type)
