"""Planting canaries into the training records.

Three groups of canaries are drawn, all from the same secret format and built
the same way (Carlini et al. 2019; Steinke, Nasr & Jagielski 2023):

- the *schedule*: ``per_repetition`` canaries at each copy count in
  ``repetitions`` (default 1, 2, 4, 8, 16), each inserted that many times;
- *twins*: for each scheduled canary, ``twins`` canaries never inserted, the
  held-out control of the memorization test;
- the *audit set*: m canaries, each inserted once if its recorded fair coin
  says so, for the one-run DP audit.

A canary is a record in the dataset's own schema, so it serializes exactly like
a real one. For tabular data it is a full fake row: the designated column
holds the secret (inside ``config.template`` for a text column), or, in a
table without text or pattern columns, a span of consecutive numeric and
categorical columns holds it (``canaries.spans``), and every other column a
value made from the schema's declared facts and the bundled public name
lists, never from a real record. For text data it is the
template itself. Copies go to random positions; the real records keep their
order. Every copy is one more record for the DP accounting.

Two generators: ``secret_rng`` (the run's secret randomness, never derived from a
written seed) draws the secrets and the coin flips; ``rng`` (the run's seed) lays
the canaries out (positions, filler values). Secrets are drawn without
replacement across all groups, so a twin or an audit canary never equals an
inserted one.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

from canaries.config import CanaryConfig
from canaries.formats import RecordFormat, SecretFormat, bundled_names, make_format, pattern_alphabets, record_values
from canaries.manifest import Canary, Manifest
from canaries.prompts import canary_prompt
from canaries.spans import RECORD_KINDS, record_format
from reports.pii_masking import new_salt

log = logging.getLogger(__name__)

DEFAULT_TEXT_FORMAT = "digits:6"
_EPOCH = dt.date(1940, 1, 1)
_DATE_SPAN_DAYS = (dt.date(2020, 12, 31) - _EPOCH).days


def fake_name(rng: np.random.Generator) -> str:
    """A "First Last" from the bundled public-domain name lists."""
    first, last = bundled_names("first"), bundled_names("last")
    return f"{first[int(rng.integers(len(first)))]} {last[int(rng.integers(len(last)))]}"


def _fake_numeric(column: Any, rng: np.random.Generator) -> str:
    digits = column.sig_digits
    mantissa = int(rng.integers(10 ** (digits - 1), 10 ** digits))
    if column.integer:
        return str(mantissa)
    decimals = int(rng.integers(0, digits))
    return f"{mantissa / 10 ** decimals:.{decimals}f}"


OTHER_VALUE = "<other>"  # what the codec decodes a value outside a DP-selected domain to


def _fake_categorical(column: Any, rng: np.random.Generator) -> str:
    if column.categories == [] and getattr(column, "source", "declared") != "declared":  # DP kept no value
        return OTHER_VALUE
    if not column.categories:
        raise ValueError(f"column {column.name!r}: its categorical domain is not known yet; declare it or "
                         "select it with DP before planting canaries")
    return str(column.categories[int(rng.integers(len(column.categories)))])


def _fake_datetime(column: Any, rng: np.random.Generator) -> str:
    return (_EPOCH + dt.timedelta(days=int(rng.integers(_DATE_SPAN_DAYS + 1)))).strftime(column.format)


def _fake_text(column: Any, rng: np.random.Generator) -> str:
    name = fake_name(rng)
    if column.pii == "EMAIL_ADDRESS":
        return name.lower().replace(" ", ".") + "@example.com"  # example.com: reserved (RFC 2606)
    return name


def _fake_pattern(column: Any, rng: np.random.Generator) -> str:
    return "".join(a[int(rng.integers(len(a)))] for a in pattern_alphabets(column.pattern))


FAKE_VALUES: dict[str, Callable[[Any, np.random.Generator], str]] = {
    "numeric": _fake_numeric,
    "categorical": _fake_categorical,
    "datetime": _fake_datetime,
    "text": _fake_text,
    "pattern": _fake_pattern,
}
"""Column kind -> generator of a fake value from the column's declared facts."""


def designated_column(schema: Any, config: CanaryConfig) -> Any | None:
    """The column that holds the secret; None for text records and for record spans.

    ``config.column`` if set; else a free-text column (kind text without a PII
    hint, the one with most ``max_tokens``), else any text column, else the first
    pattern column; columns filled with fakes (never learned) are never chosen.
    None (and no error) when no text or pattern column is learned: the canaries
    are then record spans (``canaries.spans``), a numeric or categorical
    ``config.column`` included.
    """
    if schema.text:
        return None
    if config.column is not None:
        names = [c.name for c in schema.columns]
        if config.column not in names:
            raise ValueError(f"canaries.column {config.column!r} is not a column (columns: {', '.join(names)})")
        col = next(c for c in schema.columns if c.name == config.column)
        if col.kind not in ("text", "pattern") + RECORD_KINDS:
            raise ValueError(f"canaries.column {config.column!r} is {col.kind}; a canary needs a text, pattern, "
                             "numeric or categorical column")
        if getattr(col, "fake", None):
            raise ValueError(f"canaries.column {config.column!r} is filled with fakes, not learned: "
                             "a canary there measures nothing")
        return col if col.kind in ("text", "pattern") else None
    learned = [c for c in schema.columns if not getattr(c, "fake", None)]
    text_cols = [c for c in learned if c.kind == "text"]
    free = [c for c in text_cols if not c.pii] or text_cols
    if free:
        return max(free, key=lambda c: c.max_tokens)
    pattern_cols = [c for c in learned if c.kind == "pattern"]
    if pattern_cols:
        return pattern_cols[0]
    return None


