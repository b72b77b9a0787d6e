"""Membership-inference signals: one small class each, in a registry.

A signal turns what a model says about one record (its :class:`TokenStats`, and
those of a reference model where the signal needs one) into a score; a *higher
score means "more likely a member"* throughout. The math is in pure functions
below the classes' one-line ``score`` methods. Log-probabilities are natural.

A new signal is one function registered with :func:`signal` (a class with options
goes through :func:`register_signal`); the ``mia`` audit scores every registered
signal and the report shows each. Build one by name with :func:`create_signal`,
passing its options as keyword arguments.
"""

from __future__ import annotations

import math
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from canaries.scorer import Record, TokenStats

#: Positions whose next-token distribution has a standard deviation at or below
#: this are forced (a single allowed token) and carry no membership information.
_FORCED_STD = 1e-12


@dataclass(frozen=True)
class SignalInput:
    """What a signal may look at for one record.

    Attributes:
        stats: the target model's per-token statistics.
        text: the record as text (:func:`record_text`), for compression signals.
        reference: the reference model's statistics of the same record, or None.
    """

    stats: TokenStats
    text: str
    reference: TokenStats | None = None


def record_text(record: Record) -> str:
    """A record as text: a string as is; a mapping as ``"col: value"`` lines in column order."""
    if isinstance(record, str):
        return record
    if isinstance(record, Mapping):
        return "\n".join(f"{key}: {value}" for key, value in record.items())
    raise ValueError(f"a record must be a string or a mapping, got {type(record).__name__}")


def mean_loss(logprob: np.ndarray) -> float:
    """Per-token negative log-likelihood ``-(1/n) sum_t log p(x_t | x_<t)``."""
    logprob = np.asarray(logprob, dtype=np.float64)
    if logprob.size == 0:
        raise ValueError("a record has no predicted tokens (sequence shorter than 2)")
    return float(-logprob.mean())


def zlib_length(text: str) -> int:
    """Length in bytes of the zlib-compressed (level 9) UTF-8 text (Carlini et al. 2021)."""
    return len(zlib.compress(text.encode("utf-8"), 9))


def lowest_fraction_mean(values: np.ndarray, *, fraction: float) -> float:
    """Mean of the lowest ``max(1, floor(fraction * n))`` values (Min-K%, Shi et al. 2024)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("a record has no predicted tokens (sequence shorter than 2)")
    k = max(1, int(math.floor(fraction * values.size + 1e-9)))
    return float(np.partition(values, k - 1)[:k].mean())


def standardised_logprob(stats: TokenStats) -> np.ndarray:
    """Min-K%++ token scores ``(log p(x_t | x_<t) - mu_t) / sigma_t`` (Zhang et al. 2024).

    ``mu_t`` and ``sigma_t`` are the mean and standard deviation of ``log p(z | x_<t)``
    under the model's own next-token distribution. Forced positions
    (``sigma_t <= 1e-12``) are left out: the ratio is 0/0 there.
    """
    logprob = np.asarray(stats.logprob, dtype=np.float64)
    mean = np.asarray(stats.mean, dtype=np.float64)
    std = np.asarray(stats.std, dtype=np.float64)
    if not logprob.shape == mean.shape == std.shape:
        raise ValueError("TokenStats logprob, mean and std must have the same shape")
    free = std > _FORCED_STD
    return (logprob[free] - mean[free]) / std[free]


class Signal(ABC):
    """A membership score for one record; higher means "more likely a member"."""

    name: ClassVar[str]
    needs_reference: ClassVar[bool] = False

    @abstractmethod
    def score(self, item: SignalInput) -> float:
        """The score of one record."""


class LossSignal(Signal):
    """``-loss``: members have lower loss (Yeom et al. 2018)."""

    name = "loss"

    def score(self, item: SignalInput) -> float:
        return -mean_loss(item.stats.logprob)


class ZlibSignal(Signal):
    """``-loss / zlib_length(text)``: loss calibrated by the text's own entropy (Carlini et al. 2021)."""

    name = "zlib"

    def score(self, item: SignalInput) -> float:
        return -mean_loss(item.stats.logprob) / zlib_length(item.text)


