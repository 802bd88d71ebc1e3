"""Local receivers and set-up for the alerting integration tests (issue 11).

Every receiver is a real server on 127.0.0.1 that the channels reach over the network: a
Slack incoming webhook that checks the Block Kit message against Slack's limits, a Standard
Webhooks receiver, an SMTP server (aiosmtpd) with STARTTLS and AUTH, and the webhook that
Alertmanager notifies. Each records what it got and can be taken down and brought back.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from alerts.channels.slack import check_slack_limits
from alerts.outbox import Delivery
from collector.app import Service
from collector.config import Settings, parse_settings
from collector.monitor import RunSummary
from collector.store.models import Label
from collector.store.queries import count_predictions
from tests.integration.observability import free_port
from tests.integration.spine import SCHEMA, wait_for

MODEL = "m"


# -- HTTP receivers -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """One POST a receiver got, and the status it answered."""

    at: datetime
    headers: Mapping[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """Records every POST; answers `status` with `body` while `available`, else 503."""

    path = "/hook"

    def __init__(self, *, status: int = 200, body: bytes = b"") -> None:
        self.requests: list[Request] = []
        self.available = True
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                code, answer = receiver.answer(headers, payload) if receiver.available else (
                    503, b"service unavailable")
                with receiver._lock:
                    receiver.requests.append(Request(datetime.now(UTC), headers, payload, code))
                self.send_response(code)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return

        self._status, self._body = status, body
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        """The answer while available (subclasses check the request first)."""
        return self._status, self._body

    def accepted(self) -> list[Request]:
        """The requests answered with a 2xx."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def refused(self) -> list[Request]:
        """The requests answered with anything else."""
        with self._lock:
            return [r for r in self.requests if not 200 <= r.status < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def documented_slack_limits(payload: Mapping[str, Any]) -> list[str]:
    """Slack's documented Block Kit limits, checked here independently of the channel's code.

    At most 50 blocks; a header's plain text at most 150 characters; a section's text at most
    3000, its fields at most 10 of at most 2000 each (docs.slack.dev/reference/block-kit/blocks,
    .../header-block, .../section-block).
    """
    problems = []
    blocks = payload.get("blocks") or []
    if not isinstance(payload.get("text"), str) or not payload["text"]:
        problems.append("no fallback text")
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks")
    for i, block in enumerate(blocks):
        if block["type"] == "header" and len(block["text"]["text"]) > 150:
            problems.append(f"block {i}: header of {len(block['text']['text'])}")
        if block["type"] == "section":
            if len((block.get("text") or {}).get("text", "")) > 3000:
                problems.append(f"block {i}: section text over 3000")
            fields = block.get("fields") or []
            if len(fields) > 10 or any(len(f["text"]) > 2000 for f in fields):
                problems.append(f"block {i}: fields over the limits")
    return problems


class SlackReceiver(HttpReceiver):
    """An incoming webhook: `ok` for a message within the limits, `400 invalid_blocks` else."""

    path = "/services/T000/B000/XXXX"

    def __init__(self) -> None:
        super().__init__(status=200, body=b"ok")
        self.problems: list[str] = []

    def answer(self, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        payload = json.loads(body)
        problems = documented_slack_limits(payload) + check_slack_limits(payload)
        if problems:
            self.problems.extend(problems)
            return 400, b"invalid_blocks"
        return 200, b"ok"

    def messages(self) -> list[dict[str, Any]]:
        """The messages Slack accepted."""
        return [r.json() for r in self.accepted()]

    def headers_text(self) -> list[str]:
        """The header block's text of each accepted message."""
        return [m["blocks"][0]["text"]["text"] for m in self.messages()]


class WebhookReceiver(HttpReceiver):
    """A Standard Webhooks receiver: every accepted request must verify under `secret`."""

    def __init__(self, secret: str) -> None:
        super().__init__(status=204)
        self.secret = secret

    def payloads(self) -> list[dict[str, Any]]:
        """The accepted payloads, each verified with the `standardwebhooks` package."""
        from standardwebhooks import Webhook

        webhook = Webhook(self.secret)
        return [dict(webhook.verify(r.body, dict(r.headers))) for r in self.accepted()]

    def types(self) -> list[str]:
        """The accepted payloads' event types, in order."""
        return [p["type"] for p in self.payloads()]


class AlertmanagerSink(HttpReceiver):
    """Alertmanager's webhook receiver (payload version 4)."""

    path = "/alerts"

    def alerts(self, status: str, alertname: str) -> list[dict[str, Any]]:
        """Alerts of the notifications received, by status and alert name."""
        return [a for r in self.accepted() for a in r.json()["alerts"]
                if a["status"] == status and a["labels"]["alertname"] == alertname]


def alertmanager_alerts(url: str, alertname: str) -> list[dict[str, Any]]:
    """The alerts `GET /api/v2/alerts` lists for one alert name (active, unresolved)."""
    response = httpx.get(f"{url}/api/v2/alerts", params={"filter": f'alertname="{alertname}"'},
                         timeout=10)
    response.raise_for_status()
    return list(response.json())


# -- SMTP -----------------------------------------------------------------------------------------
def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (openssl, as the Debian image has it) and its key."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class SmtpSink:
    """aiosmtpd on 127.0.0.1 with STARTTLS and AUTH required, one user; keeps the messages.

    `cafile` is its certificate: a process that sets `SSL_CERT_FILE` to it before the e-mail
    channel is built verifies the server as it would verify a real one.
    """

    user = "driftline"
    password = "smtp-secret"

    def __init__(self, directory: Path) -> None:
        try:
            from aiosmtpd.controller import Controller
            from aiosmtpd.smtp import AuthResult, LoginPassword
        except ImportError:
            pytest.fail("aiosmtpd is not installed in this environment: the alerting tests "
                        "receive e-mail with it; install the dev dependencies "
                        "(pyproject.toml [project.optional-dependencies] dev)", pytrace=False)
        import ssl

        self.cafile, key = _self_signed(directory)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.cafile, key)
        self.port = free_port()
        self.envelopes: list[Any] = []
        sink = self

        class Handler:
            async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
                sink.envelopes.append((session, envelope))
                return "250 OK"

        def authenticate(_server: Any, _session: Any, _envelope: Any, _mechanism: str,
                         data: Any) -> Any:
            if isinstance(data, LoginPassword) and (data.login, data.password) == (
                    self.user.encode(), self.password.encode()):
                return AuthResult(success=True)
            return AuthResult(success=False, handled=False)  # handled=True hangs the client

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                      tls_context=tls, require_starttls=True,
                                      authenticator=authenticate, auth_required=True)
        self._controller.start()

    def messages(self) -> list[EmailMessage]:
        """Every message received, parsed; each came over TLS from the logged-in user."""
        out = []
        for session, envelope in list(self.envelopes):
            assert session.ssl is not None, "an e-mail was sent without STARTTLS"
            assert session.authenticated, "an e-mail was sent without logging in"
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            out.append(parsed)
        return out

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages()]

    def close(self) -> None:
        self._controller.stop()


