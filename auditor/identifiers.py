"""Identifier detection at schema inference: which columns are faked, which are quasi-identifiers.

When no schema is declared, every column is profiled on a sample of its values
with Presidio, the way ``presidio-structured`` maps the columns of a table to
entities: analyse sampled cells, take the dominant entity of each column and
its share. Here a cell counts for an entity when one finding of that entity
covers at least half of the cell's characters (an e-mail address inside a
sentence does not make a note column an e-mail column), and the column's name
is extra evidence (``password``, ``username`` or ``email`` need no NER).

Decision, per column (:func:`decide`):

1. **direct identifier by its values**: an entity of :data:`IDENTIFIER_TYPES` with
   role ``direct`` covers at least :data:`MIN_SHARE` of the sampled values (for a
   column inferred numeric, only when its name names the same entity);
2. **direct identifier by its name**: the column name names a direct identifier
   type, and the column is free text, a pattern or a number (not a category or a
   date) with at least :data:`MIN_DISTINCT` of its values distinct;
3. **quasi-identifier by its name** (zip, birth date, age, gender): kept learned,
   listed as such;
4. otherwise learned.

A direct identifier is declared ``fake``: a pattern column keeps its pattern and
gets ``fake: pattern``; a text column gets the type's Faker provider; a column
inferred as number, category or date becomes a pattern column when all its
values share one shape, else text. The model never learns it (``auditor.fakes``).

The detection reads the private data outside DP-SGD: the run lists it under
``outside_guarantee`` (:func:`outside_guarantee_fact`, the ledger's ``identifier_detection`` fact). What is printed and
recorded are entity types, shares and decisions, never values.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd

from auditor.data import cell_text
from auditor.schema import Column, Schema

Role = Literal["direct", "quasi"]

SAMPLE_VALUES = 200
"""Cells analysed per column (a random sample of the non-empty cells)."""
MIN_SHARE = 0.5
"""Share of the sampled values an entity must cover to name the column by its values."""
MIN_COVERAGE = 0.5
"""Share of a cell's characters one finding must cover for the cell to count."""
MIN_DISTINCT = 0.5
"""Share of distinct values a column named like a direct identifier needs to be faked by its name."""


@dataclass(frozen=True)
class IdentifierType:
    """One kind of identifier: its Presidio entity, role, Faker provider and column names.

    Attributes:
        entity: Presidio entity type (or our own name where Presidio has none:
            ``USERNAME``, ``PASSWORD``, ``STREET_ADDRESS``, and the quasi roles).
        role: ``direct`` (faked) or ``quasi`` (learned, listed).
        provider: the Faker provider of a faked text column.
        names: normalised column names that suggest the type, each with the Faker
            provider it implies (``first_name`` -> ``first_name``).
    """

    entity: str
    role: Role
    provider: str | None = None
    names: tuple[tuple[str, str | None], ...] = ()


def _names(*names: str, provider: str | None = None) -> tuple[tuple[str, str | None], ...]:
    return tuple((n, provider) for n in names)


IDENTIFIER_TYPES: tuple[IdentifierType, ...] = (
    IdentifierType("PERSON", "direct", "name",
                   _names("name", "full_name", "fullname", "person", "patient_name", "customer_name", "patient",
                          "customer", "employee_name") + _names("first_name", "firstname", "given_name",
                                                                provider="first_name")
                   + _names("last_name", "lastname", "surname", "family_name", provider="last_name")),
    IdentifierType("EMAIL_ADDRESS", "direct", "email", _names("email", "e_mail", "email_address", "mail")),
    IdentifierType("PHONE_NUMBER", "direct", "phone_number",
                   _names("phone", "phone_number", "telephone", "tel", "mobile", "cell", "cellphone", "fax")),
    IdentifierType("US_SSN", "direct", "ssn", _names("ssn", "social_security_number", "social_security")),
    IdentifierType("CREDIT_CARD", "direct", "credit_card_number",
                   _names("card_number", "credit_card", "credit_card_number", "cc_number", "card", "cc")),
    IdentifierType("STREET_ADDRESS", "direct", "address",
                   _names("address", "home_address", "mailing_address") + _names(
                       "street_address", "street", "address_line", "address_line_1", provider="street_address")),
    IdentifierType("USERNAME", "direct", "user_name",
                   _names("username", "user_name", "login", "user", "handle", "screen_name", "nickname")),
    IdentifierType("PASSWORD", "direct", "password", _names("password", "passwd", "pwd", "passphrase", "pass")),
    IdentifierType("IBAN_CODE", "direct", "iban", _names("iban")),
    IdentifierType("US_PASSPORT", "direct", "passport_number", _names("passport", "passport_number")),
    IdentifierType("US_ITIN", "direct", "itin", _names("itin")),
    IdentifierType("IP_ADDRESS", "direct", "ipv4", _names("ip", "ip_address")),
    IdentifierType("ZIP", "quasi", names=_names("zip", "zip_code", "zipcode", "postal_code", "postcode", "postal")),
    IdentifierType("BIRTH_DATE", "quasi",
                   names=_names("birth_date", "birthdate", "dob", "date_of_birth", "birthday", "born")),
    IdentifierType("AGE", "quasi", names=_names("age")),
    IdentifierType("GENDER", "quasi", names=_names("gender", "sex")),
)
"""The identifier types, as data: a new one is a new row, not a new branch."""

