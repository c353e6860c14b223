"""GET /metrics: the process's health in the Prometheus text format (``prometheus_client``).

One collector reads the running Hold Slayer at scrape time (calls by state, their media
counters, the ARI connection, the tallies of ``app.monitoring``, provider failures, notifications
sent and failed per channel), so nothing on the call path updates a metric. Each API app has a
registry of its own, not the library's global one: several apps in one process (tests) never
see each other's series.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from app import provider_errors
from app.calls.models import FINAL_STATUSES, CallStatus
from app.media.health import COUNTERS, MediaHealth
from app.runtime import HoldSlayer

router = APIRouter()

# What each media counter counts, for the series' HELP lines.
_MEDIA_HELP = {
    "received": "RTP packets received",
    "lost": "RTP packets lost (sequence numbers skipped and never received)",
    "late": "RTP packets that arrived after their frame was concealed",
    "duplicated": "RTP packets received twice",
    "concealed": "20 ms frames of silence played in place of audio (loss, late packets, stalls)",
    "malformed": "datagrams that were not RTP",
    "stray": "RTP packets from another address than the far end's, dropped",
    "dropped": "frames discarded because the call read none for a minute",
}


def _media_metric(name: str) -> str:
    unit = "frames" if name in ("concealed", "dropped") else "packets"
    return f"media_{name}_{unit}"


class HoldSlayerCollector(Collector):
    def __init__(self, holdslayer: Callable[[], HoldSlayer]) -> None:
        self._holdslayer = holdslayer
        # With worker processes: the live calls and their states, read from the store before each scrape.
        self.worker_call_states: list[str] = []
        self.worker_calls: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        hs = self._holdslayer()
        manager = hs.manager
        sessions = [s for s in (manager.session(call_id) for call_id in manager.active_calls) if s is not None]

        calls = GaugeMetricFamily("holdslayer_calls", "Live calls by state", labels=["state"])
        by_state = {status.value: 0 for status in CallStatus if status not in FINAL_STATUSES}
        states = [session.status.value for session in sessions]
        if hs.workers is not None:
            states += self.worker_call_states
        for state in states:
            by_state[state] = by_state.get(state, 0) + 1
        for state, count in sorted(by_state.items()):
            calls.add_metric([state], count)
        yield calls

        per_call = manager.live_media()
        totals = manager.media_totals()
        if hs.workers is not None:  # the workers' calls and totals, as their last heartbeats said
            # Only the calls still live: a heartbeat may be a second older than a call's end.
            per_call.update((c, health) for c, health in hs.workers.call_media().items() if c in self.worker_calls)
            totals = MediaHealth.total([totals, *(MediaHealth(**beat.media) for beat in hs.workers.heartbeats())])
        for name in COUNTERS:
            metric = _media_metric(name)
            live = CounterMetricFamily(
                f"holdslayer_call_{metric}", f"{_MEDIA_HELP[name]}, per live call", labels=["call_id"]
            )
            for call_id, health in per_call.items():
                live.add_metric([call_id], getattr(health, name))
            yield live
            total = CounterMetricFamily(f"holdslayer_{metric}", f"{_MEDIA_HELP[name]}, every call of this process")
            total.add_metric([], getattr(totals, name))
            yield total

        decisions = CounterMetricFamily(
            "holdslayer_detector_decisions", "What the detector decided, by kind", labels=["decision"]
        )
        for decision, count in sorted(hs.tally.decisions.items()):
            decisions.add_metric([decision], count)
        yield decisions

        holds = HistogramMetricFamily(
            "holdslayer_hold_duration_seconds",
            "Holds that ended, by outcome: a person found, or the call ended on hold",
            labels=["outcome"],
        )
        for outcome, histogram in sorted(hs.tally.holds.items()):
            holds.add_metric([outcome], histogram.buckets(), histogram.total)
        yield holds

        connected = GaugeMetricFamily("holdslayer_ari_connected", "1 while the ARI event websocket is up")
        connected.add_metric([], 1.0 if hs.stream.connected.is_set() else 0.0)
        yield connected
        reconnects = CounterMetricFamily("holdslayer_ari_reconnects", "ARI event websocket reconnections")
        reconnects.add_metric([], hs.stream.reconnects)
        yield reconnects

        failures = CounterMetricFamily(
            "holdslayer_provider_errors",
            "Failures of speech-to-text, text-to-speech and LLM providers (whole process)",
            labels=["provider", "service"],
        )
        for (provider, service), count in sorted(provider_errors.snapshot().items()):
            failures.add_metric([provider, service], count)
        yield failures

        notifications = CounterMetricFamily(
            "holdslayer_notifications",
            "Notifications by channel (apprise, webhook): sent, or failed after the channel's retries or time limit",
            labels=["channel", "result"],
        )
        for channel, sent, failed in hs.notifier.tally():
            notifications.add_metric([channel, "sent"], sent)
            notifications.add_metric([channel, "failed"], failed)
        yield notifications

        lag = GaugeMetricFamily("holdslayer_event_loop_lag_seconds", "How late the event loop woke the latest probe")
        lag.add_metric([], hs.loop_lag.lag.latest)
        yield lag
        worst = GaugeMetricFamily(
            "holdslayer_event_loop_lag_max_seconds", "The worst event-loop lag of the last minute"
        )
        worst.add_metric([], hs.loop_lag.lag.worst)
        yield worst


def metrics_registry(holdslayer: Callable[[], HoldSlayer]) -> tuple[CollectorRegistry, HoldSlayerCollector]:
    registry = CollectorRegistry(auto_describe=False)
    collector = HoldSlayerCollector(holdslayer)
    registry.register(collector)
    return registry, collector


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    found = getattr(request.app.state, "metrics_registry", None)
    if found is None:
        found = request.app.state.metrics_registry = metrics_registry(lambda: request.app.state.holdslayer)
    registry, collector = found
    runtime: HoldSlayer = request.app.state.holdslayer
    if runtime.workers is not None:  # the calls are in the workers: their states are in the store
        live = await asyncio.to_thread(runtime.store.live_calls)
        collector.worker_call_states = [c.status.value for c in live]
        collector.worker_calls = {c.id for c in live}
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
