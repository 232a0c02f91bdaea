"""`cockpit doctor --config FILE [--json]`: the checks an operator runs before (re)starting a session.

Config, API keys, exchange reachability, key permissions, clock offset, the session file, backups, disk space
and the kill switch — every check runs and is reported, even when an earlier one fails (a check that cannot
run without an earlier one is reported as skipped). Exit 0 all ok, 1 any check failed, 2 the config is
invalid.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from cockpit.commands.parsing import Commands, config_option
from cockpit.core.errors import CockpitError
from cockpit.core.text import fmt_duration

if TYPE_CHECKING:
    from cockpit.config.secrets import Credentials
    from cockpit.config.settings import Config
    from cockpit.core.commands import StatusReport
    from cockpit.engine.account_files import KillSwitchRecord

Status = Literal["ok", "fail", "skip"]
T = TypeVar("T")

EXCHANGE_TIMEOUT_S = 10.0
BACKUP_MAX_AGE_S = 2 * 3600.0  # backups are hourly by default: two hours means one was missed
MIN_FREE_BYTES = 1 << 30
MIN_FREE_FRACTION = 0.05
KILL_FLAG = "kill_switch.flag"
LABELS: dict[Status, str] = {"ok": "OK  ", "fail": "FAIL", "skip": "SKIP"}


def register(commands: Commands) -> None:
    doctor = commands.add_parser(
        "doctor", help="check config, keys, exchange, clock, session file, backups, disk"
    )
    config_option(doctor)
    doctor.add_argument("--json", action="store_true", help="machine-readable report")
    doctor.set_defaults(handler=doctor_command)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix or None,
        }


def passed(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def skipped(name: str, why: str) -> Check:
    return Check(name, "skip", why)


def from_error(name: str, exc: CockpitError) -> Check:
    detail = f"{exc.title}: {exc.detail}" if exc.detail else exc.title
    return failed(name, detail, exc.fix)


# ----- config and keys -------------------------------------------------------------------------------------


def check_config(path: Path) -> tuple[Check, Config | None]:
    from cockpit.config.settings import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        return failed("config", f"{exc.title}\n{exc.detail}", exc.fix), None
    where = config.exchange.base_url or ("testnet" if config.exchange.testnet else "production")
    return passed("config", f"{path} is valid ({config.exchange.id}, {where})"), config


def check_secrets(config: Config) -> tuple[Check, Credentials | None]:
    from cockpit.config.secrets import REDACTED, locate_credentials, mask_key

    try:
        creds, where = locate_credentials(config.exchange.id)
    except CockpitError as exc:
        return from_error("secrets", exc), None
    detail = f"from {where}: key {mask_key(creds.api_key)}, secret {REDACTED}"
    return passed("secrets", detail), creds


# ----- the exchange ----------------------------------------------------------------------------------------


async def within(awaitable: Awaitable[T]) -> T:
    import asyncio

    return await asyncio.wait_for(awaitable, EXCHANGE_TIMEOUT_S)


def exchange_failure(name: str, exc: BaseException, config: Config) -> Check:
    where = config.exchange.base_url or config.exchange.id
    if isinstance(exc, TimeoutError):
        detail = f"no answer from {where} within {EXCHANGE_TIMEOUT_S:g} s"
    elif isinstance(exc, CockpitError):
        detail = f"{exc.title}: {exc.detail}" if exc.detail else exc.title
    else:
        detail = f"{type(exc).__name__}: {exc}"
    fix = "check the network, exchange.base_url in the config, and the exchange's status page"
    return failed(name, detail, fix)


def key_failure(exc: BaseException, config: Config) -> Check:
    from cockpit.exchange.classify import is_auth_failure

    cause = getattr(exc, "cause", exc)
    if is_auth_failure(cause):
        exchange = config.exchange.id
        return failed(
            "key permissions",
            f"the exchange refused a signed call (fetch_balance): {getattr(exc, 'detail', '') or cause}",
            f"store a valid key with `cockpit keys set {exchange}` (or export COCKPIT_API_KEY and "
            "COCKPIT_API_SECRET); check the key's IP whitelist and that Futures trading is enabled on it",
        )
    return exchange_failure("key permissions", exc, config)


def clock_check(offset_ms: float, rtt_ms: float, config: Config) -> Check:
    warn, kill = config.risk.clock_warn_ms, config.risk.clock_kill_ms
    detail = f"offset {offset_ms:+.0f} ms from the exchange (round trip {rtt_ms:.0f} ms)"
    detail += f"; warn {warn} ms, kill {kill} ms"
    if abs(offset_ms) < warn:
        return passed("clock", detail)
    level = "beyond the kill switch limit" if abs(offset_ms) >= kill else "beyond the warning limit"
    fix = (
        "sync the system clock (`sudo systemctl restart systemd-timesyncd`, `sudo chronyc makestep` or "
        "`sudo ntpdate -s pool.ntp.org`), then run doctor again"
    )
    return failed("clock", f"{detail}: {level}", fix)


async def measure_clock(gateway: Any) -> tuple[float, float]:
    """(offset ms, round trip ms) as the engine measures it: the exchange's time minus the midpoint of the
    one HTTP exchange, never timed across a rate-limit wait."""
    from cockpit.engine.clock import ClockSample

    sample = ClockSample.of(await within(gateway.time_server_clock()))
    return sample.offset_ms, sample.rtt_ms


async def exchange_checks(config: Config, creds: Credentials | None) -> list[Check]:
    """exchange, key permissions, position mode and clock, over one client."""
    from cockpit.exchange.ccxt_client import make_ccxt_client
    from cockpit.exchange.gateway import ExchangeGateway, RetryPolicy

    ex = config.exchange
    client = make_ccxt_client(
        ex.id,
        creds.api_key if creds else None,
        creds.api_secret if creds else None,
        base_url=ex.base_url,
        testnet=ex.testnet,
        timeout_ms=int(EXCHANGE_TIMEOUT_S * 1000),
    )
    policy = RetryPolicy(transient_retries=1, transient_wait_s=0.2, recoverable_retries=0)
    gateway = ExchangeGateway(client, policy=policy)
    try:
        return await _exchange_checks(gateway, config, creds)
    finally:
        await gateway.close()


async def _exchange_checks(gateway: Any, config: Config, creds: Credentials | None) -> list[Check]:
    where = config.exchange.base_url or config.exchange.id
    try:
        started = time.perf_counter()
        markets = await within(gateway.load_markets())
        markets_ms = (time.perf_counter() - started) * 1000
        offset_ms, rtt_ms = await measure_clock(gateway)
    except Exception as exc:
        reason = "the exchange is unreachable"
        return [
            exchange_failure("exchange", exc, config),
            skipped("key permissions", reason),
            skipped("position mode", reason),
            skipped("clock", reason),
        ]
    reach = passed(
        "exchange",
        f"{where} answers: {len(markets)} markets in {markets_ms:.0f} ms, REST latency {rtt_ms:.0f} ms",
    )
    key = await check_key(gateway, config, creds)
    mode = await check_position_mode(gateway, config, creds) if key.ok else skipped("position mode", "no key")
    return [reach, key, mode, clock_check(offset_ms, rtt_ms, config)]


async def check_position_mode(gateway: Any, config: Config, creds: Credentials | None) -> Check:
    """The account's position mode (one-way or hedge), and that cockpit follows it."""
    if creds is None:
        return skipped("position mode", "no API keys (see secrets)")
    try:
        hedged = await within(gateway.fetch_hedge_mode())
    except Exception as exc:
        return exchange_failure("position mode", exc, config)
    if not hedged:
        return passed("position mode", "one-way (one position per symbol): supported")
    return passed(
        "position mode",
        "hedge (dual-side: a LONG and a SHORT leg per symbol): supported, each leg followed, reconciled and "
        "flattened on its own",
    )