def secret_format(column: Any | None, config: CanaryConfig, rng: np.random.Generator, *, schema: Any = None,
                  count: int = 0) -> SecretFormat:
    """The format of the secrets: ``config.format``, else by the designated column.

    A pattern column takes its own pattern; a format given for it must produce
    values of that pattern (checked on 32 samples). A table without a designated
    column (``column`` None, ``schema`` tabular) takes a record span: the one of
    ``config.column`` alone when it names a numeric or categorical column, else
    the span ``canaries.spans.record_format`` chooses for ``count`` canaries;
    ``config.format`` may name a ``record:`` span itself.
    """
    if column is not None and column.kind == "pattern":
        if config.format is None:
            return make_format(f"pattern:{column.pattern}")
        fmt = make_format(config.format)
        allowed = pattern_alphabets(column.pattern)
        for _ in range(32):
            s = fmt.sample(rng)
            if len(s) != len(allowed) or any(ch not in a for ch, a in zip(s, allowed)):
                raise ValueError(f"canaries.format {config.format!r} does not fit pattern column "
                                 f"{column.name!r} ({column.pattern!r})")
        return fmt
    if column is None and schema is not None and not schema.text:
        if config.format is not None:
            fmt = make_format(config.format)
            if not isinstance(fmt, RecordFormat):
                raise ValueError(f"canaries.format {config.format!r}: this table has no text or pattern column; "
                                 "its canaries are record spans (leave canaries.format unset or give a record: spec)")
            missing = [c for c in fmt.columns if c not in schema.names]
            if missing:
                raise ValueError(f"canaries.format names columns that are not in the table: {missing}")
            return fmt
        learned = [c for c in schema.columns if not getattr(c, "fake", None)]
        if config.column is not None:
            learned = [c for c in learned if c.name == config.column]
        return record_format(learned, count=count)
    if isinstance(make_format(config.format or DEFAULT_TEXT_FORMAT), RecordFormat):
        raise ValueError(f"canaries.format {config.format!r} is a record span, for tables without text or "
                         "pattern columns")
    return make_format(config.format or DEFAULT_TEXT_FORMAT)


