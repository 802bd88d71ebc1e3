"""`driftline proxy`: its arguments, and settings from them, driftline.yaml and the environment."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:9092"


def add_proxy_command(commands: Any) -> None:
    """Add the ``proxy`` subcommand to the CLI's subparsers."""
    from collector.proxy.serve import DEFAULT_METRICS_LISTEN

    proxy = commands.add_parser(
        "proxy", help="log a REST model server's predictions: a proxy in front of it",
        description="Forward every request to the model server at --upstream unchanged and "
                    "return its response unchanged; log each row of every inference request "
                    "(TF Serving/KServe v1 :predict, Open Inference Protocol v2 /infer, MLflow "
                    "/invocations, Seldon /api/v1.0/predictions) as a prediction event of "
                    "--model, after the response is sent. Logging never fails a request.")
    proxy.add_argument("--upstream", required=True, metavar="URL",
                       help="the model server, http://HOST:PORT")
    proxy.add_argument("--listen", default="0.0.0.0:8000", metavar="HOST:PORT",
                       help="where the proxy listens (default 0.0.0.0:8000)")
    proxy.add_argument("--model", required=True, metavar="NAME",
                       help="the driftline model the predictions belong to")
    proxy.add_argument("--config", default=None, metavar="FILE",
                       help="driftline.yaml: Kafka settings, and the model's features as "
                            "the names of unnamed columns")
    proxy.add_argument("--bootstrap-servers", default=None, metavar="HOST:PORT,...",
                       help="Kafka (default: --config's kafka.bootstrap_servers, else "
                            f"$KAFKA_BOOTSTRAP_SERVERS, else {DEFAULT_BOOTSTRAP_SERVERS})")
    proxy.add_argument("--topic", default=None, metavar="TOPIC",
                       help="the predictions topic (default: --config's "
                            "kafka.predictions_topic, else driftline.predictions)")
    proxy.add_argument("--features", default=None, metavar="A,B,...",
                       help="names of the columns the payloads leave unnamed, in order "
                            "(default: the model's features in --config, else the model "
                            "server's metadata)")
    proxy.add_argument("--output", default=None, metavar="NAME",
                       help="the output logged as the prediction when a response has several "
                            "(default the first)")
    proxy.add_argument("--metrics-listen", default=DEFAULT_METRICS_LISTEN, metavar="HOST:PORT",
                       help="where /metrics is served, apart from the proxied port (default "
                            f"{DEFAULT_METRICS_LISTEN}; 'off' for none)")
    proxy.add_argument("--max-unsent-seconds", type=float, default=30.0, metavar="SECONDS",
                       help="events Kafka has not taken within this long are dropped and "
                            "counted (default 30)")
    proxy.set_defaults(handler=run_command)


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> Any:
    """`ProxySettings` from the parsed arguments, --config and the environment.

    Raises:
        ConfigError: When --config cannot be read or is invalid.
        ValueError: When an argument is malformed.
    """
    from collector.proxy.serve import ProxySettings, split_host_port

    split_host_port(args.listen, what="--listen")
    metrics = None if args.metrics_listen in ("", "off") else args.metrics_listen
    if metrics is not None:
        split_host_port(metrics, what="--metrics-listen")
    servers = args.bootstrap_servers
    predictions_topic, labels_topic = "driftline.predictions", "driftline.labels"
    features: list[str] | None = None
    if args.features:
        features = [name.strip() for name in args.features.split(",") if name.strip()]
    if args.config is not None:
        from collector.config import load_settings

        settings = load_settings(args.config)
        servers = servers or settings.kafka.bootstrap_servers
        predictions_topic = settings.kafka.predictions_topic
        labels_topic = settings.kafka.labels_topic
        model = next((m for m in settings.models if m.name == args.model), None)
        if features is None and model is not None:
            features = list(model.features)
    servers = servers or environ.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP_SERVERS
    predictions_topic = args.topic or predictions_topic
    return ProxySettings(upstream=args.upstream, listen=args.listen, model=args.model,
                         bootstrap_servers=servers, feature_names=features,
                         metrics_listen=metrics, output=args.output,
                         predictions_topic=predictions_topic, labels_topic=labels_topic,
                         max_unsent_seconds=args.max_unsent_seconds)


def run_command(args: argparse.Namespace) -> int:
    """The ``proxy`` subcommand: serve until interrupted."""
    from collector.errors import ConfigError
    from collector.proxy.serve import run_proxy

    try:
        settings = settings_from_args(args, os.environ)
        run_proxy(settings)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return 0
