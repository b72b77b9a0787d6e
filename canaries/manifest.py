"""The canary manifest ``canaries.json``: every canary, its secret and where it went.

The manifest is a secret file: it holds raw secrets and the per-run salt of the
masked hashes, and is written with mode 0600 by ``reports.atomic.write_private``.
Nothing else may copy a secret out of it unmasked; ``Manifest.redactor()`` masks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from canaries.formats import make_format
from canaries.spans import MIN_RECORD_SPACE
from reports.pii_masking import Redactor
from reports.atomic import write_private

Group = Literal["schedule", "twin", "audit"]
GROUPS = ("schedule", "twin", "audit")
MANIFEST_VERSION = 1


@dataclass
class Canary:
    """One canary.

    Attributes:
        id: stable id (``c0001``), safe to print.
        group: ``schedule`` (repetition schedule), ``twin`` (held out, never
            inserted) or ``audit`` (coin-flip set).
        format: spec of the secret's format.
        secret: the raw secret (never print it; see ``Manifest.redactor``).
        repetitions: copies inserted into the training records (0: not inserted).
        field: the designated column (the first of ``fields``); None for text records.
        context: the part of the field's value (or text record) before the secret.
        record: the canary record, exactly as inserted (or as it would have been).
        twin_of: for a twin, the id of the scheduled canary it is held out against.
        coin: for the audit set, the recorded coin flip (1 = inserted once).
        rows: positions of its copies in the planted record list.
        fields: for a record span (``canaries.spans``), its consecutive columns; the
            secret is then the JSON list of their values. None for one field.
    """

    id: str
    group: Group
    format: str
    secret: str
    repetitions: int
    field: str | None
    context: str
    record: dict[str, str] | str
    twin_of: str | None = None
    coin: int | None = None
    rows: list[int] = field(default_factory=list)
    fields: list[str] | None = None

    @property
    def inserted(self) -> bool:
        return self.repetitions > 0

    @property
    def secret_fields(self) -> list[str] | None:
        """The columns the secret occupies (None for text records)."""
        return list(self.fields) if self.fields else (None if self.field is None else [self.field])

    @property
    def match_fields(self) -> str | list[str] | None:
        """Where occurrences of the secret are looked for (``canaries.occurrences.scrub``'s ``fields``)."""
        return list(self.fields) if self.fields else self.field


@dataclass
class Manifest:
    """All canaries of a run, with the salt of their masked hashes.

    Attributes:
        canaries: every canary, inserted or not.
        salt: per-run salt for ``reports.pii_masking`` hashes.
        config: the ``CanaryConfig`` used, as a dict.
        n_records: records before planting.
        n_planted_rows: canary rows added (they count as records for DP accounting).
        text: whether records are plain text.
    """

    canaries: list[Canary]
    salt: str
    config: dict[str, Any]
    n_records: int
    n_planted_rows: int
    text: bool

    def redactor(self) -> Redactor:
        return Redactor(self.salt)

    def group(self, name: Group) -> list[Canary]:
        if name not in GROUPS:
            raise ValueError(f"unknown canary group {name!r} (expected one of {GROUPS})")
        return [c for c in self.canaries if c.group == name]

    def inserted(self) -> list[Canary]:
        return [c for c in self.canaries if c.inserted]

    def scrub_ids(self) -> list[str]:
        """See ``scrub_ids``."""
        return scrub_ids(self.canaries)

    def to_dict(self) -> dict[str, Any]:
        return {"version": MANIFEST_VERSION, "salt": self.salt, "config": self.config,
                "n_records": self.n_records, "n_planted_rows": self.n_planted_rows, "text": self.text,
                "canaries": [asdict(c) for c in self.canaries]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Manifest":
        if data.get("version") != MANIFEST_VERSION:
            raise ValueError(f"canary manifest version {data.get('version')!r} is not {MANIFEST_VERSION}")
        return cls(canaries=[Canary(**c) for c in data["canaries"]], salt=data["salt"], config=data["config"],
                   n_records=data["n_records"], n_planted_rows=data["n_planted_rows"], text=data["text"])

    def write(self, path: str | Path) -> Path:
        """Write the manifest with mode 0600."""
        return write_private(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))


def scrub_ids(canaries: list[Canary]) -> list[str]:
    """Ids of the canaries whose full occurrence drops a generated row before release: the
    inserted ones, except record spans over a small space (below ``canaries.spans.MIN_RECORD_SPACE``),
    whose value combinations occur in real-looking rows by chance: dropping those rows would
    bias the synthetic data, so they are only counted (their twins give the chance rate)."""
    small = {spec for spec in {c.format for c in canaries if c.fields} if make_format(spec).size < MIN_RECORD_SPACE}
    return [c.id for c in canaries if c.inserted and c.format not in small]
