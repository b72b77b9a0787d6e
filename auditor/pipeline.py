"""The train, generate and report stages, wired to the run directory (auditor.chain runs them with the audits).

Each stage reads and writes only the run directory and can be re-run alone.
Input is validated completely before anything is written, so bad input leaves
no run directory behind (a one-line ``UserError``).
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from auditor import data as data_io
from auditor import execution
from auditor import identifiers
from auditor.codec import RowCodec, value_magnitude
from auditor.config import (MAY_DIFFER_ON_RESUME, RUN_JSON_SECTIONS, DataConfig, RunConfig, SampleConfig, TrainConfig,
                            rows_to_generate)
from auditor.dp.accounting import default_delta, select_domains
from auditor.dp.ledger import CANARY_ROWS_FIELD_ONLY, SHIPPED_TOKENIZER, PrivacyLedger, fact, note_after_training
from auditor.defaults import fill_training_defaults
from auditor.dp.secret import SecretSource
from auditor.errors import UserError
from auditor.fakes import fill_fakes
from auditor.generate import generate_records
from auditor.loading import (config_hash, load_codec, load_dataset, load_frames, load_trained_model, records_of,
                             resolve_schema, versions)
from auditor.model import (LoraSettings, describe_pretrained, is_preset, load_pretrained_tokenizer, merge_for_saving,
                           pretrained_for_codec)
from auditor.overwrite import refuse_overwriting_inputs
from auditor.policies import load_policy, policy_file
from auditor.rundir import RunDir, locks_run, read_json, write_json
from auditor.schema import Column, Schema, parse_magnitude
from auditor.train import broadcast_seed, fit, is_main_process, read_secret_source
from canaries.manifest import Manifest
from canaries.occurrences import scrub as scrub_canaries
from canaries.plant import plant
from reports.atomic import write_private
from reports.build import build_report
from reports.errors import ReportInputError
from reports.provenance import current_digests, stale_files, stamp
from reports.run_files import provenance_checked

log = logging.getLogger(__name__)


SEED_GOVERNS = ("model initialisation, holdout split, canary layout and filler values, the audits' own sampling; "
                "not the DP randomness "
                "(Poisson sampling, noise, domain selection) nor the canary secrets and coin flips, which come "
                "from OS entropy that is never written")


def _resumed_config(run: RunDir, given: RunConfig) -> RunConfig:
    """The interrupted run's config; the settings given must not change anything that shaped its training."""
    if not run.run_json.exists():
        raise UserError(f"{run.root}: nothing to resume (no run.json)")
    saved = RunConfig.from_dict(read_json(run.run_json)["config"])
    differ = given.resume_conflicts(saved)
    if differ:
        raise UserError(f"{run.root}: --resume needs the settings of the interrupted run (differs in {', '.join(differ)})")
    for name in MAY_DIFFER_ON_RESUME:
        section, key = name.split(".")
        setattr(getattr(saved, section), key, getattr(getattr(given, section), key))
    return saved


# ---------------------------------------------------------------------------- data

def _fill_domains(schema: Schema, train_frame: pd.DataFrame, cfg: DataConfig, ledger: PrivacyLedger | None,
                  rng: np.random.Generator) -> None:
    """Select undeclared categorical domains and numeric magnitudes, charged to ``ledger``.

    Both kinds of domain are one mechanism (noisy thresholded counts, one count per
    record and column), so they cost one Gaussian release whatever the number of
    columns, plus the delta share of the release threshold. ``--domains data`` takes
    them from the data, outside the guarantee. ``ledger`` None: nothing is accounted
    (a run without DP, a public stand-in), and the domains must come from the data.
    """
    cats = [c for c in schema.columns if c.kind == "categorical" and c.categories is None]
    nums = [c for c in schema.columns if c.kind == "numeric" and c.magnitudes is None]
    todo = cats + nums
    if not todo:
        return

    def values(c: Column) -> list[str]:
        if c.kind == "categorical":
            return train_frame[c.name].tolist()
        return [k for k in (value_magnitude(c, v) for v in train_frame[c.name].tolist()) if k is not None]

    if cfg.domains == "data":
        for c in cats:
            c.categories = sorted(set(train_frame[c.name]) - {""})
        for c in nums:
            c.magnitudes = sorted(set(values(c)), key=parse_magnitude) or None
        for c in todo:
            c.source = "inferred"
        if ledger is not None:
            ledger.note("domains_from_data", columns=", ".join(c.name for c in todo))
        return
    if cfg.domains != "dp":
        raise UserError(f"--domains must be dp or data, not {cfg.domains!r}")
    if ledger is None:
        raise ValueError("DP domain selection needs a privacy ledger to charge")
    delta_sel = ledger.reserve_delta("domain_selection", share=cfg.domain_delta_share)
    domains, record = select_domains({c.name: values(c) for c in todo},
                                     noise_multiplier=cfg.domain_noise, delta_selection=delta_sel, rng=rng)
    for c in cats:
        c.categories = domains[c.name]
    for c in nums:
        # None (every magnitude inside the bounds) when no magnitude passed the threshold.
        c.magnitudes = sorted(domains[c.name], key=parse_magnitude) or None
    for c in todo:
        c.source = "dp"
    record["values_kept"] = {k: len(v) for k, v in domains.items()}
    ledger.charge("domain_selection", noise_multiplier=cfg.domain_noise, sample_rate=1.0, steps=1, details=record)


