"""`python -m collector.proxy ...`: `driftline proxy ...` without loading the rest of the CLI.

The full CLI builds every subcommand's parser, and the analyze one imports the detectors (numpy,
scipy, Evidently: seconds and about 150 MB); a proxy container does not need them. The
arguments are the same as `driftline proxy`'s.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the proxy's arguments and run it; exit 2 on a configuration error."""
    from collector.errors import ConfigError
    from collector.logs import configure_logging
    from collector.proxy.cli import add_proxy_command

    parser = argparse.ArgumentParser(prog="python -m collector.proxy")
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command")
    add_proxy_command(commands)
    args = parser.parse_args(["proxy", *(sys.argv[1:] if argv is None else argv)])
    configure_logging(args.log_level)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        sys.stderr.write(f"driftline proxy: configuration error: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
