"""The session store: one DuckDB file per session, written by one thread, verifiable end to end.

See writer.py for the write path (batches.py for what it queues, checkpoints.py for when it checkpoints),
reads.py for reads, verify.py for integrity, schema.py for the tables and their migrations.
"""

from __future__ import annotations

from cockpit.store.dlq import STATUSES as DEAD_LETTER_STATUSES
from cockpit.store.dlq import DeadLetterRow, DeadLetterStatus
from cockpit.store.errors import EventRefused, SessionFileError, StoreError
from cockpit.store.files import companions
from cockpit.store.hashing import GENESIS, event_hash, payload_text
from cockpit.store.reports import StoreStats, StoreTrouble
from cockpit.store.schema import SCHEMA_VERSION
from cockpit.store.verify import VerifyReport, verify
from cockpit.store.writer import DEFAULT_RETRY_DELAYS, FaultHook, SessionStore, TickRow

__all__ = [
    "DEAD_LETTER_STATUSES",
    "DEFAULT_RETRY_DELAYS",
    "GENESIS",
    "SCHEMA_VERSION",
    "DeadLetterRow",
    "DeadLetterStatus",
    "EventRefused",
    "FaultHook",
    "SessionFileError",
    "SessionStore",
    "StoreError",
    "StoreStats",
    "StoreTrouble",
    "TickRow",
    "VerifyReport",
    "companions",
    "event_hash",
    "payload_text",
    "verify",
]
