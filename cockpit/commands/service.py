"""`cockpit service unit [--config FILE] [--name NAME] [--env-file PATH] [--user|--system]`: print a systemd
unit that runs the headless engine (`cockpit run --config FILE --headless`) and restarts it when it fails.

The unit goes to stdout and nothing else does, so `> file` saves exactly the unit; how to install it goes to
stderr. No secret is read or printed: the unit names the keyring or an `EnvironmentFile=` that holds the keys.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cockpit.commands.parsing import Commands, config_option
from cockpit.core.errors import UsageError

ENV_KEY = "COCKPIT_API_KEY"  # cockpit.config.secrets' names, not imported: it loads keyring
ENV_SECRET = "COCKPIT_API_SECRET"
# Exit codes systemd must not restart on: an operator has to act first (see the unit's comment).
NO_RESTART_EXIT_CODES = (2, 3)
_UNIT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def register(commands: Commands) -> None:
    service = commands.add_parser("service", help="print a systemd unit that runs the headless engine")
    actions = service.add_subparsers(dest="service_command", metavar="ACTION", required=True)
    unit = actions.add_parser(
        "unit",
        help="print the unit on stdout (how to install it on stderr)",
        description="Print a systemd unit for `cockpit run --config FILE --headless` on stdout, and the "
        "commands that install it on stderr.",
    )
    config_option(unit, "the config the engine runs with")
    unit.add_argument(
        "--name",
        default=None,
        metavar="NAME",
        help="the unit is cockpit-NAME (default: the config file's stem, made a unit name)",
    )
    unit.add_argument(
        "--env-file",
        default=None,
        metavar="PATH",
        help=f"EnvironmentFile= holding {ENV_KEY} and {ENV_SECRET} (mode 0600); default: the OS keyring",
    )
    scope = unit.add_mutually_exclusive_group()
    scope.add_argument("--user", dest="system", action="store_false", help="a systemd user unit (default)")
    scope.add_argument(
        "--system", dest="system", action="store_true", help="a system unit running as you (User=)"
    )
    unit.add_argument(
        "--watchdog",
        action="store_true",
        help="the unit of `cockpit watchdog` for this config (cockpit-NAME-watchdog), not the engine's",
    )
    unit.set_defaults(handler=service_unit_command, system=False)


@dataclass(frozen=True)
class UnitSpec:
    """What the unit says: all paths absolute."""

    name: str  # the part after `cockpit-`
    config: Path
    interpreter: str
    env_file: Path | None = None
    system: bool = False
    user: str | None = None  # User= of a system unit
    environment: tuple[tuple[str, str], ...] = ()  # beyond PYTHONUNBUFFERED=1
    watchdog: bool = False  # the unit of `cockpit watchdog`, not the engine's

    @property
    def unit_name(self) -> str:
        return f"cockpit-{self.name}" + ("-watchdog" if self.watchdog else "")


# ----- systemd's syntax -------------------------------------------------------------------------------------
def _checked(value: str, what: str) -> str:
    """`value` if a unit file can carry it; else a UsageError naming it. Systemd strips a value's trailing
    whitespace, reads a trailing backslash as a continued line, and a unit is UTF-8 text without control
    characters."""
    problem = None
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        problem = "contains a control character (a newline, a tab, …)"
    elif value != value.rstrip() or value.endswith("\\"):
        problem = "ends with whitespace or a backslash"
    else:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            problem = "is not valid UTF-8"
    if problem is not None:
        raise UsageError(
            f"systemd cannot name the {what} {value!r}",
            f"the path {problem}, which a unit file cannot hold",
            "rename it (or move it) to a plain path, then run this command again",
        )
    return value


def _path_value(value: str | Path, what: str) -> str:
    """A path setting (WorkingDirectory=, EnvironmentFile=): taken verbatim after `%` specifiers."""
    return _checked(str(value), what).replace("%", "%%")


def _word(value: str, what: str, *, in_command: bool = True) -> str:
    """One argument of ExecStart= (or one Environment= assignment), quoted per systemd.syntax(7): double
    quotes around a word with whitespace, quotes or backslashes, C escapes inside; `%%` for `%` (specifiers)
    and, in a command's arguments, `$$` for `$` (variable expansion)."""
    _checked(value, what)
    text = value.replace("%", "%%")
    if in_command:
        text = text.replace("$", "$$")
    if any(c in value for c in " \"'\\"):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _executable(path: str) -> str:
    """ExecStart='s program: systemd refuses one with a quote or a backslash in it ("Executable name contains
    special characters"), and a `$` is left as is in the program's path but may be expanded in its argv[0]
    (from which Python finds its venv): those are refused, with the fix. Spaces are quoted, `%` doubled."""
    bad = sorted({c for c in path if c in "'\"\\$"})
    if bad:
        raise UsageError(
            f"systemd cannot start the Python interpreter {path!r}",
            f"its path contains {' '.join(bad)}, which systemd refuses (or expands) in a program's path",
            "run this command with an interpreter at a plain path (a venv elsewhere, or a symlink to the "
            "venv's folder without those characters: /that/link/bin/python -m cockpit service unit …)",
        )
    return _word(path, "Python interpreter", in_command=False)