# -- the service -------------------------------------------------------------------------------
def new_topics(topic_factory: Callable[[str], str]) -> dict[str, str]:
    """Fresh predictions, labels and dead-letter topics."""
    return {"predictions_topic": topic_factory("predictions"),
            "labels_topic": topic_factory("labels"),
            "deadletter_topic": topic_factory("deadletter")}


def alert_settings(
    tmp_path: Path,
    *,
    bootstrap: str,
    topics: Mapping[str, str],
    reference: pd.DataFrame,
    channels: Mapping[str, Mapping[str, Any]],
    rules: Sequence[Mapping[str, Any]],
    database_url: str | None = None,
    every_seconds: float = 3600.0,
    window_events: int = 300,
    http_port: int = 0,
    model: Mapping[str, Any] | None = None,
) -> Settings:
    """One model `m` over spine's SCHEMA (KS and chi-square), with channels and alert rules.

    Deliveries are retried quickly (0.5 s, at most 1 s apart), so a receiver that comes back
    gets its message within a couple of seconds.
    """
    ref_path = tmp_path / f"reference-{uuid.uuid4().hex[:6]}.csv"
    reference.to_csv(ref_path, index=False)
    return parse_settings({
        "database_url": database_url or f"sqlite+pysqlite:///{tmp_path / 'driftline.db'}",
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"g-{uuid.uuid4().hex[:8]}",
                  **topics},
        "http": {"host": "127.0.0.1", "port": http_port},
        "alerts": {"retry_base_seconds": 0.5, "retry_max_seconds": 1.0},
        "api": {"token_env": "TEST_API_TOKEN"},
        "channels": {name: dict(channel) for name, channel in channels.items()},
        "models": [{
            "name": MODEL, "features": SCHEMA, "reference": {"path": str(ref_path)},
            "schedule": {"every_seconds": every_seconds},
            "window": {"last_events": window_events},
            "drift": {"numeric_method": "ks", "categorical_method": "chisquare",
                      "drift_share": 0.5, "min_samples": 30},
            "alerts": [dict(rule) for rule in rules],
            **(model or {}),
        }],
    }, environ={})


