"""Slack: a Block Kit message posted to an incoming webhook.

Slack's documented limits are enforced by truncating with an ellipsis: at most 50 blocks,
a header of 150 characters, section text of 3000, at most 10 section fields of 2000 each,
the top-level `text` (the notification fallback) under 40,000
(https://docs.slack.dev/reference/block-kit/blocks; api.slack.com/changelog/
2018-04-truncating-really-long-messages). On top, all block text is kept within 12,000
characters: Slack answers `msg_blocks_too_long` near 13,000 although no page says so
(slackapi/bolt-js#2509). User text is escaped for mrkdwn (`&`, `<`, `>`), so a description
can neither break a link nor mention `<!channel>`.

The webhook URL holds Slack's token, so errors and logs name the channel, never the URL.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from alerts.channels.http import post
from alerts.channels.webhook import parse_retry_after
from alerts.clock import utcnow
from alerts.errors import DeliveryError
from alerts.message import Message, Notification

MAX_BLOCKS = 50
MAX_HEADER_CHARS = 150
MAX_SECTION_TEXT_CHARS = 3000
MAX_FIELDS = 10
MAX_FIELD_CHARS = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_TEXT_OBJECT_CHARS = 3000
MAX_MESSAGE_TEXT_CHARS = 40_000
BLOCKS_TEXT_BUDGET = 12_000

_FALLBACK_CHARS = 300  # the push-notification line: short, the blocks carry the rest
_META_FIELD_CHARS = 300  # names are identifiers; the budget goes to values and description
_CONTEXT_CHARS = 500
_SUMMARY_CHARS = 1000
_LINK_URL_CHARS = 2000
_ELLIPSIS = "…"
_PARTIAL_ENTITY = re.compile(r"&[a-z]*$")


def format_value(value: Any) -> str:
    """One breached value as text, the same in every alert channel.

    Examples:
        >>> format_value(0.873412345), format_value(3), format_value(True)
        ('0.873412', '3', 'true')
        >>> format_value({"p_value": 0.01})
        '{"p_value": 0.01}'
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def headline(notification: Notification) -> str:
    """`[FIRING critical] fraud: accuracy below 0.9`: a subject, a fallback line.

    Examples:
        >>> n = Notification(event_type="alert.resolved", status="resolved", fingerprint="f",
        ...     rule="r", kind="k", model="fraud", severity="critical", labels={},
        ...     summary="accuracy below 0.9", description="", values={},
        ...     starts_at="2026-11-24T10:00:00Z", timestamp="2026-11-24T11:00:00Z")
        >>> headline(n)
        '[RESOLVED critical] fraud: accuracy below 0.9'
    """
    state = "RESOLVED" if notification.status == "resolved" else "FIRING"
    return " ".join(
        f"[{state} {notification.severity}] {notification.model}: {notification.summary}".split())


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when cut.

    Examples:
        >>> truncate("abcdef", 4)
        'abc…'
    """
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


def _escape(text: str) -> str:
    """The three characters Slack's mrkdwn needs escaped (docs.slack.dev, "Formatting")."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str, limit: int) -> str:
    """Escape for mrkdwn, then cut without leaving half an entity (`&am…`)."""
    escaped = _escape(text)
    if len(escaped) <= limit:
        return escaped
    return _PARTIAL_ENTITY.sub("", escaped[: limit - 1]) + _ELLIPSIS


def _field(title: str, value: str, limit: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _mrkdwn(f"{title}\n{value}", limit)}


def _value_fields(values: Mapping[str, Any], limit: int) -> list[dict[str, str]]:
    items = [(str(name), format_value(value)) for name, value in values.items()]
    if len(items) > MAX_FIELDS:
        rest = items[MAX_FIELDS - 1:]
        items = [*items[: MAX_FIELDS - 1],
                 (f"+{len(rest)} more", ", ".join(f"{k}={v}" for k, v in rest))]
    return [_field(f"*{name}*", value, limit) for name, value in items]


