"""`cockpit keys set|check|delete EXCHANGE`: API keys into and out of the OS keyring, never echoed."""

from __future__ import annotations

import getpass
import os
import sys
from typing import TYPE_CHECKING

from cockpit.commands.parsing import Commands
from cockpit.core.errors import CockpitError, UsageError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend


def register(commands: Commands) -> None:
    keys = commands.add_parser("keys", help="API keys in the OS keyring")
    keys.add_argument("action", choices=["set", "check", "delete"])
    keys.add_argument("exchange", metavar="EXCHANGE", help="ccxt exchange id, e.g. binanceusdm")
    keys.set_defaults(handler=lambda args: keys_command(args.action, args.exchange))


def _read_secret(prompt: str) -> str:
    """getpass on a terminal; one line from a pipe otherwise. Never echoed."""
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt).strip()
    print(prompt, end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline() if sys.stdin is not None else ""
    print(file=sys.stderr)
    return line.strip()


def _notes(backend: KeyringBackend | None) -> None:
    from cockpit.config.secrets import ENV_KEY, ENV_SECRET, describe_backend

    if backend is not None and type(backend).__name__ == "PlaintextKeyring":
        print(f"warning: {describe_backend(backend)} stores secrets UNENCRYPTED", file=sys.stderr)
    if os.environ.get(ENV_KEY) or os.environ.get(ENV_SECRET):
        print(
            f"note: {ENV_KEY}/{ENV_SECRET} are set here and take precedence over the keyring", file=sys.stderr
        )


def _set(exchange: str) -> int:
    from cockpit.config.secrets import (
        ENV_KEY,
        ENV_SECRET,
        USER_KEY,
        USER_SECRET,
        SecretsError,
        describe_backend,
        keyring_backend,
        keyring_errors,
        mask_key,
        service_name,
    )

    backend = keyring_backend()  # fail before the operator pastes anything
    values: list[str] = []
    for label in ("API key", "API secret"):
        value = _read_secret(f"{label} for {exchange}: ")
        if not value:
            raise UsageError(
                f"empty {label}",
                "nothing was entered, so nothing was stored",
                f"run `cockpit keys set {exchange}` again and paste it (or pipe two lines: key, then secret)",
            )
        values.append(value)
    api_key, api_secret = values
    service = service_name(exchange)
    with keyring_errors(backend, api_key, api_secret):
        backend.set_password(service, USER_KEY, api_key)
        backend.set_password(service, USER_SECRET, api_secret)
        kept = (backend.get_password(service, USER_KEY), backend.get_password(service, USER_SECRET))
    if kept != (api_key, api_secret):
        raise SecretsError(
            "the keyring did not keep the keys",
            f"read-back from {describe_backend(backend)} differs from what was stored",
            f"check the keyring backend, or export {ENV_KEY} and {ENV_SECRET}",
        )
    print(f"ok: stored API key {mask_key(api_key)} and secret for {exchange} in {describe_backend(backend)}")
    _notes(backend)
    return 0


def _check(exchange: str) -> int:
    from cockpit.config.secrets import REDACTED, locate_credentials, mask_key

    creds, where = locate_credentials(exchange)
    print(f"ok: API keys for {exchange} from {where}: key {mask_key(creds.api_key)}, secret {REDACTED}")
    return 0


def _delete(exchange: str) -> int:
    from keyring.errors import PasswordDeleteError

    from cockpit.config.secrets import (
        USER_KEY,
        USER_SECRET,
        describe_backend,
        keyring_backend,
        keyring_errors,
        service_name,
    )

    backend = keyring_backend()
    service = service_name(exchange)
    removed: list[str] = []
    with keyring_errors(backend):
        for user in (USER_KEY, USER_SECRET):
            try:
                backend.delete_password(service, user)
            except PasswordDeleteError:
                continue
            removed.append(user)
    if not removed:
        print(f"no API keys stored for {exchange} in {describe_backend(backend)}", file=sys.stderr)
        return 1
    print(f"ok: deleted {' and '.join(removed)} for {exchange} from {describe_backend(backend)}")
    _notes(None)
    return 0


def keys_command(action: str, exchange: str) -> int:
    """`cockpit keys set|check|delete EXCHANGE`; errors are printed (never a secret) as the exit code says."""
    from cockpit.config.rules import exchange_id_problem

    actions = {"set": _set, "check": _check, "delete": _delete}
    try:
        if action not in actions:
            raise UsageError(f"unknown action {action!r}", "", "use one of: set, check, delete")
        problem = exchange_id_problem(exchange, gateway_only=False)
        if problem:
            raise UsageError(f"exchange {exchange!r} {problem[0]}", "", problem[1])
        return actions[action](exchange)
    except CockpitError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
