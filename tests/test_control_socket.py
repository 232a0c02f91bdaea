"""The control socket is the security boundary: where it lives, whom it answers and trusts, who is recorded as
asking, which commands need their confirmation word, what an oversized or broken request gets — and the modes
of the files a real session leaves on disk."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import hashlib
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cockpit.core.commands import Flatten, ReadCopy, Status
from cockpit.core.errors import CockpitError
from cockpit.engine.control import (
    MAX_REQUEST,
    ControlServer,
    ask,
    check_server,
    peer_of,
    prepare_socket_folder,
    socket_path_for,
)
from cockpit.engine.live_copy import discard
from cockpit.sim.server import SimServer
from tests.conftest import EngineRun
from tests.test_cli_engine import HeadlessEngine, cockpit, write_config
from tests.test_engine import BTC, trade
from tests.waiting import wait_until

ME = f"{getpass.getuser()} via"


def old_predictable_path(session: Path) -> Path:
    """Where the socket of a long session path used to go: a name anyone could compute and bind first."""
    digest = hashlib.sha1(str(session.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"cockpit-{digest}.sock"


async def raw(path: Path, request: bytes) -> dict[str, Any]:
    """One request line as any process could send it, without the clients' checks; the reply parsed."""
    reader, writer = await asyncio.open_unix_connection(str(path), limit=1 << 20)
    try:
        writer.write(request)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
    finally:
        writer.close()
    reply: dict[str, Any] = orjson.loads(line)
    return reply


@contextlib.asynccontextmanager
async def serving(run: EngineRun) -> AsyncIterator[ControlServer]:
    """The started engine's control socket, as `cockpit run` serves it."""
    path = socket_path_for(run.engine.session_file)
    prepare_socket_folder(path)
    server = ControlServer(run.engine, path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# ----- where the socket lives ------------------------------------------------------------------------------


async def test_a_squatter_on_the_old_predictable_path_no_longer_gets_the_operators_flatten(
    sim: SimServer, tmp_path: Path
) -> None:
    session = tmp_path / ("s" * 40 + ".duckdb")  # too long for `<session>.sock`: the case that went to /tmp
    squat = old_predictable_path(session)
    asked: list[bytes] = []

    async def fake_engine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        asked.append(await reader.readline())
        fake = {"symbols": [BTC], "by": "ctl", "verified": True, "rounds": 1, "remaining": {}, "errors": []}
        writer.write(orjson.dumps({"ok": True, "result": {**fake, "message": "flat, verified"}}) + b"\n")
        await writer.drain()
        writer.close()

    squat.unlink(missing_ok=True)
    squatter = await asyncio.start_unix_server(fake_engine, path=str(squat))
    engine = await HeadlessEngine.start(write_config(tmp_path, sim.base_url, session), tmp_path)
    try:
        await engine.wait_for("reconcile.done")
        assert socket_path_for(session).parent == tmp_path / ".cockpit-control"  # beside it, owner-only
        await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.01")
        await engine.wait_for("position.changed")
        config = tmp_path / "cockpit.toml"
        code, out, err = await cockpit(tmp_path, "ctl", "--config", str(config), "flatten", "--all", "--yes")
        assert code == 0, err
        assert orjson.loads(out)["verified"] is True
        assert sim.state()["positions"] == []  # the real engine flattened at the exchange
        assert asked == []  # the squatter was never asked
    finally:
        squatter.close()
        squat.unlink(missing_ok=True)
        assert await engine.finish() == 0, await engine.errors()


async def test_the_engine_refuses_a_socket_folder_that_is_not_owner_only(
    sim: SimServer, tmp_path: Path
) -> None:
    session = tmp_path / "open.duckdb"
    folder = tmp_path / ".cockpit-control"
    folder.mkdir()
    os.chmod(folder, 0o755)  # others may enter: someone could have put a socket in it
    code, _, err = await cockpit(
        tmp_path, "run", "--config", str(write_config(tmp_path, sim.base_url, session)), "--headless"
    )
    assert code == 2 and "Traceback" not in err
    assert "the control socket's folder is not owner-only" in err
    assert f"{folder} has mode 0755" in err and f"chmod 700 {folder}" in err


def test_no_short_enough_owner_only_place_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "session.duckdb"
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    with pytest.raises(CockpitError) as refused:
        socket_path_for(deep)
    assert "too long" in refused.value.title and "$XDG_RUNTIME_DIR is not set" in refused.value.detail
    assert "XDG_RUNTIME_DIR" in refused.value.fix and "shorter path" in refused.value.fix

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))  # not owner-only: never used
    with pytest.raises(CockpitError) as refused:
        socket_path_for(deep)
    assert "has mode 0777" in refused.value.detail

    private = tmp_path / "run"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(private))
    assert socket_path_for(deep).parent == private


