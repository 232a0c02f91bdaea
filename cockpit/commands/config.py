"""`cockpit config validate FILE`: every problem of a config file at once, or a summary to check by eye."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cockpit.commands.parsing import Commands

if TYPE_CHECKING:
    from cockpit.config.settings import Config


def register(commands: Commands) -> None:
    config = commands.add_parser("config", help="configuration files")
    actions = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    validate = actions.add_parser("validate", help="check a config file and name every error")
    validate.add_argument("file", metavar="FILE")
    validate.set_defaults(handler=lambda args: validate_command(args.file))


def summary(config: Config) -> list[str]:
    """A few lines an operator can check at a glance."""
    from cockpit.config.rules import redact_url

    ex, risk, feeds = config.exchange, config.risk, config.feeds
    where = redact_url(ex.base_url) if ex.base_url else ("testnet" if ex.testnet else "production")
    if config.session.path is not None:
        session = f"file {config.session.path}"
    else:
        session = f"new file per run under {config.session.dir} (session-YYYYmmdd-HHMMSS.duckdb)"
    return [
        f"  exchange: {ex.id} ({where})",
        f"  session:  {session}",
        f"  risk:     drawdown warn {risk.warn_drawdown_pct:g}% / breaker {risk.breaker_drawdown_pct:g}%"
        f" / kill {risk.kill_drawdown_pct:g}%; clock drift warn {risk.clock_warn_ms} ms"
        f" / kill {risk.clock_kill_ms} ms",
        f"  feeds:    {', '.join(feeds.symbols)}; stale after {feeds.stale_after_s:g} s",
    ]


def validate_command(file: str) -> int:
    """`cockpit config validate FILE`: 0 and a summary if valid, else every problem on stderr and 2."""
    from cockpit.config.settings import ConfigError, load_config

    try:
        config = load_config(Path(file))
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    print(f"ok: {file} is valid")
    print("\n".join(summary(config)))
    return 0
