"""The notification channels' health as an operator sees it: the app configured from its settings
with an email (apprise to a local SMTP server) and a webhook to a receiver that answers 500 every
time; /metrics (read with prometheus_client's parser) and /api/health count what each sent and
what failed, and the broken webhook held up neither the email nor the app."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from app.calls import events as ev
from tests.component.test_notify import wait_until
from tests.conftest import api_without_calls
from tests.local_receivers import receiving_posts


@pytest.fixture
async def broken_webhook():
    """A receiver that answers every post with 500: the webhook retries, then gives up."""
    posts: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        posts.append(await request.read())
        return web.Response(status=500)

    async with receiving_posts(handle) as url:
        yield posts, url


async def notification_counts(http, base_url: str) -> dict[tuple[str, str], float]:
    async with http.get(base_url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "holdslayer_notifications"]
    assert family.type == "counter"
    return {(s.labels["channel"], s.labels["result"]): s.value for s in family.samples if s.name.endswith("_total")}


async def test_a_failing_webhook_is_counted_in_metrics_and_health_and_the_email_still_goes(
    tmp_path: Path, corpus, http, database_url, smtp, broken_webhook
):
    mailbox, smtp_port = smtp
    posts, hook_url = broken_webhook
    settings = {
        "notify_urls": [f"mailto://127.0.0.1:{smtp_port}?from=holdslayer@example.com&to=me@example.com&mode=insecure"],
        "webhook_url": hook_url,
        "webhook_secret": "s3cret",
    }
    async with api_without_calls(tmp_path, http, corpus, database_url, **settings) as (call, holdslayer):
        zeros = {(c, r): 0.0 for c in ("apprise", "webhook") for r in ("sent", "failed")}
        assert await notification_counts(http, call.base_url) == zeros, "a configured channel shows before it sends"

        bus = holdslayer.bus
        bus.emit("c1", ev.CallCreated(number="8005550100", company="Acme Bank"))
        bus.emit("c1", ev.HumanDetected(t=70.0, confidence=0.9, evidence={"rule": "reply"}, hold_seconds=65.0))
        await wait_until(lambda: holdslayer.notifier.sent["apprise"] == 1, timeout=10)
        assert "Subject: A person is on the line: Acme Bank" in mailbox.messages[0][2]
        counts = await notification_counts(http, call.base_url)
        assert counts[("apprise", "sent")] == 1.0 and counts[("webhook", "sent")] == 0.0

        # Four attempts with a doubling wait (0.5 + 1 + 2 s), then the webhook gives up.
        await wait_until(lambda: holdslayer.notifier.failed["webhook"] == 1, timeout=15)
        assert len(posts) == 4
        counts = await notification_counts(http, call.base_url)
        assert counts == {**zeros, ("apprise", "sent"): 1.0, ("webhook", "failed"): 1.0}

        status, health = await call("GET", "/api/health")
        assert status == 200
        assert health["notifications"] == [
            {"channel": "apprise", "sent": 1, "failed": 0},
            {"channel": "webhook", "sent": 0, "failed": 1},
        ]


async def test_no_channel_configured_no_series(tmp_path: Path, corpus, http, database_url):
    async with api_without_calls(tmp_path, http, corpus, database_url) as (call, _):
        async with http.get(call.base_url + "/metrics") as resp:
            text = await resp.text()
        family = next(f for f in text_string_to_metric_families(text) if f.name == "holdslayer_notifications")
        assert family.samples == []
        status, health = await call("GET", "/api/health")
        assert (status, health["notifications"]) == (200, [])
