"""Startup integrity: verify the session file before the engine opens it; a damaged file is kept aside
(`<file>.corrupted-<time>`, never deleted) and the newest verified backup takes its place. The engine then
starts from the backup and its startup reconcile recovers from the exchange what happened after it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cockpit.core import events
from cockpit.core.domain import Severity
from cockpit.core.errors import CockpitError
from cockpit.engine.backups import list_backups
from cockpit.engine.restore import swap_in_backup
from cockpit.store import verify
from cockpit.store.verify import record_mark


@dataclass(frozen=True)
class Recovery:
    problems: dict[str, str]
    kept_aside: Path | None
    backup: Path
    backup_seq: int | None

    def events(self) -> list[tuple[str, events.Payload, Severity]]:
        """(kind, payload, severity) to record once the engine runs."""
        aside = self.kept_aside.name if self.kept_aside else "—"
        return [
            (
                "db.corrupt",
                events.db_corrupt(
                    problems=self.problems,
                    kept_aside=str(self.kept_aside),
                    message=f"session file failed verification ({'; '.join(self.problems)}); "
                    f"kept aside as {aside}",
                ),
                "critical",
            ),
            (
                "db.restored",
                events.db_restored(
                    backup=str(self.backup),
                    kept_aside=str(self.kept_aside),
                    restored_seq=self.backup_seq,
                    message=f"restored from verified backup {self.backup.name} (through event "
                    f"{self.backup_seq}); reconciling with the exchange",
                ),
                "warning",
            ),
        ]


def check_session_file(session_file: Path) -> Recovery | None:
    """None when the file is missing (a new session) or verifies; a Recovery after restoring a backup.
    Raises CockpitError (nothing is traded) when the file is damaged and no verified backup exists."""
    if not session_file.exists():
        return None
    # a foreign, newer or busy file raises SessionFileError: bad input. The chain is re-hashed from the
    # file's verified_through mark (every block is still read); the new mark saves the next start the work.
    report = verify(session_file, from_mark=True)
    if report.ok:
        if report.last_seq > report.chain_from:
            record_mark(session_file, report)
        return None
    good = [b for b in list_backups(session_file, check=True) if b.verified]
    if not good:
        raise CockpitError(
            f"session file {session_file} is damaged and there is no verified backup",
            "; ".join(f"{k}: {v}" for k, v in report.problems.items()),
            "nothing was traded and the file is untouched; restore a backup by path "
            f"(`cockpit restore --config F PATH`) or move {session_file.name} aside and start a new session",
        )
    newest = good[0]
    aside = swap_in_backup(session_file, newest.path, kept_as="corrupted")
    return Recovery(report.problems, aside, newest.path, newest.last_seq)