# ---------------------------------------------------------------------------- train

@dataclass
class TrainOutcome:
    run: RunDir
    privacy: dict
    seconds: float


def train(data, out: str | Path, *, config: RunConfig | None = None, force: bool = False, resume: bool = False,
          progress: Callable[[int, int, float, float | None], None] | None = None,
          outside: Sequence[str] = (), echo: Callable[[str], None] | None = None) -> TrainOutcome:
    """Train a synthesizer on ``data`` (a path, a DataFrame or a list of texts) into run dir ``out``.

    ``outside``: ids of the facts (``auditor.dp.ledger.FACTS``) the caller knows lie outside
    the guarantee (a sweep's choice among its points: ``sweep_selection``). ``echo`` receives
    what the user should read before training starts (the identifier decisions, the fitted settings).
    """
    cfg = config or RunConfig()
    run = RunDir(Path(out))
    # Under torchrun every process prepares the same records; only rank 0 writes.
    main = is_main_process()
    if main:
        run.check_target(force=force, resume=resume)  # reads only; --force clears last, under the lock
    if resume:
        cfg = _resumed_config(run, cfg)
    cfg.validate()  # the one check of every setting (all stages'); those that need the records come below
    source = data if isinstance(data, (str, Path)) else (cfg.data.path if data is None else None)
    refuse_overwriting_inputs({"DATA": source, "--schema": cfg.data.schema}, {"--out": run.tool_paths()})
    cfg.train.seed = broadcast_seed(cfg.train.seed)  # fresh OS entropy when None, recorded in run.json
    if resume:  # the interrupted run's secret streams, so that its domains, canaries and noise continue
        secret = read_secret_source(run.secret_state)
    elif cfg.train.reproducible_noise is not None:
        secret = SecretSource.reproducible_from(cfg.train.reproducible_noise)
    else:
        secret = SecretSource.fresh()
    dataset = load_dataset(data if data is not None else cfg.data.path)
    if isinstance(data, (str, Path)):
        cfg.data.path = str(Path(data).resolve())
    schema, schema_outside = resolve_schema(dataset, cfg.data.schema)
    detection = None
    if cfg.data.schema is None and not dataset.is_text and not cfg.data.learn_identifiers:
        schema, detection = identifiers.fake_identifiers(schema, dataset.frame)
        schema_outside = [*schema_outside, identifiers.outside_guarantee_fact(detection)]
        if echo is not None:
            echo(identifiers.decision_table(detection))
    frame = dataset.frame
    if len(frame) < 2:
        raise UserError(f"{dataset.name}: {len(frame)} record(s); DP training needs many more")
    seed = cfg.train.seed
    if resume and main and data_io.data_hash(frame, key=run.salt()) != read_json(run.run_json)["data_hash"]:
        raise UserError(f"{dataset.name}: not the data of the interrupted run in {run.root}; resume needs the same data")
    # The seed lays the canaries out (positions, filler); their secrets and coins are secret randomness.
    domain_rng, canary_rng, canary_secret_rng = secret.numpy("domains"), np.random.default_rng([seed, 2]), \
        secret.numpy("canaries")
    train_idx, holdout_idx = data_io.split_holdout(len(frame), fraction=cfg.data.holdout, seed=seed)
    train_frame = frame.iloc[train_idx].reset_index(drop=True)
    n_canary_rows_max = (sum(cfg.canaries.repetitions) * cfg.canaries.per_repetition + cfg.canaries.audit_canaries
                         if cfg.canaries.enabled else 0)
    ledger = PrivacyLedger.for_training(
        cfg.train, delta=cfg.train.delta or default_delta(len(train_frame) + n_canary_rows_max))
    ledger.add(*schema_outside, *(fact(fact_id) for fact_id in outside))
    if cfg.train.dp:
        _fill_domains(schema, train_frame, cfg.data, ledger, domain_rng)
    else:
        _fill_domains(schema, train_frame, DataConfig(domains="data"), None, domain_rng)
    if not schema.learned:
        raise UserError("every column is declared fake: nothing to learn")
    pretrained = None if is_preset(cfg.train.model) else cfg.train.model
    try:
        if pretrained is None:
            codec, model = RowCodec(schema), None
        else:
            # The pretrained model's own tokenizer is public and fixed before any record is read.
            codec = RowCodec(schema, tokenizer=load_pretrained_tokenizer(pretrained, local_only=False))
            model = pretrained_for_codec(pretrained, codec, local_only=False, seed=seed or 0,
                                         lora=LoraSettings(rank=cfg.train.lora_rank) if cfg.train.lora_rank else None)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    records = records_of(train_frame, schema)
    manifest = None
    if cfg.canaries.enabled:
        try:
            records, manifest = plant(records, schema, config=cfg.canaries, rng=canary_rng,
                                      secret_rng=canary_secret_rng, encoder=codec)
        except ValueError as exc:
            raise UserError(f"canaries: {exc}") from None
    sequences = [codec.encode(r) for r in records]
    only_fields = _canary_fields(manifest, codec, len(sequences))
    fitted = fill_training_defaults(cfg.train, n=len(sequences), max_length=codec.max_length)
    if fitted and echo is not None:
        t = cfg.train
        echo(f"settings fitted to the table (n = {len(sequences)} records of at most {codec.max_length} tokens, "
             f"docs/defaults.md): {t.epochs:g} epochs, batch {t.batch_size}, lr {t.lr:.3g}, physical batch "
             f"{t.physical_batch_size} ({t.steps(len(sequences))} steps); flags override")
    cfg.train.check_records(len(sequences))

    # Everything is validated and loaded: from here on, write (an earlier run is cleared only now).
    with run.new_run(force=force, resume=resume) if main else nullcontext():
        if main and not resume:
            cfg_dict = cfg.to_dict(RUN_JSON_SECTIONS)
            write_json(run.run_json, {
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "config": cfg_dict,
                "config_hash": config_hash(cfg_dict),
                "seeds": {"seed": seed, "governs": SEED_GOVERNS},
                "versions": versions(),
                # keyed with the run's private salt: it detects other data on resume, and confirms no guessed table
                "data_hash": data_io.data_hash(frame, key=run.salt()),
                "data_name": dataset.name,
                "n_records": len(frame),
                "text": dataset.is_text,
                "fitted_defaults": {"fields": fitted, "rule": "auditor.defaults (docs/defaults.md): from the number "
                                    f"of training records n = {len(sequences)} and the row length "
                                    f"L = {codec.max_length} tokens"},
            })
            data_io.save_split(run.split, train_idx, holdout_idx)
            schema.dump(run.schema)
            if manifest is not None:
                manifest.write(run.canaries)
            if not isinstance(data, (str, Path)):
                _save_private_frame(run, frame)
        result = fit(sequences, grammar=codec.grammar, vocab_size=codec.vocab_size, pad_id=codec.pad_id,
                     config=cfg.train, ledger=ledger, secret=secret, max_length=codec.max_length,
                     checkpoint=run.checkpoint, secret_state=run.secret_state, resume=resume, progress=progress,
                     model=model, only_fields=only_fields)
        if cfg.train.dp:
            ledger.note("record_count_public", n=len(sequences))  # DP-SGD treats the record count as public
        else:
            ledger.note("no_dp")
        if secret.reproducible:
            ledger.note("reproducible_noise")
        ledger.add(*(fact("fake_column", column=c.name, fake=c.fake) for c in schema.columns if c.fake))
        ledger.record_inputs(n_canary_rows=manifest.n_planted_rows if manifest else 0)
        if only_fields is not None:
            ledger.record_inputs(canary_rows=CANARY_ROWS_FIELD_ONLY)
        ledger.record_inputs(reproducible_noise=secret.reproducible)
        if pretrained is None:
            ledger.record_inputs(tokenizer=SHIPPED_TOKENIZER)
        else:
            ledger.record_inputs(tokenizer=f"the pretrained model's own tokenizer ({pretrained}; public, data-independent)",
                                 pretrained=describe_pretrained(pretrained, result.model))
        if detection is not None:
            ledger.record_identifier_detection(detection.to_dict())
        if main:
            merge_for_saving(result.model).save_pretrained(run.model, safe_serialization=True)
            write_json(run.codec, codec.to_dict())
            privacy = ledger.write(run.privacy)
            _finish_private_traces(run, cfg.train, result.history)
        else:
            privacy = ledger.to_record()
    return TrainOutcome(run=run, privacy=privacy, seconds=result.seconds)


