"""Notifications delivered to real local servers: an SMTP server (aiosmtpd) through apprise, and
an HTTP receiver that checks the webhook's signature and answers 500 once."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from app.calls import events as ev
from app.calls.events import EventBus
from app.notify.apprise_channel import AppriseChannel
from app.notify.notifier import Notifier
from app.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookChannel, verify_signature
from tests.conftest import free_tcp_socket
from tests.local_receivers import receiving_posts

SECRET = "webhook-secret"


class Receiver:
    """A webhook receiver: refuses the first ``fail_first`` posts with 500, checks signatures."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.posts: list[tuple[bool, dict]] = []  # (signature valid, body)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        valid = verify_signature(SECRET, request.headers[TIMESTAMP_HEADER], body, request.headers[SIGNATURE_HEADER])
        self.posts.append((valid, json.loads(body)))
        if len(self.posts) <= self.fail_first:
            return web.Response(status=500)
        return web.Response(status=204)


@pytest.fixture
async def receiver():
    hook = Receiver(fail_first=1)
    async with receiving_posts(hook.handle) as url:
        yield hook, url


def a_person_answers(bus: EventBus, call_id: str = "c1") -> None:
    bus.emit(call_id, ev.CallCreated(number="8005550100", company="Acme Bank"))
    bus.emit(call_id, ev.HoldProgress(hold_seconds=60.0))
    bus.emit(call_id, ev.HumanDetected(t=70.0, confidence=0.9, evidence={"rule": "reply"}, hold_seconds=65.0))


async def wait_until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_an_email_and_a_signed_webhook_tell_the_user_a_person_answered(smtp, receiver):
    mailbox, port = smtp
    hook, url = receiver
    bus = EventBus()
    email = AppriseChannel([f"mailto://127.0.0.1:{port}?from=holdslayer@example.com&to=me@example.com&mode=insecure"])
    notifier = Notifier(bus, [email, WebhookChannel(url, SECRET, first_backoff=0.05)])
    notifier.start()
    a_person_answers(bus)
    await wait_until(lambda: mailbox.messages and len(hook.posts) >= 2)
    await notifier.stop()

    sender, recipients, content = mailbox.messages[0]
    assert (sender, recipients) == ("holdslayer@example.com", ["me@example.com"])
    assert "Subject: A person is on the line: Acme Bank" in content
    # The receiver answered 500 once: the same notification came again, validly signed both times.
    assert [valid for valid, _ in hook.posts] == [True, True]
    assert hook.posts[0][1] == hook.posts[1][1]
    body = hook.posts[1][1]
    assert body["kind"] == "person_on_the_line" and body["call_id"] == "c1" and body["event"]["type"] == "HUMAN_DETECTED"
    assert len(mailbox.messages) == 1, "hold progress is no notification"
    assert notifier.sent == {"apprise": 1, "webhook": 1} and not notifier.failed


async def test_a_broken_channel_is_counted_and_holds_up_nothing(smtp):
    mailbox, port = smtp
    bus = EventBus()
    closed = free_tcp_socket()
    dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    closed.close()  # nothing listens there: every attempt is refused
    email = AppriseChannel([f"mailto://127.0.0.1:{port}?from=holdslayer@example.com&to=me@example.com&mode=insecure"])
    notifier = Notifier(bus, [WebhookChannel(dead_url, SECRET, attempts=3, first_backoff=0.05), email])
    notifier.start()
    a_person_answers(bus)
    bus.emit("c1", ev.CallEnded(status="failed", reason="user_no_answer", detail="sip_phone did not answer"))
    await wait_until(lambda: notifier.failed["webhook"] == 2 and notifier.sent["apprise"] == 2)
    await notifier.stop()
    subjects = [content for _, _, content in mailbox.messages]
    assert any("A person is on the line" in s for s in subjects)
    assert any("The call to Acme Bank failed: user no answer" in s for s in subjects)


async def test_a_channel_that_never_answers_is_given_up_after_the_time_limit():
    class Hanging:
        name = "hanging"

        async def send(self, notification) -> None:
            await asyncio.Event().wait()

    bus = EventBus()
    notifier = Notifier(bus, [Hanging()], timeout=0.1)
    notifier.start()
    a_person_answers(bus)
    await wait_until(lambda: notifier.failed["hanging"] == 1)
    await notifier.stop()
