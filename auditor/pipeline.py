"""The stages, wired to the run directory: train -> generate -> audit -> report.

Each stage reads and writes only the run directory and can be re-run alone.
Input is validated completely before anything is written, so bad input leaves
no run directory behind (a one-line ``UserError``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

import auditor
from auditor import data as data_io
from auditor import identifiers, schema_inference
from auditor.bounds import DATA, check_fields
from auditor.codec import RowCodec, value_magnitude
from auditor.dp.accounting import default_delta, select_domains
from auditor.defaults import TRAIN_FIELDS, fill_training_defaults
from auditor.dp.secret import REPRODUCIBLE_NOTE, SecretSource
from auditor.errors import UserError
from auditor.generate import SampleConfig, generate_records
from auditor.model import (LoraSettings, describe_pretrained, is_preset, load_pretrained_tokenizer, merge_for_saving,
                           pretrained_for_codec)
from auditor.overwrite import refuse_overwriting_inputs
from auditor.rundir import RunDir, locks_run, read_json, write_json
from auditor.schema import Column, Schema, parse_magnitude
from auditor.train import TrainConfig, broadcast_seed, fit, is_main_process, read_secret_source
from canaries.config import CanaryConfig
from canaries.manifest import Manifest
from canaries.occurrences import scrub as scrub_canaries
from canaries.plant import plant

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """Where the records come from and how they are split and described."""

    path: str | None = None
    schema: str | None = None  # a declared (public) schema YAML; None: inferred (outside the guarantee)
    holdout: float = 0.2
    domains: str = "dp"  # categorical domains not declared: "dp" (selected with DP) or "data" (opt-in, outside)
    domain_noise: float = 4.0  # noise multiplier of the DP domain selection
    domain_delta_share: float = 0.1  # share of delta spent on the selection threshold
    learn_identifiers: bool = False  # inferred schema: learn detected direct identifiers instead of faking them

    def __post_init__(self) -> None:
        check_fields(self, DATA)


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    canaries: CanaryConfig = field(default_factory=CanaryConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"data": asdict(self.data), "train": asdict(self.train), "canaries": self.canaries.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        return cls(data=DataConfig(**data["data"]), train=TrainConfig(**data["train"]),
                   canaries=CanaryConfig.from_dict(data["canaries"]))


RESUME_MAY_CHANGE = ("device", "checkpoint_every", "keep_checkpoints", "keep_train_log")

SEED_GOVERNS = ("model initialisation, holdout split, canary layout and filler values, the audits' own sampling; "
                "not the DP randomness "
                "(Poisson sampling, noise, domain selection) nor the canary secrets and coin flips, which come "
                "from OS entropy that is never written")


def _resumed_config(run: RunDir, given: RunConfig) -> RunConfig:
    """The interrupted run's config; the flags given must not change anything that matters."""
    if not run.run_json.exists():
        raise UserError(f"{run.root}: nothing to resume (no run.json)")
    saved = RunConfig.from_dict(read_json(run.run_json)["config"])
    mine, theirs = given.to_dict(), saved.to_dict()
    for key in ("seed", *TRAIN_FIELDS):  # not given: the interrupted run's (fresh, or fitted to the data)
        if mine["train"].get(key) is None:
            mine["train"][key] = theirs["train"][key]
    differ = [f"{sec}.{k}" for sec in ("train", "canaries") for k in theirs[sec]
              if mine[sec].get(k) != theirs[sec].get(k) and k not in RESUME_MAY_CHANGE]
    if differ:
        raise UserError(f"{run.root}: --resume needs the settings of the interrupted run (differs in {', '.join(differ)})")
    for key in RESUME_MAY_CHANGE:
        setattr(saved.train, key, getattr(given.train, key))
    return saved


def config_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()


def versions() -> dict[str, str]:
    import opacus
    import transformers

    return {"dp-auditor": auditor.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "opacus": opacus.__version__, "numpy": np.__version__,
            "pandas": pd.__version__}


# ---------------------------------------------------------------------------- data

def load_dataset(data: str | Path | pd.DataFrame | list) -> data_io.Dataset:
    if isinstance(data, pd.DataFrame):
        return data_io.dataset_from_frame(data)
    if isinstance(data, (list, tuple)):
        return data_io.dataset_from_texts(data)
    return data_io.load_records(data)


