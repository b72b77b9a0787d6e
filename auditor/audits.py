"""The audit stage: each audit reads the run dir and writes ``audit/<name>.json``.

Model audits (exposure, mia, dp_audit) need ``model/``; model-free audits
(distance, pii, quality) need only synthetic, train and holdout records, so they
also run on files produced by any other generator (``audit_files``).

Each audit file records the keyed digests of the inputs it read
(``reports.provenance``), taken before they are loaded: an input replaced while
the audit runs then reads as changed, never the reverse, and the report refuses
an audit whose inputs are no longer the run's.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from auditor import data as data_io
from auditor.config import ALL_AUDITS, DATA_AUDITS, AuditConfig, TrainConfig
from auditor.errors import UserError
from auditor.overwrite import refuse_overwriting_inputs
from auditor.rundir import RunDir, locks_run, read_json, write_json
from auditor.schema import Schema
from reports.provenance import current_digests, keyed_digest, stamp

log = logging.getLogger(__name__)

Stage = Callable[[str], None]
Digests = Mapping[str, str | None]

# audit -> the run's inputs it reads (names of reports.provenance.INPUT_FILES)
AUDIT_INPUTS: dict[str, tuple[str, ...]] = {
    "exposure": ("model", "canaries", "generation"),  # generation: canary occurrences in the synthetic data
    "mia": ("model", "split", "canaries"),
    "dp_audit": ("model", "privacy", "split", "canaries"),  # privacy: the claimed epsilon
    "distance": ("synthetic", "split"),
    "pii": ("synthetic", "split"),
    "quality": ("synthetic", "split", "generation"),  # generation: validity
    "duplicates": ("split", "privacy"),  # privacy: the claimed epsilon and delta
    "anonymity": ("synthetic", "split"),
}
# a model-free audit reads three files outside the run dir; run.json records their digests
MODEL_FREE_INPUTS: dict[str, tuple[str, ...]] = {a: ("synthetic", "train", "holdout") for a in DATA_AUDITS}


def column_kinds(schema: Schema) -> dict[str, str]:
    """Schema kinds as the model-free audits know them (patterns are compared as text)."""
    return {c.name: ("text" if c.kind == "pattern" else c.kind) for c in schema.columns}


def default_quasi_identifiers(schema: Schema) -> list[str]:
    from auditor.identifiers import QUASI_ENTITIES

    return [c.name for c in schema.columns
            if c.pii in ("DATE_TIME", "LOCATION", *QUASI_ENTITIES) or (c.kind == "numeric" and c.pii is None)]


def default_target(schema: Schema) -> str | None:
    from auditor.identifiers import QUASI_ENTITIES

    for c in schema.columns:
        if c.kind == "categorical" and (c.pii is None or c.pii in QUASI_ENTITIES):
            return c.name
    return None


def _write(run: RunDir, name: str, result: dict, digests: Digests, needs: Mapping[str, tuple[str, ...]]) -> Path:
    """Write ``audit/<name>.json`` atomically (a killed audit leaves the old file or none) with its provenance."""
    return write_json(run.audit / f"{name}.json", stamp(result, {k: digests[k] for k in needs[name]}))


# ---------------------------------------------------------------------------- model-free

def run_data_audits(*, synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, schema: Schema,
                    config: AuditConfig, salt: str, out: RunDir, validity: float | None, digests: Digests,
                    needs: Mapping[str, tuple[str, ...]] = AUDIT_INPUTS, stage: Stage | None = None) -> dict[str, Path]:
    kinds = column_kinds(schema)
    written = {}
    if "distance" in config.audits and len(holdout):
        _stage(stage, "distance")
        from attacks.distance import DistanceConfig
        from attacks.distance import run as distance_run

        qi = list(config.quasi_identifiers or default_quasi_identifiers(schema))
        secret = config.secret_column or default_target(schema)
        fmts = {c.name: c.format for c in schema.columns if c.kind == "datetime"}
        written["distance"] = _write(out, "distance", distance_run(
            synthetic=synthetic[list(kinds)], train=train[list(kinds)], holdout=holdout[list(kinds)],
            column_kinds=kinds, quasi_identifiers=[q for q in qi if q != secret] or None,
            secret_column=secret, learned_columns=[c.name for c in schema.learned] or None,
            config=DistanceConfig(datetime_formats=fmts, seed=config.seed)), digests, needs)
    if "pii" in config.audits:
        _stage(stage, "pii")
        from auditor.pii import run as pii_run

        if schema.text:
            s, t, h = (synthetic["text"].tolist(), train["text"].tolist(), holdout["text"].tolist())
        else:
            # Plain numbers (ages, amounts) identify no one alone; scanning them only
            # yields false phone/date matches. Every other column is scanned.
            cols = [c.name for c in schema.columns if c.kind != "numeric"]
            s, t, h = synthetic[cols], train[cols], holdout[cols]
        written["pii"] = _write(out, "pii", pii_run(
            synthetic=s, train=t, holdout=h if len(holdout) else None,
            config={"ner": config.pii_ner, "score_threshold": config.pii_threshold}, salt=salt), digests, needs)
    if "duplicates" in config.audits:
        _stage(stage, "duplicates")
        from attacks.duplicates import run as duplicates_run

        privacy = read_json(out.privacy) if out.privacy.exists() else {}
        claimed = privacy.get("epsilon") if privacy.get("dp") else None
        written["duplicates"] = _write(out, "duplicates", duplicates_run(
            train=train[[c.name for c in schema.columns]], learned_columns=[c.name for c in schema.learned],
            epsilon=claimed, delta=privacy.get("delta") if claimed is not None else None), digests, needs)
    if "anonymity" in config.audits and len(holdout):
        _stage(stage, "anonymity")
        from attacks.anonymity import AnonymityConfig
        from attacks.anonymity import run as anonymity_run

        # Fresh fakes were never learned: attacking them measures chance, not the data.
        learned = {c.name: kinds[c.name] for c in schema.learned}
        fmts = {c.name: c.format for c in schema.learned if c.kind == "datetime"}
        written["anonymity"] = _write(out, "anonymity", anonymity_run(
            synthetic=synthetic[list(learned)], train=train[list(learned)], holdout=holdout[list(learned)],
            column_kinds=learned, config=AnonymityConfig(datetime_formats=fmts, seed=config.seed)), digests, needs)
    if "quality" in config.audits:
        _stage(stage, "quality")
        from auditor.quality import run as quality_run

        target = config.tstr_target or default_target(schema)
        result = quality_run(synthetic=synthetic[list(kinds)], train=train[list(kinds)],
                             holdout=holdout[list(kinds)], column_kinds=kinds, target=target,
                             config={"seed": config.seed})
        result["validity"] = validity
        written["quality"] = _write(out, "quality", result, digests, needs)
    return written


def _stage(stage: Stage | None, name: str) -> None:
    log.info("audit: %s", name)
    if stage is not None:
        stage(name)


# ---------------------------------------------------------------------------- model audits

def _reference_scorer(run: RunDir, codec, ref_records: Sequence, config: AuditConfig, device: str):
    """A non-DP model of the same preset trained on a disjoint population split."""
    from auditor.scoring import ModelScorer
    from auditor.train import fit

    saved = read_json(run.run_json)["config"]["train"]
    n = len(ref_records)
    batch = max(2, min(int(saved["batch_size"]), n // 4))
    cfg = TrainConfig(model=saved["model"], dp=False, epsilon=None, epochs=config.reference_epochs or saved["epochs"],
                      batch_size=batch, physical_batch_size=saved["physical_batch_size"], lr=saved["lr"],
                      seed=config.seed + 17, device=device)
    seqs = [codec.encode(r) for r in ref_records]
    result = fit(seqs, grammar=codec.grammar, vocab_size=codec.vocab_size, pad_id=codec.pad_id, config=cfg,
                 max_length=codec.max_length)
    return ModelScorer(result.model, codec)


def run_model_audits(run: RunDir, *, config: AuditConfig, train: pd.DataFrame, holdout: pd.DataFrame,
                     digests: Digests, device: str = "auto", stage: Stage | None = None) -> dict[str, Path]:
    from attacks.dp_audit import run as dp_audit_run
    from attacks.mia import MiaConfig, report as mia_report, score_membership
    from auditor.pipeline import load_codec, load_trained_model, records_of
    from auditor.scoring import ModelScorer
    from canaries.exposure_audit import ExposureInputs
    from canaries.exposure_audit import run as exposure_run
    from canaries.config import CanaryConfig
    from canaries.manifest import Manifest
    from canaries.prompts import secret_logprobs

    codec = load_codec(run)
    scorer = ModelScorer(load_trained_model(run, device), codec)
    privacy = read_json(run.privacy)
    manifest = Manifest.load(run.canaries) if run.canaries.exists() else None
    written: dict[str, Path] = {}
    if manifest is not None and "exposure" in config.audits:
        _stage(stage, "exposure")
        gen = read_json(run.generation) if run.generation.exists() else {}
        scrub = ({"scrubbed_rows": gen.get("scrubbed_canary_rows", 0), "occurrences": gen["canary_occurrences"]}
                 if "canary_occurrences" in gen else None)
        ccfg = CanaryConfig.from_dict(manifest.config)
        written["exposure"] = _write(run, "exposure", exposure_run(
            ExposureInputs(scorer=scorer, manifest=manifest, scrub=scrub, rng=np.random.default_rng(config.seed)),
            ccfg), digests, AUDIT_INPUTS)
    if not ({"mia", "dp_audit"} & set(config.audits)):
        return written
    _stage(stage, "mia")
    rng = np.random.default_rng(config.seed)
    schema = codec.schema
    hold = records_of(holdout, schema)
    order = rng.permutation(len(hold))
    half = len(hold) // 2
    ref_part = [hold[i] for i in order[:half]] if config.reference else []
    nonmembers = [hold[i] for i in order[half:]] if config.reference else hold
    members_all = records_of(train, schema)
    k = min(config.max_members, len(members_all), max(len(nonmembers), 1) * 2)
    members = [members_all[i] for i in rng.choice(len(members_all), size=k, replace=False)]
    nonmembers = nonmembers[: config.max_members]
    reference = None
    if config.reference and len(ref_part) >= 8:
        _stage(stage, "mia reference model")
        reference = _reference_scorer(run, codec, ref_part, config, device)
    canaries_in = canaries_out = None
    if manifest is not None:
        canaries_in = [c.record for c in manifest.group("schedule")]
        canaries_out = [c.record for c in manifest.group("twin")]
    mcfg = MiaConfig(signals=tuple(s for s in MiaConfig().signals if reference is not None or s != "reference"),
                     seed=config.seed)
    scores = score_membership(scorer=scorer, members=members, nonmembers=nonmembers, canaries_in=canaries_in,
                              canaries_out=canaries_out, reference_scorer=reference, config=mcfg)
    mia = mia_report(scores, config=mcfg)
    if "mia" in config.audits:
        written["mia"] = _write(run, "mia", mia, digests, AUDIT_INPUTS)
    if "dp_audit" in config.audits:
        _stage(stage, "dp_audit")
        audit_group = manifest.group("audit") if manifest is not None else []
        canary_scores = secret_logprobs(scorer, audit_group) if audit_group else None
        claimed = privacy["epsilon"] if privacy["dp"] else None
        result = dp_audit_run(member_scores=scores.members, nonmember_scores=scores.nonmembers,
                              canary_scores=canary_scores,
                              canary_inclusion=[c.coin for c in audit_group] if audit_group else None,
                              claimed_epsilon=claimed, delta=privacy["delta"] or 0.0)
        written["dp_audit"] = _write(run, "dp_audit", result, digests, AUDIT_INPUTS)
    return written


# ---------------------------------------------------------------------------- entry points

def _check_audit_names(config: AuditConfig) -> None:
    unknown = set(config.audits) - set(ALL_AUDITS)
    if unknown:
        raise UserError(f"unknown audit(s): {', '.join(sorted(unknown))} (expected {', '.join(ALL_AUDITS)})")


@locks_run
def audit_run(out: str | Path, *, config: AuditConfig | None = None, device: str = "auto",
              stage: Stage | None = None) -> dict[str, Path]:
    """All audits of a finished run (train + generate done)."""
    from auditor.pipeline import load_codec, load_frames

    cfg = config or AuditConfig()
    _check_audit_names(cfg)
    run = RunDir(Path(out))
    run.require_trained()
    synth_path = run.existing_synthetic()
    salt = run.salt()
    digests = current_digests(run.root, {n for a in cfg.audits for n in AUDIT_INPUTS[a]}, salt)
    train, holdout, is_text = load_frames(run)
    schema = load_codec(run).schema
    synthetic = data_io.load_records(synth_path).frame
    validity = read_json(run.generation).get("validity") if run.generation.exists() else None
    t0 = time.perf_counter()
    written = run_model_audits(run, config=cfg, train=train, holdout=holdout, digests=digests, device=device,
                               stage=stage)
    written |= run_data_audits(synthetic=synthetic, train=train, holdout=holdout, schema=schema, config=cfg,
                               salt=salt, out=run, validity=validity, digests=digests, stage=stage)
    log.info("audits done in %.1f s", time.perf_counter() - t0)
    return written


def audit_files(*, synthetic: str | Path, train: str | Path, holdout: str | Path | None, out: str | Path,
                schema: str | Path | None = None, config: AuditConfig | None = None, force: bool = False,
                stage: Stage | None = None) -> dict[str, Path]:
    """Model-free audits (distance, PII, quality) of any generator's output files."""
    from auditor.pipeline import config_hash, resolve_schema, versions
    from auditor.rundir import write_json as wj

    cfg = config or AuditConfig()
    _check_audit_names(cfg)
    run = RunDir(Path(out))
    _refuse_trained_run(run)
    run.holds_files(force=force)  # reads only: a refused --out fails before the inputs are read
    refuse_overwriting_inputs({"--synthetic": synthetic, "--train": train, "--holdout": holdout, "--schema": schema},
                              {"--out": run.tool_paths()})
    syn = data_io.load_records(synthetic)
    tr = data_io.load_records(train)
    ho = data_io.load_records(holdout) if holdout else None
    schema_obj, outside = resolve_schema(tr, str(schema) if schema else None)
    for name, ds in (("synthetic", syn), ("holdout", ho)):
        if ds is not None:
            missing = [c for c in schema_obj.names if c not in ds.frame.columns]
            if missing:
                raise UserError(f"{ds.name}: missing columns {', '.join(missing)} of the training data")
    # Everything is validated and loaded: from here on, write (earlier audits are cleared only now).
    with run.new_run(force=force, clear=(run.audit, *run.report_files())):
        salt = run.salt()
        digests = {name: keyed_digest([Path(p)], salt) if p else None
                   for name, p in (("synthetic", synthetic), ("train", train), ("holdout", holdout))}
        run_cfg = {"mode": "model-free", "synthetic": str(synthetic), "train": str(train),
                   "holdout": str(holdout) if holdout else None, "schema": str(schema) if schema else None}
        wj(run.run_json, {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          "config": run_cfg, "config_hash": config_hash(run_cfg),
                          "seeds": {"audit": cfg.seed}, "versions": versions(),
                          "data_hash": data_io.data_hash(tr.frame), "synthetic_hash": data_io.data_hash(syn.frame),
                          "input_digests": digests, "outside_guarantee": [f.sentence for f in outside],
                          "model_free": True})
        empty = pd.DataFrame(columns=tr.frame.columns)
        return run_data_audits(synthetic=syn.frame, train=tr.frame, holdout=ho.frame if ho else empty,
                               schema=schema_obj, config=cfg, salt=salt, out=run, validity=None, digests=digests,
                               needs=MODEL_FREE_INPUTS, stage=stage)


def _refuse_trained_run(run: RunDir) -> None:
    """A model-free audit never writes into a trained run: its report would show that run's ε and validity."""
    # split.json is written before training starts, so a killed training counts too
    if any(p.exists() for p in (run.split, run.model, run.generation, run.canaries, run.data_copy)):
        raise UserError(f"{run.root} holds a trained run (nothing was changed); give model-free audits their own --out "
                        f"(audit that run with `auditor audit {run.root}`)")
