"""The `driftline` command line: serve, db upgrade, check-config, analyze, demo, proxy.

Exit codes: 0 success; 1 the dataset drifted (`analyze --fail-on-drift`); 2 the user's
input or environment is wrong (a bad flag, config or path), said in one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from collector.errors import CollectorError, ConfigError

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2
DEFAULT_CONFIG = "driftline.yaml"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _serve(args: argparse.Namespace) -> int:
    from collector.app import ALL_ROLES, Service
    from collector.checks import check_secrets
    from collector.config import load_settings

    settings = load_settings(args.config)
    unset = [p for p in check_secrets(settings, os.environ, strict=True) if p.level == "error"]
    if unset:
        raise ConfigError(f"{args.config}: {unset[0].where}: {unset[0].message}")
    if args.port is not None:
        settings = settings.model_copy(
            update={"http": settings.http.model_copy(update={"port": args.port})}
        )
    roles = ALL_ROLES if args.only is None else frozenset({args.only})
    Service(settings, roles=roles).serve_forever()
    return EXIT_OK


def _db_upgrade(args: argparse.Namespace) -> int:
    from collector.config import database_url_from_environment, load_settings
    from collector.store import make_engine, upgrade

    if args.config is not None:
        url = load_settings(args.config).database_url  # a missing file is an error
    elif Path(DEFAULT_CONFIG).exists():
        url = load_settings(DEFAULT_CONFIG).database_url
    else:
        url = database_url_from_environment(os.environ)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    print(f"database schema is up to date ({engine.url.render_as_string(hide_password=True)})")
    return EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    from collector.checks import check_settings
    from collector.config import load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        source = f"{Path(args.config)}: "
        for line in exc.problems:  # the same shape as the problems found below
            print(f"{args.config}: error: {line.removeprefix(source)}", file=sys.stderr)
        return EXIT_USAGE
    problems = check_settings(settings, os.environ, strict=args.strict)
    for problem in problems:
        print(f"{args.config}: {problem.line()}", file=sys.stderr)
    errors = [p for p in problems if p.level == "error"]
    if errors:
        return EXIT_USAGE
    warnings = len(problems) - len(errors)
    print(f"{args.config}: valid, {len(settings.models)} model(s): "
          + ", ".join(m.name for m in settings.models)
          + (f" ({warnings} warning{'s' if warnings > 1 else ''})" if warnings else ""))
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


def _add_analyze(commands: argparse._SubParsersAction[_Parser]) -> None:
    from detectors import methods_for

    numeric, categorical = methods_for("numeric"), methods_for("categorical")
    analyze = commands.add_parser(
        "analyze", help="compare two datasets offline (no service needed)",
        description="Compare a current dataset with a reference, column by column, and "
                    "decide whether the dataset drifted; with --target and a prediction or "
                    "scores, also the performance of each, its estimate and segments. Exit "
                    "0, or 1 with --fail-on-drift when it drifted; 2 on bad input.")
    analyze.add_argument("--reference", default=None, metavar="FILE",
                         help="reference CSV or Parquet (default with --config: the model's "
                              "reference)")
    analyze.add_argument("--current", required=True, metavar="FILE",
                         help="current CSV or Parquet")
    analyze.add_argument("--config", default=None, metavar="FILE",
                         help="take features, kinds and drift settings from this "
                              "driftline.yaml: the verdict is the service's for that model")
    analyze.add_argument("--model", default=None,
                         help="model of --config to take them from (needed when it has several)")
    # Not argparse choices: the detectors say why a method does not fit (one line).
    analyze.add_argument("--numeric-method", default=None, metavar="METHOD",
                         help=f"method for numeric columns: auto (Evidently's choice, the "
                              f"default) or one of {', '.join(numeric)}")
    analyze.add_argument("--categorical-method", default=None, metavar="METHOD",
                         help=f"method for categorical columns: auto (the default) or one of "
                              f"{', '.join(categorical)}")
    analyze.add_argument("--p-value-threshold", type=float, default=None, metavar="P",
                         help="p-value tests flag drift when p < P; P in (0, 1) (default: "
                              "each test's own, 0.05 or 0.1)")
    analyze.add_argument("--distance-threshold", type=float, default=None, metavar="D",
                         help="distances flag drift when statistic >= D; D > 0 (default: "
                              "each distance's own, 0.1)")
    analyze.add_argument("--threshold", type=float, default=None,
                         help="shorthand: the threshold of the family of the method given "
                              "with --numeric-method/--categorical-method")
    analyze.add_argument("--drift-share", type=float, default=None, metavar="SHARE",
                         help="the dataset drifted when at least this share of features "
                              "drifted; in (0, 1] (default 0.5)")
    analyze.add_argument("--min-samples", type=int, default=None, metavar="N",
                         help="columns with fewer usable values are insufficient_data "
                              "(default 30; 1 tests any sample, as Evidently does)")
    analyze.add_argument("--columns", default=None, metavar="A,B,...",
                         help="compare only these comma-separated reference columns")
    analyze.add_argument("--target", default=None, metavar="COL",
                         help="the label column (in either file; an empty cell is an "
                              "unlabelled row): realized performance of each file")
    output = analyze.add_mutually_exclusive_group()
    output.add_argument("--prediction", default=None, metavar="COL",
                        help="the predicted class (classification) or value (regression) "
                             "column of both files")
    output.add_argument("--score", default=None, metavar="COL",
                        help="binary classification: the positive class's score column "
                             "(a probability in [0, 1]); adds the CBPE estimate")
    output.add_argument("--scores", default=None, metavar="CLASS=COL,...",
                        help="multiclass: one score column per class, e.g. "
                             "setosa=p_setosa,versicolor=p_versicolor,virginica=p_virginica")
    analyze.add_argument("--task", choices=["classification", "regression"], default=None,
                         help="classification (the default) or regression")
    analyze.add_argument("--positive-label", default=None, metavar="LABEL",
                         help="the positive class of a binary problem (default 1)")
    analyze.add_argument("--segment", action="append", default=None, metavar="COL",
                         help="performance per group of this current column, with the "
                              "disparities between groups (repeatable)")
    analyze.add_argument("--format", choices=["json", "text", "html"], default="text",
                         help="json (the drift report's keys, driftline.drift-report/v1, "
                              "with performance, estimated_performance, data_quality and "
                              "segments), text (a table, the default) or html (a "
                              "self-contained page)")
    analyze.add_argument("--output", default=None, metavar="FILE",
                         help="write the report here instead of stdout")
    analyze.add_argument("--fail-on-drift", action="store_true",
                         help="exit 1 when the dataset drifted (a schema change counts)")
    analyze.set_defaults(handler=_analyze)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from collector import __version__

    parser = _Parser(prog="driftline", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"driftline {__version__}")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
                        help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)

    serve = commands.add_parser("serve", help="run ingest, scheduler and HTTP")
    serve.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                       help=f"configuration file (default {DEFAULT_CONFIG})")
    serve.add_argument("--only", choices=["ingest", "scheduler", "api", "sources"], default=None,
                       help="run one role only: ingest, scheduler, api or sources (the "
                            "bridge of the configured sources; HTTP /metrics is always served)")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (overrides config)")
    serve.set_defaults(handler=_serve)

    sources = commands.add_parser(
        "sources", help="run the sources bridge only (serve --only sources)",
        description="Read the configured sources (KServe and Seldon loggers, MLServer and "
                    "Seldon Core v2 topics), pair requests with responses and produce "
                    "driftline events; HTTP serves /metrics and the CloudEvents endpoint.")
    sources.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                         help=f"configuration file (default {DEFAULT_CONFIG})")
    sources.add_argument("--port", type=int, default=None, help="HTTP port (overrides config)")
    sources.set_defaults(handler=_serve, only="sources")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND",
                                    parser_class=_Parser)
    up = db_commands.add_parser("upgrade", help="apply migrations")
    up.add_argument("--config", default=None, metavar="FILE",
                    help=f"configuration file whose database_url to migrate (default "
                         f"{DEFAULT_CONFIG} if it exists, else DRIFTLINE_DATABASE_URL or "
                         "the embedded SQLite file)")
    up.set_defaults(handler=_db_upgrade)

    check = commands.add_parser(
        "check-config", help="validate a configuration file without services",
        description="Check everything that can be known without services: keys and "
                    "values, reference files and their columns, methods and thresholds, "
                    "the database driver, the secrets' variables. One line per problem; "
                    "exit 2 when any is an error.")
    check.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                       help=f"configuration file (default {DEFAULT_CONFIG})")
    check.add_argument("--strict", action="store_true",
                       help="treat unset secret variables as errors, as serve does")
    check.set_defaults(handler=_check_config)

    _add_analyze(commands)

    demo = commands.add_parser("demo", help="run the whole service on a local broker")
    demo.add_argument("--config", default="examples/driftline.yaml", metavar="FILE",
                      help="configuration of the demo (default examples/driftline.yaml)")
    demo.add_argument("--duration", type=float, default=150.0,
                      help="seconds of traffic (default 150)")
    demo.set_defaults(handler=_demo)

    from collector.proxy.cli import add_proxy_command

    add_proxy_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `driftline` console script."""
    from collector.logs import configure_logging

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0) if isinstance(exc.code, int | None) else EXIT_USAGE
    configure_logging(args.log_level)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"driftline: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CollectorError as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # the environment: a port taken, a path not writable...
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"driftline: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
