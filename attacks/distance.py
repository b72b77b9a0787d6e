"""The ``distance`` audit: attacks on a released synthetic dataset alone.

Threat model: the attacker holds the synthetic data, and for membership and
attribute inference also (part of) a target record. All distances are the
mixed-type distance of :mod:`attacks.encoding`, found exactly in bounded memory
by :mod:`attacks.neighbours`. A training sample and a holdout sample of *equal
size* are compared, so that "closer to train" has 50% as its ideal:

- DCR: each synthetic row's distance to its closest training row and closest
  holdout row; the share of synthetic rows closer to train (ties count 1/2) with
  a Clopper–Pearson interval (Platzer & Reutterer 2021, "Holdout-Based Empirical
  Assessment of Mixed-Type Synthetic Data").
- NNDR: nearest / second-nearest training distance of each synthetic row (0/0 = 1).
- Exact copies: synthetic rows equal (over the audited columns, after
  canonicalisation) to a row of the full training data; the holdout rate is the
  control. ``copies`` counts the other way round, per record: training records
  reproduced by some synthetic row against holdout records reproduced, with the
  excess over the control (:mod:`attacks.excess`), exactly on all audited
  columns and "near" on the learned columns only (a generator that fills some
  columns with fresh fakes can still reproduce a person's learned attributes).
- Distance MIA: score of a train/holdout record = minus its distance to the
  nearest synthetic row -> AUC, TPR at low FPR (:mod:`attacks.metrics`).
- Attribute inference (:mod:`attacks.inference`).

Any example row written out is masked with :mod:`reports.pii_masking`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from attacks.encoding import MixedEncoder, check_column_kinds
from attacks.excess import excess_over_control
from attacks.inference import guesses_correct, inference_risk
from attacks.intervals import clopper_pearson_interval
from attacks.metrics import DEFAULT_FPRS, summarize
from attacks.neighbours import nearest_neighbours
from reports.pii_masking import mask_value

#: Distances within this of each other count as a tie.
TIE_TOLERANCE = 1e-9

#: Synthetic rows named in ``copies`` (0-based positions in the synthetic table).
MAX_NAMED_ROWS = 20


@dataclass
class DistanceConfig:
    """Settings of the ``distance`` audit.

    Attributes:
        text_dim: hashed dimension of each text column's n-gram vector.
        text_ngram: character n-gram length of text columns.
        max_onehot_levels: categorical columns with more levels are embedded by
            random codes (see :mod:`attacks.encoding`) to bound the width.
        datetime_formats: column -> ``strptime`` format of datetime strings
            (pandas datetimes need none; without one, pandas infers the format).
        max_reference_rows: cap on the equal-size train and holdout samples (None: no cap).
        max_synthetic_rows: cap on the synthetic rows compared (None: all).
        hist_bins: bins of the DCR histograms.
        quantiles: DCR quantiles reported.
        fprs: FPRs of the distance MIA's TPR.
        n_bootstrap: bootstrap replicates of the distance MIA's AUC interval.
        confidence: level of every interval.
        numeric_tolerance: attribute inference on a numeric/datetime secret is right
            within this fraction of the training range.
        max_inference_records: train and control records attacked by attribute inference.
        n_examples: masked synthetic rows closest to train shown (0 for none).
        chunk_rows, block_rows, n_jobs: nearest-neighbour blocks and worker threads.
        seed: seed of the samples.
    """

    text_dim: int = 64
    text_ngram: int = 3
    max_onehot_levels: int = 256
    datetime_formats: dict[str, str] = field(default_factory=dict)
    max_reference_rows: int | None = None
    max_synthetic_rows: int | None = None
    hist_bins: int = 20
    quantiles: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5)
    fprs: tuple[float, ...] = DEFAULT_FPRS
    n_bootstrap: int = 200
    confidence: float = 0.95
    numeric_tolerance: float = 0.05
    max_inference_records: int = 5000
    n_examples: int = 5
    chunk_rows: int = 512
    block_rows: int = 4096
    n_jobs: int = 2
    seed: int = 0

    def __post_init__(self):
        for name in ("hist_bins", "n_bootstrap", "max_inference_records", "chunk_rows", "block_rows", "n_jobs"):
            if getattr(self, name) < 1:
                raise ValueError(f"DistanceConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("max_reference_rows", "max_synthetic_rows"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"DistanceConfig.{name} must be >= 1 or None, got {getattr(self, name)!r}")
        if self.n_examples < 0:
            raise ValueError(f"DistanceConfig.n_examples must be >= 0, got {self.n_examples!r}")
        if self.numeric_tolerance < 0:
            raise ValueError(f"DistanceConfig.numeric_tolerance must be >= 0, got {self.numeric_tolerance!r}")


def closer_share(
    train_distance: np.ndarray, holdout_distance: np.ndarray, *, confidence: float = 0.95
) -> tuple[float, list[float]]:
    """Share of rows closer to train than to holdout, ties counting 1/2, and its CI.

    ``share = (#{d_train < d_holdout} + #{tie} / 2) / n``; the interval is
    Clopper–Pearson on the (possibly half-integer) count.
    """
    train_distance = np.asarray(train_distance, dtype=np.float64)
    holdout_distance = np.asarray(holdout_distance, dtype=np.float64)
    if train_distance.shape != holdout_distance.shape or train_distance.size == 0:
        raise ValueError("train_distance and holdout_distance must be non-empty and of one shape")
    tie = np.abs(train_distance - holdout_distance) <= TIE_TOLERANCE
    count = float(np.count_nonzero(~tie & (train_distance < holdout_distance)) + 0.5 * np.count_nonzero(tie))
    n = train_distance.size
    lo, hi = clopper_pearson_interval(successes=count, trials=n, confidence=confidence)
    return count / n, [lo, hi]


def distance_ratio(nearest: np.ndarray, second: np.ndarray) -> np.ndarray:
    """NNDR ``nearest / second``, with 0/0 = 1 (a duplicated record is not singled out)."""
    nearest = np.asarray(nearest, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(second > 0, nearest / np.where(second > 0, second, 1.0), 1.0)
    return np.where(np.isfinite(second), ratio, 1.0)


def histogram(train: np.ndarray, holdout: np.ndarray, *, bins: int) -> dict:
    """Shared-bin histograms (shares of rows) of two distance samples, up to their joint 99th percentile."""
    top = float(np.quantile(np.concatenate([train, holdout]), 0.99)) or 1.0
    edges = np.linspace(0.0, top, bins + 1)
    clipped = [np.minimum(x, top) for x in (train, holdout)]
    counts = [np.histogram(x, bins=edges)[0] / x.size for x in clipped]
    return {"bins": edges.tolist(), "train": counts[0].tolist(), "holdout": counts[1].tolist()}


def _sample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= n:
        return frame.reset_index(drop=True)
    return frame.iloc[np.sort(rng.choice(len(frame), size=n, replace=False))].reset_index(drop=True)


def _encoder(column_kinds: Mapping[str, str], config: DistanceConfig) -> MixedEncoder:
    return MixedEncoder(
        column_kinds,
        text_dim=config.text_dim,
        text_ngram=config.text_ngram,
        datetime_formats=config.datetime_formats,
        max_onehot_levels=config.max_onehot_levels,
    )


def _row_hashes(encoder: MixedEncoder, frame: pd.DataFrame, columns: Sequence[str] | None = None) -> np.ndarray:
    canonical = encoder.canonical(frame)
    if columns is not None:
        canonical = canonical[list(columns)]
    return pd.util.hash_pandas_object(canonical, index=False).to_numpy()


def record_copies(synthetic: np.ndarray, train: np.ndarray, holdout: np.ndarray) -> dict:
    """Train and holdout records reproduced by a synthetic row (row hashes), excess over the control.

    Returns :func:`attacks.excess.excess_over_control` of the records, plus
    ``synthetic_rows``: the first ``MAX_NAMED_ROWS`` positions of synthetic rows
    equal to a training record, and ``synthetic_rows_total``.
    """
    block = excess_over_control(
        train_hits=int(np.isin(train, synthetic).sum()), train_n=len(train),
        control_hits=int(np.isin(holdout, synthetic).sum()), control_n=len(holdout),
    )
    rows = np.flatnonzero(np.isin(synthetic, train))
    return block | {"synthetic_rows": rows[:MAX_NAMED_ROWS].tolist(), "synthetic_rows_total": int(rows.size)}


def _attribute_inference(
    *,
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    column_kinds: Mapping[str, str],
    quasi_identifiers: Sequence[str],
    secret_column: str,
    config: DistanceConfig,
    rng: np.random.Generator,
) -> dict:
    if secret_column not in column_kinds:
        raise ValueError(f"secret_column {secret_column!r} is not among the audited columns")
    if secret_column in quasi_identifiers:
        raise ValueError(f"secret_column {secret_column!r} is also a quasi-identifier")
    unknown = [c for c in quasi_identifiers if c not in column_kinds]
    if unknown:
        raise ValueError(f"quasi_identifiers {unknown} are not among the audited columns")
    qi_kinds = {c: column_kinds[c] for c in quasi_identifiers}
    encoder = _encoder(qi_kinds, config).fit(train, synthetic, holdout)
    synthetic_embedding = encoder.transform(synthetic)
    secret_kind = column_kinds[secret_column]
    numeric = secret_kind in ("numeric", "datetime")
    secret_encoder = MixedEncoder(
        {secret_column: secret_kind}, datetime_formats=config.datetime_formats
    ).fit(train)
    secret_synthetic = secret_encoder.canonical(synthetic)[secret_column].to_numpy()
    tolerance = config.numeric_tolerance * secret_encoder.ranges_[secret_column][1] if numeric else 0.0

    def successes(targets: pd.DataFrame) -> tuple[int, int]:
        targets = _sample(targets, config.max_inference_records, rng)
        nn = nearest_neighbours(
            encoder.transform(targets),
            synthetic_embedding,
            chunk_rows=config.chunk_rows,
            block_rows=config.block_rows,
            n_jobs=config.n_jobs,
        )
        truths = secret_encoder.canonical(targets)[secret_column].to_numpy()
        right = guesses_correct(secret_synthetic[nn.query_index], truths, numeric=numeric, tolerance=tolerance)
        return int(right.sum()), len(targets)

    train_hits, train_n = successes(train)
    control_hits, control_n = successes(holdout)
    result = inference_risk(
        train_successes=train_hits,
        train_trials=train_n,
        control_successes=control_hits,
        control_trials=control_n,
        confidence=config.confidence,
    )
    return {"target": secret_column, "quasi_identifiers": list(quasi_identifiers), **result}


def run(
    *,
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    column_kinds: Mapping[str, str],
    quasi_identifiers: Sequence[str] | None = None,
    secret_column: str | None = None,
    learned_columns: Sequence[str] | None = None,
    config: DistanceConfig | None = None,
    executor=None,
) -> dict:
    """The ``distance`` audit (``distance.json``).

    Args:
        synthetic: the released synthetic rows.
        train: the training records (canaries excluded).
        holdout: held-out records of the same population.
        column_kinds: the audited columns: column -> numeric | categorical | datetime | text.
            Datetimes may be strings (see ``config.datetime_formats``) or pandas datetimes.
        quasi_identifiers: columns an attacker knows, for attribute inference.
        secret_column: the column the attacker infers; attribute inference runs
            when it and ``quasi_identifiers`` are both given.
        learned_columns: the audited columns the generator learned from the data
            (near copies are equal on these); None: all of them (near = exact).
        config: :class:`DistanceConfig` (defaults when None).
        executor: spreads the nearest-neighbour searches over workers
            (:func:`attacks.neighbours.nearest_neighbours`; same results); None: this process.
    """
    config = config or DistanceConfig()
    frames = {"synthetic": synthetic, "train": train, "holdout": holdout}
    for name, frame in frames.items():
        if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
            raise ValueError(f"distance: {name} must be a non-empty DataFrame")
    check_column_kinds(column_kinds, frames)
    if learned_columns is not None:
        unknown = [c for c in learned_columns if c not in column_kinds]
        if unknown or not learned_columns:
            raise ValueError(f"learned_columns must be a non-empty subset of the audited columns, got {unknown}")
    rng = np.random.default_rng(config.seed)

    n_equal = min(len(train), len(holdout))
    if config.max_reference_rows is not None:
        n_equal = min(n_equal, config.max_reference_rows)
    train_sample = _sample(train, n_equal, rng)
    holdout_sample = _sample(holdout, n_equal, rng)
    synthetic_rows = _sample(synthetic, config.max_synthetic_rows or len(synthetic), rng)

    encoder = _encoder(column_kinds, config).fit(train, synthetic_rows, holdout)
    synthetic_embedding = encoder.transform(synthetic_rows)
    blocks = {"chunk_rows": config.chunk_rows, "block_rows": config.block_rows, "n_jobs": config.n_jobs,
              "executor": executor}
    to_train = nearest_neighbours(synthetic_embedding, encoder.transform(train_sample), **blocks)
    to_holdout = nearest_neighbours(synthetic_embedding, encoder.transform(holdout_sample), **blocks)
    dcr_train, dcr_holdout = to_train.query_distance, to_holdout.query_distance

    share, share_ci = closer_share(dcr_train, dcr_holdout, confidence=config.confidence)
    nndr_train = distance_ratio(dcr_train, to_train.query_second)
    nndr_holdout = distance_ratio(dcr_holdout, to_holdout.query_second)
    synthetic_hashes = _row_hashes(encoder, synthetic_rows)
    train_copies = int(np.isin(synthetic_hashes, _row_hashes(encoder, train)).sum())
    holdout_copies = int(np.isin(synthetic_hashes, _row_hashes(encoder, holdout)).sum())
    n_synthetic = len(synthetic_rows)
    copies = {"exact": record_copies(*(_row_hashes(encoder, f) for f in (synthetic, train, holdout)))}
    learned = list(learned_columns) if learned_columns is not None else list(column_kinds)
    copies["learned_columns"] = learned
    copies["near"] = record_copies(*(_row_hashes(encoder, f, learned) for f in (synthetic, train, holdout)))

    membership = summarize(
        -to_train.reference_distance,
        -to_holdout.reference_distance,
        fprs=config.fprs,
        n_bootstrap=config.n_bootstrap,
        confidence=config.confidence,
        seed=config.seed,
        max_roc_points=100,
    )
    inference = None
    if secret_column is not None and quasi_identifiers:
        inference = _attribute_inference(
            synthetic=synthetic_rows,
            train=train,
            holdout=holdout,
            column_kinds=column_kinds,
            quasi_identifiers=quasi_identifiers,
            secret_column=secret_column,
            config=config,
            rng=rng,
        )

    closest = np.argsort(dcr_train, kind="stable")[: config.n_examples]
    examples = [
        {
            "dcr_train": float(dcr_train[i]),
            "dcr_holdout": float(dcr_holdout[i]),
            "row": {c: mask_value(synthetic_rows[c].iloc[i]) for c in column_kinds},
        }
        for i in closest
    ]

    def quantiles(x: np.ndarray) -> dict[str, float]:
        return {f"{q:g}": float(v) for q, v in zip(config.quantiles, np.quantile(x, config.quantiles))}

    return {
        "dcr_train_share": share,
        "dcr_train_share_ci": share_ci,
        "exact_copy_rate": train_copies / n_synthetic,
        "exact_copies": train_copies,
        "holdout_copy_rate": holdout_copies / n_synthetic,
        "holdout_copies": holdout_copies,
        "copies": copies,
        "nndr": {
            "median": float(np.median(nndr_train)),
            "mean": float(np.mean(nndr_train)),
            "q05": float(np.quantile(nndr_train, 0.05)),
            "holdout_median": float(np.median(nndr_holdout)),
        },
        "dcr_hist": histogram(dcr_train, dcr_holdout, bins=config.hist_bins),
        "dcr_quantiles": {"train": quantiles(dcr_train), "holdout": quantiles(dcr_holdout)},
        "mia": membership,
        "attribute_inference": inference,
        "examples": examples,
        "n_synthetic": n_synthetic,
        "n_train": len(train),
        "n_holdout": len(holdout),
        "n_compared": n_equal,
        "distance": {
            "columns": dict(column_kinds),
            "embedding_dim": encoder.dim,
            "text_dim": config.text_dim,
            "text_ngram": config.text_ngram,
        },
    }