_BY_ENTITY = {t.entity: t for t in IDENTIFIER_TYPES}
QUASI_ENTITIES: tuple[str, ...] = tuple(t.entity for t in IDENTIFIER_TYPES if t.role == "quasi")
"""The ``pii`` of the columns detection lists as quasi-identifiers (the audits treat them as such)."""


def normalised_name(name: Any) -> str:
    """Lower-case, runs of non-alphanumerics -> ``_``; camelCase split (``eMail Address`` -> ``e_mail_address``)."""
    text = "".join(f"_{c}" if c.isupper() and i and str(name)[i - 1].islower() else c for i, c in enumerate(str(name)))
    out = "".join(ch if ch.isalnum() else "_" for ch in text.strip().lower())
    return "_".join(part for part in out.split("_") if part)


def name_hint(name: Any) -> tuple[IdentifierType, str | None] | None:
    """The identifier type a column name suggests, and its provider; None if none.

    The whole normalised name is looked up first, then its longest suffix of
    whole words (``patient_email`` -> ``email``, ``home_phone_number`` ->
    ``phone_number``).
    """
    words = normalised_name(name).split("_")
    table = {n: (t, p or t.provider) for t in IDENTIFIER_TYPES for n, p in t.names}
    for start in range(len(words)):
        hit = table.get("_".join(words[start:]))
        if hit is not None:
            return hit
    return None


@dataclass(frozen=True)
class ColumnProfile:
    """What the sample of one column showed (no values).

    Attributes:
        name: the column.
        kind: its inferred kind.
        sampled: values analysed.
        entity: the dominant entity of :data:`IDENTIFIER_TYPES` among the values, or None.
        share: share of the sampled values that entity covers.
        distinct: share of the column's non-empty values that are distinct.
        hint: the entity the column name suggests, or None.
    """

    name: str
    kind: str
    sampled: int
    entity: str | None
    share: float
    distinct: float
    hint: str | None


@dataclass(frozen=True)
class Decision:
    """What becomes of one column.

    Attributes:
        column: the column.
        role: ``direct`` (faked), ``quasi`` (learned, listed) or None (learned).
        entity: the identifier type behind the role.
        evidence: ``values``, ``name``, ``values+name`` or ``""``.
        fake: the fake provider given, or None.
        kind: the column's kind after the decision.
        profile: the measurements.
    """

    column: str
    role: Role | None
    entity: str | None
    evidence: str
    fake: str | None
    kind: str
    profile: ColumnProfile

    @property
    def action(self) -> str:
        if self.role == "direct":
            return f"fake: {self.fake}"
        if self.role == "quasi":
            return "learned (quasi-identifier)"
        return "learned"

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "kind": self.kind, "entity": self.entity, "role": self.role,
                "evidence": self.evidence, "share": self.profile.share, "distinct": self.profile.distinct,
                "sampled": self.profile.sampled, "action": self.action}


