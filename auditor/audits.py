"""The audit stage: a registry of audits, each reading the run dir and writing ``audit/<name>.json``.

An audit is one function ``run(ctx: AuditContext) -> dict`` registered with
:func:`register_audit`: its name (``auditor audit --only NAME``), the run-dir
inputs it reads (recorded as its provenance) and what it needs (the model, holdout
records, the canary manifest). ``audit_run`` (a trained run), ``audit_files``
(model-free: any generator's files), ``generate`` (which clears the audits it
invalidates) and the report all go through the registry; a new audit is one
registered function (docs/architecture.md).

Model audits (exposure, mia, dp_audit) need ``model/``; model-free audits
(distance, pii, quality, duplicates, anonymity) need only synthetic, train and
holdout records, so they also run on files produced by any other generator.

Each audit file records the keyed digests of the inputs it read
(``reports.provenance``), taken before they are loaded: an input replaced while
the audit runs then reads as changed, never the reverse, and the report refuses
an audit whose inputs are no longer the run's.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from attacks.anonymity import AnonymityConfig
from attacks.anonymity import run as anonymity_run
from attacks.distance import DistanceConfig
from attacks.distance import run as distance_run
from attacks.dp_audit import run as dp_audit_run
from attacks.duplicates import run as duplicates_run
from attacks.mia import MembershipScores, MiaConfig, score_membership
from attacks.mia import report as mia_report
from attacks.signals import available_signals, needs_reference
from auditor import data as data_io
from auditor import execution
from auditor.codec import RowCodec
from auditor.config import AuditConfig, TrainConfig
from auditor.errors import UserError
from auditor.loading import (config_hash, load_codec, load_frames, load_trained_model, records_of, resolve_schema,
                             versions)
from auditor.overwrite import refuse_overwriting_inputs
from auditor.rundir import RunDir, locks_run, read_json, write_json
from auditor.schema import Schema
from canaries.config import CanaryConfig
from canaries.exposure_audit import ExposureInputs
from canaries.exposure_audit import run as exposure_run
from canaries.manifest import Manifest
from canaries.prompts import secret_logprobs
from reports.provenance import INPUT_FILES, current_digests, keyed_digest, stamp

if TYPE_CHECKING:
    from auditor.scoring import ModelScorer

log = logging.getLogger(__name__)

Stage = Callable[[str], None]
Digests = Mapping[str, str | None]
# a model-free audit reads three files outside the run dir; run.json records their digests
MODEL_FREE_INPUTS = ("synthetic", "train", "holdout")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


# ---------------------------------------------------------------------------- the registry

@dataclass(frozen=True)
class AuditSpec:
    """One registered audit.

    Attributes:
        name: its name (``--only NAME``); it writes ``audit/<name>.json`` (``output``).
        run: ``run(ctx) -> dict``, the content of the audit file (its provenance is added).
        inputs: the run-dir inputs it reads (names of ``reports.provenance.INPUT_FILES``),
            whose keyed digests the file records; a model-free audit records its three
            input files instead (``MODEL_FREE_INPUTS``).
        needs_model: reads the trained model; model-free audits (``audit_files``) skip it.
        needs_holdout: skipped when there are no holdout records.
        needs_canaries: skipped when the run has no canary manifest.
    """

    name: str
    run: Callable[["AuditContext"], dict[str, Any]]
    inputs: tuple[str, ...]
    needs_model: bool = False
    needs_holdout: bool = False
    needs_canaries: bool = False

    @property
    def output(self) -> str:
        """The file it writes under ``audit/``."""
        return f"{self.name}.json"


_AUDITS: dict[str, AuditSpec] = {}


def register_audit(name: str, *, inputs: Sequence[str], needs_model: bool = False, needs_holdout: bool = False,
                   needs_canaries: bool = False) -> Callable[[Callable], Callable]:
    """Decorator: register ``run(ctx: AuditContext) -> dict`` as the audit ``name``; returns ``run`` unchanged.

    Audits run in the order they were registered.

    Raises:
        ValueError: ``name`` is taken or not a lower-case identifier, or ``inputs``
            names something ``reports.provenance.INPUT_FILES`` does not know.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"audit name {name!r} must be a lower-case identifier (it names audit/<name>.json)")
    if name in _AUDITS:
        raise ValueError(f"audit {name!r} is already registered")
    unknown = sorted(set(inputs) - set(INPUT_FILES))
    if unknown:
        raise ValueError(f"audit {name!r}: unknown input(s) {', '.join(unknown)} (known: {', '.join(INPUT_FILES)})")

    def register(run: Callable[[AuditContext], dict[str, Any]]) -> Callable[[AuditContext], dict[str, Any]]:
        _AUDITS[name] = AuditSpec(name=name, run=run, inputs=tuple(inputs), needs_model=needs_model,
                                  needs_holdout=needs_holdout, needs_canaries=needs_canaries)
        return run

    return register


