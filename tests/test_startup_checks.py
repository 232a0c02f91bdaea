"""Start-up against the exchange: a followed symbol the exchange does not list is named (file, key, value,
closest market) before anything streams; an exchange that never answers ends the run with words that match
what happens (it gave up after N attempts; nothing retries once it has exited)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from cockpit.config.errors import ConfigError
from cockpit.config.secrets import Credentials
from cockpit.engine.options import EngineOptions
from cockpit.engine.runtime import RunSpec, run
from cockpit.engine.startup import ExchangeUnreachable
from cockpit.exchange.gateway import RetryPolicy
from tests.conftest import make_config


async def test_a_symbol_the_exchange_does_not_list_is_named_at_start(start_engine: Any) -> None:
    with pytest.raises(ConfigError) as info:
        await start_engine(symbols=("BTC/USDT:USDT", "ETH/USDT:USDT", "ETHH/USDT:USDT"))
    (problem,) = info.value.problems
    assert problem.key == "feeds.symbols[2]" and problem.value == "'ETHH/USDT:USDT'"
    assert "not a market the exchange lists" in problem.why
    assert "did you mean 'ETH/USDT:USDT'" in problem.fix
    assert info.value.exit_code == 2


def unreachable_url() -> str:
    with socket.socket() as probe:  # a port nothing listens on: every connection is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_an_unreachable_exchange_ends_the_run_saying_it_gave_up(tmp_path: Path) -> None:
    path = tmp_path / "session.duckdb"
    spec = RunSpec(
        config=make_config(unreachable_url(), path),
        credentials=Credentials("k", "s"),
        session_file=path,
        options=EngineOptions(mode="live"),
        gateway_policy=RetryPolicy(
            transient_retries=1,
            transient_wait_s=0.05,
            recoverable_retries=2,
            recoverable_initial_s=0.05,
            recoverable_cap_s=0.1,
        ),
    )
    with pytest.raises(ExchangeUnreachable) as info:
        await run(spec, duration=60)
    rendered = info.value.render()
    assert "did not answer; gave up after 3 attempt(s)" in rendered
    assert "does not retry once it has exited" in rendered
    assert "keeps retrying" not in rendered  # the words match what happens: the run has ended
    assert info.value.exit_code == 1