async def check_key(gateway: Any, config: Config, creds: Credentials | None) -> Check:
    if creds is None:
        return skipped("key permissions", "no API keys (see secrets)")
    try:
        balance = await within(gateway.fetch_balance())
    except Exception as exc:
        return key_failure(exc, config)
    held = ", ".join(balance.assets_held) if balance.assets_held else "no assets"
    return passed("key permissions", f"signed call fetch_balance works ({held})")


# ----- the session, backups, disk and the kill switch --------------------------------------------------


@dataclass(frozen=True)
class SessionPlace:
    file: Path | None  # None: no session yet
    folder: Path  # where the session (and kill_switch.flag, backups/) live


def locate_session(config: Config) -> SessionPlace:
    from cockpit.commands.session_files import resolve_session

    try:
        session = resolve_session(config)
    except CockpitError:
        return SessionPlace(None, config.session.dir)
    return SessionPlace(session, session.parent)


def engine_status(session: Path | None) -> tuple[StatusReport | None, str]:
    """The running engine's status (None if no engine answers) and why not."""
    import asyncio

    from cockpit.core.commands import Status as AskStatus
    from cockpit.engine.control import ask, socket_path_for

    if session is None:
        return None, "no session yet"
    try:
        return asyncio.run(ask(socket_path_for(session), AskStatus(by="doctor"), wait_s=10.0)), ""
    except (CockpitError, OSError, TimeoutError) as exc:
        return None, str(exc)