def _finish_private_traces(run: RunDir, cfg: TrainConfig, losses: list[dict]) -> None:
    """Training is over: the secret generators' state always goes, the checkpoint unless
    --keep-checkpoints; the exact losses (non-DP statistics) are kept, privately, only with --keep-train-log."""
    run.secret_state.unlink(missing_ok=True)
    if not cfg.keep_checkpoints:
        run.clear_stage(run.checkpoint.parent)
    if cfg.keep_train_log:
        run.private.mkdir(mode=0o700, exist_ok=True)
        write_private(run.train_log, json.dumps(losses, indent=2) + "\n")
    if run.private.is_dir() and not any(run.private.iterdir()):
        run.private.rmdir()


def _canary_fields(manifest, codec: RowCodec, n: int) -> list[int | tuple[int, ...] | None] | None:
    """Per training row: None, or for a canary row the index of its secret's field (the only one it teaches;
    the indices of its span's fields for a record-span canary).

    A canary row's other fields are filler made up around the secret (random
    categories, numbers, dates); learned, they would teach relations that are not in
    the data, e.g. a 16-copy canary pulling a rare category's costs towards its filler.
    """
    if manifest is None or codec.schema.text:
        return None
    out: list[int | tuple[int, ...] | None] = [None] * n
    fields = codec.fields
    for canary in manifest.canaries:
        for pos in canary.rows:
            out[pos] = (tuple(fields.index(f) for f in canary.fields) if canary.fields
                        else fields.index(canary.field))
    return out