def resolve_schema(dataset: data_io.Dataset, schema_path: str | None) -> tuple[Schema, list[str]]:
    """The schema and the facts that lie outside the DP guarantee."""
    if schema_path:
        try:
            schema = Schema.load(schema_path)
        except (OSError, ValueError) as exc:
            raise UserError(f"schema {schema_path}: {exc}") from None
    if dataset.is_text:
        return (schema if schema_path else schema_inference.text_schema()), []
    if schema_path:
        missing = [n for n in schema.names if n not in dataset.frame.columns]
        if missing:
            raise UserError(f"schema {schema_path}: columns not in the data: {', '.join(missing)}")
        from auditor.fakes import check_fake

        for col in schema.columns:
            try:
                check_fake(col)
            except ValueError as exc:
                raise UserError(f"schema {schema_path}: {exc}") from None
        schema_inference.require_valid(dataset.frame[schema.names], schema, name=dataset.name)
        return schema, []
    schema = schema_inference.infer_schema(dataset.frame)
    return schema, schema_inference.schema_facts_outside_guarantee(schema)


def fake_identifiers(schema: Schema, frame: pd.DataFrame, *, ner: bool = True) -> tuple[Schema, "identifiers.Detection"]:
    """The inferred ``schema`` with detected direct identifiers declared fake, and the detection.

    The detection reads the private data outside DP (``auditor.identifiers``).
    """
    detection = identifiers.detect_identifiers(frame, schema, ner=ner)
    return identifiers.apply_detection(schema, detection, frame), detection


def records_of(frame: pd.DataFrame, schema: Schema) -> list:
    if schema.text:
        return frame[schema.columns[0].name].tolist()
    return frame[schema.names].to_dict(orient="records")