def slack_payload(notification: Notification) -> dict[str, Any]:
    """The webhook body for one notification: a short `text` fallback and Block Kit blocks.

    Examples:
        >>> n = Notification(event_type="alert.firing", status="firing", fingerprint="9f2c",
        ...     rule="accuracy_low", kind="performance", model="fraud", severity="critical",
        ...     labels={}, summary="accuracy 0.87 < 0.9", description="",
        ...     values={"accuracy": 0.87}, starts_at="2026-11-24T10:00:00Z",
        ...     timestamp="2026-11-24T10:00:00Z")
        >>> payload = slack_payload(n)
        >>> payload["blocks"][0]["text"]["text"]
        '🔥 FIRING · CRITICAL · accuracy_low'
        >>> check_slack_limits(payload)
        []
    """
    n = notification
    resolved = n.status == "resolved"
    state = ("✅ RESOLVED" if resolved
             else "🔁 STILL FIRING" if n.event_type == "alert.repeat" else "🔥 FIRING")
    since = f"since {n.starts_at}" if not resolved else f"at {n.ends_at or n.timestamp}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True, "text": truncate(
            " ".join(f"{state} · {n.severity.upper()} · {n.rule}".split()), MAX_HEADER_CHARS)}},
        {"type": "section", "fields": [
            _field("*Model*", n.model, _META_FIELD_CHARS),
            _field("*Rule*", n.rule, _META_FIELD_CHARS),
            _field("*Severity*", n.severity, _META_FIELD_CHARS),
            _field("*Status*", f"{n.status} {since}", _META_FIELD_CHARS)]},
    ]
    # The asterisks are ours; the summary inside them is escaped like all user text.
    text = f"*{_mrkdwn(n.summary or n.rule, _SUMMARY_CHARS)}*"
    if n.description:
        text += "\n" + _mrkdwn(n.description, MAX_SECTION_TEXT_CHARS - len(text) - 1)
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    # A cut URL is a broken one: an over-long or non-web address gets no link at all.
    url = _escape(n.run_url or "").replace("|", "%7C")
    if url.startswith(("http://", "https://")) and len(url) <= _LINK_URL_CHARS:
        label = _mrkdwn(f"View run {n.run_id or ''}".strip(), 200)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{url}|{label}>"}})
    context = f"fingerprint `{n.fingerprint}` · {n.timestamp}"
    if n.run_id:
        context += f" · run {n.run_id}"
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": _mrkdwn(context, _CONTEXT_CHARS)}]})
    if n.values:
        used = _blocks_text_length(blocks)
        fields = min(len(n.values), MAX_FIELDS)
        per_field = min(MAX_FIELD_CHARS, (BLOCKS_TEXT_BUDGET - used) // fields)
        blocks.insert(3, {"type": "section", "fields": _value_fields(n.values, per_field)})
    fallback = ("✅ " if resolved else "🔥 ") + headline(n)
    return {"text": _mrkdwn(fallback, _FALLBACK_CHARS), "blocks": blocks[:MAX_BLOCKS]}


def _texts(block: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, text) of every text object in one block."""
    found: list[tuple[str, str]] = []
    if isinstance(block.get("text"), Mapping):
        found.append(("text", str(block["text"].get("text", ""))))
    for key in ("fields", "elements"):
        for index, item in enumerate(block.get(key) or []):
            if isinstance(item, Mapping) and isinstance(item.get("text"), str):
                found.append((f"{key}[{index}]", item["text"]))
    return found


def _blocks_text_length(blocks: list[dict[str, Any]]) -> int:
    return sum(len(text) for block in blocks for _, text in _texts(block))


def check_slack_limits(payload: Mapping[str, Any]) -> list[str]:
    """Every way `payload` breaks Slack's message limits; empty when it fits.

    Documented limits plus the undocumented total behind `msg_blocks_too_long`; each
    violation names the block and the limit.

    Examples:
        >>> check_slack_limits({"text": "x", "blocks": [{"type": "header",
        ...     "text": {"type": "plain_text", "text": "h" * 151}}]})
        ['blocks[0] header text has 151 characters (limit 150)']
    """
    problems: list[str] = []
    text = payload.get("text")
    blocks = payload.get("blocks") or []
    if not text and not blocks:
        problems.append("message has neither text nor blocks")
    if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT_CHARS:
        problems.append(f"text has {len(text)} characters (limit {MAX_MESSAGE_TEXT_CHARS})")
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"message has {len(blocks)} blocks (limit {MAX_BLOCKS})")
    for index, block in enumerate(blocks):
        where = f"blocks[{index}] {block.get('type')}"
        kind = block.get("type")
        if kind == "header":
            header = block.get("text") or {}
            if header.get("type") != "plain_text":
                problems.append(f"{where} text must be plain_text")
            if len(header.get("text", "")) > MAX_HEADER_CHARS:
                problems.append(f"{where} text has {len(header['text'])} characters "
                                f"(limit {MAX_HEADER_CHARS})")
        elif kind == "section":
            if "text" not in block and not block.get("fields"):
                problems.append(f"{where} has neither text nor fields")
            section_text = (block.get("text") or {}).get("text", "")
            if len(section_text) > MAX_SECTION_TEXT_CHARS:
                problems.append(f"{where} text has {len(section_text)} characters "
                                f"(limit {MAX_SECTION_TEXT_CHARS})")
            fields = block.get("fields") or []
            if len(fields) > MAX_FIELDS:
                problems.append(f"{where} has {len(fields)} fields (limit {MAX_FIELDS})")
            problems.extend(f"{where} fields[{i}] has {len(f['text'])} characters "
                            f"(limit {MAX_FIELD_CHARS})"
                            for i, f in enumerate(fields) if len(f["text"]) > MAX_FIELD_CHARS)
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                problems.append(f"{where} has {len(elements)} elements "
                                f"(1 to {MAX_CONTEXT_ELEMENTS})")
        for part, value in _texts(block):
            if not value:
                problems.append(f"{where} {part} is empty")
            elif kind != "section" and len(value) > MAX_TEXT_OBJECT_CHARS:
                problems.append(f"{where} {part} has {len(value)} characters "
                                f"(limit {MAX_TEXT_OBJECT_CHARS})")
    total = _blocks_text_length(blocks)
    if total > BLOCKS_TEXT_BUDGET:
        problems.append(f"blocks hold {total} characters of text (kept under "
                        f"{BLOCKS_TEXT_BUDGET}: Slack answers msg_blocks_too_long near 13,000)")
    return problems


class SlackChannel:
    """Posts each alert notification to a Slack incoming webhook as a Block Kit message.

    Success is a 2xx whose body is `ok`. 429 is retried after `Retry-After` (Slack may
    disable a webhook that keeps sending through it, api.slack.com/docs/rate-limits); 5xx,
    timeouts and connection errors are retried; every other answer (400 `invalid_payload`
    or `invalid_blocks`, 403 `action_prohibited`, 404 `channel_not_found`, 410
    `channel_is_archived`) is not, and the error names Slack's error code (as Alertmanager
    does, notify/slack/slack.go).
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        timeout_seconds: float = 10.0,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Slack channel {name!r}: the webhook url must start with "
                             "https:// (or http:// for a local receiver)")
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        self.name = name
        self._url = url
        self._clock = clock
        self._client = client or httpx.Client(timeout=timeout_seconds, follow_redirects=False)

    def send(self, message: Message) -> None:
        """One attempt: render the notification, POST it, classify Slack's answer."""
        body = json.dumps(slack_payload(Notification.from_payload(message.data())),
                          ensure_ascii=False).encode("utf-8")
        where = f"Slack channel {self.name!r}"
        # `where`, not the URL: a Slack incoming-webhook URL carries its token.
        response = post(self._client, self._url, body, {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "driftline-slack/1"}, where=where)
        code = response.status_code
        answer = " ".join(response.text.split())[:200] or "(empty body)"
        if 200 <= code < 300 and answer == "ok":
            return
        if 200 <= code < 300:
            raise DeliveryError(f"{where}: Slack answered {code} with {answer!r}, not 'ok'",
                                retryable=False, status_code=code)
        retryable = code == 429 or code >= 500
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        raise DeliveryError(f"{where}: Slack answered {code} {answer}", retryable=retryable,
                            retry_after_seconds=retry_after, status_code=code)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()
