"""The Slack, Alertmanager and e-mail channels.

Slack and Alertmanager run through `httpx.MockTransport`; e-mail through an in-process
aiosmtpd server on 127.0.0.1 with STARTTLS (a certificate made here) and AUTH.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerts.channels.alertmanager import AlertmanagerChannel, alertmanager_alert
from alerts.channels.email import EmailChannel
from alerts.channels.slack import SlackChannel, check_slack_limits, slack_payload
from alerts.errors import DeliveryError
from alerts.message import Message, Notification

NOW = dt.datetime(2026, 11, 24, 10, 30, tzinfo=dt.UTC)
SLACK_URL = "https://hooks.slack.test/services/T000/B000/secret-token"


def _notification(**changes: Any) -> Notification:
    base = Notification(
        event_type="alert.firing", status="firing", fingerprint="9f2c41d07a1b3e55",
        rule="accuracy_low", kind="performance", model="fraud", severity="critical",
        labels={"alertname": "accuracy_low", "model": "fraud", "severity": "critical",
                "team": "risk"},
        summary="accuracy below 0.9", description="Accuracy fell to 0.87 over 5,000 labels.",
        values={"accuracy": 0.8731234, "threshold": 0.9, "labelled": 5000},
        starts_at="2026-11-24T10:00:00Z", timestamp="2026-11-24T10:30:00Z",
        run_id="run-81", run_url="https://driftline.test/v1/runs/run-81",
        annotations={"runbook_url": "https://wiki.test/runbooks/accuracy"},
    )
    return replace(base, **changes)


def _resolved() -> Notification:
    return _notification(event_type="alert.resolved", status="resolved",
                         ends_at="2026-11-24T11:00:00Z")


def _message(notification: Notification, message_id: str = "msg_0123abcd") -> Message:
    return Message(id=message_id, channel="c", event_type=notification.event_type,
                   payload=json.dumps(notification.to_payload()))


class Recorder:
    """A MockTransport handler that records requests and answers as told."""

    def __init__(self, status: int = 200, text: str = "", headers: dict[str, str] | None = None,
                 error: Exception | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status, self.text, self.headers, self.error = status, text, headers or {}, error

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return httpx.Response(self.status, text=self.text, headers=self.headers)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


# -- Slack ---------------------------------------------------------------------------------------

def _all_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def test_slack_firing_payload_shape() -> None:
    payload = slack_payload(_notification())
    assert check_slack_limits(payload) == []
    assert payload["text"] == "🔥 [FIRING critical] fraud: accuracy below 0.9"
    kinds = [block["type"] for block in payload["blocks"]]
    assert kinds == ["header", "section", "section", "section", "section", "context"]
    header, meta, text, values, link, context = payload["blocks"]
    assert header["text"] == {"type": "plain_text", "emoji": True,
                              "text": "🔥 FIRING · CRITICAL · accuracy_low"}
    assert [f["text"] for f in meta["fields"]] == [
        "*Model*\nfraud", "*Rule*\naccuracy_low", "*Severity*\ncritical",
        "*Status*\nfiring since 2026-11-24T10:00:00Z"]
    assert text["text"]["text"] == ("*accuracy below 0.9*\n"
                                    "Accuracy fell to 0.87 over 5,000 labels.")
    assert [f["text"] for f in values["fields"]] == [
        "*accuracy*\n0.873123", "*threshold*\n0.9", "*labelled*\n5000"]
    assert link["text"]["text"] == "<https://driftline.test/v1/runs/run-81|View run run-81>"
    assert context["elements"][0]["text"] == (
        "fingerprint `9f2c41d07a1b3e55` · 2026-11-24T10:30:00Z · run run-81")


def test_slack_resolved_and_repeat_are_distinct() -> None:
    resolved = slack_payload(_resolved())
    assert resolved["blocks"][0]["text"]["text"] == "✅ RESOLVED · CRITICAL · accuracy_low"
    assert resolved["text"].startswith("✅ [RESOLVED critical] fraud")
    assert resolved["blocks"][1]["fields"][3]["text"] == (
        "*Status*\nresolved at 2026-11-24T11:00:00Z")
    repeat = slack_payload(_notification(event_type="alert.repeat"))
    assert repeat["blocks"][0]["text"]["text"].startswith("🔁 STILL FIRING")
    assert check_slack_limits(resolved) == check_slack_limits(repeat) == []


def test_slack_truncates_huge_notifications_to_the_limits() -> None:
    huge = _notification(
        rule="r" * 400, model="m" * 3000, summary="s" * 10_000, description="d" * 100_000,
        values={f"feature_{i}": "v" * 5000 for i in range(50)}, fingerprint="f" * 4000)
    payload = slack_payload(huge)
    assert check_slack_limits(payload) == []
    header = payload["blocks"][0]["text"]["text"]
    assert len(header) == 150
    assert header.endswith("…")
    text = payload["blocks"][2]["text"]["text"]
    assert len(text) <= 3000
    assert text.endswith("…")
    fields = payload["blocks"][3]["fields"]
    assert len(fields) == 10
    assert all(len(f["text"]) <= 2000 and f["text"].endswith("…") for f in fields)
    assert fields[-1]["text"].startswith("*+41 more*\nfeature_9=")
    assert len(payload["text"]) <= 300
    assert len(_all_text(payload)) < 16_000


def test_slack_escapes_mrkdwn_and_never_cuts_an_entity() -> None:
    payload = slack_payload(_notification(
        summary="<!channel> a & b", description="<https://evil.test|click>",
        values={"<x>": "a&b"}, run_url="https://driftline.test/runs?a=1&b=<2>|3"))
    text = _all_text(payload)
    assert "<!channel>" not in text
    assert "&lt;!channel&gt; a &amp; b" in text
    assert "&lt;https://evil.test|click&gt;" in text
    assert payload["blocks"][3]["fields"][0]["text"] == "*&lt;x&gt;*\na&amp;b"
    assert payload["blocks"][4]["text"]["text"] == (
        "<https://driftline.test/runs?a=1&amp;b=&lt;2&gt;%7C3|View run run-81>")
    for offset in range(5):  # every cut position relative to a 5-character entity
        description = "x" * offset + "&" * 1000
        cut = slack_payload(_notification(description=description))["blocks"][2]["text"]["text"]
        body = cut.removesuffix("…")
        assert body.endswith(("&amp;", "x")), body[-8:]


def test_slack_leaves_out_links_that_are_not_web_addresses() -> None:
    payload = slack_payload(_notification(run_url="javascript:alert(1)", values={}))
    assert [b["type"] for b in payload["blocks"]] == ["header", "section", "section", "context"]
    assert check_slack_limits(payload) == []


def test_check_slack_limits_names_each_violation() -> None:
    too_much = {"text": "t" * 40_001, "blocks": [
        {"type": "header", "text": {"type": "mrkdwn", "text": "h" * 151}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": ""}]},
        *[{"type": "divider"}] * 46,
    ]}
    assert check_slack_limits(too_much) == [
        "text has 40001 characters (limit 40000)",
        "message has 51 blocks (limit 50)",
        "blocks[0] header text must be plain_text",
        "blocks[0] header text has 151 characters (limit 150)",
        "blocks[1] section text has 3001 characters (limit 3000)",
        "blocks[2] section has 11 fields (limit 10)",
        "blocks[3] section fields[0] has 2001 characters (limit 2000)",
        "blocks[4] context elements[0] is empty",
    ]
    assert check_slack_limits({"blocks": [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2000}] * 10}] * 2}) == [
        "blocks hold 40000 characters of text (kept under 12000: Slack answers "
        "msg_blocks_too_long near 13,000)"]


def test_slack_posts_the_payload_and_accepts_ok() -> None:
    recorder = Recorder(200, "ok")
    SlackChannel(SLACK_URL, name="ops", client=recorder.client()).send(
        _message(_notification()))
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == SLACK_URL
    assert request.headers["content-type"].startswith("application/json")
    assert json.loads(request.content) == slack_payload(_notification())


@pytest.mark.parametrize(("status", "body", "headers", "retryable", "retry_after"), [
    (429, "rate_limited", {"Retry-After": "30"}, True, 30.0),
    (500, "rollup_error", {}, True, None),
    (503, "", {}, True, None),
    (400, "invalid_payload", {}, False, None),
    (400, "invalid_blocks", {}, False, None),
    (403, "action_prohibited", {}, False, None),
    (404, "channel_not_found", {}, False, None),
    (410, "channel_is_archived", {}, False, None),
    (200, "no_text", {}, False, None),
])
def test_slack_classifies_answers(status: int, body: str, headers: dict[str, str],
                                  retryable: bool, retry_after: float | None) -> None:
    channel = SlackChannel(SLACK_URL, name="ops", client=Recorder(status, body, headers).client())
    with pytest.raises(DeliveryError, match=f"Slack channel 'ops'.*{status}") as caught:
        channel.send(_message(_notification()))
    assert caught.value.retryable is retryable
    assert caught.value.status_code == status
    assert caught.value.retry_after_seconds == retry_after
    assert (body or "(empty body)") in str(caught.value)
    assert "secret-token" not in str(caught.value)  # the URL is a credential


@pytest.mark.parametrize("error", [httpx.ConnectTimeout("slow"), httpx.ConnectError("refused")])
def test_slack_transport_failures_are_retryable(error: Exception) -> None:
    channel = SlackChannel(SLACK_URL, name="ops", client=Recorder(error=error).client())
    with pytest.raises(DeliveryError) as caught:
        channel.send(_message(_notification()))
    assert caught.value.retryable
    assert "secret-token" not in str(caught.value)


def test_slack_rejects_a_url_that_is_not_http() -> None:
    with pytest.raises(ValueError, match=r"'ops'.*https://"):
        SlackChannel("hooks.slack.test/x", name="ops")


# -- Alertmanager --------------------------------------------------------------------------------

def _am(recorder: Recorder, url: str = "http://am.test:9093", **kwargs: Any
        ) -> AlertmanagerChannel:
    return AlertmanagerChannel(url, name="am", client=recorder.client(), clock=lambda: NOW,
                               **kwargs)


def test_alertmanager_firing_alert_shape() -> None:
    recorder = Recorder(200)
    _am(recorder, resend_hint_seconds=600).send(_message(_notification()))
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == "http://am.test:9093/api/v2/alerts"
    assert json.loads(request.content) == [{
        "labels": {"alertname": "accuracy_low", "model": "fraud", "severity": "critical",
                   "team": "risk"},
        "annotations": {"runbook_url": "https://wiki.test/runbooks/accuracy",
                        "summary": "accuracy below 0.9",
                        "description": "Accuracy fell to 0.87 over 5,000 labels.",
                        "values": "accuracy=0.873123, threshold=0.9, labelled=5000"},
        "startsAt": "2026-11-24T10:00:00Z",
        "endsAt": "2026-11-24T11:10:00Z",  # now + 4 x 600 s, as Prometheus sets it
        "generatorURL": "https://driftline.test/v1/runs/run-81",
    }]


def test_alertmanager_resolved_alert_ends_when_it_resolved() -> None:
    alert = alertmanager_alert(_resolved(), now=NOW)
    assert alert["endsAt"] == "2026-11-24T11:00:00Z"
    assert alert["startsAt"] == "2026-11-24T10:00:00Z"
    bare = alertmanager_alert(_notification(labels={}, values={}, description="", run_url=None,
                                            annotations={}), now=NOW)
    assert bare == {"labels": {"alertname": "accuracy_low", "model": "fraud",
                               "severity": "critical"},
                    "annotations": {"summary": "accuracy below 0.9"},
                    "startsAt": "2026-11-24T10:00:00Z", "endsAt": "2026-11-24T10:50:00Z"}


def test_alertmanager_url_keeps_its_route_prefix() -> None:
    recorder = Recorder(200)
    _am(recorder, url="https://ops.test/alertmanager/").send(_message(_notification()))
    assert str(recorder.requests[0].url) == "https://ops.test/alertmanager/api/v2/alerts"


@pytest.mark.parametrize(("status", "retryable"), [
    (400, False), (404, False), (429, True), (500, True), (503, True)])
def test_alertmanager_classifies_answers(status: int, retryable: bool) -> None:
    recorder = Recorder(status, "start time must be before end time")
    with pytest.raises(DeliveryError, match=f"answered {status}: start time must") as caught:
        _am(recorder).send(_message(_notification()))
    assert caught.value.retryable is retryable
    assert caught.value.status_code == status


@pytest.mark.parametrize("error", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])
def test_alertmanager_transport_failures_are_retryable(error: Exception) -> None:
    with pytest.raises(DeliveryError) as caught:
        _am(Recorder(error=error)).send(_message(_notification()))
    assert caught.value.retryable


def test_alertmanager_validates_its_settings() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        AlertmanagerChannel("am.test:9093", name="am")
    with pytest.raises(ValueError, match="resend_hint_seconds"):
        AlertmanagerChannel("http://am.test", name="am", resend_hint_seconds=0)


# -- E-mail --------------------------------------------------------------------------------------

USER, PASSWORD = "driftline", "correct horse"
ENV = {"SMTP_USER": USER, "SMTP_PASSWORD": PASSWORD}


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (cryptography, else openssl)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(private.public_key()),
                       critical=False)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, key


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class SMTPServer:
    port: int
    trust: ssl.SSLContext
    received: list[tuple[Any, Any]] = field(default_factory=list)  # (session, envelope)
    rcpt_answers: dict[str, str] = field(default_factory=dict)
    data_answer: str = "250 OK"

    def channel(self, **changes: Any) -> EmailChannel:
        settings: dict[str, Any] = {
            "host": "127.0.0.1", "port": self.port, "sender": "driftline@example.test",
            "recipients": ["oncall@example.test", "ml@example.test"],
            "username_env": "SMTP_USER", "password_env": "SMTP_PASSWORD",
            "ssl_context": self.trust, "timeout_seconds": 5, "name": "mail", "environ": ENV,
            "clock": lambda: NOW}
        return EmailChannel(**{**settings, **changes})


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SMTPServer]:
    """aiosmtpd on 127.0.0.1: STARTTLS required, AUTH required, one user."""
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword
    except ImportError:
        Controller = None
    if Controller is None:
        pytest.fail("aiosmtpd is not installed in this environment: the e-mail channel tests "
                    "run a real SMTP server with it; add 'aiosmtpd' to the dev dependencies "
                    "(pyproject.toml [project.optional-dependencies] dev) and reinstall",
                    pytrace=False)
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    server = SMTPServer(port=_free_port(), trust=ssl.create_default_context(cafile=str(cert)))

    class Handler:
        async def handle_RCPT(self, _server: Any, _session: Any, envelope: Any, address: str,
                              _options: list[str]) -> str:
            answer = server.rcpt_answers.get(address, "250 OK")
            if answer.startswith("250"):
                envelope.rcpt_tos.append(address)
            return answer

        async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
            if server.data_answer.startswith("250"):
                server.received.append((session, envelope))
            return server.data_answer

    def authenticate(_server: Any, _session: Any, _envelope: Any, _mechanism: str,
                     data: Any) -> Any:
        if isinstance(data, LoginPassword) and (data.login, data.password) == (
                USER.encode(), PASSWORD.encode()):
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)  # handled=True would hang the client

    controller = Controller(Handler(), hostname="127.0.0.1", port=server.port,
                            tls_context=server_tls, require_starttls=True,
                            authenticator=authenticate, auth_required=True)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def _parts(content: bytes) -> tuple[email.message.EmailMessage, str, str]:
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    plain, rich = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None
    assert rich is not None
    return parsed, plain.get_content(), rich.get_content()


def test_email_is_sent_over_starttls_with_login(smtp_server: SMTPServer) -> None:
    hostile = _notification(description='<script>alert("x")</script> & <b>co</b>',
                            values={"<p>": "1 < 2"})
    channel = smtp_server.channel()
    channel.send(_message(hostile, "msg_0123abcd"))
    channel.send(_message(hostile, "msg_0123abcd"))  # a retry of the same delivery
    (session, envelope), (_, again) = smtp_server.received
    assert session.ssl is not None  # STARTTLS happened
    assert session.authenticated
    assert envelope.mail_from == "driftline@example.test"
    assert envelope.rcpt_tos == ["oncall@example.test", "ml@example.test"]
    parsed, plain, rich = _parts(envelope.content)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Subject"] == "[FIRING critical] fraud: accuracy below 0.9"
    assert parsed["X-Driftline-Fingerprint"] == "9f2c41d07a1b3e55"
    assert parsed["Message-ID"] == "<msg_0123abcd.driftline@example.test>"
    assert _parts(again.content)[0]["Message-ID"] == parsed["Message-ID"]
    assert '<script>alert("x")</script> & <b>co</b>' in plain
    assert "  <p>: 1 < 2" in plain
    assert "<script>" not in rich
    assert "<b>co" not in rich
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;co" in rich
    assert "<th align=\"left\">&lt;p&gt;</th><td>1 &lt; 2</td>" in rich
    assert '<a href="https://driftline.test/v1/runs/run-81">View run run-81</a>' in rich


def test_email_resolved_subject(smtp_server: SMTPServer) -> None:
    smtp_server.channel().send(_message(_resolved()))
    parsed, plain, _ = _parts(smtp_server.received[0][1].content)
    assert parsed["Subject"] == "[RESOLVED critical] fraud: accuracy below 0.9"
    assert "Resolved at: 2026-11-24T11:00:00Z" in plain


def test_email_wrong_password_is_not_retried(smtp_server: SMTPServer) -> None:
    channel = smtp_server.channel(environ={**ENV, "SMTP_PASSWORD": "wrong"})
    with pytest.raises(DeliveryError, match="535") as caught:
        channel.send(_message(_notification()))
    assert not caught.value.retryable
    assert caught.value.status_code == 535
    assert "wrong" not in str(caught.value)
    assert smtp_server.received == []


def test_email_certificate_is_checked(smtp_server: SMTPServer) -> None:
    """With the default context (system CAs) the self-signed certificate is refused."""
    channel = smtp_server.channel(ssl_context=None)
    with pytest.raises(DeliveryError, match=r"TLS failed.*CERTIFICATE_VERIFY_FAILED"):
        channel.send(_message(_notification()))
    assert smtp_server.received == []


@pytest.mark.parametrize(("rcpt", "data", "retryable", "code"), [
    ({"oncall@example.test": "550 5.1.1 no such user", "ml@example.test": "550 5.1.1 no"},
     "250 OK", False, 550),
    ({"oncall@example.test": "450 4.2.1 busy", "ml@example.test": "450 4.2.1 busy"},
     "250 OK", True, 450),
    ({}, "451 4.3.0 try again later", True, 451),
    ({}, "554 5.6.0 message refused", False, 554),
])
def test_email_smtp_replies_are_classified(smtp_server: SMTPServer, rcpt: dict[str, str],
                                           data: str, retryable: bool, code: int) -> None:
    smtp_server.rcpt_answers, smtp_server.data_answer = rcpt, data
    with pytest.raises(DeliveryError, match=str(code)) as caught:
        smtp_server.channel().send(_message(_notification()))
    assert caught.value.retryable is retryable
    assert caught.value.status_code == code


def test_email_some_recipients_refused_counts_as_sent(smtp_server: SMTPServer,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    smtp_server.rcpt_answers = {"ml@example.test": "550 5.1.1 no such user"}
    smtp_server.channel().send(_message(_notification()))
    assert smtp_server.received[0][1].rcpt_tos == ["oncall@example.test"]
    ours = [r for r in caplog.records if r.name == "alerts.channels.email"]
    assert [(r.message, r.refused, r.codes) for r in ours] == [  # type: ignore[attr-defined]
        ("some e-mail recipients refused", 1, [550])]


def test_email_refused_connection_is_retryable() -> None:
    channel = EmailChannel(host="127.0.0.1", port=_free_port(), sender="d@example.test",
                           recipients=["o@example.test"], username_env="SMTP_USER",
                           password_env="SMTP_PASSWORD", name="mail", environ=ENV)
    with pytest.raises(DeliveryError, match=r"SMTP 127\.0\.0\.1") as caught:
        channel.send(_message(_notification()))
    assert caught.value.retryable


def test_email_missing_password_variable_names_it() -> None:
    channel = EmailChannel(host="127.0.0.1", sender="d@example.test",
                           recipients=["o@example.test"], username_env="SMTP_USER",
                           password_env="DRIFTLINE_SMTP_PASSWORD", name="mail",
                           environ={"SMTP_USER": USER})
    with pytest.raises(DeliveryError, match="DRIFTLINE_SMTP_PASSWORD is not set") as caught:
        channel.send(_message(_notification()))
    assert not caught.value.retryable


@pytest.mark.parametrize(("changes", "problem"), [
    ({"recipients": []}, "recipients"),
    ({"recipients": "o@example.test"}, "recipients"),
    ({"sender": "driftline"}, "not an address"),
    ({"password_env": None}, "both username_env and password_env"),
    ({"starttls": False}, "clear text"),
])
def test_email_validates_its_settings(changes: dict[str, Any], problem: str) -> None:
    settings: dict[str, Any] = {"host": "smtp.example.test", "sender": "d@example.test",
                                "recipients": ["o@example.test"], "username_env": "U",
                                "password_env": "P", "name": "mail"}
    with pytest.raises(ValueError, match=problem):
        EmailChannel(**{**settings, **changes})

