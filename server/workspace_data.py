"""Per-workspace data folder (index, completion events) under the user data folder.

Kept outside the repository so nothing is added to the user's working tree.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from pathlib import Path

from repolsp.models.store import default_home

log = logging.getLogger(__name__)

EVENTS_FILE = "events.jsonl"


def data_dir_for(root: Path | str, home: Path | None = None) -> Path:
    """$REPOLSP_HOME/workspaces/<folder name>-<hash of the absolute path>."""
    root = Path(root).expanduser().resolve()
    digest = hashlib.sha1(str(root).encode("utf-8")).hexdigest()[:10]
    return (home or default_home()) / "workspaces" / f"{root.name or 'root'}-{digest}"


class EventLog:
    """Append-only JSONL of completion events (shown / accepted / rejected). Local only."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._warned = False

    def append(self, event: dict) -> None:
        """Write one event; a failure is logged once, never raised."""
        record = {"ts": round(time.time(), 3), **event}
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as exc:
            if not self._warned:
                log.warning("cannot record completion events in %s: %s", self.path, exc)
                self._warned = True


def read_events(path: Path) -> list[dict]:
    """All readable events of a log (bad lines skipped)."""
    events = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return events
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events
