"""`cockpit keys set|check|delete EXCHANGE`: API keys into and out of the OS keyring, never echoed; and
`notify:NAME`: a notification target's URL (its tokens inside)."""

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
    keys = commands.add_parser("keys", help="API keys and notification URLs in the OS keyring")
    keys.add_argument("action", choices=["set", "check", "delete"])
    keys.add_argument(
        "exchange",
        metavar="EXCHANGE|notify:NAME",
        help="ccxt exchange id (binanceusdm, bybit), or notify:NAME for [notify.targets.NAME]'s URL",
    )
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


def _set_notify(name: str) -> int:
    """One URL (its tokens inside), checked by apprise before it is stored."""
    import apprise

    from cockpit.config.secrets import (
        USER_URL,
        SecretsError,
        describe_backend,
        keyring_backend,
        keyring_errors,
        notify_env,
        notify_service,
    )

    backend = keyring_backend()
    url = _read_secret(f"URL for notification target {name} (e.g. tgram://BOT_TOKEN/CHAT_ID): ")
    if not url:
        raise UsageError("empty URL", "nothing was entered, so nothing was stored", "paste the target's URL")
    if not apprise.Apprise().add(url):
        raise UsageError(
            f"apprise does not understand the URL for {name}",
            "nothing was stored",
            "see https://github.com/caronc/apprise/wiki for each service's URL form, e.g. tgram://, "
            "slack://, mailto://, ntfy://, json://",
        )
    service = notify_service(name)
    with keyring_errors(backend, url):
        backend.set_password(service, USER_URL, url)
        kept = backend.get_password(service, USER_URL)
    if kept != url:
        raise SecretsError(
            "the keyring did not keep the URL",
            f"read-back from {describe_backend(backend)} differs from what was stored",
            f"check the keyring backend, or export {notify_env(name)}",
        )
    print(
        f"ok: stored the URL of {name} in {describe_backend(backend)}; try it: cockpit notify test --config F"
    )
    _notes(backend)
    return 0


def _check_notify(name: str) -> int:
    from cockpit.config.secrets import locate_notify_url, notify_env

    url, where = locate_notify_url(name)
    if url is None:
        print(f"no URL for {name}: {where}; `cockpit keys set notify:{name}` or export {notify_env(name)}")
        return 1
    print(f"ok: URL of {name} from {where} ({url.split('://', 1)[0]}://…)")
    return 0


def _delete_notify(name: str) -> int:
    from keyring.errors import PasswordDeleteError

    from cockpit.config.secrets import (
        USER_URL,
        describe_backend,
        keyring_backend,
        keyring_errors,
        notify_service,
    )

    backend = keyring_backend()
    with keyring_errors(backend):
        try:
            backend.delete_password(notify_service(name), USER_URL)
        except PasswordDeleteError:
            print(f"no URL stored for {name} in {describe_backend(backend)}", file=sys.stderr)
            return 1
    print(f"ok: deleted the URL of {name} from {describe_backend(backend)}")
    return 0


def _notify_keys(action: str, name: str) -> int:
    from cockpit.config.schema import TARGET_NAME_RE

    if not TARGET_NAME_RE.match(name):
        raise UsageError(
            f"{name!r} is not a target name",
            "names are lowercase letters, digits and _ (as in [notify.targets.NAME]), or heartbeat",
            "e.g. `cockpit keys set notify:phone`",
        )
    return {"set": _set_notify, "check": _check_notify, "delete": _delete_notify}[action](name)


def keys_command(action: str, exchange: str) -> int:
    """`cockpit keys set|check|delete EXCHANGE`; errors are printed (never a secret) as the exit code says."""
    from cockpit.config.rules import exchange_id_problem

    actions = {"set": _set, "check": _check, "delete": _delete}
    try:
        if action not in actions:
            raise UsageError(f"unknown action {action!r}", "", "use one of: set, check, delete")
        if exchange.startswith("notify:"):
            return _notify_keys(action, exchange.removeprefix("notify:"))
        problem = exchange_id_problem(exchange, gateway_only=False)
        if problem:
            raise UsageError(f"exchange {exchange!r} {problem[0]}", "", problem[1])
        return actions[action](exchange)
    except CockpitError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