def check_session(place: SessionPlace, running: bool) -> Check:
    from cockpit.store import SessionFileError, verify

    session = place.file
    if session is None or not session.exists():
        return passed("session file", f"no session yet ({session or place.folder})")
    in_use = f"{session}: in use by the running engine (not verified: verify a backup or stop the engine)"
    if running:
        return passed("session file", in_use)
    try:
        report = verify(session)
    except SessionFileError as exc:
        if "in use" in exc.title:
            return passed("session file", in_use)
        return from_error("session file", exc)
    if report.ok:
        return passed("session file", f"{session}: verified, {report.counts.get('events', 0)} events")
    problems = "; ".join(f"[{k}] {v}" for k, v in report.problems.items())
    fix = "restore the newest verified backup: `cockpit restore --config FILE --latest`"
    return failed("session file", f"{session} is DAMAGED: {problems}", fix)


def check_backups(place: SessionPlace, config_file: Path) -> Check:
    from cockpit.engine.backups import list_backups

    if place.file is None or not place.file.exists():
        return passed("backups", "no session yet, nothing to back up")
    fix = f"take one now: `cockpit backup --config {config_file}` (the engine may be running)"
    backups = list_backups(place.file, check=False)
    if not backups:
        return failed("backups", f"no backup of {place.file.name} in {place.folder / 'backups'}", fix)
    newest = backups[0]
    age = time.time() - newest.created
    detail = f"newest {newest.path.name}, {fmt_duration(age)} old ({len(backups)} in all)"
    if age > BACKUP_MAX_AGE_S:
        return failed("backups", f"{detail}: older than {BACKUP_MAX_AGE_S / 3600:g} h", fix)
    return passed("backups", detail)


def existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def check_disk(place: SessionPlace) -> Check:
    where = existing_ancestor(place.folder)
    try:
        usage = shutil.disk_usage(where)
    except OSError as exc:
        return failed("disk space", f"cannot read free space of {where}: {exc}", "check the path and mount")
    fraction = usage.free / usage.total if usage.total else 0.0
    detail = f"{usage.free / (1 << 30):.1f} GiB free ({fraction:.0%}) on the filesystem of {where}"
    if usage.free < MIN_FREE_BYTES or fraction < MIN_FREE_FRACTION:
        fix = "free space on that filesystem, or move [session] to a bigger disk"
        return failed("disk space", f"{detail}: below 1 GiB or 5 %", fix)
    return passed("disk space", detail)