# ----- whom each side trusts --------------------------------------------------------------------------------


def test_the_client_trusts_an_engine_of_its_own_user_only() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        peer = peer_of(ours)
        assert (peer.pid, peer.uid, peer.gid) == (os.getpid(), os.getuid(), os.getgid())  # the kernel's word
        check_server(peer, Path("engine.sock"))  # our own user: trusted
        stranger = os.getuid() + 4242
        with pytest.raises(CockpitError) as refused:  # as if the socket were served by another user
            check_server(peer, Path("engine.sock"), trusted=frozenset({stranger}))
    assert f"engine.sock is served by another user: {peer.user} (uid {peer.uid}, pid {os.getpid()})" == (
        refused.value.title
    )
    assert "nothing that process says was trusted" in refused.value.detail


async def test_the_engine_answers_its_own_user_only(sim: SimServer, start_engine: Any) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    async with serving(run) as server:
        server.trusted = frozenset({os.getuid() + 4242})  # as if this test ran as another user
        seq = run.engine.state.seq
        reply = await raw(server.path, b'{"cmd": "kill_switch", "on": true}\n')
        assert reply["ok"] is False and reply["error"] == "refused: this engine answers its own user only"
        assert f"uid {os.getuid()}" in reply["detail"]
        assert run.engine.state.seq == seq and not run.engine.state.kill_switch.engaged


async def test_a_reply_that_is_not_the_answer_is_a_clear_error_never_a_traceback(tmp_path: Path) -> None:
    """What a fake engine (a squatter of old) could answer `ctl status`: each a CockpitError naming it."""
    replies: list[bytes] = []

    async def fake_engine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(replies.pop(0) + b"\n")
        await writer.drain()
        writer.close()

    path = tmp_path / "fake.sock"
    server = await asyncio.start_unix_server(fake_engine, path=str(path))
    try:
        good = await _status_json()
        cases = [
            (b"[]", "the engine's answer is not a reply"),
            (b"not json", "the engine's answer is not JSON"),
            (orjson.dumps({"ok": True, "result": {**good, "health": "all fine"}}), "has a bad health"),
            (orjson.dumps({"ok": True, "result": {**good, "positions": "none"}}), "not a PositionStatus"),
            (orjson.dumps({"ok": True, "result": {**good, "seq": "7"}}), "has a bad seq"),
            (orjson.dumps({"ok": True, "result": None}), "not a StatusReport"),
        ]
        for reply, title in cases:
            replies.append(reply)
            with pytest.raises(CockpitError) as refused:
                await ask(path, Status(by="ctl"), wait_s=5)
            assert title in refused.value.title, (reply[:60], refused.value.title)
    finally:
        server.close()


async def _status_json() -> dict[str, Any]:
    """A StatusReport as an engine sends it."""
    from cockpit.core.state import State
    from cockpit.core.wire import result_to_json
    from cockpit.engine.status import status_of

    data: dict[str, Any] = result_to_json(status_of(State(), "killswitch.json"))
    return data


SYSTEM_PYTHON = Path("/usr/bin/python3")  # one another user may run (the venv's may live under /root)
as_another_user = pytest.mark.skipif(
    os.getuid() != 0 or not SYSTEM_PYTHON.exists(), reason="running a process as another user needs root"
)
NOBODY = 65534


