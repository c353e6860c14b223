"""Notifications configured in the settings, fired by a whole call: REST -> app -> simulated PBX,
a person reached and the user bridged; an email through apprise to a local SMTP server (aiosmtpd)
and a signed webhook to a local receiver. A webhook that never answers is given up on and
counted, and the call goes through all the same."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from app.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from tests.component.test_notify import wait_until
from tests.e2e.test_e2e_calls import MENU, Stack, event_types, running_stack
from tests.local_receivers import receiving_posts

pytestmark = pytest.mark.e2e

SECRET = "e2e-webhook-secret"
COMPANY = "Test Company"  # flows/test-menu.yaml, the company at MENU: a person after a 6 s hold


class Receiver:
    """Webhook posts with their signature checked; ``hang``: never answers (a stuck endpoint)."""

    def __init__(self) -> None:
        self.hang = False
        self.posts: list[tuple[bool, dict]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        valid = verify_signature(SECRET, request.headers[TIMESTAMP_HEADER], body, request.headers[SIGNATURE_HEADER])
        self.posts.append((valid, json.loads(body)))
        if self.hang:
            await asyncio.Event().wait()
        return web.Response(status=204)

    def kinds(self) -> list[str]:
        return [body["kind"] for _, body in self.posts]


@pytest.fixture
async def receiver():
    hook = Receiver()
    async with receiving_posts(hook.handle) as url:
        yield hook, url


def notify_settings(smtp_port: int, hook_url: str) -> dict:
    """What a user puts in HOLDSLAYER_NOTIFY_URLS, _WEBHOOK_URL and _WEBHOOK_SECRET."""
    return {
        "notify_urls": [f"mailto://127.0.0.1:{smtp_port}?from=holdslayer@example.com&to=me@example.com&mode=insecure"],
        "webhook_url": hook_url,
        "webhook_secret": SECRET,
    }


async def notification_counts(stack: Stack) -> dict[tuple[str, str], float]:
    status, body, _ = await stack.get("/metrics")
    assert status == 200
    return {
        (s.labels["channel"], s.labels["result"]): s.value
        for family in text_string_to_metric_families(body.decode())
        if family.name == "holdslayer_notifications"
        for s in family.samples
        if s.name.endswith("_total")
    }


async def test_a_person_reached_is_told_by_email_and_signed_webhook(tmp_path: Path, corpus, http, database_url, smtp, receiver):
    mailbox, smtp_port = smtp
    hook, hook_url = receiver
    async with running_stack(tmp_path, http, corpus, database_url, **notify_settings(smtp_port, hook_url)) as stack:
        call_id = await stack.call(MENU)
        call = await stack.wait_final(call_id, timeout=120)
        assert (call["status"], call["reason"]) == ("completed", "bridged"), call["detail"]
        assert event_types(call).index("HUMAN_DETECTED") < event_types(call).index("TRANSFER_COMPLETE")

        await wait_until(lambda: len(hook.posts) >= 2 and len(mailbox.messages) >= 2, timeout=15)
        assert hook.kinds() == ["person_on_the_line", "connected"], "a completed call sends these two, once each"
        assert all(valid for valid, _ in hook.posts), "every post signed with the configured secret"
        person, connected = (body for _, body in hook.posts)
        assert person["call_id"] == connected["call_id"] == call_id
        assert person["event"]["type"] == "HUMAN_DETECTED" and connected["event"]["type"] == "TRANSFER_COMPLETE"
        assert person["title"] == f"A person is on the line: {COMPANY}"
        # The event sent is the one the call journaled.
        journaled = next(e for e in call["events"] if e["type"] == "HUMAN_DETECTED")
        assert person["event"] == journaled

        subjects = [line for _, _, content in mailbox.messages for line in content.splitlines() if line.startswith("Subject:")]
        assert subjects == [f"Subject: A person is on the line: {COMPANY}", f"Subject: Connected: {COMPANY}"]
        assert all(rcpt == ["me@example.com"] for _, rcpt, _ in mailbox.messages)

        await wait_until(lambda: stack.holdslayer.notifier.sent["apprise"] == 2, timeout=10)
        counts = await notification_counts(stack)
        assert counts == {("apprise", "sent"): 2, ("apprise", "failed"): 0, ("webhook", "sent"): 2, ("webhook", "failed"): 0}
        await stack.assert_pbx_clean()


async def test_a_webhook_that_never_answers_holds_up_no_call(tmp_path: Path, corpus, http, database_url, smtp, receiver):
    mailbox, smtp_port = smtp
    hook, hook_url = receiver
    hook.hang = True
    settings = {**notify_settings(smtp_port, hook_url), "notify_timeout_seconds": 8.0}
    async with running_stack(tmp_path, http, corpus, database_url, **settings) as stack:
        call_id = await stack.call(MENU)
        call = await stack.wait_final(call_id, timeout=120)
        assert (call["status"], call["reason"]) == ("completed", "bridged"), call["detail"]
        # Each webhook post was given up on after the time limit (8 s: an email may take seconds on a
        # busy machine, and the limit is every channel's); the emails went.
        notifier = stack.holdslayer.notifier
        await wait_until(lambda: notifier.failed["webhook"] == 2 and notifier.sent["apprise"] == 2, timeout=30)
        assert hook.kinds() == ["person_on_the_line", "connected"], "given up at the time limit, not retried"
        assert len(mailbox.messages) == 2
        counts = await notification_counts(stack)
        assert counts[("webhook", "failed")] == 2 and counts[("webhook", "sent")] == 0
        assert counts[("apprise", "sent")] == 2
        await stack.assert_pbx_clean()
