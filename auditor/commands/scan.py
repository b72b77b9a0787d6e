"""``auditor scan FILE``: scan any CSV/JSONL/Parquet/text file for PII; with
``--against TRAIN``, tell which values replay the training data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from auditor.bounds import THRESHOLD, BoundedType
from auditor.commands._options import FLAGS, click_option, engine_config
from auditor.errors import UserError
from auditor.overwrite import refuse_overwriting_inputs


def _entities(values: tuple[str, ...]) -> tuple[str, ...] | None:
    names = tuple(n.strip().upper() for v in values for n in v.split(",") if n.strip())
    return names or None


def _summary(record: dict, source: str, against: str | None) -> list[str]:
    """Readable lines: engine, not-scanned types, per column/entity table, replay, examples."""
    syn = record["synthetic"]
    eng = record["engine"]
    lines = [
        f"PII scan of {source}: {syn['rows']} records, {len(syn['columns'])} column(s); "
        f"model {eng['model']} ({'NER' if eng['ner'] else 'no NER: pattern recognizers only'})",
    ]
    for entity, why in record["not_scanned_reasons"].items():
        lines.append(f"  not scanned: {entity} ({why})")
    rows = [("column", "entity", "findings", "rows", "median score")]
    for column, by_entity in syn["by_column"].items():
        for entity, stats in by_entity.items():
            rows.append((column, entity, str(stats["findings"]), str(stats["rows"]), f"{stats['score']['median']:.2f}"))
    if len(rows) == 1:
        lines.append("no PII found")
    else:
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for r in rows:
            lines.append("  " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        lines.append(f"  total: {syn['findings']} findings in {syn['rows_with_pii']} of {syn['rows']} records")
    replay = record["replay"]
    if replay is not None:
        control = record["holdout_control"]
        line = (
            f"replay against {against}: {replay['replayed_in_context']} replayed in context, "
            f"{replay['replayed']} replayed alone, {replay['novel']} novel"
        )
        if control is not None:
            line += f" (holdout, by chance: {control['replayed_in_context']} in context, {control['replayed']} alone)"
        lines.append(line)
        qi = record["quasi_identifier_copies"]
        qi_text = "n/a (fewer than 2 roles found)" if qi is None else f"{qi} ({', '.join(record['quasi_identifiers'])})"
        exact = record["exact_row_copies"]
        exact_text = "n/a (no shared column)" if exact is None else str(exact)
        lines.append(f"exact row copies: {exact_text}; quasi-identifier copies: {qi_text}")
    for ex in record["examples"][:5]:
        cls = f" {ex['class']}" if ex["class"] else ""
        lines.append(f"  e.g. {ex['column']}: {ex['entity']} {ex['masked']} ({ex['hash']}){cls}")
    return lines


@click.command("scan")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--against", "train_file", type=click.Path(path_type=Path), help="Training data: classify replayed PII.")
@click.option("--holdout", "holdout_file", type=click.Path(path_type=Path), help="Holdout data: chance-match control.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the redacted JSON (default: FILE's name + .pii.json, beside it).")
@click.option("--reveal", "reveal_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write UNREDACTED findings to this file (mode 0600).")
@click.option("--entities", multiple=True, metavar="LIST", help="Entity types to report, comma-separated.")
@click.option("--threshold", type=BoundedType(THRESHOLD), help="Minimum score of a finding (default 0.4).")
@click.option("--allow-list", "allow_list", type=click.Path(path_type=Path), help="File of values never reported, one per line.")
@click.option("--recognizers", "recognizers_yaml", type=click.Path(path_type=Path),
              help="YAML with a 'recognizers:' list added to the defaults (e.g. regex + context words).")
@click.option("--model", help="spaCy pipeline name or path (default: best installed English pipeline).")
@click.option("--no-ner", is_flag=True, help="Blank spaCy pipeline: pattern recognizers only.")
@click_option(FLAGS["engine"])
@click_option(FLAGS["address"])
@click_option(FLAGS["workers"])
def command(file, train_file, holdout_file, json_out, reveal_out, entities, threshold, allow_list, recognizers_yaml, model,
            no_ner, engine, address, workers):
    """Scan FILE (CSV, JSONL, Parquet or text) for PII and print a summary.

    With --against TRAIN_FILE, each finding is classified as replayed in
    context (with another field of the same training record), replayed, or
    novel. Values shown or written are masked with a salted hash.
    """
    engine_cfg = engine_config({"engine": engine, "address": address, "workers": workers})
    # Deferred on purpose: the PII engine imports pandas and Presidio (seconds), which --help never needs.
    from auditor import api, execution
    from auditor.pii.config import load_allow_list, load_config, load_recognizer_specs
    from auditor.pii.pii_audit import report, reveal
    from reports.atomic import atomic_write, write_private
    from reports.pii_masking import new_salt

    json_out = json_out or file.with_name(file.name + ".pii.json")
    if reveal_out is not None and reveal_out.resolve() == json_out.resolve():
        raise UserError("--reveal must name a different file from --json")
    refuse_overwriting_inputs({"FILE": file, "--against": train_file, "--holdout": holdout_file,
                               "--allow-list": allow_list, "--recognizers": recognizers_yaml},
                              {"--json": json_out, "--reveal": reveal_out})
    if holdout_file is not None and train_file is None:
        raise UserError("--holdout needs --against")
    config = load_config()
    changes = {"ner": not no_ner}
    if model:
        changes["model"] = model
    if threshold is not None:
        changes["score_threshold"] = threshold
    if _entities(entities):
        changes["entities"] = _entities(entities)
    if allow_list is not None:
        changes["allow_list"] = load_allow_list(allow_list)
    config = dataclasses.replace(config, **changes)
    if recognizers_yaml is not None:
        config = config.with_extra_recognizers(load_recognizer_specs(recognizers_yaml))

    with execution.activated(engine_cfg):
        analysis = api.scan(file, against=train_file, holdout=holdout_file, config=config)
    salt = new_salt()
    record = report(analysis, salt=salt)
    atomic_write(json_out, json.dumps(record, indent=2) + "\n")
    for line in _summary(record, file.name, train_file.name if train_file else None):
        click.echo(line)
    click.echo(f"JSON: {json_out}")
    if reveal_out is not None:
        write_private(reveal_out, reveal(analysis) | {"salt": salt})
        click.echo(f"unredacted findings (0600): {reveal_out}")
    return 0
