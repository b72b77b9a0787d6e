"""The ``anonymity`` audit: singling out, linkability and attribute inference against a control.

The Article 29 Working Party (Opinion 05/2014 on Anonymisation Techniques) asks
of anonymised data whether it is still possible to single out an individual,
to link records relating to an individual, and to infer information about an
individual. Giomi, Boenisch, Wehmeyer & Tasnádi (2023), "A Unified Framework
for Quantifying Privacy Risk in Synthetic Data" (PoPETs 2023; the ``anonymeter``
package) turn each into an attack on the synthetic data alone, run against the
training records and against control records (the holdout, never trained on):

- singling out: :mod:`attacks.singling_out` (multivariate predicates);
- linkability: :mod:`attacks.linkability` (two parties, disjoint columns);
- attribute inference: the nearest synthetic row on every other column gives
  the guess of a secret column (per secret column; numbers are right within
  ``numeric_tolerance`` of the training range).

Each risk compares the success rate on training records with the rate on the
control, which measures what the synthetic data reveal about anyone of the
population (:func:`control_risk`). We implement the attacks here rather than
depend on ``anonymeter`` 1.1.0, which requires ``numpy < 1.27`` and cannot be
installed beside the numpy 2 stack. One difference: the training side is a
random sample of the control's size, so that singling out (which depends on the
table size) is compared at equal sizes instead of by Anonymeter's fitted
size correction.

Only counts and rates leave this module: no predicate, value or row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from attacks.encoding import MixedEncoder, check_column_kinds
from attacks.inference import guesses_correct, inference_risk
from attacks.intervals import difference_interval
from attacks.linkability import links, nearest_rows, split_columns
from attacks.singling_out import multivariate_predicates, singled_out


@dataclass
class AnonymityConfig:
    """Settings of the ``anonymity`` audit.

    Attributes:
        n_attacks: predicates tried (singling out) and targets attacked on each
            side (linkability, inference); a few hundred, as in Anonymeter.
        n_cols: columns per singling-out predicate.
        n_neighbors: synthetic rows each linkability party keeps.
        linkability_columns: the two parties' columns; default alternate columns.
        secrets: columns attribute inference guesses; default every non-text column.
        numeric_tolerance: a numeric/datetime guess is right within this fraction
            of the training range.
        confidence: level of every interval (inference: Bonferroni over its secrets).
        datetime_formats: column -> ``strptime`` format of datetime strings.
        seed: seed of the samples and of the attacker's draws.
    """

    n_attacks: int = 300
    n_cols: int = 3
    n_neighbors: int = 1
    linkability_columns: tuple[Sequence[str], Sequence[str]] | None = None
    secrets: Sequence[str] | None = None
    numeric_tolerance: float = 0.05
    confidence: float = 0.95
    datetime_formats: dict[str, str] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        for name in ("n_attacks", "n_cols", "n_neighbors"):
            if getattr(self, name) < 1:
                raise ValueError(f"AnonymityConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"AnonymityConfig.confidence must lie in (0, 1), got {self.confidence!r}")
        if self.numeric_tolerance < 0:
            raise ValueError(f"AnonymityConfig.numeric_tolerance must be >= 0, got {self.numeric_tolerance!r}")


def control_risk(*, train_successes: int, train_trials: int, control_successes: int, control_trials: int,
                 confidence: float = 0.95) -> dict:
    """Success on training records against success on control records.

    ``excess = train - control``, and Giomi et al.'s (2023, Eq. 2) normalised
    ``risk = (train - control) / (1 - control)`` (:func:`attacks.inference.inference_risk`).
    Both intervals take the extreme corners of the two rates' Clopper–Pearson
    intervals, each at ``1 - (1 - confidence) / 2`` (Bonferroni)::

        excess_ci = [train_lo - control_hi, train_hi - control_lo]

    Returns:
        ``{train, control, excess, excess_ci, risk, risk_ci, n_train, n_control}``.
    """
    result = inference_risk(train_successes=train_successes, train_trials=train_trials,
                            control_successes=control_successes, control_trials=control_trials,
                            confidence=confidence)
    result["excess"] = result["train"] - result["control"]
    result["excess_ci"] = difference_interval(train_successes=train_successes, train_trials=train_trials,
                                              control_successes=control_successes, control_trials=control_trials,
                                              confidence=confidence)
    return result


def _sample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= n:
        return frame.reset_index(drop=True)
    return frame.iloc[np.sort(rng.choice(len(frame), size=n, replace=False))].reset_index(drop=True)


def _encoder(kinds: Mapping[str, str], columns: Sequence[str], config: AnonymityConfig,
             *frames: pd.DataFrame) -> MixedEncoder:
    return MixedEncoder({c: kinds[c] for c in columns}, datetime_formats=config.datetime_formats).fit(*frames)


def _singling_out(canon: Mapping[str, pd.DataFrame], numeric: set[str], config: AnonymityConfig,
                  rng: np.random.Generator) -> dict | None:
    predicates = multivariate_predicates(canon["synthetic"], numeric=numeric, n_predicates=config.n_attacks,
                                         n_cols=config.n_cols, rng=rng)
    if not predicates:
        return None
    n = len(predicates)
    risk = control_risk(train_successes=singled_out(canon["train"], predicates), train_trials=n,
                        control_successes=singled_out(canon["control"], predicates), control_trials=n,
                        confidence=config.confidence)
    return {"mode": "multivariate", "n_cols": config.n_cols, "n_predicates": n, **risk}


def _linkability(frames: Mapping[str, pd.DataFrame], kinds: Mapping[str, str], config: AnonymityConfig
                 ) -> dict:
    columns_a, columns_b = (list(config.linkability_columns) if config.linkability_columns is not None
                            else split_columns(list(kinds)))
    if not columns_a or not columns_b or set(columns_a) & set(columns_b):
        raise ValueError("anonymity: linkability_columns must be two non-empty, disjoint column lists")
    success = {}
    neighbours = {}
    for half, columns in (("a", columns_a), ("b", columns_b)):
        encoder = _encoder(kinds, columns, config, frames["train_all"], frames["synthetic"], frames["holdout"])
        synthetic = encoder.transform(frames["synthetic"])
        for side in ("train_targets", "control_targets"):
            neighbours[half, side] = nearest_rows(encoder.transform(frames[side]), synthetic, k=config.n_neighbors)
    for side in ("train_targets", "control_targets"):
        success[side] = links(neighbours["a", side], neighbours["b", side])
    risk = control_risk(train_successes=int(success["train_targets"].sum()),
                        train_trials=len(success["train_targets"]),
                        control_successes=int(success["control_targets"].sum()),
                        control_trials=len(success["control_targets"]), confidence=config.confidence)
    return {"columns_a": columns_a, "columns_b": columns_b, "n_neighbors": config.n_neighbors, **risk}


def _inference(frames: Mapping[str, pd.DataFrame], kinds: Mapping[str, str], secrets: Sequence[str],
               config: AnonymityConfig) -> dict:
    confidence = 1.0 - (1.0 - config.confidence) / len(secrets)
    by_secret = {}
    for secret in secrets:
        aux = [c for c in kinds if c != secret]
        encoder = _encoder(kinds, aux, config, frames["train_all"], frames["synthetic"], frames["holdout"])
        synthetic = encoder.transform(frames["synthetic"])
        secret_encoder = _encoder(kinds, [secret], config, frames["train_all"])
        numeric = kinds[secret] in ("numeric", "datetime")
        tolerance = config.numeric_tolerance * secret_encoder.ranges_[secret][1] if numeric else 0.0
        known = secret_encoder.canonical(frames["synthetic"])[secret].to_numpy()
        hits = {}
        for side in ("train_targets", "control_targets"):
            nearest = nearest_rows(encoder.transform(frames[side]), synthetic, k=1)[:, 0]
            truths = secret_encoder.canonical(frames[side])[secret].to_numpy()
            hits[side] = guesses_correct(known[nearest], truths, numeric=numeric, tolerance=tolerance)
        by_secret[secret] = control_risk(
            train_successes=int(hits["train_targets"].sum()), train_trials=len(hits["train_targets"]),
            control_successes=int(hits["control_targets"].sum()), control_trials=len(hits["control_targets"]),
            confidence=confidence)
    lows = {s: r["risk_ci"][0] for s, r in by_secret.items() if r["risk_ci"][0] is not None}
    worst = max(lows, key=lows.get) if lows else None
    return {"by_secret": by_secret, "confidence_each": confidence, "worst_secret": worst,
            "worst_risk": by_secret[worst]["risk"] if worst else None,
            "worst_risk_ci": by_secret[worst]["risk_ci"] if worst else None}


def run(*, synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, column_kinds: Mapping[str, str],
        config: AnonymityConfig | None = None) -> dict:
    """The ``anonymity`` audit (``anonymity.json``).

    Args:
        synthetic: the released synthetic rows.
        train: the training records (canaries excluded).
        holdout: held-out records of the same population: the control.
        column_kinds: the audited columns (numeric | categorical | datetime | text);
            columns the model never learned (fresh fakes) should be left out.
        config: :class:`AnonymityConfig` (defaults when None).

    Returns:
        ``{"singling_out", "linkability", "inference"}``, each with ``train``,
        ``control``, ``risk``, ``risk_ci``, ``excess``, ``excess_ci`` (inference per
        secret, and its worst secret), plus the sizes.
    """
    config = config or AnonymityConfig()
    frames = {"synthetic": synthetic, "train": train, "holdout": holdout}
    for name, frame in frames.items():
        if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
            raise ValueError(f"anonymity: {name} must be a non-empty DataFrame")
    check_column_kinds(column_kinds, frames)
    kinds = dict(column_kinds)
    secrets = list(config.secrets) if config.secrets is not None else [c for c, k in kinds.items() if k != "text"]
    unknown = [s for s in secrets if s not in kinds]
    if unknown:
        raise ValueError(f"anonymity: secrets {unknown} are not among the audited columns")
    rng = np.random.default_rng(config.seed)
    n = min(len(train), len(holdout))
    train_eq, control = _sample(train, n, rng), _sample(holdout, n, rng)
    canonical = MixedEncoder(kinds, datetime_formats=config.datetime_formats).fit(train, synthetic, holdout)
    canon = {"synthetic": canonical.canonical(synthetic), "train": canonical.canonical(train_eq),
             "control": canonical.canonical(control)}
    numeric = {c for c, k in kinds.items() if k in ("numeric", "datetime")}
    targets = {"train_all": train, "holdout": holdout, "synthetic": synthetic,
               "train_targets": _sample(train_eq, config.n_attacks, rng),
               "control_targets": _sample(control, config.n_attacks, rng)}
    return {
        "singling_out": _singling_out(canon, numeric, config, rng),
        "linkability": _linkability(targets, kinds, config) if len(kinds) >= 2 else None,
        "inference": _inference(targets, kinds, secrets, config) if secrets and len(kinds) >= 2 else None,
        "n_compared": n,
        "n_attacks": config.n_attacks,
        "n_synthetic": len(synthetic),
        "confidence": config.confidence,
        "columns": list(kinds),
        "method": "Giomi et al. 2023 (Anonymeter design), control = holdout; train sampled to the holdout's size",
    }
