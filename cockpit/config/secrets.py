"""API secrets: from the env vars COCKPIT_API_KEY / COCKPIT_API_SECRET, else the OS keyring.

Secrets never appear in reprs, logs, exception messages or files written by cockpit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import keyring
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.errors import KeyringError, KeyringLocked, NoKeyringError

from cockpit.core.errors import CockpitError

ENV_KEY = "COCKPIT_API_KEY"
ENV_SECRET = "COCKPIT_API_SECRET"
USER_KEY = "api_key"
USER_SECRET = "api_secret"
REDACTED = "<redacted>"


class SecretsError(CockpitError):
    """API keys are missing, half-set, or the keyring cannot be used."""


def service_name(exchange_id: str) -> str:
    return f"cockpit:{exchange_id}"


def mask_key(api_key: str) -> str:
    """At most the first 4 characters, and none of a key too short to be real."""
    return f"{api_key[:4]}…" if len(api_key) >= 16 else "…"


@dataclass(frozen=True, repr=False)
class Credentials:
    api_key: str
    api_secret: str

    def __repr__(self) -> str:
        return f"Credentials(api_key={mask_key(self.api_key)!r}, api_secret={REDACTED})"

    __str__ = __repr__


def _no_backend_error() -> SecretsError:
    return SecretsError(
        "no usable OS keyring backend",
        "keyring found no secure storage (typical on a headless SSH server: no Secret Service, "
        "KWallet or macOS Keychain)",
        "install an encrypted-file backend: `pip install keyrings.cryptfile` and "
        "`export PYTHON_KEYRING_BACKEND=keyrings.cryptfile.cryptfile.CryptFileKeyring`; "
        f"or export {ENV_KEY} and {ENV_SECRET}",
    )


def describe_backend(backend: KeyringBackend) -> str:
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    try:
        file_path = getattr(backend, "file_path", None)
    except Exception:  # a property of a third-party backend; the name alone will do
        file_path = None
    return f"{name} ({file_path})" if isinstance(file_path, str) else name


def keyring_backend() -> KeyringBackend:
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        raise _no_backend_error()
    return backend


def _scrub(text: str, secret_values: tuple[str, ...]) -> str:
    for value in secret_values:
        if value:
            text = text.replace(value, REDACTED)
    return text


@contextmanager
def keyring_errors(backend: KeyringBackend, *secret_values: str) -> Iterator[None]:
    """Turn keyring/OS failures into SecretsError without ever carrying a secret value."""
    name = describe_backend(backend)
    try:
        yield
    except NoKeyringError:
        raise _no_backend_error() from None
    except KeyringLocked:
        fix = f"unlock the keyring (log in to the desktop session), or export {ENV_KEY} and {ENV_SECRET}"
        raise SecretsError("the keyring is locked", f"backend {name}", fix) from None
    except (KeyringError, OSError) as exc:
        detail = _scrub(f"{type(exc).__name__}: {exc}", secret_values)
        fix = f"check the keyring backend, or export {ENV_KEY} and {ENV_SECRET}"
        raise SecretsError(f"keyring backend {name} failed", detail, fix) from None


def locate_credentials(exchange_id: str, env: Mapping[str, str] | None = None) -> tuple[Credentials, str]:
    """The credentials and a description of where they came from (env vars or keyring backend)."""
    environ = os.environ if env is None else env
    api_key, api_secret = environ.get(ENV_KEY, ""), environ.get(ENV_SECRET, "")
    if api_key and api_secret:
        return Credentials(api_key, api_secret), f"environment ({ENV_KEY}, {ENV_SECRET})"
    if api_key or api_secret:
        present, missing = (ENV_KEY, ENV_SECRET) if api_key else (ENV_SECRET, ENV_KEY)
        raise SecretsError(
            f"{present} is set but {missing} is not",
            "the env vars override the keyring, and both are needed",
            f"export {missing} as well, or unset {present} to use the keyring",
        )
    backend = keyring_backend()
    service = service_name(exchange_id)
    with keyring_errors(backend):
        stored_key = backend.get_password(service, USER_KEY)
        stored_secret = backend.get_password(service, USER_SECRET)
    where = f"keyring {describe_backend(backend)}"
    if not stored_key and not stored_secret:
        raise SecretsError(
            f"no API keys for {exchange_id}",
            f"nothing under service {service!r} in {where}, and {ENV_KEY} / {ENV_SECRET} are not set",
            f"run `cockpit keys set {exchange_id}`, or export {ENV_KEY} and {ENV_SECRET}",
        )
    if not stored_key or not stored_secret:
        missing = USER_KEY if not stored_key else USER_SECRET
        raise SecretsError(
            f"incomplete API keys for {exchange_id}",
            f"{missing!r} is missing under service {service!r} in {where}",
            f"run `cockpit keys set {exchange_id}` to store both again",
        )
    return Credentials(stored_key, stored_secret), where


def load_credentials(exchange_id: str, env: Mapping[str, str] | None = None) -> Credentials:
    """Env vars COCKPIT_API_KEY + COCKPIT_API_SECRET if set, else keyring service `cockpit:<exchange_id>`."""
    return locate_credentials(exchange_id, env)[0]


# ----- notification targets' URLs (their tokens inside) ---------------------------------------------------
USER_URL = "url"
HEARTBEAT = "heartbeat"  # the engine's heartbeat URL (a dead man's switch), kept like a target's


def notify_env(name: str) -> str:
    """The env var of target `name` ([notify.targets.phone] → COCKPIT_NOTIFY_PHONE)."""
    return "COCKPIT_HEARTBEAT_URL" if name == HEARTBEAT else f"COCKPIT_NOTIFY_{name.upper()}"


def notify_service(name: str) -> str:
    return f"cockpit:notify:{name}"


def locate_notify_url(name: str, env: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """Target `name`'s URL and where it came from: its env var, else the keyring (None: in neither). A keyring
    that cannot be used is an error only when the env var is not set."""
    environ = os.environ if env is None else env
    variable = notify_env(name)
    if environ.get(variable, "").strip():
        return environ[variable].strip(), f"environment ({variable})"
    try:
        backend = keyring_backend()
    except SecretsError:
        return None, f"{variable} is not set and there is no usable keyring"
    with keyring_errors(backend):
        url = backend.get_password(notify_service(name), USER_URL)
    return (url or None), f"keyring {describe_backend(backend)}"


class NotifyUrlMissing(SecretsError):
    """A target is configured and has no URL: bad input (exit 2: a supervisor does not restart into it)."""

    exit_code = 2


def load_notify_urls(names: list[str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every target's URL; a target without one is an error that names where to put it."""
    urls: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        url, _ = locate_notify_url(name, env)
        if url is None:
            missing.append(name)
        else:
            urls[name] = url
    if missing:
        fixes = "; ".join(f"`cockpit keys set notify:{n}` or export {notify_env(n)}" for n in missing)
        raise NotifyUrlMissing(
            f"no URL for notification target{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
            "a target's URL (tokens inside) lives in the keyring or an env var, never in the config file",
            f"{fixes} (e.g. tgram://BOT_TOKEN/CHAT_ID, mailto://user:pass@host, json://host/path)",
        )
    return urls