def check_kill_switch(
    place: SessionPlace,
    status: StatusReport | None,
    config_file: Path,
    account: KillSwitchRecord | None = None,
) -> Check:
    flag = place.folder / KILL_FLAG
    problems: list[str] = []
    fixes: list[str] = []
    if flag.exists():
        problems.append(f"flag file {flag} exists (the engine engages the kill switch while it does)")
        fixes.append(f"remove {flag} once the cause is cleared")
    if status is not None:
        ks = status.kill_switch
        if ks.engaged:
            problems.append(f"ENGAGED in the running engine: {ks.cause} (by {ks.by})")
            fixes.append(f"clear the cause, then `cockpit ctl --config {config_file} kill-switch off`")
    elif account is not None and account.engaged:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(account.since or account.updated))
        problems.append(
            f"ENGAGED on this account since {since}: {account.cause} (by {account.by}); "
            "the next engine starts with it engaged"
        )
        fixes.append(
            f"start the engine, clear the cause, then `cockpit ctl --config {config_file} kill-switch off`"
        )
    if problems:
        return failed("kill switch", "; ".join(problems), "; ".join(fixes))
    engine = "released in the running engine" if status is not None else "no engine running"
    return passed("kill switch", f"{engine}; no flag file {flag.name}")


# ----- running and printing --------------------------------------------------------------------------------

EXCHANGE_CHECKS = ("exchange", "key permissions", "position mode", "clock")
LOCAL_CHECKS = ("session file", "backups", "disk space", "kill switch")


def guarded(name: str, check: Callable[[], Check]) -> Check:
    """A check that cannot even look (permissions, a vanished file) fails by name; doctor goes on."""
    try:
        return check()
    except CockpitError as exc:
        return from_error(name, exc)
    except OSError as exc:
        return failed(name, f"{type(exc).__name__}: {exc}", "check the path, its permissions and the disk")


def run_checks(config_file: Path) -> tuple[list[Check], bool]:
    """Every check in order, and whether the config itself was valid."""
    import asyncio

    from cockpit.engine.account_files import AccountFiles, account_key

    config_check, config = check_config(config_file)
    if config is None:
        reason = "the config is invalid"
        names = ("secrets", *EXCHANGE_CHECKS, *LOCAL_CHECKS)
        return [config_check, *(skipped(name, reason) for name in names)], False
    secrets_check, creds = check_secrets(config)
    checks = [config_check, secrets_check, *asyncio.run(exchange_checks(config, creds))]
    place = locate_session(config)
    status, _ = engine_status(place.file)
    account_kill = None
    if creds is not None:
        exchange = config.exchange
        key = account_key(exchange.id, exchange.base_url, exchange.testnet, creds.api_key)
        account_kill = AccountFiles(key).read_kill_switch()
    checks += [
        guarded("session file", lambda: check_session(place, status is not None)),
        guarded("backups", lambda: check_backups(place, config_file)),
        guarded("disk space", lambda: check_disk(place)),
        guarded("kill switch", lambda: check_kill_switch(place, status, config_file, account_kill)),
    ]
    return checks, True


def render_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines: list[str] = []
    pad = " " * (width + 8)
    for check in checks:
        first, *rest = check.detail.splitlines() or [""]
        lines.append(f"{LABELS[check.status]}  {check.name:<{width}}  {first}")
        lines.extend(pad + line for line in rest)
        if check.status == "fail" and check.fix:
            lines.append(f"{pad}fix: {check.fix}")
    failures = sum(c.status == "fail" for c in checks)
    lines.append(
        f"all {len(checks)} checks ok" if failures == 0 else f"{failures} of {len(checks)} checks failed"
    )
    return "\n".join(lines)


def doctor_command(args: argparse.Namespace) -> int:
    config_file = Path(args.config)
    checks, config_valid = run_checks(config_file)
    ok = all(c.ok for c in checks)
    if args.json:
        import orjson

        report = {"ok": ok, "checks": [c.to_json() for c in checks]}
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_table(checks))
    sys.stdout.flush()
    if not config_valid:
        return 2
    return 0 if ok else 1
