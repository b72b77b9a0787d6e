"""Format-preserving fakes for direct-identifier columns that are not learned.

A column declared ``fake: <provider>`` in the schema is left out of the model:
the synthesizer never sees its values, and generation fills it with fresh fakes
drawn independently of the data. Names, emails, SSNs or card numbers carry no
relation a synthetic table needs, and learning them spends the DP budget (and
most of a row's tokens) on values that are only a leak risk. The choice is the
user's, declared in the public schema and recorded in ``privacy.json``.

Providers: ``pattern`` (random characters of the column's own pattern: digit,
upper- or lower-case letter per position, literals kept) or the name of a Faker
provider method (``name``, ``email``, ``address``, ``phone_number``...), with
newlines replaced by ", " so every value stays on one CSV line.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from auditor.schema import Column, Schema
from canaries.formats import pattern_alphabets


def check_fake(col: Column) -> None:
    """ValueError naming the column when its ``fake`` provider cannot make values of its kind."""
    if col.fake is None:
        return
    if col.fake == "pattern":
        if col.kind != "pattern":
            raise ValueError(f"column {col.name!r}: fake 'pattern' needs a pattern column")
        return
    if col.kind != "text":
        raise ValueError(f"column {col.name!r}: fake {col.fake!r} needs a text column "
                         "(pattern columns take 'fake: pattern')")
    if col.fake.startswith("_") or not callable(getattr(_faker(), col.fake, None)):
        raise ValueError(f"column {col.name!r}: unknown fake provider {col.fake!r} "
                         "(a Faker provider such as name, email, address, or 'pattern')")


def _faker(seed: int | None = None):
    from faker import Faker

    fake = Faker("en_US")
    if seed is not None:
        fake.seed_instance(seed)
    return fake


def fake_values(col: Column, n: int, *, seed: int) -> list[str]:
    """``n`` fresh fakes for column ``col``, reproducible from ``seed``."""
    if col.fake == "pattern":
        rng = np.random.default_rng([seed, 7])
        alphabets = pattern_alphabets(col.pattern)  # a literal is a one-character alphabet: no draw
        return ["".join(a[0] if len(a) == 1 else a[rng.integers(len(a))] for a in alphabets) for _ in range(n)]
    provider = getattr(_faker(seed), col.fake)
    return [" ".join(str(provider()).replace("\n", ", ").split()) for _ in range(n)]


def fill_fakes(rows: Sequence[dict[str, Any]], schema: Schema, *, seed: int) -> list[dict[str, Any]]:
    """The rows with every ``fake`` column filled, in the schema's column order."""
    fakes = {c.name: fake_values(c, len(rows), seed=seed + i) for i, c in enumerate(schema.columns) if c.fake}
    return [{c.name: fakes[c.name][j] if c.fake else row.get(c.name, "") for c in schema.columns}
            for j, row in enumerate(rows)]
