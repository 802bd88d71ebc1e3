"""The `driftline` command line: serve, db upgrade, check-config, analyze, demo."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from collector.errors import CollectorError, ConfigError

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2


def _serve(args: argparse.Namespace) -> int:
    from collector.app import ALL_ROLES, Service
    from collector.config import load_settings

    settings = load_settings(args.config)
    if args.port is not None:
        settings = settings.model_copy(
            update={"http": settings.http.model_copy(update={"port": args.port})}
        )
    roles = ALL_ROLES if args.only is None else frozenset({args.only})
    Service(settings, roles=roles).serve_forever()
    return EXIT_OK


def _db_upgrade(args: argparse.Namespace) -> int:
    from collector.config import DEFAULT_DATABASE_URL, load_settings
    from collector.store import make_engine, upgrade

    if args.config and Path(args.config).exists():
        url = load_settings(args.config).database_url
    else:
        import os

        url = os.environ.get("DRIFTLINE_DATABASE_URL") or DEFAULT_DATABASE_URL
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    print(f"database schema is up to date ({engine.url.render_as_string(hide_password=True)})")
    return EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    from collector.config import load_settings

    settings = load_settings(args.config)
    print(f"{args.config}: valid, {len(settings.models)} model(s): "
          + ", ".join(m.name for m in settings.models))
    return EXIT_OK


def _analyze(args: argparse.Namespace) -> int:
    from collector.analyze import run_analyze

    return run_analyze(args)


def _demo(args: argparse.Namespace) -> int:
    from collector.demo import run_demo

    if args.log_level.upper() == "INFO":
        logging.getLogger().setLevel(logging.WARNING)  # the demo tells its own story
        logging.getLogger("kafka").setLevel(logging.ERROR)
    return run_demo(config=Path(args.config), duration_seconds=args.duration)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="driftline", description=__doc__)
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run ingest, scheduler and HTTP")
    serve.add_argument("--config", default="driftline.yaml", help="configuration file")
    serve.add_argument("--only", choices=["ingest", "scheduler", "api"], default=None,
                       help="run one role only (HTTP /metrics is always served)")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (overrides config)")
    serve.set_defaults(handler=_serve)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    up = db_commands.add_parser("upgrade", help="apply migrations")
    up.add_argument("--config", default="driftline.yaml")
    up.set_defaults(handler=_db_upgrade)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("--config", default="driftline.yaml")
    check.set_defaults(handler=_check_config)

    analyze = commands.add_parser("analyze", help="compare two datasets offline")
    analyze.add_argument("--reference", required=True, help="reference CSV or Parquet")
    analyze.add_argument("--current", required=True, help="current CSV or Parquet")
    analyze.add_argument("--config", default=None, help="take features and settings from here")
    analyze.add_argument("--model", default=None, help="model of --config to take them from")
    analyze.add_argument("--numeric-method", default=None)
    analyze.add_argument("--categorical-method", default=None)
    analyze.add_argument("--threshold", type=float, default=None)
    analyze.add_argument("--drift-share", type=float, default=None)
    analyze.add_argument("--columns", default=None, help="comma-separated columns to compare")
    analyze.add_argument("--format", choices=["json", "text", "html"], default="text")
    analyze.add_argument("--output", default=None, help="write here instead of stdout")
    analyze.add_argument("--fail-on-drift", action="store_true",
                         help="exit 1 when the dataset drifted")
    analyze.set_defaults(handler=_analyze)

    demo = commands.add_parser("demo", help="run the whole service on a local broker")
    demo.add_argument("--config", default="examples/driftline.yaml")
    demo.add_argument("--duration", type=float, default=150.0, help="seconds of traffic")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `driftline` console script."""
    from collector.logs import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level.upper())
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"driftline: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CollectorError as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
