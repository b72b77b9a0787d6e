"""Fidelity and utility of synthetic data, measured against the real data.

Scores lie in [0, 1], 1 meaning identical (the definitions of SDMetrics' Quality
Report, Patki et al. 2016; TSTR as in Esteban et al. 2017):

- column shape: 1 - KS statistic (numeric, datetime); 1 - total variation
  distance of the category frequencies (categorical); for free text the mean of
  length similarity and vocabulary overlap;
- pair trend: 1 - |rho_real - rho_syn| / 2 (Pearson correlation, two numeric
  columns); otherwise 1 - total variation distance of the joint frequency table,
  numbers binned by real-data quantiles;
- fidelity: mean(mean column shape, mean pair trend);
- TSTR (train on synthetic, test on real): a histogram gradient-boosting model
  for the target, trained on the synthetic rows and on the real training rows,
  both scored on the real holdout rows; ratio = min(1, synthetic / real). A
  categorical target is fitted with balanced class weights (each class weighs
  n / (k * n_c)), so that a rare class is learned rather than predicted never,
  and scored by balanced accuracy and by AUC (macro one-vs-rest over the holdout
  classes, as Provost & Domingos 2000 average binary AUCs);
- rare categories: for each category whose real share is below
  ``rare_share`` (and that has at least ``min_support`` real rows), its real
  and synthetic shares; the worst is the largest relative error
  |p_syn - p_real| / p_real (a synthesizer that halves a 3% class scores 0.5);
- conditional means: for each categorical column c, numeric column x and
  category v with at least ``min_support`` real rows,
  |E_real[x | c=v] - E_syn[x | c=v]| / sd_real(x); the worst over all triples
  (a category the synthetic data never produces is counted as missing, not scored).

Pattern columns (identifiers) have no distribution worth comparing and are
skipped. ``validity`` is left ``None``: the pipeline fills it from generation.json.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import balanced_accuracy_score, r2_score, roc_auc_score
from threadpoolctl import threadpool_limits

from auditor.schema import KINDS

_WORD = re.compile(r"\w+", re.UNICODE)
_MISSING = "\x00missing"
_ORDERED = ("numeric", "datetime")
_COMPARED = ("numeric", "datetime", "categorical")


@dataclass(frozen=True)
class QualityConfig:
    """Settings of the quality audit.

    Attributes:
        seed: seed of row subsampling and of the TSTR models.
        bins: quantile bins for numeric columns in joint frequency tables.
        max_rows: each frame is subsampled to at most this many rows (speed).
        max_pair_columns: pair trends use at most this many columns (the first ones).
        tstr_iterations: boosting iterations of the TSTR models.
        threads: OpenMP threads of the TSTR models. The frames are small, and on a
            busy machine more threads cost far more in contention than they save
            (a 200-row fit took 7 s with all threads, 0.03 s with one).
        rare_share: a category whose real share is below this is rare.
        min_support: real rows a category needs to be scored (rare shares and
            conditional means); fewer make the real statistic itself noise.
    """

    seed: int = 0
    bins: int = 10
    max_rows: int = 20_000
    max_pair_columns: int = 25
    tstr_iterations: int = 100
    threads: int = 1
    rare_share: float = 0.1
    min_support: int = 5

    def __post_init__(self):
        for name in ("bins", "max_rows", "max_pair_columns", "tstr_iterations"):
            if getattr(self, name) < 2:
                raise ValueError(f"QualityConfig.{name} must be >= 2")
        if self.threads < 1:
            raise ValueError("QualityConfig.threads must be >= 1")
        if not 0 < self.rare_share < 1:
            raise ValueError("QualityConfig.rare_share must lie in (0, 1)")
        if self.min_support < 1:
            raise ValueError("QualityConfig.min_support must be >= 1")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> QualityConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"quality config: unknown key(s) {', '.join(unknown)}")
        return cls(**data)


def ks_similarity(real: Iterable[float], synthetic: Iterable[float]) -> float:
    """1 - D, D = sup_x |F_real(x) - F_syn(x)| (two-sample Kolmogorov-Smirnov statistic).

    Raises:
        ValueError: either sample is empty.
    """
    a, b = np.asarray(list(real), dtype=float), np.asarray(list(synthetic), dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("ks_similarity needs two non-empty samples")
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    gap = np.abs(np.searchsorted(a, points, side="right") / a.size - np.searchsorted(b, points, side="right") / b.size)
    return float(1.0 - gap.max())


def _category_counts(real: Iterable[Any], synthetic: Iterable[Any], what: str) -> tuple[Counter, int, Counter, int]:
    """Category counts and sizes of both samples; ``ValueError`` naming ``what`` when either is empty."""
    p, q = Counter(real), Counter(synthetic)
    n, m = sum(p.values()), sum(q.values())
    if n == 0 or m == 0:
        raise ValueError(f"{what} needs two non-empty samples")
    return p, n, q, m


def tv_similarity(real: Iterable[Any], synthetic: Iterable[Any]) -> float:
    """1 - TV, TV = 1/2 * sum_c |p_real(c) - p_syn(c)| over the union of categories c.

    Raises:
        ValueError: either sample is empty.
    """
    p, n, q, m = _category_counts(real, synthetic, "tv_similarity")
    tv = 0.5 * sum(abs(p[c] / n - q[c] / m) for c in p.keys() | q.keys())
    return float(min(1.0, max(0.0, 1.0 - tv)))  # the sum can overshoot [0, 1] by rounding


def correlation_similarity(real_x: Iterable[float], real_y: Iterable[float], syn_x: Iterable[float],
                           syn_y: Iterable[float]) -> float | None:
    """1 - |rho_real - rho_syn| / 2 with Pearson's rho; ``None`` if a column is constant."""
    rhos = []
    for x, y in ((real_x, real_y), (syn_x, syn_y)):
        x, y = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
        if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
            return None
        rhos.append(float(np.corrcoef(x, y)[0, 1]))
    return float(1.0 - abs(rhos[0] - rhos[1]) / 2)


