"""Settings of canary planting and of the ``exposure`` audit: one typed object."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from canaries.formats import make_format

SAMPLED_METHODS = ("extrapolation", "interpolation")
MAX_REPETITIONS = 1000  # copies of one canary; more would swamp any table
MAX_AUDIT_CANARIES = 100_000


@dataclass
class CanaryConfig:
    """Canary settings; saved into the run directory with the rest of the config.

    Attributes:
        enabled: plant canaries at all.
        format: secret format spec (see ``canaries.formats``); None picks by the
            designated column: a pattern column's own pattern, else ``digits:6``; in a
            table without text or pattern columns, a record span (``canaries.spans``).
        column: the designated column of tabular data; None picks a free-text column
            (text kind, no PII hint, most ``max_tokens``), else any text column, else a
            pattern column, else a record span of consecutive numeric and categorical
            columns. A numeric or categorical column given here is a span of its own.
        template: the value of a designated text column (and of a text record), with a
            ``{secret}`` slot and an optional ``{name}`` slot (a fake bundled name).
        repetitions: the copy counts of the repetition schedule.
        per_repetition: canaries inserted at each copy count.
        twins: held-out twins (never inserted) per scheduled canary.
        audit_canaries: size m of the coin-flip audit set (each inserted once with
            probability 1/2) for the one-run DP audit; 0 for none. The default 300
            lets a perfect attacker reach epsilon 3.4 at delta 1e-5 (100: 2.3), above
            the external preset's max_epsilon of 3; no size reaches the internal
            preset's 10 at that delta (the audit saturates near 5.7), which the
            dp_audit report says. Costs about m/2 more training rows.
        exact_max_space: the largest space enumerated exactly (a memory cap; whether
            it is enumerated is decided by ``audit_budget_s``).
        n_references: the most uniform references per format when the space is not
            enumerated (fewer when the budget is short, at least 1000).
        audit_budget_s: seconds the exposure audit may spend scoring candidates: it
            enumerates R exactly when the estimate (distinct prefixes x trie work of R,
            at the scorer's measured speed) fits, else samples as many references as
            fit (``canaries.exposure_cost``; ``docs/exposure-cost.md``).
        sampled_method: the estimate reported as a canary's exposure when references
            are sampled (both are always written).
        beam_width: beam width of the extraction attack.
        partial_fraction: share of a secret's characters, contiguous and in order,
            that makes a partial occurrence in synthetic rows.
        alpha: significance level of the memorization rank test.
        batch_size: candidate tokens per forward pass when scoring.
    """

    enabled: bool = True
    format: str | None = None
    column: str | None = None
    template: str = "{name} PIN {secret}"
    repetitions: tuple[int, ...] = (1, 2, 4, 8, 16)
    per_repetition: int = 4
    twins: int = 1
    audit_canaries: int = 300
    exact_max_space: int = 1_000_000
    n_references: int = 20_000
    audit_budget_s: float = 120.0
    sampled_method: str = "extrapolation"
    beam_width: int = 5
    partial_fraction: float = 2 / 3
    alpha: float = 0.05
    batch_size: int = 1024

    def __post_init__(self):
        self.repetitions = tuple(int(r) for r in self.repetitions)
        if (not self.repetitions or any(not 1 <= r <= MAX_REPETITIONS for r in self.repetitions)
                or len(set(self.repetitions)) != len(self.repetitions)):
            raise ValueError(f"canaries.repetitions must be distinct counts in [1, {MAX_REPETITIONS}], "
                             f"got {list(self.repetitions)}")
        for name in ("per_repetition", "twins", "beam_width", "exact_max_space", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"canaries.{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0 <= self.audit_canaries <= MAX_AUDIT_CANARIES:
            raise ValueError(f"canaries.audit_canaries must be in [0, {MAX_AUDIT_CANARIES}], got {self.audit_canaries!r}")
        if not self.audit_budget_s > 0:
            raise ValueError(f"canaries.audit_budget_s must be > 0, got {self.audit_budget_s!r}")
        if self.n_references < 3:
            raise ValueError(f"canaries.n_references must be >= 3, got {self.n_references!r}")
        if self.sampled_method not in SAMPLED_METHODS:
            raise ValueError(f"canaries.sampled_method must be one of {SAMPLED_METHODS}, got {self.sampled_method!r}")
        if not 0.0 < self.partial_fraction <= 1.0:
            raise ValueError(f"canaries.partial_fraction must be in (0, 1], got {self.partial_fraction!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"canaries.alpha must be in (0, 1), got {self.alpha!r}")
        if self.template.count("{secret}") != 1:
            raise ValueError("canaries.template needs exactly one {secret} slot")
        try:
            self.template.format(secret="", name="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"canaries.template may use only {{secret}} and {{name}} slots ({exc})") from None
        if self.format is not None:
            make_format(self.format)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["repetitions"] = list(self.repetitions)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CanaryConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"canaries config: unknown keys {sorted(unknown)}")
        return cls(**data)