def _fill_domains(schema: Schema, train_frame: pd.DataFrame, cfg: DataConfig, delta: float,
                  rng: np.random.Generator) -> tuple[list, dict | None, list[str], float]:
    """Select undeclared categorical domains and numeric magnitudes.

    Returns (prior history, record, outside, delta_for_accountant). Both kinds of
    domain are one mechanism (noisy thresholded counts, one count per record and
    column), so they cost one Gaussian release whatever the number of columns.
    """
    cats = [c for c in schema.columns if c.kind == "categorical" and c.categories is None]
    nums = [c for c in schema.columns if c.kind == "numeric" and c.magnitudes is None]
    todo = cats + nums
    if not todo:
        return [], None, [], delta

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
        return [], None, [f"domains (categories, numeric magnitudes) of {', '.join(c.name for c in todo)} taken "
                          "from the data (opt-in --domains data)"], delta
    if cfg.domains != "dp":
        raise UserError(f"--domains must be dp or data, not {cfg.domains!r}")
    delta_sel = delta * cfg.domain_delta_share
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
    return [(cfg.domain_noise, 1.0, 1)], record, [], delta - delta_sel


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

    ``outside``: what the caller knows lies outside the guarantee (a sweep's choice among
    its points), added to ``privacy.json``'s ``outside_guarantee``. ``echo`` receives
    what the user should read before training starts (the identifier decisions).
    """
    cfg = config or RunConfig()
    run = RunDir(Path(out))
    # Under torchrun every process prepares the same records; only rank 0 writes.
    main = is_main_process()
    if main:
        run.check_target(force=force, resume=resume)  # reads only; --force clears last, under the lock
    if resume:
        cfg = _resumed_config(run, cfg)
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
    outside = schema_outside + list(outside)
    detection = None
    if cfg.data.schema is None and not dataset.is_text and not cfg.data.learn_identifiers:
        schema, detection = fake_identifiers(schema, dataset.frame)
        outside.append(identifiers.outside_guarantee_line(detection))
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
    delta_total = cfg.train.delta or default_delta(len(train_frame) + n_canary_rows_max)
    prior, selection, outside_dom, delta_acc = ([], None, [], delta_total)
    if cfg.train.dp:
        prior, selection, outside_dom, delta_acc = _fill_domains(schema, train_frame, cfg.data, delta_total, domain_rng)
    else:
        _fill_domains(schema, train_frame, DataConfig(domains="data"), delta_total, domain_rng)
    outside += outside_dom
    if not schema.learned:
        raise UserError("every column is declared fake: nothing to learn")
    pretrained = None if is_preset(cfg.train.model) else cfg.train.model
    try:
        cfg.train.validate_model()
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
    try:
        cfg.train.validate(len(sequences))
    except ValueError as exc:
        raise UserError(str(exc)) from None

    # Everything is validated and loaded: from here on, write (an earlier run is cleared only now).
    with run.new_run(force=force, resume=resume) if main else nullcontext():
        if main and not resume:
            cfg_dict = cfg.to_dict()
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
                     config=cfg.train, delta=delta_acc, prior_history=prior, secret=secret,
                     max_length=codec.max_length, checkpoint=run.checkpoint, secret_state=run.secret_state,
                     resume=resume, progress=progress, model=model, only_fields=only_fields)
        privacy = result.privacy
        if cfg.train.dp:
            privacy["delta"] = delta_total
            privacy["delta_accountant"] = delta_acc
            privacy["delta_split"] = {"accountant": delta_acc, "domain_selection": delta_total - delta_acc}
            privacy["guarantee"] = (f"(epsilon, delta) = ({privacy['epsilon']:.6g}, {delta_total:.3g}) for the whole "
                                    f"training: epsilon is the accountant's at delta_accountant = {delta_acc:.3g}, "
                                    f"and delta adds the domain selection's threshold share {delta_total - delta_acc:.3g}")
            if selection:
                privacy["domain_selection"] = selection
        privacy["n_records"] = len(sequences)
        privacy["n_canary_rows"] = manifest.n_planted_rows if manifest else 0
        if only_fields is not None:
            privacy["canary_rows"] = "learned on their secret's field only (their other fields are filler)"
        privacy["outside_guarantee"] = outside + public_counts(len(sequences), dp=cfg.train.dp) + (
            ["no DP guarantee: trained without DP (--no-dp)"] if not cfg.train.dp else []) + (
            [REPRODUCIBLE_NOTE] if secret.reproducible else [])
        privacy["reproducible_noise"] = secret.reproducible
        if pretrained is None:
            privacy["tokenizer"] = "shipped byte-level BPE fitted on public text (data-independent)"
        else:
            privacy["tokenizer"] = f"the pretrained model's own tokenizer ({pretrained}; public, data-independent)"
            privacy["pretrained"] = describe_pretrained(pretrained, result.model)
        if detection is not None:
            privacy["identifier_detection"] = detection.to_dict()
        privacy["not_learned"] = [f"{c.name}: fresh fakes ({c.fake}), drawn independently of the data"
                                  for c in schema.columns if c.fake]
        if main:
            merge_for_saving(result.model).save_pretrained(run.model, safe_serialization=True)
            write_json(run.codec, codec.to_dict())
            write_json(run.privacy, privacy)
            _finish_private_traces(run, cfg.train, result.history)
    return TrainOutcome(run=run, privacy=privacy, seconds=result.seconds)


def public_counts(n: int, *, dp: bool) -> list[str]:
    """What ``privacy.json`` must say about the record count: DP-SGD treats it as public."""
    if not dp:
        return []
    return [f"the number of training records (n = {n}, planted canary rows included) is treated as public: it "
            "sets the sampling rate, the number of steps, the learning-rate schedule, the default delta and "
            "the default number of generated rows, and is written in this file"]


def _finish_private_traces(run: RunDir, cfg: TrainConfig, losses: list[dict]) -> None:
    """Training is over: the secret generators' state always goes, the checkpoint unless
    --keep-checkpoints; the exact losses (non-DP statistics) are kept, privately, only with --keep-train-log."""
    from reports.atomic import write_private

    run.secret_state.unlink(missing_ok=True)
    if not cfg.keep_checkpoints:
        run.clear_stage(run.checkpoint.parent)
    if cfg.keep_train_log:
        run.private.mkdir(mode=0o700, exist_ok=True)
        write_private(run.train_log, json.dumps(losses, indent=2) + "\n")
    if run.private.is_dir() and not any(run.private.iterdir()):
        run.private.rmdir()


def _canary_fields(manifest, codec: RowCodec, n: int) -> list[int | None] | None:
    """Per training row: None, or for a canary row the index of its secret's field (the only one it teaches).

    A canary row's other fields are filler made up around the secret (random
    categories, numbers, dates); learned, they would teach relations that are not in
    the data, e.g. a 16-copy canary pulling a rare category's costs towards its filler.
    """
    if manifest is None or codec.schema.text:
        return None
    out: list[int | None] = [None] * n
    fields = codec.fields
    for canary in manifest.canaries:
        for pos in canary.rows:
            out[pos] = fields.index(canary.field)
    return out


def _save_private_frame(run: RunDir, frame: pd.DataFrame) -> None:
    from reports.atomic import write_private

    write_private(run.data_copy, "\n".join(json.dumps(r) for r in frame.to_dict(orient="records")) + "\n")


# ---------------------------------------------------------------------------- loading a run

def load_codec(run: RunDir) -> RowCodec:
    return RowCodec.from_dict(read_json(run.codec))


def load_trained_model(run: RunDir, device: str = "auto") -> torch.nn.Module:
    from auditor.model import load_model
    from auditor.train import resolve_device

    model = load_model(run.model)
    return model.to(resolve_device(device)).eval()


def load_frames(run: RunDir) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """(train, holdout, is_text) of the run's input, canaries excluded; checks the data hash."""
    meta = read_json(run.run_json)
    if run.data_copy.exists():
        lines = run.data_copy.read_text(encoding="utf-8").splitlines()
        frame = pd.DataFrame([json.loads(x) for x in lines if x]).astype(str)
    else:
        path = meta["config"]["data"]["path"]
        frame = data_io.load_records(path).frame
        if data_io.data_hash(frame, key=run.salt()) != meta["data_hash"]:
            raise UserError(f"{path}: the data changed since training (hash mismatch)")
    train_idx, holdout_idx = data_io.load_split(run.split)
    return (frame.iloc[train_idx].reset_index(drop=True), frame.iloc[holdout_idx].reset_index(drop=True),
            bool(meta.get("text")))