def fitted_to_space(config: CanaryConfig, size: int) -> CanaryConfig:
    """``config`` with at most ``size // 2`` canaries: the audit set shrinks first, then the
    canaries per repetition count (at least one; below that the config is returned unchanged and
    ``unique_secrets`` names the problem). A chosen record span of a table with small
    categorical domains can be small; inserted canaries filling most of R would rank each
    other out of their exposure."""
    half = size // 2
    per_canary = len(config.repetitions) * (1 + config.twins)
    scheduled = per_canary * config.per_repetition
    if scheduled <= half:
        return replace(config, audit_canaries=min(config.audit_canaries, half - scheduled))
    if half // per_canary < 1:
        return config
    return replace(config, per_repetition=half // per_canary, audit_canaries=0)


EXACT_DRAW_MAX_SPACE = 1 << 20
"""Spaces up to this size are sampled by index without replacement; larger ones by rejection."""


def unique_secrets(fmt: SecretFormat, count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct secrets drawn uniformly without replacement from ``fmt``'s space R.

    Small spaces: ``count`` distinct indices of ``0..|R|-1`` (``Generator.choice``
    with ``replace=False``), each mapped by ``fmt.at``. Large spaces: draw
    ``fmt.sample`` and reject repeats (a draw repeats with probability below
    ``count / |R|``, tiny for the hundreds of canaries of a run).

    Raises:
        ValueError: if ``count > |R|``.
    """
    if count > fmt.size:
        raise ValueError(f"format {fmt.spec!r} has {fmt.size} distinct secrets, fewer than the {count} canaries "
                         "requested (schedule, twins and audit set); choose a larger format or fewer canaries")
    if fmt.size <= EXACT_DRAW_MAX_SPACE:
        return [fmt.at(int(i)) for i in rng.choice(fmt.size, size=count, replace=False)]
    seen: dict[str, None] = {}
    while len(seen) < count:
        seen.setdefault(fmt.sample(rng), None)
    return list(seen)


def _canary_record(schema: Any, column: Any | None, secret: str, *, template: str, as_str: bool,
                   rng: np.random.Generator, span: RecordFormat | None = None) -> tuple[dict[str, str] | str, str]:
    """(record, context): the canary record and the text before the secret in its field."""
    if span is not None:
        values = dict(zip(span.columns, record_values(secret, len(span.columns))))
        record = {c.name: values[c.name] if c.name in values else FAKE_VALUES[c.kind](c, rng) for c in schema.columns}
        return record, ""
    if column is None or column.kind == "text":
        before, _, after = template.partition("{secret}")
        name = fake_name(rng)
        context, rest = before.format(name=name), after.format(name=name)
        value = context + secret + rest
    else:
        context, value = "", secret
    if column is None:
        if as_str:
            return value, context
        return {schema.columns[0].name: value}, context
    record = {c.name: value if c.name == column.name else FAKE_VALUES[c.kind](c, rng) for c in schema.columns}
    return record, context


def plant(
    records: Sequence[dict[str, str] | str], schema: Any, *, config: CanaryConfig, rng: np.random.Generator,
    secret_rng: np.random.Generator, encoder: Any | None = None,
) -> tuple[list[dict[str, str] | str], Manifest]:
    """Insert canaries into ``records``.

    Args:
        records: training records: mappings column -> string, or strings for text data.
        schema: an ``auditor.schema.Schema`` (anything with ``text`` and ``columns``).
        config: the canary settings.
        rng: the run's seeded generator: positions and filler values.
        secret_rng: the run's secret generator (never derived from a written seed):
            the secrets and the audit coin flips.
        encoder: optional codec or scorer (``encode``, ``encode_prefix``,
            ``encode_value``) to check before training that every canary encodes as
            prefix + secret (not truncated, no token across the boundary).

    Returns:
        ``(planted_records, manifest)``: the records with every copy inserted at a
        random position (real records keep their order), and the manifest to write
        with ``Manifest.write`` (mode 0600).
    """
    if not config.enabled:
        raise ValueError("canaries are disabled in the config (canaries.enabled = false)")
    records = list(records)
    column = designated_column(schema, config)
    n_scheduled = len(config.repetitions) * config.per_repetition
    count = n_scheduled * (1 + config.twins) + config.audit_canaries
    fmt = secret_format(column, config, rng, schema=schema, count=count)
    span = fmt if isinstance(fmt, RecordFormat) else None
    if span is not None and config.format is None and count > fmt.size // 2:
        config = fitted_to_space(config, fmt.size)
        n_scheduled = len(config.repetitions) * config.per_repetition
        count = n_scheduled * (1 + config.twins) + config.audit_canaries
        log.warning("canaries: the record span %s has only %d secrets; planting %d per repetition count and %d "
                    "audit canaries (at most half of the space)", span.columns, fmt.size, config.per_repetition,
                    config.audit_canaries)
    as_str = bool(records) and isinstance(records[0], str)
    canaries: list[Canary] = []
    secrets = iter(unique_secrets(fmt, count, secret_rng))

    def add(group: str, repetitions: int, **extra) -> Canary:
        secret = next(secrets)
        record, context = _canary_record(schema, column, secret, template=config.template, as_str=as_str, rng=rng,
                                         span=span)
        field = span.columns[0] if span is not None else None if column is None else column.name
        canary = Canary(id=f"c{len(canaries) + 1:04d}", group=group, format=fmt.spec, secret=secret,
                        repetitions=repetitions, field=field, context=context, record=record,
                        fields=None if span is None else list(span.columns), **extra)
        canaries.append(canary)
        return canary

    scheduled = [add("schedule", reps) for reps in config.repetitions for _ in range(config.per_repetition)]
    for canary in scheduled:
        for _ in range(config.twins):
            add("twin", 0, twin_of=canary.id)
    for _ in range(config.audit_canaries):
        coin = int(secret_rng.integers(2))
        add("audit", coin, coin=coin)
    if encoder is not None:
        for canary in canaries:
            canary_prompt(encoder, canary)

    copies = [c for c in canaries for _ in range(c.repetitions)]
    order = rng.permutation(len(copies))
    total = len(records) + len(copies)
    positions = np.sort(rng.choice(total, size=len(copies), replace=False))
    is_copy = np.zeros(total, dtype=bool)
    is_copy[positions] = True
    slot = dict(zip(positions.tolist(), order.tolist()))
    real = iter(records)
    planted: list = []
    for pos in range(total):
        if not is_copy[pos]:
            planted.append(next(real))
            continue
        canary = copies[slot[pos]]
        planted.append(canary.record if isinstance(canary.record, str) else dict(canary.record))
        canary.rows.append(pos)
    for canary in canaries:
        canary.rows.sort()
    manifest = Manifest(canaries=canaries, salt=new_salt(), config=config.to_dict(), n_records=len(records),
                        n_planted_rows=len(copies), text=bool(schema.text))
    return planted, manifest
