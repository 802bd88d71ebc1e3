"""E-mail over SMTP with STARTTLS: a plain-text and an HTML part per notification.

`smtplib.SMTP.starttls()` without a context skips certificate checks (CPython 3.11 builds
an unverified context), so this channel always passes one: `ssl.create_default_context()`
unless the caller gives its own. Credentials are read from the environment variables the
configuration names, at send time, so a rotated password needs no restart and the
configuration never holds a secret.
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import logging
import os
import re
import smtplib
import ssl
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage

from alerts.channels.slack import format_value, headline
from alerts.clock import utcnow
from alerts.errors import DeliveryError
from alerts.message import Message, Notification

logger = logging.getLogger(__name__)

_SUBJECT_CHARS = 200
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def email_message(notification: Notification, *, message_id: str, sender: str,
                  recipients: Sequence[str], now: datetime) -> EmailMessage:
    """The e-mail for one notification: multipart/alternative, text then HTML.

    Args:
        notification: The transition to render.
        message_id: The delivery's id; the `Message-ID` derives from it, so every attempt
            of one delivery carries the same one and mail clients can drop duplicates.
        sender: The `From` address.
        recipients: The `To` addresses.
        now: The `Date`.

    Returns:
        The message, ready for `smtplib.SMTP.send_message`.
    """
    n = notification
    subject = headline(n)
    msg = EmailMessage()
    msg["Subject"] = subject if len(subject) <= _SUBJECT_CHARS else subject[:199] + "…"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = email.utils.format_datetime(now)
    local = message_id if _SAFE_ID.fullmatch(message_id) else hashlib.sha256(
        message_id.encode("utf-8")).hexdigest()[:32]
    domain = sender.rpartition("@")[2] or "driftline.invalid"
    msg["Message-ID"] = f"<{local}.driftline@{domain}>"
    msg["X-Driftline-Fingerprint"] = n.fingerprint
    msg["X-Driftline-Event"] = n.event_type
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to alerts

    facts = [("Model", n.model), ("Rule", n.rule), ("Severity", n.severity),
             ("Status", n.status), ("Since", n.starts_at)]
    if n.status == "resolved":
        facts.append(("Resolved at", n.ends_at or n.timestamp))
    values = [(str(k), format_value(v)) for k, v in n.values.items()]
    link = n.run_url if n.run_url and n.run_url.startswith(("http://", "https://")) else None

    lines = [subject, "", *(f"{k}: {v}" for k, v in facts)]
    if values:
        lines += ["", "Values:", *(f"  {k}: {v}" for k, v in values)]
    if n.description:
        lines += ["", n.description]
    if n.run_url:
        lines += ["", f"Run: {n.run_url}"]
    lines += ["", f"Fingerprint: {n.fingerprint}", f"Sent: {n.timestamp}"]
    msg.set_content("\n".join(lines) + "\n")

    def rows(pairs: Sequence[tuple[str, str]]) -> str:
        return "".join(f"<tr><th align=\"left\">{html.escape(k)}</th>"
                       f"<td>{html.escape(v)}</td></tr>" for k, v in pairs)

    color = "#2e7d32" if n.status == "resolved" else "#c62828"
    parts = [f"<h2 style=\"color:{color}\">{html.escape(subject)}</h2>",
             f"<table>{rows(facts)}</table>"]
    if values:
        parts.append(f"<h3>Values</h3><table>{rows(values)}</table>")
    if n.description:
        parts.append(f"<p style=\"white-space:pre-wrap\">{html.escape(n.description)}</p>")
    if link:
        parts.append(f"<p><a href=\"{html.escape(link, quote=True)}\">View run "
                     f"{html.escape(n.run_id or '')}</a></p>")
    parts.append(f"<p><small>Fingerprint {html.escape(n.fingerprint)} · "
                 f"{html.escape(n.timestamp)}</small></p>")
    msg.add_alternative("<!DOCTYPE html><html><body>" + "".join(parts) + "</body></html>\n",
                        subtype="html")
    return msg


def _smtp_error(where: str, code: int, reply: bytes | str) -> DeliveryError:
    """SMTP replies: 4xx is transient (RFC 5321 §4.2.1), 5xx permanent."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return DeliveryError(f"{where}: the server answered {code} {' '.join(text.split())[:300]}",
                         retryable=code < 500, status_code=code)


class EmailChannel:
    """Sends each alert notification as an e-mail through one SMTP server.

    Connection refused, timeouts, dropped connections, TLS failures and SMTP 4xx replies are
    retried; 5xx replies (550 recipient refused, 535 authentication failed), a server
    without STARTTLS or AUTH, and a missing credential variable are not. A message that
    some recipients accepted counts as delivered (a retry would repeat it to them); the
    refused ones are logged by count.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int = 587,
        sender: str,
        recipients: Sequence[str],
        username_env: str | None = None,
        password_env: str | None = None,
        starttls: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        timeout_seconds: float = 10.0,
        name: str,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not host:
            raise ValueError(f"e-mail channel {name!r}: host must not be empty")
        if not 0 < port < 65536:
            raise ValueError(f"e-mail channel {name!r}: port must be 1-65535, got {port}")
        if "@" not in sender:
            raise ValueError(f"e-mail channel {name!r}: sender {sender!r} is not an address")
        if isinstance(recipients, str) or not recipients:
            raise ValueError(f"e-mail channel {name!r}: recipients must be a non-empty list")
        if bool(username_env) != bool(password_env):
            raise ValueError(f"e-mail channel {name!r}: give both username_env and "
                             "password_env, or neither")
        if username_env and not starttls:
            raise ValueError(f"e-mail channel {name!r}: login without STARTTLS would send "
                             "the password in clear text")
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        self.name = name
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = list(recipients)
        self._username_env = username_env
        self._password_env = password_env
        self._starttls = starttls
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._timeout = timeout_seconds
        self._environ = environ
        self._clock = clock

    def _credential(self, variable: str) -> str:
        environ = os.environ if self._environ is None else self._environ
        value = environ.get(variable)
        if not value:
            raise DeliveryError(f"e-mail channel {self.name!r}: environment variable "
                                f"{variable} is not set (it holds the SMTP credential)",
                                retryable=False)
        return value

    def send(self, message: Message) -> None:
        """One attempt: connect, STARTTLS, log in, send; classify what went wrong."""
        login = None
        if self._username_env and self._password_env:
            login = (self._credential(self._username_env),
                     self._credential(self._password_env))
        mail = email_message(Notification.from_payload(message.data()), message_id=message.id,
                             sender=self.sender, recipients=self.recipients, now=self._clock())
        where = f"SMTP {self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls(context=self._ssl_context)
                if login is not None:
                    smtp.login(*login)
                refused = smtp.send_message(mail, from_addr=self.sender,
                                            to_addrs=self.recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise DeliveryError(f"{where}: every recipient was refused ({codes})",
                                retryable=all(code < 500 for code in codes),
                                status_code=max(codes)) from exc
        except smtplib.SMTPResponseException as exc:  # auth, sender, data, helo, connect
            raise _smtp_error(where, exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{where}: {exc} (the channel needs STARTTLS and, with "
                                "credentials, AUTH)", retryable=False) from exc
        except ssl.SSLError as exc:
            raise DeliveryError(f"{where}: TLS failed: {exc}", retryable=True) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, timeout, disconnected
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}",
                                retryable=True) from exc
        if refused:
            logger.warning("some e-mail recipients refused",
                           extra={"channel": self.name, "refused": len(refused),
                                  "codes": sorted({code for code, _ in refused.values()})})
