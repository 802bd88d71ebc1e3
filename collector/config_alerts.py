"""The alerting part of driftline.yaml: channels (declared once), rules (per model), the API.

Rules are validated by `alerts.rules.AlertRule` itself (known metric, threshold in range,
template fields that a run result has), so the configuration and the engine agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerts.rules import AlertRule, RuleError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


class ChannelSettings(_Strict):
    """One notification channel, named by rules.

    `slack`: `url` or `url_env` (an incoming-webhook URL is a secret). `webhook`: `url`
    and `secret_env` (Standard Webhooks signing). `email`: `host`, `port`, `sender`,
    `recipients`, `username_env`, `password_env`, `starttls`. `alertmanager`: `url` (the
    Alertmanager base URL; driftline posts to /api/v2/alerts).
    """

    type: Literal["slack", "webhook", "email", "alertmanager"]
    url: str | None = None
    url_env: str | None = None
    secret_env: str | None = None
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    sender: str | None = None
    recipients: list[str] = Field(default_factory=list)
    username_env: str | None = None
    password_env: str | None = None
    starttls: bool = True
    timeout_seconds: Annotated[float, Field(gt=0)] = 10.0

    @model_validator(mode="after")
    def _complete(self) -> ChannelSettings:
        from collector.config import _check_http_url

        if self.type == "slack" and (self.url is None) == (self.url_env is None):
            raise ValueError("a slack channel needs url or url_env (one of them)")
        if self.type in ("webhook", "alertmanager") and self.url is None:
            raise ValueError(f"a {self.type} channel needs url")
        if self.url is not None:
            _check_http_url(self.url)
        if self.type == "webhook" and not self.secret_env:
            raise ValueError("a webhook channel needs secret_env (its signing secret)")
        if self.type == "email":
            if not self.host or not self.sender or not self.recipients:
                raise ValueError("an email channel needs host, sender and recipients")
            if (self.username_env is None) != (self.password_env is None):
                raise ValueError("give both username_env and password_env, or neither")
        return self

    def secret_variables(self) -> list[str]:
        """Names of the environment variables this channel reads."""
        return [v for v in (self.url_env, self.secret_env, self.username_env,
                            self.password_env) if v]

    def resolved_url(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The URL, from the file or from the named variable."""
        if self.url is not None:
            return self.url
        return _env(environ).get(self.url_env or "") or None


class RuleSettings(_Strict):
    """One alert rule of a model (see docs/alerts.md)."""

    name: str
    kind: str
    channels: list[str] = Field(default_factory=list)
    for_runs: Annotated[int, Field(ge=1)] = 1
    severity: Literal["info", "warning", "critical"] = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str = ""
    description: str = ""
    repeat_interval_seconds: Annotated[float, Field(gt=0)] | None = None
    notify_resolved: bool = True
    retrain: bool = False
    metric: str | None = None
    below: float | None = None
    above: float | None = None
    drop: float | None = None
    bound: Literal["value", "lower", "upper"] = "value"
    features: list[str] = Field(default_factory=list)
    check: str | None = None
    threshold: float | None = None
    duration_seconds: float | None = None
    min_coverage: float | None = None

    def to_rule(self, model: str) -> AlertRule:
        """The engine's rule (validated).

        Raises:
            ValueError: naming what is wrong with the rule.
        """
        data: dict[str, Any] = self.model_dump()
        data["channels"] = tuple(self.channels)
        data["features"] = tuple(self.features)
        try:
            return AlertRule(model=model, **data)
        except RuleError as exc:
            raise ValueError(str(exc)) from exc


class ApiSettings(_Strict):
    """The HTTP API's settings.

    Write endpoints need the bearer token held by the variable `token_env`; `base_url` is
    how people reach this service (the run links in notifications).
    """

    token_env: str = "DRIFTLINE_API_TOKEN"  # noqa: S105 - a variable name, not a secret
    base_url: str | None = None
