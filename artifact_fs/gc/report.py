"""The JSON-lines report (``--report FILE``) and the summary: one line for every root handled."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from artifact_fs import uris

DELETED = "deleted"
WOULD_DELETE = "would_delete"
KEPT = "kept"
FAILED = "failed"
REFUSED = "refused"


def reason_of(exc: BaseException) -> str:
    """An exception as one report line: its type and first 500 characters, whitespace folded."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"


@dataclass
class Outcome:
    """What happened to one run, logged model, experiment, orphan or upload."""

    kind: str
    id: str
    status: str
    uri: str | None = None
    objects: int = 0
    bytes: int = 0
    reason: str | None = None
    metadata_deleted: bool = False

    def to_json(self) -> str:
        record: dict[str, Any] = {key: value for key, value in asdict(self).items() if value is not None}
        if self.uri is not None:
            record["uri"] = uris.redact(self.uri)
        return json.dumps(record, sort_keys=True)


@dataclass
class Report:
    """Collects outcomes from worker threads; writes each to the report file as it happens."""

    stream: IO[str] | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome) -> Outcome:
        with self._lock:
            self.outcomes.append(outcome)
            if self.stream is not None:
                self.stream.write(outcome.to_json() + "\n")
                self.stream.flush()
        return outcome

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in (FAILED, REFUSED)]

    def summary(self) -> str:
        counts = Counter((o.kind, o.status) for o in self.outcomes)
        objects = sum(o.objects for o in self.outcomes if o.status in (DELETED, WOULD_DELETE))
        size = sum(o.bytes for o in self.outcomes if o.status in (DELETED, WOULD_DELETE))
        parts = [f"{n} {kind} {status.replace('_', ' ')}" for (kind, status), n in sorted(counts.items())]
        return f"{', '.join(parts) or 'nothing to collect'}; {objects} objects, {size} bytes"