@dataclass(frozen=True)
class Detection:
    """The decisions for a table and the analyser that made them."""

    decisions: tuple[Decision, ...]
    model: str
    ner: bool

    @property
    def faked(self) -> list[str]:
        return [d.column for d in self.decisions if d.role == "direct"]

    @property
    def quasi(self) -> list[str]:
        return [d.column for d in self.decisions if d.role == "quasi"]

    def to_dict(self) -> dict[str, Any]:
        """The ``identifier_detection`` block of ``privacy.json`` (entity types and shares, no values)."""
        return {"analyzer": "presidio", "model": self.model, "ner": self.ner, "sample_values": SAMPLE_VALUES,
                "rule": f"direct identifier when an entity covers >= {MIN_SHARE:.0%} of sampled values, or the "
                        f"column is named like one and is text, a pattern or a number with >= {MIN_DISTINCT:.0%} "
                        "distinct values; quasi-identifiers by name, kept learned",
                "faked": self.faked, "quasi_identifiers": self.quasi,
                "columns": [d.to_dict() for d in self.decisions]}


def cell_coverage(value: str, spans: Sequence[tuple[str, int, int]]) -> dict[str, float]:
    """Per entity, the largest share of ``value``'s non-blank characters one of its spans covers.

    ``spans`` are ``(entity, start, end)``. ``cell_coverage("ab cd", [("X", 0, 2)]) == {"X": 0.5}``
    (2 of 4 non-blank characters).
    """
    size = sum(not c.isspace() for c in value)
    out: dict[str, float] = {}
    for entity, start, end in spans:
        covered = sum(not c.isspace() for c in value[start:end]) / size if size else 0.0
        out[entity] = max(out.get(entity, 0.0), covered)
    return out


def dominant_entity(coverages: Sequence[dict[str, float]], *, entities: Sequence[str]) -> tuple[str | None, float]:
    """The entity (of ``entities``) counted in the most values, and its share of all values.

    A value counts for every entity covering at least :data:`MIN_COVERAGE` of it.
    Ties go to the entity listed first in ``entities``. No value counted: ``(None, 0.0)``.
    """
    counts: Counter[str] = Counter()
    for cov in coverages:
        counts.update(e for e, c in cov.items() if c >= MIN_COVERAGE and e in entities)
    if not counts or not coverages:
        return None, 0.0
    best = max(entities, key=lambda e: (counts.get(e, 0), -entities.index(e)))
    return best, counts[best] / len(coverages)


def decide(profile: ColumnProfile, *, single_shape: str | None, hint_provider: str | None) -> Decision:
    """The decision for one profiled column (rules 1-4 of the module docstring).

    Args:
        profile: the column's measurements.
        single_shape: the one shape (``value_shape``) all its values share, or None.
        hint_provider: the Faker provider the column name implies, if any.
    """
    by_values = _BY_ENTITY.get(profile.entity) if profile.share >= MIN_SHARE else None
    hinted = _BY_ENTITY.get(profile.hint)
    chosen, evidence, provider = None, "", None
    # A number is only named by its values when its name agrees: digit strings match loose
    # recognizers (a 7-digit count looks like a phone number to libphonenumber).
    if by_values is not None and profile.kind == "numeric" and hinted is not by_values:
        by_values = None
    if by_values is not None and by_values.role == "direct":
        chosen, provider = by_values, by_values.provider
        evidence = "values+name" if hinted is by_values else "values"
        if hinted is by_values:
            provider = hint_provider or provider
    elif (hinted is not None and hinted.role == "direct" and profile.kind in ("text", "pattern", "numeric")
          and profile.distinct >= MIN_DISTINCT):
        chosen, evidence, provider = hinted, "name", hint_provider or hinted.provider
    elif hinted is not None and hinted.role == "quasi":
        return Decision(profile.name, "quasi", hinted.entity, "name", None, profile.kind, profile)
    if chosen is None:
        return Decision(profile.name, None, None, "", None, profile.kind, profile)
    if profile.kind == "pattern" or (profile.kind in ("numeric", "categorical", "datetime") and single_shape):
        return Decision(profile.name, "direct", chosen.entity, evidence, "pattern", "pattern", profile)
    return Decision(profile.name, "direct", chosen.entity, evidence, provider, "text", profile)