def contingency_similarity(real_a: Iterable[Any], real_b: Iterable[Any], syn_a: Iterable[Any],
                           syn_b: Iterable[Any]) -> float:
    """1 - TV distance of the joint frequency tables of (a, b) in real and synthetic data."""
    return tv_similarity(zip(real_a, real_b), zip(syn_a, syn_b))


def words(text: Any) -> list[str]:
    """Lower-cased word tokens (``\\w+``) of a text; missing values have none."""
    return _WORD.findall(str(text).lower()) if isinstance(text, str) else []


def length_similarity(real: Iterable[Any], synthetic: Iterable[Any]) -> float:
    """``ks_similarity`` of the texts' lengths in words."""
    return ks_similarity([len(words(t)) for t in real], [len(words(t)) for t in synthetic])


def vocabulary_overlap(real: Iterable[Any], synthetic: Iterable[Any]) -> float:
    """sum_w min(p_real(w), p_syn(w)) = 1 - TV of the word-frequency distributions.

    Weighted by frequency, so it does not depend on corpus size the way a set
    overlap (Jaccard) does. 0 when one side has no words at all.
    """
    a = [w for t in real for w in words(t)]
    b = [w for t in synthetic for w in words(t)]
    if not a or not b:
        return 0.0
    return tv_similarity(a, b)


def macro_ovr_auc(y_true: Iterable[Any], scores: Mapping[Any, Iterable[float]]) -> float | None:
    """Macro one-vs-rest AUC: mean over classes c of AUC(y == c, score_c).

    Averaged over the classes of ``y_true`` that have both positives and negatives
    (sklearn's ``roc_auc_score(multi_class="ovr", average="macro")``, without its
    requirement that the scores sum to one, since a model trained on synthetic
    rows may know classes the holdout lacks or miss some it has). A class the
    model does not know scores 0 everywhere, so its AUC is 1/2 (chance). For two
    classes with p_b = 1 - p_a both terms equal the binary AUC.

    Args:
        y_true: the true labels.
        scores: class -> the model's score (probability) of that class per row.

    Returns:
        The macro AUC, or ``None`` when ``y_true`` holds a single class.
    """
    y = np.asarray(list(y_true), dtype=object)
    classes = [c for c in pd.unique(y) if 0 < int(np.sum(y == c)) < y.size]
    if not classes:
        return None
    aucs = []
    for c in classes:
        score = np.asarray(list(scores[c]), dtype=float) if c in scores else np.zeros(y.size)
        aucs.append(roc_auc_score(y == c, score))
    return float(np.mean(aucs))


