"""A mixed-type record distance as a Euclidean distance between embeddings.

Each of the ``C`` audited columns contributes a term ``delta_c`` in [0, 1]
(text: [0, 2], see below) and the distance of two records is

    d(x, y) = sqrt( (1 / C) * sum_c delta_c(x_c, y_c) )

with, per column kind (a squared-distance form of Gower's 1971 coefficient):

- numeric, datetime: ``((x - y) / range)^2``, ``range = max - min`` over the
  *training* data (1 when constant); datetimes as seconds since the epoch. A
  missing value is imputed with the training median and flagged: a present vs
  missing pair adds 1 more.
- categorical: ``0`` if equal else ``1`` (missing is a category of its own).
  Columns with more than ``max_onehot_levels`` levels would make the one-hot too
  wide; their levels get random unit codes in R^k (``k = code_dim``) instead, so
  the term is exactly 0 for equal values and ``1 - cos`` of two random directions
  (``1 +- 1/sqrt(k)``) otherwise (Johnson–Lindenstrauss style).
- text: ``1 - cos(u, v)`` where ``u, v`` are the L2-normalised signed hashed
  character n-gram vectors (:mod:`attacks.ngrams`) of the lower-cased,
  whitespace-normalised texts. An empty text embeds as 0, at 1/2 from any
  non-empty one.

:class:`MixedEncoder` builds one vector per record so that ``||e(x) - e(y)||^2``
equals ``d(x, y)^2`` exactly (text: exactly for the hashed vectors): numeric
``x / (range sqrt C)``, a one-hot scaled by ``1 / sqrt(2C)``, a text vector by
``1 / sqrt(2C)``. Nearest neighbours are then matrix products
(:mod:`attacks.neighbours`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from attacks.ngrams import hashed_ngrams

KINDS = ("numeric", "categorical", "datetime", "text")
_MISSING = "\x00<missing>"


def check_column_kinds(column_kinds: Mapping[str, str], frames: Mapping[str, pd.DataFrame]) -> None:
    """Raise ValueError naming an unknown kind or a column missing from a frame."""
    if not column_kinds:
        raise ValueError("column_kinds must name at least one column")
    for column, kind in column_kinds.items():
        if kind not in KINDS:
            raise ValueError(f"column {column!r}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
        for name, frame in frames.items():
            if column not in frame.columns:
                raise ValueError(f"column {column!r} is missing from the {name} data")


def datetime_seconds(values: pd.Series, *, format: str | None = None) -> np.ndarray:
    """Seconds since the epoch (float, NaN when missing or unparseable).

    Accepts pandas datetimes (time-zone aware ones are converted to UTC) or
    strings, parsed with ``format`` when given.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
        if parsed.dt.tz is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    else:
        parsed = pd.to_datetime(values, format=format, errors="coerce", utc=True).dt.tz_localize(None)
    missing = parsed.isna().to_numpy()
    seconds = parsed.astype("datetime64[ns]").to_numpy().view("int64") / 1e9
    return np.where(missing, np.nan, seconds)


def normalise_text(values: pd.Series) -> list[str]:
    """Lower-case, single-spaced strings; missing -> ""."""
    return [" ".join(str(v).lower().split()) if pd.notna(v) else "" for v in values]


def categorical_strings(values: pd.Series) -> np.ndarray:
    """Values as strings, missing as a category of its own."""
    return values.astype(object).where(values.notna(), _MISSING).astype(str).to_numpy(dtype=object)