def detect_identifiers(frame: pd.DataFrame, schema: Schema, *, ner: bool = True, model: str | None = None,
                       seed: int = 0) -> Detection:
    """Profile every column of ``frame`` (inferred as ``schema``) with Presidio and decide.

    Args:
        frame: the private table.
        schema: its inferred schema (the kinds).
        ner: use a spaCy NER pipeline if one is installed (``False``: pattern
            recognizers and column names only).
        model: a spaCy pipeline name or path; None picks the best installed one.
        seed: which cells are sampled (not a DP mechanism: the detection is outside
            the guarantee either way, and a fixed sample makes it repeatable).
    """
    from auditor.pii.config import load_config
    from auditor.pii.engine import get_engine
    from auditor.pii.scan import analyze_texts, column_context

    config = dataclasses.replace(load_config(), ner=ner, model=model)
    engine = get_engine(config)
    entities = [t.entity for t in IDENTIFIER_TYPES]
    rng = np.random.default_rng([seed, 15])
    decisions = []
    for col in schema.columns:
        values = [v for v in (cell_text(x, "frame", col.name) for x in frame[col.name].tolist()) if v.strip()]
        sample = [values[i] for i in sorted(rng.choice(len(values), size=min(SAMPLE_VALUES, len(values)),
                                                       replace=False))] if values else []
        distinct_sample = sorted(set(sample))
        results = analyze_texts(distinct_sample, engine=engine, config=config,
                                context=column_context(col.name) or None)
        found = {v: cell_coverage(v, [(r.entity_type, r.start, r.end) for r in res])
                 for v, res in zip(distinct_sample, results)}
        entity, share = dominant_entity([found[v] for v in sample], entities=entities)
        hint = name_hint(col.name)
        profile = ColumnProfile(name=col.name, kind=col.kind, sampled=len(sample), entity=entity,
                                share=round(share, 2), distinct=round(len(set(values)) / len(values), 2) if values else 0.0,
                                hint=hint[0].entity if hint else None)
        decisions.append(decide(profile, single_shape=_single_shape(values), hint_provider=hint[1] if hint else None))
    return Detection(decisions=tuple(decisions), model=engine.model.name, ner=engine.model.ner)


def _single_shape(values: Sequence[str]) -> str | None:
    from auditor.schema_inference import value_shape

    shapes = {value_shape(v) for v in values}
    return next(iter(shapes)) if len(shapes) == 1 else None


def apply_detection(schema: Schema, detection: Detection, frame: pd.DataFrame) -> Schema:
    """A copy of ``schema`` with the direct identifiers declared fake and every identifier's ``pii`` set.

    A faked column that becomes a pattern column takes the one shape of its values.
    """
    by_name = {d.column: d for d in detection.decisions}
    columns = []
    for c in schema.columns:
        d = by_name.get(c.name)
        if d is None or d.role is None:
            columns.append(c)
            continue
        if d.role == "quasi":
            columns.append(dataclasses.replace(c, pii=d.entity))
            continue
        facts: dict[str, Any] = {"name": c.name, "kind": d.kind, "nullable": c.nullable, "pii": d.entity,
                                 "fake": d.fake, "source": c.source}
        if d.kind == "pattern":
            values = [v for v in (cell_text(x, "frame", c.name) for x in frame[c.name].tolist()) if v]
            facts["pattern"] = c.pattern if c.kind == "pattern" else _single_shape(values)
        columns.append(Column(**facts))
    return Schema(columns=columns, text=schema.text)


def decision_table(detection: Detection) -> str:
    """The decision as one short table (no values).

    Columns: the column, its kind after the decision, the dominant entity among its
    sampled values with its share, the share of distinct values, the entity its
    name suggests, and the action.
    """
    head = ("column", "kind", "values", "distinct", "name", "action")
    rows = [(d.column, d.kind, f"{d.profile.entity} {d.profile.share:.0%}" if d.profile.entity else "-",
             f"{d.profile.distinct:.0%}", d.profile.hint or "-", d.action) for d in detection.decisions]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"identifiers (Presidio on up to {SAMPLE_VALUES} values per column, "
             f"{detection.model}{'' if detection.ner else ', no NER'}; --learn-identifiers opts out):"]
    lines += ["  " + "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    return "\n".join(lines)


def outside_guarantee_fact(detection: Detection):
    """The ``identifier_detection`` fact of ``privacy.json``: the detection read the private data without DP."""
    from auditor.dp.ledger import fact

    return fact("identifier_detection", sample=SAMPLE_VALUES, model=detection.model,
                faked=", ".join(detection.faked) or "none", quasi=", ".join(detection.quasi) or "none")


def fake_identifiers(schema: Schema, frame: pd.DataFrame, *, ner: bool = True) -> tuple[Schema, Detection]:
    """The inferred ``schema`` with detected direct identifiers declared fake, and the detection.

    The detection reads the private data outside DP (listed by :func:`outside_guarantee_fact`).
    """
    detection = detect_identifiers(frame, schema, ner=ner)
    return apply_detection(schema, detection, frame), detection