def unregister_audit(name: str) -> AuditSpec:
    """Remove the audit ``name`` from the registry (a plugin's or a test's); returns its spec."""
    return _AUDITS.pop(name)


def registered_audits() -> tuple[AuditSpec, ...]:
    """Every registered audit, in run order."""
    return tuple(_AUDITS.values())


def audit_names() -> tuple[str, ...]:
    return tuple(_AUDITS)


def selected_audits(config: AuditConfig) -> tuple[AuditSpec, ...]:
    """The registered audits ``config.audits`` names (all when None), in run order; ``UserError`` on an unknown name."""
    if config.audits is None:
        return registered_audits()
    unknown = set(config.audits) - set(_AUDITS)
    if unknown:
        raise UserError(f"unknown audit(s): {', '.join(sorted(unknown))} (expected {', '.join(_AUDITS)})")
    return tuple(spec for spec in _AUDITS.values() if spec.name in config.audits)


# ---------------------------------------------------------------------------- what an audit reads

class AuditContext:
    """What an audit reads: the records, the schema, the run's files; the model is loaded once, when first used.

    Attributes:
        run: the run directory (the audit files go to ``run.audit``).
        config: the audit settings.
        schema: the schema of the records.
        train, holdout: the real records (holdout may be empty).
        salt: the run's secret salt, for masked hashes.
        model_free: True for ``audit_files`` (no model, no canaries, no run.json of a training).
    """

    def __init__(self, *, run: RunDir, config: AuditConfig, schema: Schema, train: pd.DataFrame,
                 holdout: pd.DataFrame, synthetic: Callable[[], pd.DataFrame], validity: float | None, salt: str,
                 device: str = "auto", stage: Stage | None = None, model_free: bool = False) -> None:
        self.run, self.config, self.schema = run, config, schema
        self.train, self.holdout, self.salt = train, holdout, salt
        self.validity, self.device, self.model_free = validity, device, model_free
        self._synthetic, self._stage = synthetic, stage

    def stage(self, name: str) -> None:
        """Announce a step (logged, and passed to the caller's callback)."""
        log.info("audit: %s", name)
        if self._stage is not None:
            self._stage(name)

    @cached_property
    def synthetic(self) -> pd.DataFrame:
        return self._synthetic()

    @cached_property
    def kinds(self) -> dict[str, str]:
        """Schema kinds as the model-free audits know them (patterns are compared as text)."""
        return column_kinds(self.schema)

    @cached_property
    def privacy(self) -> dict[str, Any]:
        """``model/privacy.json``; empty when absent (a model-free run)."""
        return read_json(self.run.privacy) if self.run.privacy.exists() else {}

    @cached_property
    def claimed_epsilon(self) -> float | None:
        return self.privacy.get("epsilon") if self.privacy.get("dp") else None

    @cached_property
    def codec(self) -> RowCodec:
        return load_codec(self.run)

    @cached_property
    def scorer(self) -> "ModelScorer":
        from auditor.scoring import ModelScorer  # torch and transformers: only audits of a model load them

        return ModelScorer(load_trained_model(self.run, self.device), self.codec)

    @cached_property
    def manifest(self) -> Manifest | None:
        return None if self.model_free or not self.run.canaries.exists() else Manifest.load(self.run.canaries)

    @cached_property
    def membership(self) -> "Membership":
        """Membership scores of members vs non-members and canaries (shared by ``mia`` and ``dp_audit``)."""
        return _membership(self)


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


# ---------------------------------------------------------------------------- model audits