# ---------------------------------------------------------------------------- generate

@dataclass
class GenerateOutcome:
    run: RunDir
    path: Path
    stats: dict


@locks_run
def generate(out: str | Path, *, num_records: int, config: SampleConfig | None = None, device: str = "auto",
             scrub_pii: str | None = None, force: bool = True,
             progress: Callable[[int, int], None] | None = None) -> GenerateOutcome:
    """Sample ``num_records`` synthetic records from a trained run; writes synthetic.* and generation.json.

    Rows that contain a canary secret are dropped before release (and counted).
    With ``scrub_pii="replayed"`` rows that replay PII of the training split are
    dropped too; that filter consults the training data, so the run records it as
    outside the DP guarantee.

    The old report and every audit the new files invalidate are removed
    (``clear_invalidated``); generation.json records the model and synthetic file
    it belongs to.
    """
    from reports.provenance import current_digests, stamp

    run = RunDir(Path(out))
    run.require_trained()
    if scrub_pii not in (None, "replayed"):
        raise UserError("--scrub-pii must be 'replayed'")
    cfg = config or SampleConfig()
    salt = run.salt()
    model_digest = current_digests(run.root, ["model"], salt)["model"]  # before loading: see auditor.audits
    codec = load_codec(run)
    if cfg.magnitude_min_p is None:
        from auditor.defaults import fitted_magnitude_min_p

        cfg = replace(cfg, magnitude_min_p=fitted_magnitude_min_p(
            dp=bool(read_json(run.privacy)["dp"]), learns_numeric=any(c.kind == "numeric" for c in codec.schema.learned)))
    model = load_trained_model(run, device)
    t0 = time.perf_counter()
    records, stats = generate_records(model, codec, n=num_records, config=cfg, progress=progress)
    stats["seconds"] = round(time.perf_counter() - t0, 2)
    stats["temperature"], stats["top_p"], stats["seed"] = cfg.temperature, cfg.top_p, cfg.seed
    stats["magnitude_min_p"] = cfg.magnitude_min_p
    if run.canaries.exists():
        manifest = Manifest.load(run.canaries)
        secrets = {c.id: c.secret for c in manifest.canaries}
        inserted = [c.id for c in manifest.canaries if c.inserted]
        result = scrub_canaries(records, secrets, drop_ids=inserted,
                                partial_fraction=float(manifest.config.get("partial_fraction", 2 / 3)),
                                fields={c.id: c.field for c in manifest.canaries})
        records = result.kept
        stats["scrubbed_canary_rows"] = result.scrubbed_rows
        stats["canary_occurrences"] = result.to_dict()["occurrences"]
    else:
        stats["scrubbed_canary_rows"] = 0
    stats["scrubbed_pii_rows"] = 0
    text = codec.schema.text
    if not text and any(c.fake for c in codec.schema.columns):
        from auditor.fakes import fill_fakes

        records = fill_fakes(records, codec.schema, seed=cfg.seed)
        stats["fake_columns"] = {c.name: c.fake for c in codec.schema.columns if c.fake}
    frame = pd.DataFrame({"text": records}) if text else pd.DataFrame(records, columns=codec.schema.names)
    if scrub_pii:
        from auditor.pii import scrub_replayed

        train_frame, _, _ = load_frames(run)
        scrubbed, n = scrub_replayed(frame if not text else frame["text"].tolist(),
                                     train_frame if not text else train_frame["text"].tolist(), mode="drop")
        frame = scrubbed if isinstance(scrubbed, pd.DataFrame) else pd.DataFrame({"text": list(scrubbed)})
        stats["scrubbed_pii_rows"] = n
        privacy = read_json(run.privacy)
        note = "PII replay scrub of the synthetic data consulted the training data"
        if note not in privacy["outside_guarantee"]:
            privacy["outside_guarantee"].append(note)
            write_json(run.privacy, privacy)
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

    Only the audits that record provenance (``auditor.audits.AUDIT_INPUTS``) are
    considered; a file that is not valid JSON is left for the report to name.
    """
    from auditor.audits import AUDIT_INPUTS
    from reports.provenance import stale_files

    contents = {}
    for path in (run.audit / f"{name}.json" for name in AUDIT_INPUTS):
        if not path.is_file():
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
    from auditor.policies import load_policy, policy_file
    from reports.build import build_report
    from reports.errors import ReportInputError
    from reports.write import write_report

    run = RunDir(Path(out))
    refuse_overwriting_inputs({"--policy": policy_file(policy)}, {"report": run.report_files()})
    pol = load_policy(policy) if policy is not None else None
    try:
        record = build_report(out, policy=pol)
    except ReportInputError as exc:
        raise UserError(str(exc)) from None
    return ReportOutcome(record=record, paths=write_report(out, record))


# ---------------------------------------------------------------------------- everything

@dataclass
class RunOutcome:
    run: RunDir
    privacy: dict
    generation: dict
    report: ReportOutcome
    timings: dict[str, float]

    @property
    def exit_code(self) -> int:
        return self.report.exit_code

    def summary(self) -> str:
        """What a user reads at the end of `auditor run` / `auditor demo`."""
        from reports.summary import headline

        p, r = self.privacy, self.run.root
        dp = (f"DP: epsilon = {p['epsilon']:.2f}, delta = {p['delta']:.1e}" if p["dp"]
              else "NO DP GUARANTEE (trained with --no-dp)")
        lines = [
            f"run directory   {r}",
            f"  model         {self.run.model}  ({dp})",
            f"  synthetic     {self.run.existing_synthetic()}  ({self.generation['released']} rows, "
            f"validity {self.generation['validity']:.1%})",
            f"  audits        {self.run.audit}/",
            f"  report        {self.report.paths['html']}",
            f"                {self.report.paths['md']}",
            f"                {self.report.paths['json']}",
        ]
        lines.append("")
        heads = headline(self.report.record)
        width = max([16] + [len(h.label) + 2 for h in heads])  # "Membership inference" is wider than 16
        lines += [f"{h.label:<{width}}{h.value}  {h.detail}".rstrip() for h in heads]
        lines.append(f"{'time':<{width}}" + ", ".join(f"{k} {v:.0f} s" for k, v in self.timings.items()))
        lines.append(f"{'verdict':<{width}}{self.report.verdict.upper()}")
        return "\n".join(lines)


def run_all(data, out: Path, *, config: RunConfig, num_records: int | None = None,
            sample: SampleConfig | None = None, scrub_pii: str | None = None, policy: str | None = None,
            pii_ner: bool = True, force: bool = False, quiet: bool = False) -> RunOutcome:
    """train -> generate -> audit -> report into ``out``."""
    from auditor.audits import AuditConfig, audit_run
    from auditor.commands._options import count_progress, train_progress

    if policy is not None:
        from auditor.policies import load_policy, policy_file

        load_policy(policy)  # a bad policy is bad input: fail before training
        refuse_overwriting_inputs({"--policy": policy_file(policy)}, {"--out": RunDir(Path(out)).tool_paths()})
    (sample or SampleConfig()).validate()  # and so are bad sampling settings
    timings: dict[str, float] = {}
    t = time.perf_counter()
    with train_progress(quiet) as progress:
        trained = train(data, out, config=config, force=force, progress=progress,
                        echo=None if quiet else (lambda s: print(s, flush=True)))
    timings["train"] = time.perf_counter() - t
    # The other stages take the run's lock again; holding it across them keeps other writers out in between.
    with trained.run.locked():
        t = time.perf_counter()
        n = read_json(trained.run.run_json)["n_records"] if num_records is None else num_records
        with count_progress(quiet, "generate") as progress:
            gen = generate(out, num_records=n, config=sample, scrub_pii=scrub_pii, progress=progress,
                           device=config.train.device)
        timings["generate"] = time.perf_counter() - t
        t = time.perf_counter()
        stage = None if quiet else (lambda s: print(f"audit: {s}", flush=True))
        audit_run(out, config=AuditConfig(pii_ner=pii_ner, seed=config.train.seed or 0), device=config.train.device,
                  stage=stage)
        timings["audit"] = time.perf_counter() - t
        t = time.perf_counter()
        rep = report(out, policy=policy)
        timings["report"] = time.perf_counter() - t
    return RunOutcome(run=trained.run, privacy=trained.privacy, generation=gen.stats, report=rep, timings=timings)
