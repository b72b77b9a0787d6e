"""Training and sampling settings fitted to the table: one documented rule from n and the schema.

A setting the user gives always wins; the rule fills only the ones left unset
(``None``). Its inputs are public to the run: ``n``, the number of training
records with planted canary rows (DP-SGD treats it as public, ``privacy.json``
says so), and the codec's maximum row length ``L`` (a function of the schema).
Nothing else of the data is read, so the rule adds nothing outside the guarantee.

The rule (measured on the demo table and others, see ``docs/defaults.md``):

- **epochs** ``E = clip(TOKEN_BUDGET / (n * L), 1, 20)``, rounded down to 0.1:
  a fixed compute budget of row-token passes (the demo's 20 epochs of ~2,300 rows
  of 45 tokens is about 2.1 M of the 2.5 M), at most 20 epochs for small tables
  and at least one for large ones.
- **batch size** ``B``: the power of two nearest (in log scale) to ``E * n / TARGET_STEPS``,
  clipped to ``[MIN_BATCH, MAX_BATCH]`` and to at most ``n / 4``: DP-SGD wants large
  expected batches (the noise on the mean gradient is ``sigma * C / B``), and about
  ``TARGET_STEPS`` = 100 steps are enough for the preset models.
- **learning rate** ``lr = PEAK_LR * min(1, sqrt(B / 512))``: the demo's 1e-2 at
  ``B >= 512``, scaled down by the square root of the batch below it (the square-root
  scaling rule for Adam, Malladi et al. 2022), as a smaller batch carries more noise.
- **physical batch** ``min(B, 256 * 64 / max(L, 64))`` rounded down to a power of two:
  memory and speed only, never epsilon.
- **magnitude min-p** (sampling): 0.1 when the run is DP and learns a numeric
  column (it cuts the noise floor on number magnitudes), else 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TOKEN_BUDGET = 2_500_000
"""Row-token passes of training (epochs * n * L) the rule aims at, at most."""
MAX_EPOCHS = 20.0
MIN_EPOCHS = 1.0
TARGET_STEPS = 100
MIN_BATCH = 16
MAX_BATCH = 1024
PEAK_LR = 1e-2
LR_REFERENCE_BATCH = 512
MAX_PHYSICAL_BATCH = 256
DP_MAGNITUDE_MIN_P = 0.1

TRAIN_FIELDS = ("epochs", "batch_size", "lr", "physical_batch_size")
"""The ``TrainConfig`` fields the rule fills when they are ``None``."""


@dataclass(frozen=True)
class FittedTraining:
    """The rule's training settings for one table."""

    epochs: float
    batch_size: int
    lr: float
    physical_batch_size: int

    def steps(self, n: int) -> int:
        return max(1, math.ceil(self.epochs * n / self.batch_size))


def nearest_power_of_two(x: float) -> int:
    """``2 ** round(log2 x)`` for ``x >= 1`` (1 below): ``nearest_power_of_two(460) == 512``, ``(362) == 256``."""
    return 1 if x <= 1 else 2 ** round(math.log2(x))


def fitted_epochs(*, n: int, max_length: int) -> float:
    """``clip(TOKEN_BUDGET / (n * L), 1, 20)`` rounded down to 0.1."""
    raw = TOKEN_BUDGET / (n * max_length)
    return min(MAX_EPOCHS, max(MIN_EPOCHS, math.floor(raw * 10) / 10))


def fitted_batch_size(*, n: int, epochs: float) -> int:
    """The power of two nearest ``epochs * n / TARGET_STEPS``, in ``[MIN_BATCH, MAX_BATCH]`` and at most ``n / 4``."""
    batch = min(MAX_BATCH, max(MIN_BATCH, nearest_power_of_two(epochs * n / TARGET_STEPS)))
    return max(1, min(batch, n // 4))


def fitted_lr(batch_size: int) -> float:
    """``PEAK_LR * min(1, sqrt(B / 512))``."""
    return PEAK_LR * min(1.0, math.sqrt(batch_size / LR_REFERENCE_BATCH))


def fitted_physical_batch(*, batch_size: int, max_length: int) -> int:
    """``min(B, 256 * 64 / max(L, 64))``, rounded down to a power of two."""
    cap = MAX_PHYSICAL_BATCH * 64 / max(max_length, 64)
    return max(1, min(batch_size, 2 ** int(math.log2(cap))))


def fitted_training(*, n: int, max_length: int) -> FittedTraining:
    """The rule's settings for ``n`` training records of at most ``max_length`` tokens."""
    if n < 2 or max_length < 1:
        raise ValueError(f"fitted_training needs n >= 2 and max_length >= 1, got n={n}, max_length={max_length}")
    epochs = fitted_epochs(n=n, max_length=max_length)
    batch = fitted_batch_size(n=n, epochs=epochs)
    return FittedTraining(epochs=epochs, batch_size=batch, lr=fitted_lr(batch),
                          physical_batch_size=fitted_physical_batch(batch_size=batch, max_length=max_length))


def fill_training_defaults(config, *, n: int, max_length: int) -> list[str]:
    """Set every unset (``None``) field of :data:`TRAIN_FIELDS` in ``config`` from the rule; returns them.

    The batch size the user gives is kept, and the learning rate and physical batch
    then follow from it (a given epoch count likewise keeps its batch rule).
    """
    unset = [f for f in TRAIN_FIELDS if getattr(config, f) is None]
    if not unset:
        return []
    epochs = config.epochs if config.epochs is not None else fitted_epochs(n=n, max_length=max_length)
    batch = config.batch_size if config.batch_size is not None else fitted_batch_size(n=n, epochs=epochs)
    values = {"epochs": epochs, "batch_size": batch, "lr": fitted_lr(batch),
              "physical_batch_size": fitted_physical_batch(batch_size=batch, max_length=max_length)}
    for f in unset:
        setattr(config, f, values[f])
    return unset


def fitted_magnitude_min_p(*, dp: bool, learns_numeric: bool) -> float:
    """0.1 for a DP run that learns a numeric column, else 0 (no noise floor to cut, or no numbers)."""
    return DP_MAGNITUDE_MIN_P if dp and learns_numeric else 0.0