def _save_private_frame(run: RunDir, frame: pd.DataFrame) -> None:
    write_private(run.data_copy, "\n".join(json.dumps(r) for r in frame.to_dict(orient="records")) + "\n")


# ---------------------------------------------------------------------------- generate

@dataclass
class GenerateOutcome:
    run: RunDir
    path: Path
    stats: dict


@locks_run
def generate(out: str | Path, *, num_records: int | None = None, config: SampleConfig | None = None,
             device: str = "auto", scrub_pii: str | None = None, force: bool = True,
             progress: Callable[[int, int], None] | None = None) -> GenerateOutcome:
    """Sample synthetic records from a trained run; writes synthetic.* and generation.json.

    ``num_records`` and ``scrub_pii``, when given, override ``config``'s; without
    either, as many rows as the run's input records (``rows_to_generate``).

    Rows that contain a canary secret are dropped before release (and counted).
    With ``scrub_pii="replayed"`` rows that replay PII of the training split are
    dropped too; that filter consults the training data, so the run records it as
    outside the DP guarantee.

    The old report and every audit the new files invalidate are removed
    (``clear_invalidated``); generation.json records the model and synthetic file
    it belongs to.
    """
    run = RunDir(Path(out))
    run.require_trained()
    cfg = config or SampleConfig()
    scrub_pii = cfg.scrub_pii if scrub_pii is None else scrub_pii
    if scrub_pii not in (None, "replayed"):
        raise UserError("--scrub-pii must be 'replayed'")
    num_records = rows_to_generate(cfg.num_records if num_records is None else num_records,
                                   read_json(run.run_json)["n_records"])
    salt = run.salt()
    model_digest = current_digests(run.root, ["model"], salt)["model"]  # before loading: see auditor.audits
    codec = load_codec(run)
    if cfg.magnitude_min_p is None:
        from auditor.defaults import fitted_magnitude_min_p

        cfg = replace(cfg, magnitude_min_p=fitted_magnitude_min_p(
            dp=bool(read_json(run.privacy)["dp"]), learns_numeric=any(c.kind == "numeric" for c in codec.schema.learned)))
    model = load_trained_model(run, device)
    t0 = time.perf_counter()
    # Partitions go to the engine's workers only from a CPU model: they sample on the CPU, as it does here.
    on_cpu = next(model.parameters()).device.type == "cpu"
    records, stats = generate_records(model, codec, n=num_records, config=cfg, progress=progress,
                                      executor=execution.current() if on_cpu else None)
    stats["seconds"] = round(time.perf_counter() - t0, 2)
    stats["temperature"], stats["top_p"], stats["seed"] = cfg.temperature, cfg.top_p, cfg.seed
    stats["magnitude_min_p"] = cfg.magnitude_min_p
    if run.canaries.exists():
        manifest = Manifest.load(run.canaries)
        secrets = {c.id: c.secret for c in manifest.canaries}
        result = scrub_canaries(records, secrets, drop_ids=manifest.scrub_ids(),
                                partial_fraction=float(manifest.config.get("partial_fraction", 2 / 3)),
                                fields={c.id: c.match_fields for c in manifest.canaries})
        records = result.kept
        stats["scrubbed_canary_rows"] = result.scrubbed_rows
        stats["canary_occurrences"] = result.to_dict()["occurrences"]
    else:
        stats["scrubbed_canary_rows"] = 0
    stats["scrubbed_pii_rows"] = 0
    text = codec.schema.text
    if not text and any(c.fake for c in codec.schema.columns):
        records = fill_fakes(records, codec.schema, seed=cfg.seed)
        stats["fake_columns"] = {c.name: c.fake for c in codec.schema.columns if c.fake}
    frame = pd.DataFrame({"text": records}) if text else pd.DataFrame(records, columns=codec.schema.names)
    if scrub_pii:
        from auditor.pii import scrub_replayed  # Presidio and spaCy load only when the scrub is asked for

        train_frame, _, _ = load_frames(run)
        scrubbed, n = scrub_replayed(frame if not text else frame["text"].tolist(),
                                     train_frame if not text else train_frame["text"].tolist(), mode="drop")
        frame = scrubbed if isinstance(scrubbed, pd.DataFrame) else pd.DataFrame({"text": list(scrubbed)})
        stats["scrubbed_pii_rows"] = n
        note_after_training(run.privacy, "pii_replay_scrub")
    stats["released"] = len(frame)
    if not text:
        formulas = stats["formula_like_cells"] = data_io.formula_like_cells(frame)
        if formulas["total"] or formulas["header"]:
            log.warning("synthetic.csv: %d cell(s) and %d column name(s) start with = + - @, a tab or CR; a "
                        "spreadsheet may run them as formulas (written as is; see generation.json)",
                        formulas["total"], len(formulas["header"]))
    # the old report goes first; a text run never keeps a stale .csv, and vice versa
    run.clear_stage(*run.report_files(), run.synthetic(not text))
    path = data_io.write_records(frame["text"].tolist() if text else frame, run.synthetic(text))
    synthetic_digest = current_digests(run.root, ["synthetic"], salt)["synthetic"]
    write_json(run.generation, stamp(stats, {"model": model_digest, "synthetic": synthetic_digest}))
    clear_invalidated(run)
    return GenerateOutcome(run=run, path=path, stats=stats)