def rare_category_shares(real: Iterable[Any], synthetic: Iterable[Any], *, rare_share: float,
                         min_support: int) -> list[dict[str, Any]]:
    """Real and synthetic share of each rare category (real share < ``rare_share``).

    Only categories with at least ``min_support`` real rows are listed. Each entry:
    ``category``, ``real`` = n_real(c) / n_real, ``synthetic`` = n_syn(c) / n_syn,
    ``ratio`` = synthetic / real and ``error`` = |synthetic - real| / real
    (0 when kept, 0.5 when halved or grown by half, 1 when lost).

    Raises:
        ValueError: either sample is empty.
    """
    p, n, q, m = _category_counts(real, synthetic, "rare_category_shares")
    out = []
    for c, count in sorted(p.items(), key=lambda kv: (kv[1], str(kv[0]))):
        if count / n < rare_share and count >= min_support:
            real_share, syn_share = count / n, q[c] / m
            out.append({"category": c, "real": real_share, "synthetic": syn_share, "ratio": syn_share / real_share,
                        "error": abs(syn_share - real_share) / real_share})
    return out


def conditional_mean_errors(real_group: Iterable[Any], real_x: Iterable[float], syn_group: Iterable[Any],
                            syn_x: Iterable[float], *, min_support: int) -> tuple[list[dict[str, Any]], list[Any]]:
    """|E_real[x | g=v] - E_syn[x | g=v]| / sd_real(x) for each category v with enough real rows.

    sd_real is the population standard deviation (ddof 0) of all real x. Rows
    with a missing x are dropped first. A category with at least ``min_support``
    real rows but no synthetic row is returned in the second list (missing),
    not scored. No entry at all when real x is constant.

    Returns:
        (entries ``{"category", "real_mean", "synthetic_mean", "support", "error"}``, missing categories).
    """
    r = pd.DataFrame({"g": list(real_group), "x": np.asarray(list(real_x), dtype=float)}).dropna(subset=["x"])
    s = pd.DataFrame({"g": list(syn_group), "x": np.asarray(list(syn_x), dtype=float)}).dropna(subset=["x"])
    sd = float(r["x"].std(ddof=0)) if len(r) else 0.0
    if sd == 0.0:
        return [], []
    real_stats = r.groupby("g", sort=True)["x"].agg(["mean", "size"])
    syn_means = s.groupby("g")["x"].mean()
    entries, missing = [], []
    for v, row in real_stats.iterrows():
        if row["size"] < min_support:
            continue
        if v not in syn_means.index:
            missing.append(v)
            continue
        entries.append({"category": v, "real_mean": float(row["mean"]), "synthetic_mean": float(syn_means[v]),
                        "support": int(row["size"]), "error": abs(float(row["mean"]) - float(syn_means[v])) / sd})
    return entries, missing


