"""Notifications: the moments that matter told to the user (desktop, email, SMS, chat, webhook)."""

from __future__ import annotations

from app.config import Settings
from app.notify.messages import Notification, notification_for
from app.notify.notifier import Channel, Notifier

__all__ = ["Channel", "Notification", "Notifier", "channels_from_settings", "notification_for"]


def channels_from_settings(settings: Settings) -> list[Channel]:
    channels: list[Channel] = []
    if settings.notify_urls:
        from app.notify.apprise_channel import AppriseChannel

        apprise_channel = AppriseChannel(list(settings.notify_urls))
        if apprise_channel.rejected:
            raise ValueError(f"notify_urls not understood by apprise: {', '.join(apprise_channel.rejected)}")
        channels.append(apprise_channel)
    if settings.webhook_url:
        from app.notify.webhook import WebhookChannel

        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
        channels.append(WebhookChannel(settings.webhook_url, secret))
    return channels
