"""PredictionLogger.log with a caller's event id (the proxy derives it from request id and row)."""

from __future__ import annotations

from driftline_sidecar import PredictionLogger


def test_log_keeps_the_given_event_id_and_draws_one_otherwise() -> None:
    with PredictionLogger("127.0.0.1:1", model="fraud", max_unsent_seconds=0.1) as sidecar:
        given = sidecar.log(features={"amount": 1.0}, prediction=1, event_id="r-1.0")
        drawn = sidecar.log(features={"amount": 1.0}, prediction=1)
    assert given == "r-1.0"
    assert drawn is not None
    assert len(drawn) == 32