@register_audit("exposure", inputs=("model", "canaries", "generation"), needs_model=True, needs_canaries=True)
def exposure(ctx: AuditContext) -> dict[str, Any]:
    """Canary exposure and extraction (generation: canary occurrences in the synthetic data)."""
    gen = read_json(ctx.run.generation) if ctx.run.generation.exists() else {}
    scrub = ({"scrubbed_rows": gen.get("scrubbed_canary_rows", 0), "occurrences": gen["canary_occurrences"]}
             if "canary_occurrences" in gen else None)
    return exposure_run(ExposureInputs(scorer=ctx.scorer, manifest=ctx.manifest, scrub=scrub,
                                       rng=np.random.default_rng(ctx.config.seed)),
                        CanaryConfig.from_dict(ctx.manifest.config))


@register_audit("mia", inputs=("model", "split", "canaries"), needs_model=True)
def mia(ctx: AuditContext) -> dict[str, Any]:
    """Membership inference with every registered signal (``attacks.signals``)."""
    return mia_report(ctx.membership.scores, config=ctx.membership.config)


@register_audit("dp_audit", inputs=("model", "privacy", "split", "canaries"), needs_model=True)
def dp_audit(ctx: AuditContext) -> dict[str, Any]:
    """ε lower bounds from the membership scores and the audit canaries (privacy: the claimed ε)."""
    scores = ctx.membership.scores
    audit_group = ctx.manifest.group("audit") if ctx.manifest is not None else []
    return dp_audit_run(member_scores=scores.members, nonmember_scores=scores.nonmembers,
                        canary_scores=secret_logprobs(ctx.scorer, audit_group) if audit_group else None,
                        canary_inclusion=[c.coin for c in audit_group] if audit_group else None,
                        claimed_epsilon=ctx.claimed_epsilon, delta=ctx.privacy["delta"] or 0.0)