class MixedEncoder:
    """Embeds records so that Euclidean distance is the mixed-type distance above.

    Fit on the training data (numeric ranges and medians) and on every frame to
    be compared (the categorical levels), then :meth:`transform` each frame.

    Args:
        column_kinds: column -> numeric | categorical | datetime | text.
        text_dim: hashed dimension of each text column.
        text_ngram: character n-gram length.
        datetime_formats: column -> ``strptime`` format of datetime strings.
        max_onehot_levels: categorical columns with more levels get random codes.
        code_dim: width of those codes.
    """

    def __init__(
        self,
        column_kinds: Mapping[str, str],
        *,
        text_dim: int = 64,
        text_ngram: int = 3,
        datetime_formats: Mapping[str, str] | None = None,
        max_onehot_levels: int = 256,
        code_dim: int = 64,
    ):
        if code_dim < 1 or max_onehot_levels < 1:
            raise ValueError(f"code_dim and max_onehot_levels must be >= 1, got {code_dim!r}, {max_onehot_levels!r}")
        if text_dim < 1:
            raise ValueError(f"text_dim must be >= 1, got {text_dim!r}")
        if text_ngram < 1:
            raise ValueError(f"text_ngram must be >= 1, got {text_ngram!r}")
        for column, kind in column_kinds.items():
            if kind not in KINDS:
                raise ValueError(f"column {column!r}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
        self.column_kinds = dict(column_kinds)
        self.text_dim = text_dim
        self.text_ngram = text_ngram
        self.datetime_formats = dict(datetime_formats or {})
        self.max_onehot_levels = max_onehot_levels
        self.code_dim = code_dim
        self._scale = 1.0 / np.sqrt(len(self.column_kinds))

    def numeric_values(self, frame: pd.DataFrame, column: str) -> np.ndarray:
        """A numeric or datetime column as float64 (NaN when missing)."""
        if self.column_kinds[column] == "datetime":
            return datetime_seconds(frame[column], format=self.datetime_formats.get(column))
        return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)

    def fit(self, train: pd.DataFrame, *others: pd.DataFrame) -> MixedEncoder:
        """Ranges and medians from ``train``; categorical levels from all frames."""
        self.ranges_: dict[str, tuple[float, float, float]] = {}
        self.has_missing_: dict[str, bool] = {}
        self.levels_: dict[str, dict[str, int]] = {}
        self.codes_: dict[str, np.ndarray] = {}
        frames = (train, *others)
        for column, kind in self.column_kinds.items():
            if kind in ("numeric", "datetime"):
                values = self.numeric_values(train, column)
                present = values[np.isfinite(values)]
                if present.size == 0:
                    raise ValueError(f"column {column!r}: no numeric value in the training data")
                low, high = float(present.min()), float(present.max())
                self.ranges_[column] = (low, (high - low) or 1.0, float(np.median(present)))
                self.has_missing_[column] = any(
                    not np.isfinite(self.numeric_values(f, column)).all() for f in frames
                )
            elif kind == "categorical":
                levels = pd.unique(np.concatenate([categorical_strings(f[column]) for f in frames]))
                self.levels_[column] = {level: i for i, level in enumerate(levels)}
                if len(levels) > self.max_onehot_levels:
                    codes = np.random.default_rng(0).standard_normal((len(levels), self.code_dim))
                    self.codes_[column] = codes / np.linalg.norm(codes, axis=1, keepdims=True)
        return self

    @property
    def dim(self) -> int:
        """Width of an embedding."""
        width = 0
        for column, kind in self.column_kinds.items():
            if kind in ("numeric", "datetime"):
                width += 1 + int(self.has_missing_[column])
            elif kind == "categorical":
                width += self.code_dim if column in self.codes_ else len(self.levels_[column])
            else:
                width += self.text_dim
        return width

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Embeddings of ``frame``'s rows, float32, shape (rows, :attr:`dim`).

        Each column's block is written straight into the result, so memory
        peaks at the result plus one column's block.
        """
        out = np.empty((len(frame), self.dim), dtype=np.float32)
        at = 0

        def put(block: np.ndarray) -> None:
            nonlocal at
            out[:, at : at + block.shape[1]] = block
            at += block.shape[1]

        half = self._scale / np.sqrt(2.0)
        for column, kind in self.column_kinds.items():
            if kind in ("numeric", "datetime"):
                low, span, median = self.ranges_[column]
                values = self.numeric_values(frame, column)
                missing = ~np.isfinite(values)
                values = np.where(missing, median, values)
                put(((values - low) / span * self._scale)[:, None])
                if self.has_missing_[column]:
                    put((missing * self._scale)[:, None])
            elif kind == "categorical":
                levels = self.levels_[column]
                codes = pd.Categorical(categorical_strings(frame[column]), categories=list(levels)).codes
                if (codes < 0).any():
                    raise ValueError(f"column {column!r}: a category not seen by fit (fit on every frame compared)")
                if column in self.codes_:
                    put((self.codes_[column][codes] * half).astype(np.float32))
                else:
                    onehot = np.zeros((len(frame), len(levels)), dtype=np.float32)
                    onehot[np.arange(len(frame)), codes] = half
                    put(onehot)
            else:
                hashed = hashed_ngrams(normalise_text(frame[column]), n=self.text_ngram, dim=self.text_dim)
                put(hashed * np.float32(half))
        return out

    def canonical(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The audited columns in a canonical form, for exact-copy matching.

        Numbers as floats, datetimes as seconds, categories as strings, texts
        normalised; missing values as NaN / the missing category / "".
        """
        out = {}
        for column, kind in self.column_kinds.items():
            if kind in ("numeric", "datetime"):
                out[column] = self.numeric_values(frame, column)
            elif kind == "categorical":
                out[column] = categorical_strings(frame[column])
            else:
                out[column] = normalise_text(frame[column])
        return pd.DataFrame(out)
