"""Start-up checks that need the exchange's answer: the markets it lists, and what to say when it does not
answer at all. Each is a clear error naming the config file, the key and the fix, never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from cockpit.config.errors import ConfigError, ConfigProblem
from cockpit.config.rules import redact_urls
from cockpit.config.settings import Config
from cockpit.core.errors import CockpitError
from cockpit.exchange.gateway import GatewayError
from cockpit.exchange.reports import MarketReport


class ExchangeUnreachable(CockpitError):
    """The exchange did not answer at start, after the gateway's retries: the run ends (exit 1)."""


def unlisted_symbols(config: Config, markets: Mapping[str, MarketReport]) -> ConfigError | None:
    """feeds.symbols the exchange does not list, each named with its index and the closest listed market."""
    listed = sorted(markets)
    where = config.exchange.base_url or ("testnet" if config.exchange.testnet else config.exchange.id)
    problems: list[ConfigProblem] = []
    for index, symbol in enumerate(config.feeds.symbols):
        if symbol in markets:
            continue
        close = difflib.get_close_matches(symbol, listed, n=1)
        fix = f"did you mean {close[0]!r}? " if close else ""
        fix += f"list only markets {config.exchange.id} has ({len(listed)} listed), or remove it"
        why = f"is not a market the exchange lists ({redact_urls(where)})"
        problems.append(ConfigProblem(f"feeds.symbols[{index}]", repr(symbol), why, fix))
    return ConfigError(config.source, problems) if problems else None


def exchange_unreachable(config: Config, exc: GatewayError, elapsed_s: float) -> ExchangeUnreachable:
    """What `cockpit run` says when the exchange's markets cannot be read at start: that it gave up, after
    how many attempts and how long, and that nothing retries once it has exited."""
    where = config.exchange.base_url or ("testnet" if config.exchange.testnet else config.exchange.id)
    source = f" in {config.source}" if config.source is not None else ""
    return ExchangeUnreachable(
        f"cannot start: the exchange ({redact_urls(where)}) did not answer; gave up after "
        f"{exc.attempts} attempt(s) over {elapsed_s:.0f} s",
        redact_urls(f"{exc.title}: {exc.detail}"),
        f"check the network, exchange.base_url{source} and the exchange's status page, then start cockpit "
        "again (it does not retry once it has exited; under a supervisor such as systemd with "
        "Restart=on-failure it is started again for you)",
    )
