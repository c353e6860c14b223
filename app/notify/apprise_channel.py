"""Desktop, email, SMS and chat notifications through apprise (one URL per service:
``mailto://``, ``dbus://``, ``twilio://``, ``tgram://``, ``slack://`` ... see its documentation)."""

from __future__ import annotations

from app.notify.messages import Notification


class AppriseError(Exception):
    pass


class AppriseChannel:
    name = "apprise"

    def __init__(self, urls: list[str]) -> None:
        import apprise  # noqa: PLC0415 - only when notifications are configured

        self._apprise = apprise.Apprise()
        self.rejected = [url for url in urls if not self._apprise.add(url)]

    async def send(self, notification: Notification) -> None:
        if not await self._apprise.async_notify(title=notification.title, body=notification.body):
            raise AppriseError("apprise could not deliver the notification to every service")
