"""Typed commands at the control socket's edge: every command survives JSON both ways, a bad request is
refused with an error naming the field and the fix, and every result is the JSON it always was (same keys, in
order)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import orjson
import pytest

from cockpit.core.commands import (
    Acknowledge,
    AckResult,
    Adopt,
    AdoptResult,
    Asks,
    Backup,
    BackupResult,
    CancelOrders,
    CancelResult,
    CleanupResult,
    Command,
    CounterStatus,
    DeadLetter,
    DeadLetters,
    DeadLetterStats,
    DlqCleanup,
    DlqList,
    DlqRemove,
    DlqRetry,
    DlqStats,
    Flatten,
    FlattenResult,
    KillSwitch,
    KillSwitchStatus,
    Orders,
    OrdersReport,
    OrderStatus,
    PeakResetResult,
    PositionStatus,
    RateLimitStatus,
    ReadCopy,
    Reconcile,
    RemoveResult,
    ResetPeak,
    Result,
    RetryResult,
    Status,
    StatusReport,
)
from cockpit.core.events import reconcile_done
from cockpit.core.state import State
from cockpit.core.wire import (
    BadAnswer,
    BadCommand,
    command_from_json,
    command_to_json,
    result_from_json,
    result_to_json,
)
from cockpit.engine.actions import adopted_payload, reconcile_result
from cockpit.engine.backups import backup_payload
from cockpit.engine.control import ControlServer
from cockpit.engine.flatten import done_payload
from cockpit.engine.status import status_of

BTC = "BTC/USDT:USDT"

COMMANDS: list[Command] = [
    Status(by="ctl"),
    Reconcile(by="ui"),
    Flatten(symbols=("BTCUSDT", BTC), by="ctl"),
    Flatten(symbols=None, by="ui"),
    KillSwitch(on=True, cause="operator says stop", by="ui"),
    KillSwitch(on=False, by="ctl"),
    Backup(by="cli"),
    ReadCopy(by="sessions"),
    Adopt(symbol="ETHUSDT", by="ui"),
    DlqList(op="create_order", reason="Margin", status="all", by="ctl"),
    DlqList(by="ctl"),
    DlqStats(by="ctl"),
    DlqRetry(id=7, by="ctl"),
    DlqRemove(id=7, by="ctl"),
    DlqCleanup(older_than_days=1.5, by="ctl"),
    ResetPeak(by="ctl"),
    Acknowledge(number=3, by="ctl"),
    Acknowledge(by="ui"),
    Orders(by="ctl"),
    CancelOrders(order="ck-1a2b", order_id="8101", by="ui"),
    CancelOrders(symbols=("BTCUSDT",), by="ctl"),
    CancelOrders(by="ui"),
]


def over_the_wire(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


@pytest.mark.parametrize("command", COMMANDS, ids=repr)
def test_every_command_round_trips_through_json(command: Command) -> None:
    assert command_from_json(over_the_wire(command_to_json(command))) == command


def test_the_samples_cover_every_command() -> None:
    assert {type(c) for c in COMMANDS} == set(get_args(Command))


@pytest.mark.parametrize(
    ("request_", "command"),
    [
        ({"cmd": "status"}, Status(by="ctl")),  # no "by": ctl, as ever
        ({"cmd": "reconcile", "by": "ctl"}, Reconcile(by="ctl")),
        ({"cmd": "flatten", "symbols": ["BTCUSDT"], "by": "ctl"}, Flatten(symbols=("BTCUSDT",), by="ctl")),
        ({"cmd": "flatten", "symbols": None, "by": "ctl"}, Flatten(symbols=None, by="ctl")),
        ({"cmd": "flatten", "symbols": []}, Flatten(symbols=(), by="ctl")),  # the engine refuses it
        ({"cmd": "kill_switch", "on": True}, KillSwitch(on=True, by="ctl")),
        ({"cmd": "kill_switch", "on": False, "by": "ctl"}, KillSwitch(on=False, by="ctl")),
        ({"cmd": "backup", "by": "cli"}, Backup(by="cli")),
        ({"cmd": "read_copy", "by": "report"}, ReadCopy(by="report")),
        ({"cmd": "adopt", "symbol": "ETHUSDT"}, Adopt(symbol="ETHUSDT", by="ctl")),
        (
            {"cmd": "dlq", "action": "list", "op": None, "reason": None, "status": "open", "by": "ctl"},
            DlqList(by="ctl"),
        ),
        ({"cmd": "dlq", "action": "list", "status": None}, DlqList(status=None, by="ctl")),
        ({"cmd": "dlq", "action": "stats", "by": "ctl"}, DlqStats(by="ctl")),
        ({"cmd": "dlq", "action": "retry", "id": 3, "by": "ctl"}, DlqRetry(id=3, by="ctl")),
        ({"cmd": "dlq", "action": "remove", "id": 3, "by": "ctl"}, DlqRemove(id=3, by="ctl")),
        (
            {"cmd": "dlq", "action": "cleanup", "older_than_days": 1},
            DlqCleanup(older_than_days=1.0, by="ctl"),
        ),
    ],
)
def test_the_requests_clients_send_today_still_read(request_: dict[str, Any], command: Command) -> None:
    assert command_from_json(request_) == command


def test_an_unknown_command_lists_the_known_ones() -> None:
    with pytest.raises(BadCommand) as bad:
        command_from_json({"cmd": "sell_everything"})
    assert bad.value.title == "bad request"
    assert bad.value.detail == (
        "unknown command 'sell_everything'; use status, reconcile, flatten, kill_switch, backup, read_copy, "
        "adopt, reset_peak, ack, orders, cancel or dlq"
    )
    assert bad.value.fix == "see `cockpit ctl --help`"
    with pytest.raises(BadCommand) as bad:
        command_from_json({"cmd": "dlq", "action": "purge"})
    assert bad.value.detail == "unknown dlq action 'purge'; use list, stats, retry, remove or cleanup"


@pytest.mark.parametrize(
    ("request_", "command"),
    [
        ({"cmd": "kill_switch", "on": 1}, KillSwitch(on=True, by="ctl")),
        ({"cmd": "kill_switch", "on": 0}, KillSwitch(on=False, by="ctl")),
        ({"cmd": "dlq", "action": "retry", "id": "3"}, DlqRetry(id=3, by="ctl")),
        ({"cmd": "dlq", "action": "remove", "id": 3.0}, DlqRemove(id=3, by="ctl")),
        (
            {"cmd": "dlq", "action": "cleanup", "older_than_days": "30"},
            DlqCleanup(older_than_days=30.0, by="ctl"),
        ),
        ({"cmd": "reconcile", "by": None}, Reconcile(by="ctl")),
    ],
)
def test_what_scripts_have_always_sent_is_still_understood(
    request_: dict[str, Any], command: Command
) -> None:
    """The engine once coerced these; a script that engages the kill switch with 1 must still engage it."""
    assert command_from_json(request_) == command


@pytest.mark.parametrize(
    ("request_", "detail", "fix"),
    [
        ({"cmd": "kill_switch"}, 'kill_switch: "on" is missing', '"on": true'),
        (
            {"cmd": "kill_switch", "on": "yes"},
            "kill_switch: \"on\" must be true or false, got 'yes'",
            '"on": true',
        ),
        (
            {"cmd": "kill_switch", "on": True, "cause": 3},
            '"cause" must be a string or null, got 3',
            '"cause"',
        ),
        (
            {"cmd": "flatten", "symbols": "BTCUSDT"},
            'flatten: "symbols" must be a list of symbols',
            '"symbols": [',
        ),
        ({"cmd": "flatten", "symbols": [1]}, 'flatten: "symbols" must be a list', '"symbols": null'),
        ({"cmd": "adopt"}, 'adopt: "symbol" is missing', '"symbol": "BTCUSDT"'),
        (
            {"cmd": "dlq", "action": "retry", "id": "three"},
            "dlq retry: \"id\" must be a whole number, got 'three'",
            '"id": 3',
        ),
        (
            {"cmd": "kill_switch", "on": "false"},  # never read as true, as a string once was
            "kill_switch: \"on\" must be true or false, got 'false'",
            '"on": true',
        ),
        ({"cmd": "dlq", "action": "remove"}, 'dlq remove: "id" is missing', '"id": 3'),
        ({"cmd": "dlq", "action": "retry", "id": True}, '"id" must be a whole number, got True', '"id": 3'),
        (
            {"cmd": "dlq", "action": "cleanup", "older_than_days": "old"},
            '"older_than_days" must be a number',
            "30",
        ),
        (
            {"cmd": "dlq", "action": "list", "status": 1},
            'dlq list: "status" must be a string or null',
            '"open"',
        ),
        ({"cmd": "status", "by": 7}, '"by" must be a string, got 7', '"by": "ctl"'),
    ],
)
def test_a_bad_field_is_named_with_the_fix(request_: dict[str, Any], detail: str, fix: str) -> None:
    with pytest.raises(BadCommand) as bad:
        command_from_json(request_)
    assert bad.value.title == "bad request"
    assert detail in bad.value.detail
    assert fix in bad.value.fix


# ----- results ----------------------------------------------------------------------------------------------

POSITION_KEYS = [
    "symbol", "side", "qty", "entry", "mark", "upnl", "leverage", "liquidation", "mark_ts", "price_step",
    "amount_step", "ghost", "margin", "isolated_margin", "leg",
]  # fmt: skip
STATUS_KEYS = [
    "seq", "mode", "exchange", "session_file", "positions", "open_orders", "health", "health_detail",
    "kill_switch", "equity", "wallet", "drawdown_pct", "drawdown_band", "rate_limit", "clock_offset_ms",
    "counters", "kill_switch_file", "market_data_ts",
]  # fmt: skip
KILL_SWITCH_KEYS = ["engaged", "cause", "by", "since"]
RECONCILE_KEYS = [
    "trigger", "matched", "recovered_fills", "recovered_by_symbol", "ghosts", "adopted", "corrected",
    "orders_added", "orders_removed", "ghosts_open", "seconds", "through_ms", "denied",
]  # fmt: skip
FLATTEN_KEYS = ["symbols", "by", "verified", "rounds", "remaining", "errors", "message"]
BACKUP_KEYS = ["path", "size_bytes", "verified", "last_seq", "seconds", "by", "message"]
ADOPT_KEYS = ["symbol", "qty", "entry", "ghost", "reason", "message"]
LETTER_KEYS = ["id", "ts", "op", "params", "error_class", "error_type", "reason", "attempts", "status"]

POSITION = PositionStatus(
    symbol=BTC, side="long", qty="0.01", entry="64000.1", mark="64010.0", upnl="0.10", leverage=10,
    liquidation="0", mark_ts=1.5, price_step="0.1", amount_step="0.001", ghost=False,
)  # fmt: skip
STATUS = StatusReport(
    seq=42,
    mode="live",
    exchange="binanceusdm",
    session_file="/s/monday.duckdb",
    positions=(POSITION,),
    open_orders=1,
    health={"exchange": "ok", "feed": "stale"},
    health_detail={"feed": "no tick for 6 s"},
    kill_switch=KillSwitchStatus(engaged=True, cause="drawdown", by="risk", since=1700000000.5),
    equity="10002.27",
    wallet="10000",
    drawdown_pct=1.234,
    drawdown_band="green",
    rate_limit=RateLimitStatus(used=10, limit=2400, queued=0, rejected_recent=1, banned_until=None),
    clock_offset_ms=-12.5,
    counters=CounterStatus(
        fills=3, orders_submitted=4, orders_rejected=1, ghosts=0, dead_letters=2, fill_rate=0.75
    ),
    kill_switch_file="/a/kill_switch.json",
    market_data_ts=1_800_000_000.5,
)
RECONCILED = reconcile_done(
    trigger="operator:ui",
    matched=2,
    recovered_fills=1,
    recovered_by_symbol={BTC: 1},
    ghosts=["ETH/USDT:USDT"],
    adopted=[],
    corrected=[BTC],
    orders_added=0,
    orders_removed=1,
    ghosts_open=["ETH/USDT:USDT"],
    seconds=0.42,
    through_ms=1700000000123,
    denied=[],
)
FLATTENED = FlattenResult(
    symbols=(BTC, "ETH/USDT:USDT"),
    by="ui",
    verified=False,
    rounds=5,
    remaining={BTC: "-0.004"},
    errors=(f"{BTC}: order not filled in round 5",),
    message=f"NOT flat: {BTC} -0.004",
)
BACKED_UP = BackupResult(
    path="/s/backups/monday-20240101-000000-000.duckdb", size_bytes=1_200_000, verified=True, last_seq=42,
    seconds=0.12, by="ui",
    message="backup monday-20240101-000000-000.duckdb: verified, 1.2 MB, through event 42",
)  # fmt: skip
ADOPTED = AdoptResult(
    symbol=BTC,
    qty="0.3",
    entry="64000",
    ghost=False,
    reason="ghost adopted by ui",
    message=f"{BTC} 0.3 adopted by ui",
)
LETTER = DeadLetter(
    id=7, ts=1700000000.0, op="create_order", params={"symbol": BTC, "amount": "0.01", "reduce_only": True},
    error_class="permanent", error_type="InsufficientFunds", reason="Margin is insufficient.", attempts=1,
    status="open",
)  # fmt: skip

RESULTS: list[tuple[Asks[Any], Result]] = [
    (Status(by="ctl"), STATUS),
    (Reconcile(by="ui"), reconcile_result(RECONCILED)),
    (Flatten(symbols=None, by="ui"), FLATTENED),
    (KillSwitch(on=True, by="ui"), STATUS.kill_switch),
    (Backup(by="ui"), BACKED_UP),
    (ReadCopy(by="report"), BACKED_UP),
    (Adopt(symbol="BTCUSDT", by="ui"), ADOPTED),
    (DlqList(by="ctl"), DeadLetters((LETTER,))),
    (DlqList(by="ctl"), DeadLetters(())),
    (
        DlqStats(by="ctl"),
        DeadLetterStats(
            total=3,
            by_status={"open": 2, "removed": 1},
            open_by_op={"create_order": 2},
            open_by_class={"permanent": 2},
            open_top_reasons=(("Margin is insufficient.", 2),),
        ),
    ),
    (DlqRetry(id=7, by="ctl"), RetryResult(id=7, sent=True, status="filled", client_order_id="ck-1")),
    (DlqRetry(id=7, by="ctl"), RetryResult(id=7, sent=False, status="rejected again", client_order_id=None)),
    (DlqRemove(id=7, by="ctl"), RemoveResult(id=7, status="removed")),
    (DlqCleanup(older_than_days=30, by="ctl"), CleanupResult(deleted=4)),
    (
        ResetPeak(by="ctl"),
        PeakResetResult(old_peak="5E+305", new_peak="10000", drawdown_pct=0.0, by="ctl", message="reset"),
    ),
    (
        Acknowledge(number=None, by="ui"),
        AckResult(acknowledged=(1, 3), by="ui", message="acknowledged #1, #3"),
    ),
    (Orders(by="ctl"), OrdersReport(())),
    (
        Orders(by="ctl"),
        OrdersReport(
            (
                OrderStatus(
                    client_order_id="ck-1",
                    order_id="42",
                    symbol=BTC,
                    side="sell",
                    type="stop_market",
                    amount="0.01",
                    filled="0",
                    price=None,
                    trigger="61000.5",
                    reduce_only=True,
                    origin="external",
                    status="open",
                    age_s=12.5,
                    price_step="0.1",
                    amount_step="0.001",
                ),
            )
        ),
    ),
    (
        CancelOrders(symbols=None, by="ctl"),
        CancelResult(
            scope="all",
            by="ctl",
            canceled=("ck-1", "ck-2"),
            remaining=(),
            errors=(),
            verified=True,
            message="canceled 2 orders; none left open (verified)",
        ),
    ),
]


@pytest.mark.parametrize(("command", "result"), RESULTS, ids=lambda x: type(x).__name__)
def test_every_result_round_trips_through_json(command: Asks[Any], result: Result) -> None:
    assert result_from_json(command, over_the_wire(result_to_json(result))) == result


def test_the_results_cover_every_command() -> None:
    assert {type(command) for command, _ in RESULTS} == set(get_args(Command))


def test_a_status_is_the_json_it_always_was() -> None:
    wire = over_the_wire(result_to_json(STATUS))
    assert list(wire) == STATUS_KEYS
    assert list(wire["positions"][0]) == POSITION_KEYS
    assert list(wire["kill_switch"]) == KILL_SWITCH_KEYS
    assert list(wire["rate_limit"]) == [
        "used", "limit", "queued", "rejected_recent", "banned_until",
        "window_s", "endpoint", "endpoint_used", "endpoint_limit",  # added: an older reader ignores them
    ]  # fmt: skip
    assert list(wire["counters"]) == [
        "fills", "orders_submitted", "orders_rejected", "ghosts", "dead_letters", "fill_rate"
    ]  # fmt: skip
    assert wire["health"] == {"exchange": "ok", "feed": "stale"} and wire["positions"][0]["qty"] == "0.01"
    engine_status = result_to_json(status_of(State(), "/a/kill_switch.json"))
    assert list(engine_status) == STATUS_KEYS and engine_status["kill_switch"] == {
        "engaged": False, "cause": "", "by": "", "since": None
    }  # fmt: skip


def test_the_other_results_keep_their_keys() -> None:
    assert list(result_to_json(reconcile_result(RECONCILED))) == RECONCILE_KEYS
    assert result_to_json(reconcile_result(RECONCILED)) == RECONCILED  # the reply is what reconcile.done says
    assert list(result_to_json(FLATTENED)) == FLATTEN_KEYS
    assert result_to_json(FLATTENED)["remaining"] == {BTC: "-0.004"}
    assert list(result_to_json(BACKED_UP)) == BACKUP_KEYS
    assert list(result_to_json(ADOPTED)) == ADOPT_KEYS
    letters = result_to_json(DeadLetters((LETTER,)))
    assert isinstance(letters, list) and list(letters[0]) == LETTER_KEYS  # `dlq list --json`: a list
    stats = over_the_wire(result_to_json(RESULTS[9][1]))
    assert stats["open_top_reasons"] == [["Margin is insufficient.", 2]]
    assert result_to_json(CleanupResult(deleted=4)) == {"deleted": 4}
    assert result_to_json(RemoveResult(id=7, status="removed")) == {"id": 7, "status": "removed"}


def test_event_payloads_are_built_on_their_own_with_the_same_keys() -> None:
    done = done_payload(FLATTENED)
    assert done == result_to_json(FLATTENED) and isinstance(done["symbols"], list)
    assert backup_payload(BACKED_UP) == result_to_json(BACKED_UP)
    assert adopted_payload(ADOPTED) == result_to_json(ADOPTED)


def test_an_answer_missing_a_field_is_named() -> None:
    broken = result_to_json(FLATTENED)
    del broken["verified"]
    with pytest.raises(BadAnswer) as bad:
        result_from_json(Flatten(symbols=None, by="ctl"), broken)
    assert "verified" in bad.value.title


# ----- the socket's edge ----------------------------------------------------------------------------------


class FakeEngine:
    def __init__(self) -> None:
        self.commands: list[Asks[Any]] = []

    async def control(self, command: Asks[Any]) -> Result:
        self.commands.append(command)
        return FLATTENED


async def test_the_socket_reads_commands_and_writes_results_as_json(tmp_path: Path) -> None:
    engine = FakeEngine()
    server = ControlServer(engine, tmp_path / "s.sock")  # type: ignore[arg-type]  # only control() is used
    reply = await server._dispatch(b'{"cmd": "flatten", "symbols": ["BTCUSDT"], "by": "ctl"}')
    assert engine.commands == [Flatten(symbols=("BTCUSDT",), by="ctl")]
    assert reply == {"ok": True, "result": result_to_json(FLATTENED)}

    reply = await server._dispatch(b'{"cmd": "kill_switch", "on": "off"}')
    assert reply["ok"] is False and reply["error"] == "bad request"
    assert (
        reply["detail"] == "kill_switch: \"on\" must be true or false, got 'off'"
        and '"on": true' in reply["fix"]
    )
    reply = await server._dispatch(b'{"cmd": "nope"}')
    assert reply["ok"] is False and reply["detail"].startswith("unknown command 'nope'; use status")
    assert len(engine.commands) == 1  # a bad request never reaches the engine