def start_runs_on_call(settings: Settings, environ: Mapping[str, str]) -> Service:
    """The whole service (ingest, dispatcher, HTTP API) whose runs the test calls itself.

    The scheduler is stopped right after start, before any event exists: a run it made by
    then saw an empty window, which tells the alert rules nothing.
    """
    service = Service(settings, health_interval_seconds=0.5, environ=dict(environ))
    service.start()
    assert service.scheduler is not None
    service.scheduler.stop(wait=True)
    return service


def run_now(service: Service) -> RunSummary:
    """One run of the model, which must succeed."""
    summary = service.monitors[MODEL].run()
    assert summary is not None
    assert summary.status == "ok", summary.error
    return summary


def wait_stored(sessions: sessionmaker[Session], *, predictions: int, labels: int = 0,
                timeout: float = 60) -> None:
    """Poll the store until exactly these many predictions and labels of `m` are in it."""

    def done() -> bool:
        with sessions() as session:
            stored = count_predictions(session, MODEL)
            labelled = int(session.execute(select(func.count()).select_from(Label)
                                           .where(Label.model == MODEL)).scalar_one())
        return stored == predictions and labelled == labels

    wait_for(done, timeout=timeout, interval=0.1,
             message=f"{predictions} predictions and {labels} labels stored")


def deliveries(sessions: sessionmaker[Session]) -> list[Delivery]:
    """Every outbox delivery, oldest first."""
    with sessions() as session:
        return list(session.execute(select(Delivery).order_by(Delivery.created_at)).scalars())


def api(port: int, path: str, *, method: str = "GET", token: str | None = None,
        body: Mapping[str, Any] | None = None) -> httpx.Response:
    """A request to the service's HTTP API."""
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.request(method, f"http://127.0.0.1:{port}{path}", json=body, headers=headers,
                         timeout=30)


def still(predicate: Callable[[], bool], *, seconds: float, message: str) -> None:
    """Assert `predicate` holds throughout the next `seconds` (nothing more arrives)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), message
        time.sleep(0.1)


def start_collector(config: Path, log: Path, environ: Mapping[str, str]
                    ) -> subprocess.Popen[bytes]:
    """`driftline serve --config config` as a child process (every role)."""
    env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS",
                                                             "DRIFTLINE_DATABASE_URL"}}
    env.update(environ)
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "collector.cli", "serve", "--config",
                                 str(config)], stdout=output, stderr=subprocess.STDOUT, env=env)


def parse_z(text: str) -> datetime:
    """An ISO 8601 time with a `Z`, as the API and the payloads write it."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def seconds_between(first: str, second: str) -> float:
    """Seconds from one ISO time to another."""
    return (parse_z(second) - parse_z(first)) / timedelta(seconds=1)