def _numbers(column: pd.Series, kind: str) -> pd.Series:
    """Numbers of a numeric or datetime column (datetimes as seconds since 1970 UTC); NaN if unparsable."""
    if kind == "datetime":
        stamps = pd.to_datetime(column, errors="coerce", format="mixed", utc=True)
        return ((stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).astype(float)
    return pd.to_numeric(column, errors="coerce").astype(float)


def _labels(column: pd.Series) -> list[str]:
    return [_MISSING if pd.isna(v) else str(v) for v in column]


def _shape(real: pd.Series, syn: pd.Series, kind: str) -> tuple[float | None, str]:
    if kind in _ORDERED:
        a, b = _numbers(real, kind).dropna(), _numbers(syn, kind).dropna()
        if a.empty or b.empty:
            return (None if a.empty and b.empty else 0.0), "ks"
        return ks_similarity(a, b), "ks"
    if kind == "categorical":
        return tv_similarity(_labels(real), _labels(syn)), "tv"
    return (length_similarity(real, syn) + vocabulary_overlap(real, syn)) / 2, "text"


def _binned(column: pd.Series, kind: str, edges: np.ndarray) -> list[str]:
    values = _numbers(column, kind).to_numpy()
    idx = np.searchsorted(edges, values, side="right")
    return [_MISSING if np.isnan(v) else str(i) for v, i in zip(values, idx)]


def _pair(real: pd.DataFrame, syn: pd.DataFrame, a: str, b: str, kinds: Mapping[str, str],
          bins: int) -> tuple[float | None, str]:
    if kinds[a] in _ORDERED and kinds[b] in _ORDERED:
        r = pd.DataFrame({"a": _numbers(real[a], kinds[a]), "b": _numbers(real[b], kinds[b])}).dropna()
        s = pd.DataFrame({"a": _numbers(syn[a], kinds[a]), "b": _numbers(syn[b], kinds[b])}).dropna()
        score = correlation_similarity(r["a"], r["b"], s["a"], s["b"])
        if score is not None:
            return score, "correlation"
    cols = []
    for name in (a, b):
        if kinds[name] in _ORDERED:
            ref = _numbers(real[name], kinds[name]).dropna().to_numpy()
            edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1])) if ref.size else np.array([])
            cols.append((_binned(real[name], kinds[name], edges), _binned(syn[name], kinds[name], edges)))
        else:
            cols.append((_labels(real[name]), _labels(syn[name])))
    return contingency_similarity(cols[0][0], cols[1][0], cols[0][1], cols[1][1]), "contingency"


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def fidelity(real: pd.DataFrame, syn: pd.DataFrame, kinds: Mapping[str, str], config: QualityConfig
             ) -> dict[str, Any]:
    """Column shapes, pair trends, text scores and their combined fidelity (see module doc)."""
    shapes: dict[str, float] = {}
    methods: dict[str, str] = {}
    skipped: dict[str, str] = {}
    text: dict[str, dict[str, float]] = {}
    for name, kind in kinds.items():
        if kind == "pattern":
            skipped[name] = "pattern column (identifiers): no distribution to compare"
            continue
        score, method = _shape(real[name], syn[name], kind)
        if score is None:
            skipped[name] = "no values in either dataset"
            continue
        shapes[name], methods[name] = score, method
        if kind == "text":
            text[name] = {"length_similarity": length_similarity(real[name], syn[name]),
                          "vocabulary_overlap": vocabulary_overlap(real[name], syn[name])}
    compared = [n for n, k in kinds.items() if k in _COMPARED][: config.max_pair_columns]
    pairs = []
    for a, b in combinations(compared, 2):
        score, method = _pair(real, syn, a, b, kinds, config.bins)
        pairs.append({"columns": [a, b], "method": method, "score": score})
    pair_score = _mean(p["score"] for p in pairs)
    return {
        "fidelity": _mean([_mean(shapes.values()), pair_score]),
        "column_shapes": shapes,
        "column_methods": methods,
        "skipped_columns": skipped,
        "pair_trends": {"score": pair_score, "pairs": pairs},
        "text": text,
    }


def _public_label(label: str) -> str | None:
    return None if label == _MISSING else label


def rare_categories(real: pd.DataFrame, syn: pd.DataFrame, kinds: Mapping[str, str], config: QualityConfig
                    ) -> dict[str, Any]:
    """``rare_category_shares`` of every categorical column; ``worst``: the largest ``error``.

    A missing value counts as a category (``category: null``).
    """
    entries = []
    for name, kind in kinds.items():
        if kind != "categorical":
            continue
        for e in rare_category_shares(_labels(real[name]), _labels(syn[name]), rare_share=config.rare_share,
                                      min_support=config.min_support):
            entries.append({"column": name, **e, "category": _public_label(e["category"])})
    worst = max(entries, key=lambda e: e["error"]) if entries else None
    return {"threshold": config.rare_share, "min_support": config.min_support, "categories": entries,
            "worst": worst}


def conditional_means(real: pd.DataFrame, syn: pd.DataFrame, kinds: Mapping[str, str], config: QualityConfig
                      ) -> dict[str, Any]:
    """``conditional_mean_errors`` over every (categorical, numeric or datetime) column pair.

    Returns ``worst`` (the entry with the largest scaled error, with its ``column``,
    ``numeric`` column and ``category``), ``mean`` (mean error), ``n_scored`` and
    ``missing`` (categories with support that the synthetic data never produces).
    """
    entries, missing = [], []
    for group, g_kind in kinds.items():
        if g_kind != "categorical":
            continue
        real_g, syn_g = _labels(real[group]), _labels(syn[group])
        for num, n_kind in kinds.items():
            if n_kind not in _ORDERED:
                continue
            found, lost = conditional_mean_errors(real_g, _numbers(real[num], n_kind), syn_g,
                                                  _numbers(syn[num], n_kind), min_support=config.min_support)
            entries += [{"column": group, "numeric": num, **e, "category": _public_label(e["category"])}
                        for e in found]
            missing += [{"column": group, "numeric": num, "category": _public_label(v)} for v in lost]
    return {"min_support": config.min_support,
            "worst": max(entries, key=lambda e: e["error"]) if entries else None,
            "mean": _mean(e["error"] for e in entries), "n_scored": len(entries), "missing": missing}