@contextlib.contextmanager
def shared_folder() -> Iterator[Path]:
    """A folder anyone may write in, as /tmp is (the place a squatter binds)."""
    folder = Path(tempfile.mkdtemp(prefix="cockpit-shared-"))
    os.chmod(folder, 0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


FAKE_ENGINE = """
import socket, sys
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[1])
server.listen()
print("ready", flush=True)
client, _ = server.accept()
client.settimeout(3)
asked = b""
try:  # whatever the client sends (it hangs up at once once it has checked our uid: b"")
    asked = client.recv(65536)
except (TimeoutError, ConnectionResetError):
    pass
try:  # and the answer a real engine would give, for a client that would believe it
    client.sendall(b'{"ok": true, "result": {"verified": true, "message": "flat, verified"}}\\n')
except (BrokenPipeError, ConnectionResetError):
    pass
print("asked:", len(asked), flush=True)
"""


@as_another_user
async def test_a_fake_engine_run_by_another_user_is_never_asked_nor_believed() -> None:
    with shared_folder() as folder:
        path = folder / "engine.sock"
        squatter = await asyncio.create_subprocess_exec(
            str(SYSTEM_PYTHON), "-c", FAKE_ENGINE, str(path), user=NOBODY, stdout=asyncio.subprocess.PIPE
        )
        assert squatter.stdout is not None
        assert await asyncio.wait_for(squatter.stdout.readline(), 10) == b"ready\n"
        with pytest.raises(CockpitError) as refused:
            await ask(path, Flatten(symbols=None, by="ctl").confirmed(), wait_s=5)
        out, _ = await asyncio.wait_for(squatter.communicate(), 10)
    assert (
        refused.value.title == f"{path} is served by another user: nobody (uid {NOBODY}, pid {squatter.pid})"
    )
    assert out.decode().strip() == "asked: 0"  # the request never left: the uid was checked first


STRANGER = """
import socket, sys
client = socket.socket(socket.AF_UNIX)
client.connect(sys.argv[1])
try:  # the engine may have refused and hung up before we speak: its answer is waiting for us all the same
    client.sendall(b'{"cmd": "kill_switch", "on": false, "confirm": "RELEASE"}\\n')
except (BrokenPipeError, ConnectionResetError):
    pass
print(client.makefile().readline(), end="", flush=True)
"""


class Recorder:
    def __init__(self) -> None:
        self.commands: list[Any] = []

    async def control(self, command: Any) -> Any:
        self.commands.append(command)
        raise AssertionError("a stranger's command reached the engine")


@as_another_user
async def test_the_engine_refuses_a_client_run_by_another_user() -> None:
    engine = Recorder()
    with shared_folder() as folder:
        os.chmod(folder, 0o700)
        server = ControlServer(engine, folder / "engine.sock")  # type: ignore[arg-type]  # only control()
        await server.start()
        os.chmod(folder, 0o777)  # as if folder and socket let anyone in (later): the peer check remains
        os.chmod(server.path, 0o777)
        try:
            stranger = await asyncio.create_subprocess_exec(
                str(SYSTEM_PYTHON), "-c", STRANGER, str(server.path), user=NOBODY,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(stranger.communicate(), 10)
        finally:
            await server.stop()
    assert out, err.decode()
    reply = orjson.loads(out)
    assert reply["ok"] is False and reply["error"] == "refused: this engine answers its own user only", err
    assert f"you are nobody (uid {NOBODY})" in reply["detail"]
    assert engine.commands == []


# ----- who asked, and what needs confirming -----------------------------------------------------------------


async def test_a_request_cannot_speak_as_the_risk_checks(sim: SimServer, start_engine: Any) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    async with serving(run) as server:
        request = {"cmd": "kill_switch", "on": True, "cause": "drawdown 99% (spoofed)", "by": "risk"}
        reply = await raw(server.path, orjson.dumps(request) + b"\n")
    assert reply["ok"] is True
    who = f"{ME} socket (uid {os.getuid()}, pid {os.getpid()})"  # the peer, by the kernel's credentials
    assert reply["result"]["by"] == who
    action = (await run.wait_for("operator.action")).payload
    assert action["by"] == who
    engaged = await run.wait_for("killswitch.engaged")
    assert engaged.source == "operator" and engaged.payload["by"] == who
    assert engaged.payload["message"].startswith(f"KILL SWITCH engaged by {who}: drawdown 99% (spoofed)")


async def test_raw_requests_without_the_confirmation_word_are_refused_and_change_nothing(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.02")
    await wait_until(lambda: BTC in run.engine.state.positions)
    async with serving(run) as server:
        assert (await raw(server.path, b'{"cmd": "kill_switch", "on": true, "by": "ctl"}\n'))["ok"] is True
        seq, state = run.engine.state.seq, run.engine.state
        refused = [
            (b'{"cmd": "flatten", "symbols": null}', "FLATTEN"),
            (b'{"cmd": "flatten", "symbols": ["BTCUSDT"], "confirm": "yes"}', "FLATTEN"),
            (b'{"cmd": "kill_switch", "on": false}', "RELEASE"),
            (b'{"cmd": "adopt", "symbol": "BTCUSDT"}', "ADOPT"),
            (b'{"cmd": "dlq", "action": "retry", "id": 1}', "RETRY"),
        ]
        for request, word in refused:
            reply = await raw(server.path, request + b"\n")
            assert reply["ok"] is False, request
            assert reply["error"].endswith(f"needs the confirmation word {word}")
            assert f'"confirm": "{word}"' in reply["fix"] and "nothing was done" in reply["detail"]
        assert run.engine.state is state and run.engine.state.seq == seq  # nothing recorded, nothing sent
        assert [p["symbol"] for p in sim.state()["positions"]] == ["BTCUSDT"]

        reply = await raw(server.path, b'{"cmd": "flatten", "symbols": null, "confirm": "FLATTEN"}\n')
        assert reply["ok"] is True and reply["result"]["verified"] is True
        assert sim.state()["positions"] == []


# ----- what a broken or oversized request gets --------------------------------------------------------------


async def test_oversized_garbage_cut_and_idle_clients_leave_no_traceback(
    sim: SimServer, tmp_path: Path
) -> None:
    session = tmp_path / "big.duckdb"
    engine = await HeadlessEngine.start(write_config(tmp_path, sim.base_url, session), tmp_path)
    path = socket_path_for(session)
    try:
        await engine.wait_for("reconcile.done")
        huge = b'{"cmd": "status", "pad": "' + b"x" * 10_000_000 + b'"}\n'  # 10 MB
        reply = await raw(path, huge)
        assert reply["ok"] is False and reply["error"] == "request too large"
        assert str(MAX_REQUEST) in reply["detail"]

        reply = await raw(path, b"\xff\xfe not json at all\n")
        assert reply["ok"] is False and reply["error"] == "bad request"

        _, writer = await asyncio.open_unix_connection(str(path))
        writer.write(b'{"cmd": "flatten", "sym')  # and gone, mid-request
        await writer.drain()
        writer.close()

        reply = await raw(path, b'{"cmd": "status"}\n')  # the engine is still up and answers
        assert reply["ok"] is True and reply["result"]["positions"] == []
        _, idle = await asyncio.open_unix_connection(str(path))  # still connected when the engine stops
    finally:
        assert await engine.finish() == 0
    errors = await engine.errors()
    assert "Traceback" not in errors, errors
    assert "operator.action" not in engine.kinds()


# ----- file modes -------------------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_real_sessions_files_are_owner_only_whatever_the_umask(
    sim: SimServer, tmp_path: Path
) -> None:
    session = tmp_path / "sessions" / "private.duckdb"
    session.parent.mkdir()
    config = write_config(tmp_path, sim.base_url, session)
    old = os.umask(0)  # the most permissive umask an operator could have
    try:
        engine = await HeadlessEngine.start(config, tmp_path)
    finally:
        os.umask(old)
    try:
        await engine.wait_for("reconcile.done")
        code, _, err = await cockpit(tmp_path, "backup", "--config", str(config))
        assert code == 0, err
        copy = await ask(socket_path_for(session), ReadCopy(by="test"))
        try:
            private_files = [
                session,
                *session.parent.glob("backups/*.duckdb"),
                Path(copy.path),
                session.parent / ".cockpit-live.json",
                socket_path_for(session),
                *(tmp_path / "data").rglob("*.json"),  # the account's kill switch and engine files
            ]
            private_files += [p for p in (Path(f"{session}.wal"),) if p.exists()]
            folders = [
                session.parent / "backups",
                session.parent / ".reads",
                session.parent / ".cockpit-control",
            ]
            assert len(private_files) >= 7
            assert {str(p): oct(mode(p)) for p in private_files} == {str(p): "0o600" for p in private_files}
            assert {str(p): oct(mode(p)) for p in folders} == {str(p): "0o700" for p in folders}
        finally:
            discard(Path(copy.path))
    finally:
        assert await engine.finish() == 0, await engine.errors()
