"""A real SMTP server (aiosmtpd) on a free local port, keeping what it receives: the email
channel's tests deliver to it through apprise."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import free_tcp_socket


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode()))
        return "250 OK"


@pytest.fixture
def smtp():
    """(mailbox, port) of a running SMTP server."""
    sock = free_tcp_socket()
    port = sock.getsockname()[1]
    sock.close()
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()
