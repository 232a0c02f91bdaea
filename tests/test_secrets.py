"""API secrets: env vars, a real keyring backend in a temp dir, and the `cockpit keys` commands.

The keyring here is keyrings.alt's PlaintextKeyring pointed at tmp_path, and keyring's own `fail.Keyring`
(what keyring uses when no backend is available, e.g. on a headless SSH server).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail
from keyrings.alt.file import PlaintextKeyring

from cockpit.commands.cli import main
from cockpit.config.secrets import (
    ENV_KEY,
    ENV_SECRET,
    Credentials,
    SecretsError,
    load_credentials,
    locate_credentials,
)

ROOT = Path(__file__).resolve().parents[1]
KEY = "AbCdEfGh0123456789KeyForTests0001"
SECRET = "s3cr3t-VALUE-that-must-never-leak-42"
EXCHANGE = "binanceusdm"
SERVICE = "cockpit:binanceusdm"


@pytest.fixture(autouse=True)
def _no_env_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_KEY, raising=False)
    monkeypatch.delenv(ENV_SECRET, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[PlaintextKeyring]:
    previous = keyring.get_keyring()
    ring = PlaintextKeyring()
    ring.file_path = str(tmp_path / "keyring_pass.cfg")
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


@pytest.fixture
def no_backend() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    yield
    keyring.set_keyring(previous)


def run_keys(
    action: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(["keys", action, EXCHANGE])
    out, err = capsys.readouterr()
    return code, out, err


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV_KEY, ENV_SECRET)}
    env.update(
        PYTHONPATH=str(ROOT),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),  # no stray keyringrc.cfg
        PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
    )
    env.update(extra)
    return env


def cockpit(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_credentials_never_show_the_secret_and_at_most_4_key_chars() -> None:
    creds = Credentials(KEY, SECRET)
    for shown in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert SECRET not in shown
        assert KEY[:5] not in shown
        assert "<redacted>" in shown
    assert "AbCd…" in repr(creds)
    assert "Credentials(api_key='…'" in repr(Credentials("short", SECRET))


def test_env_vars_override_the_keyring(backend: PlaintextKeyring) -> None:
    backend.set_password(SERVICE, "api_key", "keyring-key-xxxxxxxxxxxx")
    backend.set_password(SERVICE, "api_secret", "keyring-secret")
    creds, where = locate_credentials(EXCHANGE, {ENV_KEY: KEY, ENV_SECRET: SECRET})
    assert creds == Credentials(KEY, SECRET)
    assert "environment" in where
    assert load_credentials(EXCHANGE, {}) == Credentials("keyring-key-xxxxxxxxxxxx", "keyring-secret")


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({ENV_KEY: KEY}, ENV_SECRET),
        ({ENV_SECRET: SECRET}, ENV_KEY),
        ({ENV_KEY: KEY, ENV_SECRET: ""}, ENV_SECRET),
    ],
)
def test_only_one_env_var_names_the_missing_one(
    backend: PlaintextKeyring, env: dict[str, str], missing: str
) -> None:
    with pytest.raises(SecretsError) as info:
        load_credentials(EXCHANGE, env)
    rendered = info.value.render()
    assert f"but {missing} is not" in rendered
    assert SECRET not in rendered + str(info.value) and KEY not in rendered + str(info.value)


def test_keys_stored_in_keyring_are_loaded(backend: PlaintextKeyring) -> None:
    backend.set_password(SERVICE, "api_key", KEY)
    backend.set_password(SERVICE, "api_secret", SECRET)
    creds, where = locate_credentials(EXCHANGE, {})
    assert creds == Credentials(KEY, SECRET)
    assert "PlaintextKeyring" in where


def test_missing_keys_name_the_keys_set_command(backend: PlaintextKeyring) -> None:
    with pytest.raises(SecretsError) as info:
        load_credentials(EXCHANGE, {})
    assert "cockpit keys set binanceusdm" in info.value.render()
    assert ENV_KEY in info.value.render()


def test_half_stored_keys_name_the_missing_half_without_the_other(backend: PlaintextKeyring) -> None:
    backend.set_password(SERVICE, "api_key", KEY)
    with pytest.raises(SecretsError) as info:
        load_credentials(EXCHANGE, {})
    rendered = info.value.render()
    assert "'api_secret' is missing" in rendered
    assert "cockpit keys set binanceusdm" in rendered
    assert KEY not in rendered + str(info.value)


def test_no_keyring_backend_says_so_and_names_both_fixes(no_backend: None) -> None:
    with pytest.raises(SecretsError) as info:
        load_credentials(EXCHANGE, {})
    rendered = info.value.render()
    assert "no usable OS keyring backend" in rendered
    assert "pip install keyrings.cryptfile" in rendered
    assert "PYTHON_KEYRING_BACKEND=keyrings.cryptfile.cryptfile.CryptFileKeyring" in rendered
    assert ENV_KEY in rendered and ENV_SECRET in rendered
    # the env vars still work without any keyring
    assert load_credentials(EXCHANGE, {ENV_KEY: KEY, ENV_SECRET: SECRET}) == Credentials(KEY, SECRET)


def test_keys_set_then_check_then_delete(
    backend: PlaintextKeyring, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_keys("set", monkeypatch, capsys, stdin=f"{KEY}\n{SECRET}\n")
    assert code == 0, err
    assert load_credentials(EXCHANGE, {}) == Credentials(KEY, SECRET)
    assert "UNENCRYPTED" in err  # the plaintext backend is called out

    code, out, err = run_keys("check", monkeypatch, capsys)
    assert code == 0
    assert "AbCd…" in out and "PlaintextKeyring" in out

    code, out, err = run_keys("delete", monkeypatch, capsys)
    assert code == 0
    assert backend.get_password(SERVICE, "api_key") is None
    assert backend.get_password(SERVICE, "api_secret") is None

    code, out, err = run_keys("delete", monkeypatch, capsys)
    assert code == 1
    assert "no API keys stored" in err

    code, out, err = run_keys("check", monkeypatch, capsys)
    assert code == 1
    assert "cockpit keys set binanceusdm" in err


@pytest.mark.parametrize("stdin", ["", "\n", f"{KEY}\n\n", f"{KEY}\n"])
def test_keys_set_refuses_empty_input_and_stores_nothing(
    backend: PlaintextKeyring, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str
) -> None:
    code, out, err = run_keys("set", monkeypatch, capsys, stdin=stdin)
    assert code == 2
    assert "error: empty API" in err
    assert backend.get_password(SERVICE, "api_key") is None
    assert KEY not in out + err


def test_keys_commands_without_a_backend_exit_1_before_prompting(
    no_backend: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for action in ("set", "check", "delete"):
        code, out, err = run_keys(action, monkeypatch, capsys, stdin=f"{KEY}\n{SECRET}\n")
        assert code == 1
        assert "no usable OS keyring backend" in err
        assert "API key for" not in err  # no prompt: the operator is not asked to paste a secret for nothing


def test_keyring_write_failure_never_shows_the_secret(
    backend: PlaintextKeyring,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    backend.file_path = str(blocker / "keyring_pass.cfg")
    code, out, err = run_keys("set", monkeypatch, capsys, stdin=f"{KEY}\n{SECRET}\n")
    assert code == 1
    assert "keyring backend keyrings.alt.file.PlaintextKeyring" in err and "failed" in err
    assert SECRET not in out + err and KEY not in out + err


def test_unknown_exchange_is_refused_with_a_suggestion(
    backend: PlaintextKeyring, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{KEY}\n{SECRET}\n"))
    assert main(["keys", "set", "binanceusd"]) == 2
    assert "did you mean 'binanceusdm'" in capsys.readouterr().err
    assert backend.get_password("cockpit:binanceusd", "api_key") is None


def test_keys_check_subprocess_with_env_vars_never_prints_the_secret(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path, COCKPIT_API_KEY=KEY, COCKPIT_API_SECRET=SECRET)
    result = cockpit(["keys", "check", EXCHANGE], env)
    assert result.returncode == 0, result.stderr
    assert "environment (COCKPIT_API_KEY, COCKPIT_API_SECRET)" in result.stdout
    assert SECRET not in result.stdout + result.stderr
    assert KEY not in result.stdout + result.stderr

    half = subprocess_env(tmp_path, COCKPIT_API_KEY=KEY)
    result = cockpit(["keys", "check", EXCHANGE], half)
    assert result.returncode == 1
    assert "COCKPIT_API_SECRET is not" in result.stderr
    assert "Traceback" not in result.stderr and KEY not in result.stderr


def test_keys_set_subprocess_reads_piped_stdin_without_echo(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path)
    result = cockpit(["keys", "set", EXCHANGE], env, stdin=f"{KEY}\n{SECRET}\n")
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr and KEY not in result.stdout + result.stderr

    check = cockpit(["keys", "check", EXCHANGE], env)
    assert check.returncode == 0
    assert "AbCd…" in check.stdout and SECRET not in check.stdout + check.stderr

    ring = PlaintextKeyring()
    ring.file_path = str(tmp_path / "xdg-data" / "python_keyring" / "keyring_pass.cfg")
    assert ring.get_password(SERVICE, "api_secret") == SECRET

    assert cockpit(["keys", "delete", EXCHANGE], env).returncode == 0
    assert cockpit(["keys", "check", EXCHANGE], env).returncode == 1


def test_keys_check_subprocess_on_a_headless_server_explains_the_fix(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    result = cockpit(["keys", "check", EXCHANGE], env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "no usable OS keyring backend" in result.stderr
    assert "keyrings.cryptfile" in result.stderr


def test_keys_set_on_a_terminal_does_not_echo_what_is_typed(tmp_path: Path) -> None:
    import pty
    import select

    env = subprocess_env(tmp_path)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cockpit", "keys", "set", EXCHANGE],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    screen = b""

    def read_until(marker: bytes) -> None:
        nonlocal screen
        while marker not in screen:
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, f"timed out waiting for {marker!r}; screen so far: {screen!r}"
            try:
                chunk = os.read(master, 4096)
            except OSError:  # child closed the terminal
                return
            if not chunk:
                return
            screen += chunk

    read_until(b"API key for binanceusdm: ")
    os.write(master, f"{KEY}\n".encode())
    read_until(b"API secret for binanceusdm: ")
    os.write(master, f"{SECRET}\n".encode())
    read_until(b"ok: stored")
    assert proc.wait(timeout=30) == 0
    read_until(b"\x00")  # drain the rest
    os.close(master)
    assert KEY.encode() not in screen and SECRET.encode() not in screen
    ring = PlaintextKeyring()
    ring.file_path = str(tmp_path / "xdg-data" / "python_keyring" / "keyring_pass.cfg")
    assert ring.get_password(SERVICE, "api_key") == KEY


def test_keyring_errors_are_scrubbed_of_the_values_being_stored(backend: PlaintextKeyring) -> None:
    from keyring.errors import PasswordSetError

    from cockpit.config.secrets import keyring_errors

    with pytest.raises(SecretsError) as info, keyring_errors(backend, KEY, SECRET):
        raise PasswordSetError(f"backend refused {SECRET!r} for {KEY}")
    shown = info.value.render() + str(info.value) + repr(info.value.args)
    assert SECRET not in shown and KEY not in shown
    assert "PasswordSetError" in shown