def clear_invalidated(run: RunDir) -> list[Path]:
    """Remove every audit file whose recorded inputs differ from the run's files now; returns them.

    The audit files are those the report checks (``reports.run_files.provenance_checked``:
    the contract's and any other registered audit's); a file that is not valid JSON is
    left for the report to name.
    """
    contents = {}
    for rel in provenance_checked(run.root):
        path = run.root / rel
        if path.parent != run.audit or not path.is_file():
            continue
        try:
            contents[path] = read_json(path)
        except ValueError:
            continue
    stale = [p for p, c in contents.items() if not isinstance(c, dict)]
    stale += list(stale_files(run.root, {p: c for p, c in contents.items() if isinstance(c, dict)}))
    run.clear_stage(*stale)
    return stale


# ---------------------------------------------------------------------------- report

@dataclass
class ReportOutcome:
    record: dict
    paths: dict[str, Path]

    @property
    def verdict(self) -> str:
        return self.record["verdict"]

    @property
    def exit_code(self) -> int:
        return 1 if self.verdict == "fail" else 0


@locks_run
def report(out: str | Path, *, policy: str | None = None) -> ReportOutcome:
    """Build report.json/html/md from the run's files, with a verdict when a policy is given."""
    from reports.write import write_report  # matplotlib loads only when a report is written

    run = RunDir(Path(out))
    refuse_overwriting_inputs({"--policy": policy_file(policy)}, {"report": run.report_files()})
    pol = load_policy(policy) if policy is not None else None
    try:
        record = build_report(out, policy=pol)
    except ReportInputError as exc:
        raise UserError(str(exc)) from None
    return ReportOutcome(record=record, paths=write_report(out, record))