def _features(frames: list[pd.DataFrame], kinds: Mapping[str, str], target: str
              ) -> tuple[list[np.ndarray], list[bool]]:
    """Numeric feature matrices for ``frames``; categories coded by their order in ``frames[0]``."""
    columns, categorical = [], []
    for name, kind in kinds.items():
        if name == target or kind not in _COMPARED:
            continue
        if kind in _ORDERED:
            columns.append([_numbers(f[name], kind).to_numpy() for f in frames])
            categorical.append(False)
        else:
            codes = {c: i for i, c in enumerate(pd.unique(pd.Series(_labels(frames[0][name]))))}
            columns.append([np.array([codes.get(v, np.nan) for v in _labels(f[name])], dtype=float)
                            for f in frames])
            categorical.append(len(codes) < 250)  # the booster's native categories need < 255 bins
    if not columns:
        return [np.zeros((len(f), 1)) for f in frames], [False]
    return [np.column_stack([col[i] for col in columns]) for i in range(len(frames))], categorical


def _fit_score(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, classify: bool,
               categorical: list[bool], config: QualityConfig) -> dict[str, float | None]:
    """Fit a booster on (x, y) (a constant model if y has one value), score it on the test rows.

    Classification: ``balanced_accuracy`` and ``auc`` (``macro_ovr_auc``), the
    booster weighted by balanced class weights. Regression: ``r2`` clipped at 0.
    """
    if classify:
        model = (HistGradientBoostingClassifier(max_iter=config.tstr_iterations, early_stopping=False,
                                                categorical_features=categorical, class_weight="balanced",
                                                random_state=config.seed)
                 if len(set(y)) > 1 else DummyClassifier(strategy="most_frequent"))
        model.fit(x, y)
        proba = model.predict_proba(x_test)
        return {"balanced_accuracy": float(balanced_accuracy_score(y_test, model.classes_[proba.argmax(axis=1)])),
                "auc": macro_ovr_auc(y_test, {c: proba[:, i] for i, c in enumerate(model.classes_)})}
    model = (HistGradientBoostingRegressor(max_iter=config.tstr_iterations, early_stopping=False,
                                           categorical_features=categorical, random_state=config.seed)
             if len(y) > 1 else DummyRegressor())
    if len(y_test) < 2:
        return {"r2": 0.0}
    return {"r2": float(max(0.0, r2_score(y_test, model.fit(x, y).predict(x_test))))}


def _ratio(synthetic: float | None, real: float | None) -> float | None:
    """min(1, synthetic / real); ``None`` when either is undefined or real is 0."""
    if synthetic is None or real is None or real <= 0:
        return None
    return min(1.0, synthetic / real)


def tstr(synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, kinds: Mapping[str, str],
         target: str, config: QualityConfig) -> dict[str, Any] | None:
    """Train on synthetic vs. train on real, both tested on the real holdout (see module doc).

    Classification (categorical target) is scored by balanced accuracy (the
    headline ``synthetic``/``real``/``ratio``) and AUC, each also under its own key
    with its ratio; regression (numeric target) by R^2 clipped at 0. ``None``
    when the holdout or a training set has no row with a target value.
    """
    frames = []
    for frame in (train, synthetic, holdout):
        y = frame[target] if kinds[target] == "categorical" else _numbers(frame[target], kinds[target])
        frames.append(frame[y.notna().to_numpy()])
    if any(f.empty for f in frames):
        return None
    (x_train, x_syn, x_hold), categorical = _features(frames, kinds, target)
    classify = kinds[target] == "categorical"
    ys = [np.array(_labels(f[target])) if classify else _numbers(f[target], kinds[target]).to_numpy()
          for f in frames]
    scores = {}
    with threadpool_limits(limits=config.threads, user_api="openmp"):
        for name, x, y in (("real", x_train, ys[0]), ("synthetic", x_syn, ys[1])):
            scores[name] = _fit_score(x, y, x_hold, ys[2], classify, categorical, config)
    metric = "balanced_accuracy" if classify else "r2"
    out = {"target": target, "metric": metric, "synthetic": scores["synthetic"][metric],
           "real": scores["real"][metric], "ratio": _ratio(scores["synthetic"][metric], scores["real"][metric]),
           "n_train": len(frames[0]), "n_synthetic": len(frames[1]), "n_holdout": len(frames[2])}
    if classify:
        for name in ("balanced_accuracy", "auc"):
            out[name] = {"synthetic": scores["synthetic"][name], "real": scores["real"][name],
                         "ratio": _ratio(scores["synthetic"][name], scores["real"][name])}
        out["classes"] = len(set(ys[2]))
    return out


