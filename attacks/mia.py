"""The ``mia`` audit: model-based membership inference on records and canaries.

Every registered signal (:mod:`attacks.signals`) scores the training records
(members) against held-out records (non-members), and the inserted canaries
against their held-out twins; :func:`attacks.metrics.summarize` turns each pair
of score lists into the ``mia.json`` entry (AUC with CI, TPR at low FPR,
advantage, ROC). See ``docs/audit-contract.md``.

Use :func:`run` for the audit file, or :func:`score_membership` then
:func:`report` to keep the raw scores (``attacks.dp_audit`` takes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from attacks.metrics import DEFAULT_FPRS, summarize
from attacks.signals import SignalInput, available_signals, create_signal, record_text
from canaries.scorer import Record, Scorer

NO_REFERENCE = "no reference model"


@dataclass
class MiaConfig:
    """Settings of the ``mia`` audit.

    Attributes:
        signals: registered signal names to run, in order (default: every registered signal).
        signal_options: per-signal constructor options, by signal name.
        fprs: FPRs at which the TPR is reported.
        n_bootstrap: bootstrap replicates of the AUC interval.
        confidence: level of the AUC interval.
        batch_size: records per ``Scorer.token_stats`` call.
        max_roc_points: ROC points kept for the log-log plot.
        seed: seed of the bootstrap.
    """

    signals: tuple[str, ...] = field(default_factory=available_signals)
    signal_options: dict[str, dict] = field(
        default_factory=lambda: {"min_k": {"fraction": 0.2}, "min_k_pp": {"fraction": 0.2}}
    )
    fprs: tuple[float, ...] = DEFAULT_FPRS
    n_bootstrap: int = 1000
    confidence: float = 0.95
    batch_size: int = 32
    max_roc_points: int = 200
    seed: int = 0

    def __post_init__(self):
        if not self.signals:
            raise ValueError("MiaConfig.signals must name at least one signal")
        if self.batch_size < 1:
            raise ValueError(f"MiaConfig.batch_size must be >= 1, got {self.batch_size!r}")


@dataclass
class MembershipScores:
    """Raw scores by signal name (higher = more likely a member).

    ``canaries_in`` / ``canaries_out`` are empty when no canaries were given.
    ``skipped`` maps a configured signal that did not run to the reason.
    """

    members: dict[str, np.ndarray]
    nonmembers: dict[str, np.ndarray]
    canaries_in: dict[str, np.ndarray]
    canaries_out: dict[str, np.ndarray]
    skipped: dict[str, str]


def score_records(
    *,
    scorer: Scorer,
    records: Sequence[Record],
    reference_scorer: Scorer | None = None,
    config: MiaConfig,
) -> dict[str, np.ndarray]:
    """Scores of ``records`` under every configured signal that can run.

    Signals that need a reference model are left out when ``reference_scorer``
    is None.
    """
    signals = [
        create_signal(name, **config.signal_options.get(name, {})) for name in config.signals
    ]
    signals = [s for s in signals if reference_scorer is not None or not s.needs_reference]
    use_reference = reference_scorer is not None and any(s.needs_reference for s in signals)
    scores: dict[str, list[float]] = {s.name: [] for s in signals}
    for start in range(0, len(records), config.batch_size):
        batch = records[start : start + config.batch_size]
        stats = scorer.token_stats([scorer.encode(r) for r in batch])
        references = (
            reference_scorer.token_stats([reference_scorer.encode(r) for r in batch])
            if use_reference
            else [None] * len(batch)
        )
        for record, stat, reference in zip(batch, stats, references):
            item = SignalInput(stats=stat, text=record_text(record), reference=reference)
            for signal in signals:
                scores[signal.name].append(signal.score(item))
    out = {name: np.asarray(values, dtype=np.float64) for name, values in scores.items()}
    for name, values in out.items():
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(
                f"mia: signal {name!r} gave a non-finite score for record {int(bad[0])} "
                "(a token outside the model's grammar has log-probability -inf)"
            )
    return out


def _check_records(name: str, records) -> list:
    if records is None or len(records) == 0:
        raise ValueError(f"mia: {name} must be a non-empty list of records")
    return list(records)


def score_membership(
    *,
    scorer: Scorer,
    members: Sequence[Record],
    nonmembers: Sequence[Record],
    canaries_in: Sequence[Record] | None = None,
    canaries_out: Sequence[Record] | None = None,
    reference_scorer: Scorer | None = None,
    config: MiaConfig,
) -> MembershipScores:
    """Score members, non-members and (when both are given) inserted vs held-out canaries."""
    members = _check_records("members", members)
    nonmembers = _check_records("nonmembers", nonmembers)
    if (canaries_in is None) != (canaries_out is None):
        raise ValueError("mia: give both canaries_in and canaries_out, or neither")

    def score(records):
        return score_records(
            scorer=scorer, records=records, reference_scorer=reference_scorer, config=config
        )

    canary_in_scores: dict[str, np.ndarray] = {}
    canary_out_scores: dict[str, np.ndarray] = {}
    if canaries_in is not None:
        canary_in_scores = score(_check_records("canaries_in", canaries_in))
        canary_out_scores = score(_check_records("canaries_out", canaries_out))
    member_scores = score(members)
    if not member_scores:
        raise ValueError(f"mia: none of the signals {list(config.signals)} can run without a reference model")
    skipped = {name: NO_REFERENCE for name in config.signals if name not in member_scores}
    return MembershipScores(
        members=member_scores,
        nonmembers=score(nonmembers),
        canaries_in=canary_in_scores,
        canaries_out=canary_out_scores,
        skipped=skipped,
    )


def _summaries(positive: dict, negative: dict, config: MiaConfig) -> dict[str, dict]:
    return {
        name: summarize(
            positive[name],
            negative[name],
            fprs=config.fprs,
            n_bootstrap=config.n_bootstrap,
            confidence=config.confidence,
            seed=config.seed,
            max_roc_points=config.max_roc_points,
        )
        for name in positive
    }


def report(scores: MembershipScores, *, config: MiaConfig) -> dict:
    """The ``mia.json`` dict of already computed scores."""
    signals = _summaries(scores.members, scores.nonmembers, config)
    canary_signals = _summaries(scores.canaries_in, scores.canaries_out, config)
    best = max(signals, key=lambda name: signals[name]["auc"])
    best_canary = (
        max(canary_signals, key=lambda name: canary_signals[name]["auc"]) if canary_signals else None
    )
    first = next(iter(scores.members.values()))
    first_non = next(iter(scores.nonmembers.values()))
    first_canary = next(iter(scores.canaries_in.values()), np.empty(0))
    first_canary_out = next(iter(scores.canaries_out.values()), np.empty(0))
    return {
        "signals": signals,
        "canary_signals": canary_signals,
        "best_signal": best,
        "best_canary_signal": best_canary,
        "signals_skipped": dict(scores.skipped),
        "n_members": int(first.size),
        "n_nonmembers": int(first_non.size),
        "n_canaries_in": int(first_canary.size),
        "n_canaries_out": int(first_canary_out.size),
    }


def run(
    *,
    scorer: Scorer,
    members: Sequence[Record],
    nonmembers: Sequence[Record],
    canaries_in: Sequence[Record] | None = None,
    canaries_out: Sequence[Record] | None = None,
    reference_scorer: Scorer | None = None,
    config: MiaConfig | None = None,
) -> dict:
    """The ``mia`` audit: score every record with every signal and summarise (``mia.json``).

    Args:
        scorer: the target model.
        members: training records (the scorer encodes them).
        nonmembers: held-out records of the same population.
        canaries_in: canaries that were inserted into training; with ``canaries_out``,
            their held-out twins, they give ``canary_signals``.
        reference_scorer: a model of the same architecture trained without DP on a
            disjoint population split; the ``reference`` signal is skipped without it.
        config: :class:`MiaConfig` (defaults when None).
    """
    config = config or MiaConfig()
    scores = score_membership(
        scorer=scorer,
        members=members,
        nonmembers=nonmembers,
        canaries_in=canaries_in,
        canaries_out=canaries_out,
        reference_scorer=reference_scorer,
        config=config,
    )
    return report(scores, config=config)
