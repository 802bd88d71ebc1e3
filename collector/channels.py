"""Building the alert channels declared in driftline.yaml (wiring; secrets read here)."""

from __future__ import annotations

from collections.abc import Mapping

from alerts.channels.base import Channel
from alerts.channels.webhook import WebhookChannel
from collector.config import Settings
from collector.config_alerts import ChannelSettings
from collector.errors import ConfigError


def channel_types(settings: Settings) -> dict[str, str]:
    """Each declared channel's type, by name."""
    return {name: channel.type for name, channel in settings.channels.items()}


def build_channels(settings: Settings, environ: Mapping[str, str]) -> dict[str, Channel]:
    """One sender per declared channel.

    Raises:
        ConfigError: A secret the channel needs is not set in `environ`.
    """
    resend = max((m.schedule.every_seconds for m in settings.models), default=60.0)
    return {name: build_channel(name, channel, environ, resend_seconds=resend)
            for name, channel in settings.channels.items()}


def build_channel(name: str, channel: ChannelSettings, environ: Mapping[str, str], *,
                  resend_seconds: float) -> Channel:
    """The sender of one channel."""
    if channel.type == "webhook":
        secret = environ.get(channel.secret_env or "")
        if not secret:
            raise ConfigError(f"channels.{name}.secret_env: environment variable "
                              f"{channel.secret_env} is not set (a whsec_... secret)")
        return WebhookChannel(channel.url or "", secret=secret,
                              timeout_seconds=channel.timeout_seconds, name=name)
    if channel.type == "slack":
        from alerts.channels.slack import SlackChannel

        url = channel.resolved_url(environ)
        if not url:
            raise ConfigError(f"channels.{name}.url_env: environment variable "
                              f"{channel.url_env} is not set (the Slack incoming-webhook URL)")
        return SlackChannel(url, name=name, timeout_seconds=channel.timeout_seconds)
    if channel.type == "email":
        from alerts.channels.email import EmailChannel

        return EmailChannel(host=channel.host or "", port=channel.port,
                            sender=channel.sender or "", recipients=list(channel.recipients),
                            username_env=channel.username_env,
                            password_env=channel.password_env, starttls=channel.starttls,
                            timeout_seconds=channel.timeout_seconds, name=name,
                            environ=environ)
    from alerts.channels.alertmanager import AlertmanagerChannel

    return AlertmanagerChannel(channel.url or "", name=name,
                               timeout_seconds=channel.timeout_seconds,
                               resend_hint_seconds=resend_seconds)