def _check(synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, column_kinds: Mapping[str, str],
           target: str | None) -> None:
    for name, frame in (("synthetic", synthetic), ("train", train), ("holdout", holdout)):
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"quality: {name} must be a pandas DataFrame, got {type(frame).__name__}")
        missing = [c for c in column_kinds if c not in frame.columns]
        if missing:
            raise ValueError(f"quality: {name} lacks column(s) {', '.join(map(str, missing))}")
    if synthetic.empty or train.empty:
        raise ValueError("quality: synthetic and train need at least one row")
    if not column_kinds:
        raise ValueError("quality: column_kinds is empty")
    bad = {c: k for c, k in column_kinds.items() if k not in KINDS}
    if bad:
        raise ValueError(f"quality: unknown kind(s) {bad} (expected one of {', '.join(KINDS)})")
    if target is not None:
        if target not in column_kinds:
            raise ValueError(f"quality: target {target!r} is not one of the columns")
        if column_kinds[target] not in ("categorical", "numeric"):
            raise ValueError(f"quality: target {target!r} must be categorical or numeric, "
                             f"not {column_kinds[target]}")


def _sample(frame: pd.DataFrame, config: QualityConfig) -> pd.DataFrame:
    if len(frame) <= config.max_rows:
        return frame
    return frame.sample(n=config.max_rows, random_state=config.seed)


def run(*, synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, column_kinds: Mapping[str, str],
        target: str | None, config: QualityConfig | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The quality audit (``audit/quality.json``, see docs/audit-contract.md).

    Args:
        synthetic, train, holdout: the frames; ``holdout`` may be empty (no
            reference fidelity and no TSTR then).
        column_kinds: column -> kind (``auditor.schema.KINDS``); only these columns are scored.
        target: the TSTR target column (categorical or numeric), or ``None`` to skip TSTR.
        config: a ``QualityConfig``, a mapping of its fields, or ``None`` for defaults.

    Returns:
        ``validity`` (``None``; the pipeline fills it), ``fidelity``,
        ``reference_fidelity`` (holdout scored against train: what a fresh real
        sample achieves), ``column_shapes``, ``column_methods``,
        ``skipped_columns``, ``pair_trends``, ``text``, ``rare_categories``,
        ``conditional_means`` and ``tstr`` (or ``None``).

    Raises:
        ValueError: a frame lacks a column, an unknown kind, a bad target or config.
    """
    if config is None:
        config = QualityConfig()
    elif isinstance(config, Mapping):
        config = QualityConfig.from_mapping(config)
    elif not isinstance(config, QualityConfig):
        raise ValueError(f"quality: config must be a QualityConfig or a mapping, got {type(config).__name__}")
    _check(synthetic, train, holdout, column_kinds, target)
    synthetic, train, holdout = (_sample(f, config) for f in (synthetic, train, holdout))
    kinds = dict(column_kinds)
    result: dict[str, Any] = {"validity": None}
    result.update(fidelity(train, synthetic, kinds, config))
    result["reference_fidelity"] = fidelity(train, holdout, kinds, config)["fidelity"] if len(holdout) else None
    result["rare_categories"] = rare_categories(train, synthetic, kinds, config)
    result["conditional_means"] = conditional_means(train, synthetic, kinds, config)
    result["tstr"] = (tstr(synthetic, train, holdout, kinds, target, config)
                      if target is not None and len(holdout) else None)
    return result