class MinKSignal(Signal):
    """Min-K% Prob: mean of the lowest ``fraction`` of token log-probabilities (Shi et al. 2024)."""

    name = "min_k"

    def __init__(self, *, fraction: float = 0.2):
        if not 0 < fraction <= 1:
            raise ValueError(f"min_k fraction must lie in (0, 1], got {fraction!r}")
        self.fraction = fraction

    def score(self, item: SignalInput) -> float:
        return lowest_fraction_mean(item.stats.logprob, fraction=self.fraction)


class MinKPlusPlusSignal(Signal):
    """Min-K%++: Min-K% over standardised token log-probabilities (Zhang et al. 2024).

    A record whose positions are all forced scores 0 (no evidence either way).
    """

    name = "min_k_pp"

    def __init__(self, *, fraction: float = 0.2):
        if not 0 < fraction <= 1:
            raise ValueError(f"min_k_pp fraction must lie in (0, 1], got {fraction!r}")
        self.fraction = fraction

    def score(self, item: SignalInput) -> float:
        z = standardised_logprob(item.stats)
        return lowest_fraction_mean(z, fraction=self.fraction) if z.size else 0.0


class ReferenceSignal(Signal):
    """Reference-calibrated loss ``loss_ref - loss_target`` (Carlini et al. 2021; Watson et al. 2022).

    The reference model has the target's architecture, trained without DP on a
    disjoint population split: records that are merely easy score near 0.
    """

    name = "reference"
    needs_reference = True

    def score(self, item: SignalInput) -> float:
        if item.reference is None:
            raise ValueError("signal 'reference' needs the reference model's token stats")
        return mean_loss(item.reference.logprob) - mean_loss(item.stats.logprob)


_SIGNALS: dict[str, type[Signal]] = {
    cls.name: cls for cls in (LossSignal, ZlibSignal, MinKSignal, MinKPlusPlusSignal, ReferenceSignal)
}


def register_signal(name: str, signal: type[Signal], *, force: bool = False) -> None:
    """Register ``signal`` under ``name``; refuses to overwrite unless ``force``."""
    if name in _SIGNALS and not force:
        raise ValueError(f"signal {name!r} is already registered")
    _SIGNALS[name] = signal


def signal(name: str, *, needs_reference: bool = False) -> Callable[[Callable[[SignalInput], float]], Callable]:
    """Decorator: register ``score(item: SignalInput) -> float`` as the signal ``name``; returns it unchanged.

    Higher scores must mean "more likely a member". With ``needs_reference`` the
    signal reads ``item.reference`` and runs only when there is a reference model.

    Example::

        @signal("max_loss")
        def max_loss(item: SignalInput) -> float:
            return float(np.min(item.stats.logprob))
    """

    def register(score: Callable[[SignalInput], float]) -> Callable[[SignalInput], float]:
        def method(self, item: SignalInput) -> float:
            return float(score(item))

        cls = type(f"{name}_signal", (Signal,), {"name": name, "needs_reference": needs_reference, "score": method,
                                                 "__doc__": score.__doc__})
        register_signal(name, cls)
        return score

    return register


def unregister_signal(name: str) -> None:
    """Remove the signal ``name`` from the registry (a plugin's or a test's)."""
    del _SIGNALS[name]


def needs_reference(name: str) -> bool:
    """Whether the registered signal ``name`` needs a reference model."""
    if name not in _SIGNALS:
        raise ValueError(f"unknown signal {name!r} (registered: {', '.join(_SIGNALS)})")
    return _SIGNALS[name].needs_reference


def available_signals() -> tuple[str, ...]:
    """Names of the registered signals."""
    return tuple(_SIGNALS)


def create_signal(name: str, **options) -> Signal:
    """A new signal by registered name, built with ``options``."""
    if name not in _SIGNALS:
        raise ValueError(f"unknown signal {name!r} (registered: {', '.join(_SIGNALS)})")
    return _SIGNALS[name](**options)
