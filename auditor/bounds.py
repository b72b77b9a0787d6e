"""The range of every numeric setting: one table, checked at the CLI and in the configs.

A ``Bound`` is an interval of finite numbers (ints or floats). The CLI options use
``BoundedType`` (a click parameter type), so a bad flag fails while the command
line is parsed, before anything is read, computed or written; the config
dataclasses call ``check_fields`` on the same entries, so API users get the same
ranges as a ``UserError`` (a ``ValueError``) naming the field.

Upper limits keep a typo from running for hours or exhausting memory: the PRV
accountant's domain grows without bound as epsilon goes to infinity or the noise
multiplier to zero. Measured at q = 0.1 over 1,000 steps, delta 1e-5: the noise search
for epsilon 50 takes 19 s and for epsilon 100 59 s; epsilon at noise 0.3 takes 17 s,
at noise 0.1 the process was killed out of memory (23 GB machine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import click

from auditor.errors import UserError
from canaries.config import MAX_AUDIT_CANARIES, MAX_REPETITIONS

SEED_MAX = 2**32 - 1  # numpy and torch both take any seed in [0, 2^32)


@dataclass(frozen=True)
class Bound:
    """The finite numbers of ``kind`` from ``low`` to ``high``; an open end excludes its limit."""

    kind: type
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        what, show = ("an integer", lambda x: str(int(x))) if self.kind is int else ("a finite number", "{:g}".format)
        return (f"{what} in {'(' if self.low_open else '['}{show(self.low)}, {show(self.high)}"
                f"{')' if self.high_open else ']'}")

    def admits(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below


def _open(kind, low, high):
    return Bound(kind, low, high, low_open=True)


TRAIN: dict[str, Bound] = {
    "epsilon": _open(float, 0, 100),
    "delta": Bound(float, 0, 1, low_open=True, high_open=True),
    "noise_multiplier": Bound(float, 0.3, 1000),
    "max_grad_norm": _open(float, 0, 1e4),
    "epochs": _open(float, 0, 1e4),
    "batch_size": Bound(int, 1, 10**8),
    "physical_batch_size": Bound(int, 1, 10**6),
    "lr": _open(float, 0, 10),
    "warmup": Bound(float, 0, 1, high_open=True),
    "weight_decay": Bound(float, 0, 10),
    "seed": Bound(int, 0, SEED_MAX),
    "checkpoint_every": Bound(int, 1, 10**9),
    "lora_rank": Bound(int, 1, 4096),
}
DATA: dict[str, Bound] = {
    "holdout": Bound(float, 0, 1, high_open=True),
    "domain_noise": _open(float, 0, 1000),
    "domain_delta_share": Bound(float, 0, 1, low_open=True, high_open=True),
}
NUM_RECORDS = Bound(int, 1, 10**8)
SAMPLE: dict[str, Bound] = {
    "num_records": NUM_RECORDS,
    "temperature": _open(float, 0, 100),
    "top_p": _open(float, 0, 1),
    "magnitude_min_p": Bound(float, 0, 1, high_open=True),
    "batch_size": Bound(int, 1, 10**6),
    "seed": Bound(int, 0, SEED_MAX),
    "max_invalid_rate": Bound(float, 0, 1),
    "partitions": Bound(int, 1, 10**5),
}
AUDIT: dict[str, Bound] = {
    "max_members": Bound(int, 1, 10**8),
    "reference_epochs": _open(float, 0, 1e4),
    "pii_threshold": Bound(float, 0, 1),
    "seed": Bound(int, 0, SEED_MAX),
}
# Settings of one command that no config holds.
AUDIT_CANARIES = Bound(int, 0, MAX_AUDIT_CANARIES)  # CanaryConfig checks it (and the repetitions) itself
REPETITIONS = Bound(int, 1, MAX_REPETITIONS)
JOBS = Bound(int, 1, 1024)
WORKERS = Bound(int, 1, 4096)
THRESHOLD = AUDIT["pii_threshold"]


def check_fields(obj: Any, table: Mapping[str, Bound]) -> None:
    """Every field of ``obj`` named in ``table`` is None or inside its bound.

    Raises:
        UserError: ``<Class>.<field> must be ..., got <value>`` for the first field outside.
    """
    for name, bound in table.items():
        value = getattr(obj, name)
        if value is not None and not bound.admits(value):
            raise UserError(f"{type(obj).__name__}.{name} must be {bound.describe()}, got {value!r}")


class BoundedType(click.ParamType):
    """A click parameter type: a number of ``bound.kind`` inside ``bound``; click names the flag on failure."""

    def __init__(self, bound: Bound):
        self.bound = bound
        self.name = "integer" if bound.kind is int else "float"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = self.bound.kind(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not {self.bound.describe()}", param, ctx)
        if not self.bound.admits(number):
            self.fail(f"must be {self.bound.describe()}, got {value!r}", param, ctx)
        return number


class BoundedListType(BoundedType):
    """A comma-separated list of numbers inside ``bound`` (``1,2,4``), as a tuple."""

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        items = [x.strip() for x in str(value).split(",") if x.strip()]
        if not items:
            self.fail(f"give a comma-separated list, each {self.bound.describe()}", param, ctx)
        return tuple(BoundedType.convert(self, x, param, ctx) for x in items)
