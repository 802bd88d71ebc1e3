from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from alerts import Delivery, DeliveryError, Dispatcher, RetryPolicy, enqueue, in_cooldown
from alerts.channels.webhook import WebhookChannel
from alerts.message import Message
from alerts.outbox import metadata

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Receiver:
    def __init__(self, answer: Callable[[int], tuple[int, dict[str, str]]]) -> None:
        self.seen: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
                code, headers = answer(len(receiver.seen))
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    metadata.create_all(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def _enqueue(sessions: sessionmaker[Session], clock: Clock) -> str:
    with sessions.begin() as session:
        delivery = enqueue(session, channel="hook", event_type="model.drift_detected", model="m",
                           run_id="r1", payload={"type": "model.drift_detected", "x": 1},
                           now=clock())
        return delivery.id


def _row(sessions: sessionmaker[Session], delivery_id: str) -> Delivery:
    with sessions() as session:
        row = session.execute(select(Delivery).where(Delivery.id == delivery_id)).scalar_one()
        session.expunge(row)
        return row


@pytest.mark.parametrize(("code", "headers", "retryable", "retry_after"), [
    (500, {}, True, None), (503, {}, True, None), (429, {"Retry-After": "7"}, True, 7.0),
    (301, {"Location": "http://127.0.0.1:9/x"}, False, None),
    (308, {"Location": "http://127.0.0.1:9/x"}, False, None),
    (302, {"Location": "http://127.0.0.1:9/x"}, True, None),
    (307, {"Location": "http://127.0.0.1:9/x", "Retry-After": "3"}, True, 3.0),
    (400, {}, False, None), (404, {}, False, None), (410, {}, False, None),
])
def test_webhook_classifies_answers(code: int, headers: dict[str, str], retryable: bool,
                                    retry_after: float | None) -> None:
    receiver = Receiver(lambda _n: (code, headers))
    try:
        channel = WebhookChannel(receiver.url, secret=SECRET)
        with pytest.raises(DeliveryError) as caught:
            channel.send(Message(id="msg_1", channel="c", event_type="t", payload="{}"))
        assert caught.value.retryable is retryable
        assert caught.value.status_code == code
        assert caught.value.retry_after_seconds == retry_after
        assert len(receiver.seen) == 1  # no redirect followed
        if 300 <= code < 400:
            assert "redirect to http://127.0.0.1:9/x (not followed" in str(caught.value)
    finally:
        receiver.close()


def test_refused_connection_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    channel = WebhookChannel(f"http://127.0.0.1:{port}/", secret=SECRET)
    with pytest.raises(DeliveryError, match="cannot reach") as caught:
        channel.send(Message(id="msg_1", channel="c", event_type="t", payload="{}"))
    assert caught.value.retryable


def test_signature_verifies_with_the_standard_webhooks_package() -> None:
    receiver = Receiver(lambda _n: (204, {}))
    try:
        WebhookChannel(receiver.url, secret=SECRET).send(
            Message(id="msg_abc", channel="c", event_type="t",
                    payload='{"type":"model.drift_detected"}'))
        headers, body = receiver.seen[0]
        assert Webhook(SECRET).verify(body, headers) == {"type": "model.drift_detected"}
        assert headers["webhook-id"] == "msg_abc"
        assert headers["content-type"] == "application/json"
        with pytest.raises(Exception, match="No matching signature"):
            Webhook("whsec_" + "A" * 32).verify(body, headers)
    finally:
        receiver.close()


def test_retries_keep_the_webhook_id_and_back_off(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    receiver = Receiver(lambda n: (500, {}) if n < 3 else (200, {}))
    outcomes: list[str] = []
    try:
        policy = RetryPolicy(base_seconds=2, max_backoff_seconds=60)
        dispatcher = Dispatcher(sessions, {"hook": WebhookChannel(receiver.url, secret=SECRET,
                                                                   clock=clock)},
                                policy=policy, clock=clock, rng=random.Random(1),
                                on_outcome=lambda _c, o: outcomes.append(o))
        delivery_id = _enqueue(sessions, clock)
        assert dispatcher.run_once() == 1
        row = _row(sessions, delivery_id)
        delay = (row.next_attempt_at - clock()).total_seconds()
        assert 1.0 <= delay <= 2.0
        assert dispatcher.run_once() == 0  # not due yet
        clock.advance(delay)
        assert dispatcher.run_once() == 1
        delay = (_row(sessions, delivery_id).next_attempt_at - clock()).total_seconds()
        assert 2.0 <= delay <= 4.0
        clock.advance(delay)
        assert dispatcher.run_once() == 1
        row = _row(sessions, delivery_id)
        assert row.status == "delivered"
        assert row.attempts == 3
        assert outcomes == ["retry", "retry", "delivered"]
        assert {h["webhook-id"] for h, _ in receiver.seen} == {delivery_id}
        assert len({b for _, b in receiver.seen}) == 1  # identical bytes every attempt
        assert dispatcher.pending_count() == 0
    finally:
        receiver.close()


def test_retry_after_is_honoured_and_4xx_fails(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    answers = iter([(429, {"Retry-After": "120"}), (400, {})])
    receiver = Receiver(lambda _n: next(answers))
    try:
        dispatcher = Dispatcher(sessions, {"hook": WebhookChannel(receiver.url, secret=SECRET)},
                                policy=RetryPolicy(base_seconds=1, max_backoff_seconds=600),
                                clock=clock)
        delivery_id = _enqueue(sessions, clock)
        dispatcher.run_once()
        assert (_row(sessions, delivery_id).next_attempt_at - clock()).total_seconds() == 120
        clock.advance(120)
        dispatcher.run_once()
        row = _row(sessions, delivery_id)
        assert row.status == "failed"
        assert row.last_status_code == 400
        clock.advance(10_000)
        assert dispatcher.run_once() == 0
    finally:
        receiver.close()


def test_a_claimed_delivery_is_not_sent_twice_until_its_lease_expires(
    sessions: sessionmaker[Session],
) -> None:
    clock = Clock()
    delivery_id = _enqueue(sessions, clock)
    first = Dispatcher(sessions, {}, clock=clock, policy=RetryPolicy(lease_seconds=30))
    claimed = first._claim()  # a process that claims and then dies before recording
    assert [c.id for c in claimed] == [delivery_id]
    second = Dispatcher(sessions, {}, clock=clock, policy=RetryPolicy(lease_seconds=30))
    assert second._claim() == []
    clock.advance(31)
    assert [c.id for c in second._claim()] == [delivery_id]


def test_cooldown(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    _enqueue(sessions, clock)
    with sessions() as session:
        assert in_cooldown(session, model="m", event_type="model.drift_detected",
                           cooldown_seconds=60, now=clock.now + timedelta(seconds=59))
        assert not in_cooldown(session, model="m", event_type="model.drift_detected",
                               cooldown_seconds=60, now=clock.now + timedelta(seconds=61))
        assert not in_cooldown(session, model="other", event_type="model.drift_detected",
                               cooldown_seconds=60, now=clock.now)


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="base_seconds"):
        RetryPolicy(base_seconds=0)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_a_dead_channel_does_not_delay_another(sessions: sessionmaker[Session]) -> None:
    """Each channel has its own sending thread: a receiver that hangs holds up only itself."""
    release = threading.Event()
    sent: list[str] = []

    class Hanging:
        name = "slow"

        def send(self, message: Message) -> None:
            release.wait(10)

    class Quick:
        name = "quick"

        def send(self, message: Message) -> None:
            sent.append(message.id)

    now = datetime.now(UTC)
    with sessions.begin() as session:
        enqueue(session, channel="slow", event_type="t", model="m", run_id=None,
                payload={}, now=now)
        quick = enqueue(session, channel="quick", event_type="t", model="m", run_id=None,
                        payload={}, now=now).id
    dispatcher = Dispatcher(sessions, {"slow": Hanging(), "quick": Quick()},
                            poll_interval_seconds=0.05)
    dispatcher.start()
    try:
        deadline = time.monotonic() + 5
        while not sent and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sent == [quick]
    finally:
        release.set()
        dispatcher.stop()