def sanitise_name(stem: str) -> str:
    """A unit name from a config file's stem: anything but letters, digits, `_`, `.`, `-` becomes `-`."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.")
    return name[:200] or "engine"


def _given_name(name: str) -> str:
    name = name.removeprefix("cockpit-").removesuffix(".service")
    if not _UNIT_NAME.fullmatch(name) or len(name) > 200:
        raise UsageError(
            f"--name {name!r} is not a systemd unit name",
            "the unit is called cockpit-NAME.service",
            "use letters, digits, '_', '.' and '-' (not first), at most 200 characters",
        )
    return name


# ----- the unit ---------------------------------------------------------------------------------------------
def render_unit(spec: UnitSpec) -> str:
    """The unit file's text."""
    config = str(spec.config)
    if spec.watchdog:
        words = [*("-m", "cockpit", "watchdog", "--config"), _word(config, "config file")]
    else:
        words = [*("-m", "cockpit", "run", "--config"), _word(config, "config file"), "--headless"]
    command = " ".join([_executable(spec.interpreter), *words])
    no_restart = " ".join(str(code) for code in NO_RESTART_EXIT_CODES)
    what = "watchdog" if spec.watchdog else "engine"
    unit = [
        f"# {spec.unit_name}.service: the cockpit {what} for {_checked(config, 'config file')}",
        '# written by `cockpit service unit`; README.md, "Running the engine as a service", says how to '
        "install it.",
        "[Unit]",
        f"Description=cockpit {what} ({_path_value(spec.config.name, 'config file')})",
    ]
    if spec.system:  # a user manager has no network-online.target
        unit += ["Wants=network-online.target", "After=network-online.target"]
    unit += [
        "# No start limit: a protection engine keeps trying through an exchange or network outage of any",
        "# length (every RestartSec); what a restart cannot fix ends in an exit code that stops it (below).",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=exec",
    ]
    if spec.user is not None:
        unit.append(f"User={spec.user}")
    unit += [
        "# relative paths in the config are read from the config's folder",
        f"WorkingDirectory={_path_value(spec.config.parent, 'config folder')}",
        f"ExecStart={command}",
        f"SyslogIdentifier={spec.unit_name}",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    for key, value in spec.environment:
        unit.append(f"Environment={_word(f'{key}={value}', key, in_command=False)}")
    unit += [
        f"# API keys: the engine reads {ENV_KEY} and {ENV_SECRET} if both are set, else the OS keyring",
        "# (service cockpit:<exchange>, stored with `cockpit keys set <exchange>`): the keyring is the",
        "# default. A service has no terminal and usually no desktop session to unlock one, so on a server",
        "# give the keys in an EnvironmentFile= (`cockpit service unit --env-file PATH`).",
    ]
    if spec.env_file is not None:
        unit += [
            f"# {spec.env_file.name} must be mode 0600 (chmod 600), owned by the user the engine runs as,",
            f"# and hold two lines: {ENV_KEY}=… and {ENV_SECRET}=… (no quotes, no `export`).",
            f"EnvironmentFile={_path_value(spec.env_file, 'environment file')}",
        ]
    if spec.watchdog:
        return "\n".join([*unit, *_watchdog_tail(spec)]) + "\n"
    unit += [
        "# Restart=on-failure: a crash, a kill -9 (the OOM killer) or exit 1 (a runtime error, e.g. the",
        "# exchange unreachable at start) is restarted after RestartSec; the engine restores the session",
        "# file and reconciles. A stop by systemctl (SIGTERM, exit 0) is not restarted.",
        "Restart=on-failure",
        "RestartSec=15",
        "# Not restarted: 2 = bad input (the config, the session file, another engine on the account) and",
        "# 3 = the session file was lost or could not be written (kill switch engaged; the journal names the",
        "# backup and `cockpit restore`). Restarting cannot fix either; the unit stays failed for a person.",
        f"RestartPreventExitStatus={no_restart}",
        "# SIGTERM stops the engine cleanly (it drains its store, writes session.stopped); SIGKILL at 30 s.",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=30",
        "",
        "[Install]",
        f"WantedBy={'multi-user.target' if spec.system else 'default.target'}",
    ]
    return "\n".join(unit) + "\n"


def _watchdog_tail(spec: UnitSpec) -> list[str]:
    return [
        "# The watchdog reads the notification targets' URLs like the engine: COCKPIT_NOTIFY_<NAME> or the",
        "# keyring (`cockpit keys set notify:NAME`); give them in the EnvironmentFile= on a server.",
        "# Restart=always: a watchdog that stopped is no watchdog; exit 2 (a bad config, a target without",
        "# a URL) is not restarted: a person has to fix it.",
        "Restart=always",
        "RestartSec=15",
        "RestartPreventExitStatus=2",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=30",
        "",
        "[Install]",
        f"WantedBy={'multi-user.target' if spec.system else 'default.target'}",
    ]


def install_steps(spec: UnitSpec, cockpit: str, again: str) -> str:
    """How to install and watch the unit (for stderr). `cockpit` runs cockpit (`/path/python -m cockpit`);
    `again` is the command line that printed the unit."""
    unit = spec.unit_name
    if spec.system:
        title = f"To install {unit} as a system service (it runs as {spec.user} and starts at boot):"
        steps = [
            (f"{again} | sudo tee /etc/systemd/system/{unit}.service >/dev/null", ""),
            ("sudo systemctl daemon-reload", ""),
            (f"sudo systemctl enable --now {unit}", ""),
            (f"journalctl -u {unit} -f", "its output"),
            (f"systemctl status {unit}", "running or not, the last exit code"),
        ]
    else:
        title = f"To install {unit} as a user service:"
        steps = [
            ("mkdir -p ~/.config/systemd/user", ""),
            (f"{again} > ~/.config/systemd/user/{unit}.service", ""),
            ("systemctl --user daemon-reload", ""),
            (f"systemctl --user enable --now {unit}", ""),
            ("loginctl enable-linger $USER", "keep it running with nobody logged in, start it at boot"),
            (f"journalctl --user -u {unit} -f", "its output"),
            (f"systemctl --user status {unit}", "running or not, the last exit code"),
        ]
    width = max(len(command) for command, why in steps if why)
    lines = [title]
    lines += [f"  {command.ljust(width)}  # {why}" if why else f"  {command}" for command, why in steps]
    lines.append(
        f"Check the config and the keys first: {cockpit} doctor --config {shlex.quote(str(spec.config))}"
    )
    return "\n".join(lines)


# ----- the command ------------------------------------------------------------------------------------------
def _env_file_notes(path: Path) -> list[str]:
    """Warnings about the environment file: missing, too open, or without the two keys (names only)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return [
            f"note: {path} does not exist yet: create it with `install -m 600 /dev/null "
            f"{shlex.quote(str(path))}` and add the lines {ENV_KEY}=… and {ENV_SECRET}=…"
        ]
    except OSError as exc:
        return [f"warning: cannot check {path}: {exc.strerror}"]
    if not stat.S_ISREG(st.st_mode):
        return [f"warning: {path} is not a regular file"]
    notes: list[str] = []
    if st.st_mode & 0o077:
        who = "readable" if st.st_mode & 0o044 else "writable"
        notes.append(
            f"warning: {path} is {who} by group or others (mode {stat.S_IMODE(st.st_mode):04o}): it holds "
            f"the API secret; `chmod 600 {shlex.quote(str(path))}`"
        )
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return notes
    names = {line.split("=", 1)[0].strip() for line in text.splitlines() if "=" in line}
    missing = [key for key in (ENV_KEY, ENV_SECRET) if key not in names]
    if missing:
        notes.append(f"warning: {path} does not set {' and '.join(missing)}")
    return notes


def _pythonpath_for(interpreter: str, workdir: Path) -> str | None:
    """The folder to put on PYTHONPATH when `interpreter -m cockpit`, started by systemd (no PYTHONPATH) in
    `workdir`, would not import this very cockpit (a source checkout run with PYTHONPATH); else None."""
    import cockpit

    here = Path(cockpit.__file__).resolve()
    try:
        found = subprocess.run(
            [interpreter, "-E", "-c", "import cockpit; print(cockpit.__file__)"],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found = ""
    if found and Path(found).resolve() == here:
        return None
    return str(here.parent.parent)


def _command_line(args: argparse.Namespace, config: Path, env_file: Path | None) -> str:
    words = ["service", "unit", "--config", str(config)]
    if args.name is not None:
        words += ["--name", args.name]
    if env_file is not None:
        words += ["--env-file", str(env_file)]
    if args.system:
        words.append("--system")
    if getattr(args, "watchdog", False):
        words.append("--watchdog")
    return f"{_cockpit()} {shlex.join(words)}"


def _cockpit() -> str:
    return f"{shlex.quote(sys.executable)} -m cockpit"


def build_spec(args: argparse.Namespace) -> UnitSpec:
    """The unit for the parsed arguments; the config is validated (ConfigError, exit 2, names the file)."""
    from cockpit.config.settings import load_config

    config = Path(os.path.abspath(args.config))
    name = _given_name(args.name) if args.name is not None else sanitise_name(config.stem)
    load_config(config)
    interpreter = sys.executable
    if not interpreter or not os.path.isabs(interpreter):
        raise UsageError(
            "cannot tell which Python interpreter runs cockpit",
            f"sys.executable is {interpreter!r}",
            "run this command with the interpreter the service should use: /path/to/python -m cockpit …",
        )
    env_file = Path(os.path.abspath(args.env_file)) if args.env_file else None
    environment: list[tuple[str, str]] = []
    data_home = os.environ.get("XDG_DATA_HOME", "")
    if data_home and os.path.isabs(data_home):  # the account's folder (kill switch, engine lock) is under it
        environment.append(("XDG_DATA_HOME", data_home))
    pythonpath = _pythonpath_for(interpreter, config.parent)
    if pythonpath is not None:
        environment.append(("PYTHONPATH", pythonpath))
    user = None
    if args.system:
        import pwd

        user = pwd.getpwuid(os.geteuid()).pw_name
    return UnitSpec(
        name=name,
        config=config,
        interpreter=interpreter,
        env_file=env_file,
        system=args.system,
        user=user,
        environment=tuple(environment),
        watchdog=getattr(args, "watchdog", False),
    )


def service_unit_command(args: argparse.Namespace) -> int:
    spec = build_spec(args)
    text = render_unit(spec)  # refuses a path systemd cannot hold before anything is printed
    notes = _env_file_notes(spec.env_file) if spec.env_file is not None else []
    if spec.env_file is None and (os.environ.get(ENV_KEY) or os.environ.get(ENV_SECRET)):
        notes.append(
            f"note: {ENV_KEY}/{ENV_SECRET} are set in this shell, but a service does not inherit them: it "
            "reads the keyring unless you give --env-file PATH"
        )
    if any(key == "PYTHONPATH" for key, _ in spec.environment):
        notes.append(
            "note: this interpreter, started by systemd, would not import this cockpit, so the unit sets "
            "PYTHONPATH"
        )
    sys.stdout.write(text)
    sys.stdout.flush()
    steps = install_steps(spec, _cockpit(), _command_line(args, spec.config, spec.env_file))
    print("\n".join([*notes, steps]), file=sys.stderr)
    return 0
