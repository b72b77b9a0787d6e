"""A schema drafted from the data, written for a person to review and then declare public.

``auditor schema DATA --out schema.yaml`` writes what a run without ``--schema``
would infer: the column kinds, the detected identifiers with their fake
providers (``auditor.identifiers``), and the domains either left to DP
selection at training (``--domains dp``: ``categories`` / ``magnitudes`` stay
unset and each run selects them with DP, charged to its budget) or taken from
the data (``--domains data``: the values are written out for the reviewer).
Each column carries a comment with the evidence behind it; no value of a
faked column appears anywhere.

Once reviewed, ``--schema schema.yaml`` declares the file public: its facts are
then no longer reported as outside the guarantee (the review is what makes them
public). The YAML is accepted by ``--schema`` unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

import pandas as pd
import yaml

from auditor.codec import value_magnitude
from auditor.identifiers import Detection, decision_table
from auditor.schema import Column, Schema, parse_magnitude

_DEFAULTS = {f.name: f.default for f in fields(Column)}


def domains_from_data(schema: Schema, frame: pd.DataFrame) -> Schema:
    """``schema`` with every undeclared categorical domain and numeric magnitude set taken from ``frame``."""
    for c in schema.columns:
        if c.fake:
            continue
        if c.kind == "categorical" and c.categories is None:
            c.categories = sorted(set(frame[c.name].astype(str)) - {""})
        elif c.kind == "numeric" and c.magnitudes is None:
            keys = {value_magnitude(c, v) for v in frame[c.name].tolist()} - {None}
            c.magnitudes = sorted(keys, key=parse_magnitude) or None
    return schema


def column_entry(col: Column) -> dict[str, Any]:
    """The column's facts that differ from the defaults, name and kind first (``source`` left out)."""
    data = asdict(col)
    entry = {"name": data.pop("name"), "kind": data.pop("kind")}
    data.pop("source")
    entry.update({k: v for k, v in data.items() if v != _DEFAULTS[k]})
    return entry


def column_comment(col: Column, detection: Detection | None, domains: str) -> str:
    """What the reviewer should know about one column (evidence, domain source); never a value."""
    notes = []
    decision = None if detection is None else next((d for d in detection.decisions if d.column == col.name), None)
    if decision is not None and decision.role == "direct":
        notes.append(f"direct identifier ({decision.entity}, by {decision.evidence}): not learned, filled with "
                     f"fresh fakes ({decision.fake}); delete `fake` to learn it")
    elif decision is not None and decision.role == "quasi":
        notes.append(f"quasi-identifier ({decision.entity}): learned with DP")
    if col.kind == "categorical" and not col.fake:
        notes.append("categories: from the data, review them" if col.categories is not None and domains == "data"
                     else "categories: selected with DP at training (charged to epsilon), or declare them here")
    elif col.kind == "numeric" and not col.fake:
        notes.append("magnitudes: from the data, review them" if col.magnitudes is not None and domains == "data"
                     else "magnitudes: selected with DP at training, or declare them (and minimum/maximum) here")
    elif col.kind == "text" and not col.fake:
        notes.append("free text: max_tokens is the default, not fitted to the data")
    return "; ".join(notes)


HEADER = """\
# Schema drafted by `auditor schema` from {data} ({n} records).
# Every fact below was read from the private data. Review it, edit it, then declare
# it public for the runs:   auditor run {data} --schema {out} --out RUN
# A declared schema is public metadata (DESIGN.md, privacy rule 2): nothing in it is
# then reported as outside the DP guarantee. Remove anything that should not be public.
"""


def render_schema(schema: Schema, *, detection: Detection | None, domains: str, data: str, out: str,
                  n_records: int) -> str:
    """The YAML text: a header, the identifier table as comments, then one commented entry per column."""
    lines = HEADER.format(data=data, out=out, n=n_records).splitlines()
    if detection is not None:
        lines += ["#"] + [f"# {line}" for line in decision_table(detection).splitlines()]
    lines += [f"text: {str(schema.text).lower()}", "columns:"]
    for col in schema.columns:
        comment = column_comment(col, detection, domains)
        if comment:
            lines.append(f"  # {col.name}: {comment}")
        item = yaml.safe_dump([column_entry(col)], sort_keys=False, allow_unicode=True, width=100)
        lines += [f"  {line}" for line in item.splitlines()]
    return "\n".join(lines) + "\n"