def _reference_scorer(ctx: AuditContext, ref_records: Sequence) -> "ModelScorer":
    """A non-DP model of the same preset trained on a disjoint population split."""
    # torch and Opacus: only the MIA's reference model trains
    from auditor.scoring import ModelScorer
    from auditor.train import fit

    config, codec = ctx.config, ctx.codec
    saved = read_json(ctx.run.run_json)["config"]["train"]
    n = len(ref_records)
    batch = max(2, min(int(saved["batch_size"]), n // 4))
    cfg = TrainConfig(model=saved["model"], dp=False, epsilon=None, epochs=config.reference_epochs or saved["epochs"],
                      batch_size=batch, physical_batch_size=saved["physical_batch_size"], lr=saved["lr"],
                      seed=config.seed + 17, device=ctx.device)
    seqs = [codec.encode(r) for r in ref_records]
    result = fit(seqs, grammar=codec.grammar, vocab_size=codec.vocab_size, pad_id=codec.pad_id, config=cfg,
                 max_length=codec.max_length)
    return ModelScorer(result.model, codec)


@dataclass(frozen=True)
class Membership:
    """The membership scores the ``mia`` and ``dp_audit`` audits share, and the MIA settings that made them."""

    scores: MembershipScores
    config: MiaConfig


def _membership(ctx: AuditContext) -> Membership:
    config = ctx.config
    rng = np.random.default_rng(config.seed)
    schema = ctx.codec.schema
    hold = records_of(ctx.holdout, schema)
    order = rng.permutation(len(hold))
    half = len(hold) // 2
    ref_part = [hold[i] for i in order[:half]] if config.reference else []
    nonmembers = [hold[i] for i in order[half:]] if config.reference else hold
    members_all = records_of(ctx.train, schema)
    k = min(config.max_members, len(members_all), max(len(nonmembers), 1) * 2)
    members = [members_all[i] for i in rng.choice(len(members_all), size=k, replace=False)]
    nonmembers = nonmembers[: config.max_members]
    reference = None
    if config.reference and len(ref_part) >= 8:
        ctx.stage("mia reference model")
        reference = _reference_scorer(ctx, ref_part)
    canaries_in = canaries_out = None
    if ctx.manifest is not None:
        canaries_in = [c.record for c in ctx.manifest.group("schedule")]
        canaries_out = [c.record for c in ctx.manifest.group("twin")]
    # every registered signal (attacks.signals); those that need a reference model only when there is one
    mcfg = MiaConfig(signals=tuple(s for s in available_signals() if reference is not None or not needs_reference(s)),
                     seed=config.seed)
    scores = score_membership(scorer=ctx.scorer, members=members, nonmembers=nonmembers, canaries_in=canaries_in,
                              canaries_out=canaries_out, reference_scorer=reference, config=mcfg)
    return Membership(scores=scores, config=mcfg)


# ---------------------------------------------------------------------------- model-free audits

@register_audit("distance", inputs=("synthetic", "split"), needs_holdout=True)
def distance(ctx: AuditContext) -> dict[str, Any]:
    """DCR, NNDR, exact copies, distance MIA and attribute inference."""
    schema, kinds, config = ctx.schema, ctx.kinds, ctx.config
    qi = list(config.quasi_identifiers or default_quasi_identifiers(schema))
    secret = config.secret_column or default_target(schema)
    fmts = {c.name: c.format for c in schema.columns if c.kind == "datetime"}
    executor = execution.current()
    return distance_run(
        synthetic=ctx.synthetic[list(kinds)], train=ctx.train[list(kinds)], holdout=ctx.holdout[list(kinds)],
        column_kinds=kinds, quasi_identifiers=[q for q in qi if q != secret] or None,
        secret_column=secret, learned_columns=[c.name for c in schema.learned] or None,
        config=DistanceConfig(datetime_formats=fmts, seed=config.seed, n_jobs=execution.cores()),
        # Locally, threads over every core share the reference without copying it; a cluster gets query parts.
        executor=executor if executor.name == "dask" else None)


@register_audit("pii", inputs=("synthetic", "split"))
def pii(ctx: AuditContext) -> dict[str, Any]:
    """PII findings in the synthetic data, and replay of the training split's PII against the holdout."""
    from auditor.pii import run as pii_run  # Presidio and spaCy load only when the PII audit runs

    schema, synthetic, train, holdout = ctx.schema, ctx.synthetic, ctx.train, ctx.holdout
    if schema.text:
        s, t, h = (synthetic["text"].tolist(), train["text"].tolist(), holdout["text"].tolist())
    else:
        # Plain numbers (ages, amounts) identify no one alone; scanning them only
        # yields false phone/date matches. Every other column is scanned.
        cols = [c.name for c in schema.columns if c.kind != "numeric"]
        s, t, h = synthetic[cols], train[cols], holdout[cols]
    return pii_run(synthetic=s, train=t, holdout=h if len(holdout) else None,
                   config={"ner": ctx.config.pii_ner, "score_threshold": ctx.config.pii_threshold}, salt=ctx.salt)


@register_audit("duplicates", inputs=("split", "privacy"))
def duplicates(ctx: AuditContext) -> dict[str, Any]:
    """Duplicated training records and the group privacy they get (privacy: the claimed ε and δ)."""
    claimed = ctx.claimed_epsilon
    return duplicates_run(train=ctx.train[[c.name for c in ctx.schema.columns]],
                          learned_columns=[c.name for c in ctx.schema.learned], epsilon=claimed,
                          delta=ctx.privacy.get("delta") if claimed is not None else None)


@register_audit("anonymity", inputs=("synthetic", "split"), needs_holdout=True)
def anonymity(ctx: AuditContext) -> dict[str, Any]:
    """Singling out, linkability and inference against the holdout control."""
    # Fresh fakes were never learned: attacking them measures chance, not the data.
    learned = {c.name: ctx.kinds[c.name] for c in ctx.schema.learned}
    fmts = {c.name: c.format for c in ctx.schema.learned if c.kind == "datetime"}
    return anonymity_run(synthetic=ctx.synthetic[list(learned)], train=ctx.train[list(learned)],
                         holdout=ctx.holdout[list(learned)], column_kinds=learned,
                         config=AnonymityConfig(datetime_formats=fmts, seed=ctx.config.seed))


@register_audit("quality", inputs=("synthetic", "split", "generation"))
def quality(ctx: AuditContext) -> dict[str, Any]:
    """Fidelity and downstream utility (generation: validity)."""
    from auditor.quality import run as quality_run  # scikit-learn loads only when the quality audit runs

    kinds = ctx.kinds
    result = quality_run(synthetic=ctx.synthetic[list(kinds)], train=ctx.train[list(kinds)],
                         holdout=ctx.holdout[list(kinds)], column_kinds=kinds,
                         target=ctx.config.tstr_target or default_target(ctx.schema), config={"seed": ctx.config.seed})
    result["validity"] = ctx.validity
    return result


# ---------------------------------------------------------------------------- running them

def _applicable(spec: AuditSpec, ctx: AuditContext) -> bool:
    if spec.needs_model and ctx.model_free:
        return False
    if spec.needs_holdout and not len(ctx.holdout):
        return False
    return not (spec.needs_canaries and ctx.manifest is None)


def run_audits(ctx: AuditContext, specs: Sequence[AuditSpec], digests: Digests) -> dict[str, Path]:
    """Run each applicable audit of ``specs`` in order; write ``audit/<name>.json`` atomically with its provenance.

    A killed audit leaves the old file or none. Returns audit name -> file written.
    """
    written: dict[str, Path] = {}
    t0 = time.perf_counter()
    for spec in specs:
        if not _applicable(spec, ctx):
            continue
        ctx.stage(spec.name)
        needs = MODEL_FREE_INPUTS if ctx.model_free else spec.inputs
        written[spec.name] = write_json(ctx.run.audit / spec.output,
                                        stamp(spec.run(ctx), {k: digests[k] for k in needs}))
    log.info("audits done in %.1f s", time.perf_counter() - t0)
    return written


@locks_run
def audit_run(out: str | Path, *, config: AuditConfig | None = None, device: str = "auto",
              stage: Stage | None = None) -> dict[str, Path]:
    """The registered audits of a finished run (train + generate done); returns audit name -> file."""
    cfg = config or AuditConfig()
    specs = selected_audits(cfg)
    run = RunDir(Path(out))
    run.require_trained()
    reads = {n for spec in specs for n in spec.inputs}
    if "synthetic" in reads:
        run.existing_synthetic()  # no synthetic data is bad input: say so before anything is loaded
    salt = run.salt()
    digests = current_digests(run.root, reads, salt)
    train, holdout, _ = load_frames(run)
    ctx = AuditContext(run=run, config=cfg, schema=load_codec(run).schema, train=train, holdout=holdout,
                       synthetic=lambda: data_io.load_records(run.existing_synthetic()).frame,
                       validity=read_json(run.generation).get("validity") if run.generation.exists() else None,
                       salt=salt, device=device, stage=stage)
    return run_audits(ctx, specs, digests)


def audit_files(*, synthetic: str | Path, train: str | Path, holdout: str | Path | None, out: str | Path,
                schema: str | Path | None = None, config: AuditConfig | None = None, force: bool = False,
                stage: Stage | None = None) -> dict[str, Path]:
    """The registered audits that need no model, on any generator's output files."""
    cfg = config or AuditConfig()
    specs = selected_audits(cfg)
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
        write_json(run.run_json, {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                  "config": run_cfg, "config_hash": config_hash(run_cfg),
                                  "seeds": {"audit": cfg.seed}, "versions": versions(),
                                  "data_hash": data_io.data_hash(tr.frame, key=salt),
                                  "synthetic_hash": data_io.data_hash(syn.frame, key=salt),
                                  "input_digests": digests, "outside_guarantee": [f.sentence for f in outside],
                                  "model_free": True})
        ctx = AuditContext(run=run, config=cfg, schema=schema_obj, train=tr.frame,
                           holdout=ho.frame if ho else pd.DataFrame(columns=tr.frame.columns),
                           synthetic=lambda: syn.frame, validity=None, salt=salt, stage=stage, model_free=True)
        return run_audits(ctx, specs, digests)


def _refuse_trained_run(run: RunDir) -> None:
    """A model-free audit never writes into a trained run: its report would show that run's ε and validity."""
    # split.json is written before training starts, so a killed training counts too
    if any(p.exists() for p in (run.split, run.model, run.generation, run.canaries, run.data_copy)):
        raise UserError(f"{run.root} holds a trained run (nothing was changed); give model-free audits their own --out "
                        f"(audit that run with `auditor audit {run.root}`)")
