"""The one typed configuration of a run: data, train, canaries, generate, audit, policy and engine.

Every setting of ``auditor train | run | demo | sweep`` lives in one section of a
``RunConfig``; the CLI flags (``auditor.commands._options``) and the YAML file
(``--config run.yaml``) name the same fields. A ``RunConfig`` is validated once,
where it enters the pipeline (``RunConfig.validate``); the checks that need the
records (delta below 1/n, batch smaller than n) run when the records are known
(``TrainConfig.check_records``).

YAML shape (every key optional)::

    data: records.csv                  # or {path, schema, holdout, domains}
    schema: schema.yaml                # shorthand of data.schema
    train: {model: small, epsilon: 4, epochs: 10, seed: 0}    # TrainConfig fields
    canaries: {repetitions: [1, 4], audit_canaries: 20}       # CanaryConfig fields
    generate: {num_records: 600, temperature: 1.0, seed: 0}   # SampleConfig fields
    audit: {pii_ner: false, max_members: 500}                 # AuditConfig fields
    policy: internal                   # or {name: internal}; a preset or a policy YAML
    engine: {name: dask, address: tcp://scheduler:8786}      # EngineConfig fields (auditor.execution)

Relative paths in the file (data, schema, a policy file) resolve beside the file.

This module imports no torch, transformers, opacus or pandas: the CLI reads it
to build its options and its help.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from auditor.bounds import AUDIT, DATA, SAMPLE, TRAIN, check_fields
from auditor.defaults import TRAIN_FIELDS as FITTED_TRAIN_FIELDS
from auditor.errors import UserError
from auditor.execution import EngineConfig
from auditor.schema import yaml_problem
from canaries.config import CanaryConfig

# The size presets of auditor.model (a fresh LLaMA-style model); any other --model is a pretrained one.
PRESET_NAMES = ("tiny", "small", "medium", "base", "large")
CLIPPING = ("auto", "bookkeeping", "opacus")
DOMAINS = ("dp", "data")
SCRUB_PII = ("replayed",)
LOSS_WEIGHTING = ("column", "token")

# The sections that shape the trained model: a resumed run (or a reused sweep point) must agree on
# them, except on the settings that only say where and how often the run works.
TRAINED_SECTIONS = ("train", "canaries")
# What run.json records of the config: the sections the train stage used.
RUN_JSON_SECTIONS = ("data", *TRAINED_SECTIONS)
MAY_DIFFER_ON_RESUME = frozenset({"train.device", "train.checkpoint_every", "train.keep_checkpoints",
                                  "train.keep_train_log"})


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _choice(obj: Any, name: str, allowed: tuple, flag: str) -> None:
    value = getattr(obj, name)
    if value not in allowed:
        raise UserError(f"{flag} must be one of {', '.join(str(a) for a in allowed)}, not {value!r}")


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

    def validate(self) -> None:
        check_fields(self, DATA)
        _choice(self, "domains", DOMAINS, "--domains")


@dataclass
class TrainConfig:
    """Training settings; every number that changes epsilon is recorded in privacy.json."""

    model: str = "small"
    dp: bool = True
    epsilon: float | None = 8.0
    delta: float | None = None
    noise_multiplier: float | None = None
    max_grad_norm: float = 1.0
    # None: fitted to the table by auditor.defaults (from n and the codec's row length) when training starts
    epochs: float | None = None
    batch_size: int | None = None
    physical_batch_size: int | None = None
    lr: float | None = None
    warmup: float = 0.05
    weight_decay: float = 0.0
    accountant: str = "prv"
    clipping: str = "auto"
    loss_weighting: str = "column"
    seed: int | None = None  # model initialisation only (not a DP mechanism)
    reproducible_noise: int | None = None  # debugging/tests: DP randomness from this recorded seed, no guarantee
    device: str = "auto"
    checkpoint_every: int = 25
    keep_checkpoints: bool = False
    keep_train_log: bool = False
    lora_rank: int | None = None  # pretrained models only: LoRA adapters of this rank instead of full fine-tuning

    def __post_init__(self) -> None:
        check_fields(self, TRAIN)

    def validate_model(self) -> None:
        """The ``--model`` checks, before anything is loaded."""
        if not self.model:
            raise UserError(f"--model: give a size preset ({', '.join(PRESET_NAMES)}) or a pretrained model")
        if self.model not in PRESET_NAMES and not Path(self.model).expanduser().is_dir():
            if self.model.startswith(("/", ".", "~")) or _hub_offline():
                raise UserError(f"--model {self.model!r}: not a size preset ({', '.join(PRESET_NAMES)}) nor a local "
                                "model directory" + (" (the Hugging Face hub is off: HF_HUB_OFFLINE)"
                                                     if _hub_offline() else ""))
        if self.lora_rank is not None and self.model in PRESET_NAMES:
            raise UserError("--lora fine-tunes a pretrained model; a size preset is trained in full")

    def validate(self) -> None:
        """Every check that needs no records (fields may have been set after construction: the bounds again)."""
        check_fields(self, TRAIN)
        _choice(self, "loss_weighting", LOSS_WEIGHTING, "--loss-weighting")
        _choice(self, "clipping", CLIPPING, "--clipping")
        if self.dp and self.epsilon is not None and self.noise_multiplier is not None:
            raise UserError("give --epsilon or --noise-multiplier, not both")
        if self.dp and self.epsilon is None and self.noise_multiplier is None:
            raise UserError("give --epsilon or --noise-multiplier (or train without DP)")
        self.validate_model()

    def check_records(self, n_records: int) -> None:
        """The checks that need the number of training records ``n``."""
        if self.dp and self.delta is not None and not (0 < self.delta < 1.0 / n_records):
            raise UserError(f"--delta must be in (0, 1/n) = (0, {1.0 / n_records:.3g}) for n = {n_records} records")
        if self.batch_size is not None and self.batch_size >= n_records:  # None: fitted below n / 4
            raise UserError(
                f"--batch-size {self.batch_size} needs more records than the {n_records} available "
                "(DP-SGD samples a fraction of the records per step)"
            )

    def steps(self, n_records: int) -> int:
        """Logical steps for ``epochs`` passes at expected batch ``batch_size``: ``ceil(epochs * n / batch)`` (both
        set: see ``auditor.defaults``)."""
        return max(1, math.ceil(self.epochs * n_records / self.batch_size))


@dataclass
class SampleConfig:
    """How many rows to generate and how to sample them."""

    num_records: int | None = None  # None: as many as the training records (``rows_to_generate``)
    temperature: float = 1.0
    top_p: float = 1.0
    magnitude_min_p: float | None = None  # None: auditor.defaults.fitted_magnitude_min_p for the run
    batch_size: int = 256
    seed: int = 0
    max_invalid_rate: float = 0.5
    scrub_pii: str | None = None  # "replayed": drop rows replaying training PII (outside the guarantee)
    # Independent sampling streams the rows are cut into (auditor.generate.generate_records); the rows depend
    # on the seed and this number, never on the engine. None: one per ROWS_PER_PARTITION rows.
    partitions: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_fields(self, SAMPLE)
        if self.scrub_pii is not None:
            _choice(self, "scrub_pii", SCRUB_PII, "--scrub-pii")


def rows_to_generate(requested: int | None, n_records: int) -> int:
    """The number of rows to generate: ``requested``, or as many as the run's input records ``n_records``."""
    return n_records if requested is None else requested


@dataclass
class AuditConfig:
    """Settings of the audit stage.

    Attributes:
        audits: which audits to run; None: every registered audit (``auditor.audits``) that the run's
            files allow. The names are checked against the registry by ``auditor.audits.selected_audits``
            (this module imports no audit code).
        max_members: member / non-member records scored by the MIA (each side).
        reference_epochs: epochs of the MIA reference model (non-DP, same preset,
            trained on half of the holdout: a disjoint population split).
        reference: train a reference model for the calibrated-loss signal.
        quasi_identifiers: columns an attacker may know (distance attribute
            inference); default: columns with a DATE_TIME or LOCATION hint and
            numeric columns without a PII hint.
        secret_column: the attribute to infer; default the first categorical column.
        tstr_target: the TSTR target; default the first categorical column.
        pii_ner: use an NER model for PII if one is installed.
    """

    audits: tuple[str, ...] | None = None
    max_members: int = 500
    reference_epochs: float | None = None
    reference: bool = True
    quasi_identifiers: tuple[str, ...] | None = None
    secret_column: str | None = None
    tstr_target: str | None = None
    pii_ner: bool = True
    pii_threshold: float = 0.4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.audits is not None:
            self.audits = tuple(self.audits)
        if self.quasi_identifiers is not None:
            self.quasi_identifiers = tuple(self.quasi_identifiers)
        check_fields(self, AUDIT)

    def validate(self) -> None:
        check_fields(self, AUDIT)


@dataclass
class PolicyConfig:
    """The policy the report is gated on: a preset (``internal``, ``external``) or a policy YAML; None: no verdict."""

    name: str | None = None

    def validate(self) -> None:
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise UserError("--policy: give internal, external or a policy YAML file")


SECTIONS: dict[str, type] = {"data": DataConfig, "train": TrainConfig, "canaries": CanaryConfig,
                             "generate": SampleConfig, "audit": AuditConfig, "policy": PolicyConfig,
                             "engine": EngineConfig}


@dataclass
class RunConfig:
    """Everything a run is made of, one section per stage."""

    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    canaries: CanaryConfig = field(default_factory=CanaryConfig)
    generate: SampleConfig = field(default_factory=SampleConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)

    def to_dict(self, sections: tuple[str, ...] = tuple(SECTIONS)) -> dict[str, Any]:
        out = {}
        for name in sections:
            section = getattr(self, name)
            out[name] = section.to_dict() if name == "canaries" else _plain(asdict(section))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        """From ``to_dict``'s shape; a missing section (an older run.json) takes its defaults.

        Raises:
            UserError: an unknown section or key, or a value outside its range (naming it).
        """
        return from_mapping(data)

    def sections(self) -> dict[str, Any]:
        """Section name -> the section object."""
        return {name: getattr(self, name) for name in SECTIONS}

    def validate(self) -> None:
        """Every check that needs no records; the one boundary check of a run."""
        self.data.validate()
        self.train.validate()
        self.generate.validate()
        self.audit.validate()
        self.policy.validate()
        self.engine.validate()

    def differences(self, other: "RunConfig") -> list[str]:
        """The settings whose values differ between ``self`` and ``other``, by dotted name (``train.lr``), in order."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{sec}.{key}" for sec in SECTIONS for key in sorted(set(mine[sec]) | set(theirs[sec]))
                if mine[sec].get(key) != theirs[sec].get(key)]

    def resume_conflicts(self, saved: "RunConfig") -> list[str]:
        """The differences from the config a run was trained with that forbid continuing it (or reusing it).

        Only the trained sections count, less ``MAY_DIFFER_ON_RESUME``; a seed left
        unset (None) takes the saved run's, and so does a training setting left to the fitted
        defaults (``auditor.defaults.TRAIN_FIELDS``: the same data gives the same values).
        """
        given = self
        unset = [k for k in ("seed", *FITTED_TRAIN_FIELDS) if getattr(self.train, k) is None]
        if unset:
            given = copy.deepcopy(self)
            for k in unset:
                setattr(given.train, k, getattr(saved.train, k))
        return [d for d in given.differences(saved)
                if d.split(".")[0] in TRAINED_SECTIONS and d not in MAY_DIFFER_ON_RESUME]


def _plain(d: dict) -> dict:
    """Tuples as lists, so that a config read back from JSON compares equal."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def field_default(path: str) -> Any:
    """The default of the setting ``section.field`` (e.g. ``train.epsilon`` -> 8.0)."""
    section, name = path.split(".")
    for f in fields(SECTIONS[section]):
        if f.name == name:
            return f.default_factory() if callable(f.default_factory) else f.default
    raise KeyError(path)


def from_mapping(data: Mapping[str, Any]) -> RunConfig:
    """A ``RunConfig`` from a mapping shaped like the YAML file (see the module docstring).

    A ``train.noise_multiplier`` without a ``train.epsilon`` replaces the default target
    epsilon; ``train.dp: false`` drops both.

    Raises:
        UserError: an unknown section or key, a section that is not a mapping, or a bad value.
    """
    if not isinstance(data, Mapping):
        raise UserError("config: expected a mapping of sections")
    data = dict(data)
    unknown = sorted(set(data) - set(SECTIONS) - {"schema"})
    if unknown:
        raise UserError(f"config: unknown key(s) {', '.join(unknown)}")
    source = data.get("data")
    source = {"path": source} if isinstance(source, (str, os.PathLike)) else source
    source = dict(_section(source, "data"))
    if data.get("schema") is not None:
        source["schema"] = data["schema"]
    if isinstance(source.get("path"), os.PathLike):
        source["path"] = str(source["path"])
    train = dict(_section(data.get("train"), "train"))
    if train.get("noise_multiplier") is not None and "epsilon" not in train:
        train["epsilon"] = None  # a fixed noise multiplier replaces the default target epsilon
    if train.get("dp") is False:
        if train.get("epsilon") is not None or train.get("noise_multiplier") is not None:
            raise UserError("--no-dp conflicts with --epsilon/--noise-multiplier")
        train["epsilon"] = train["noise_multiplier"] = None
    policy = data.get("policy")
    policy = {"name": policy} if policy is None or isinstance(policy, (str, os.PathLike)) else policy
    policy = dict(_section(policy, "policy"))
    if isinstance(policy.get("name"), os.PathLike):
        policy["name"] = str(policy["name"])
    canaries = dict(_section(data.get("canaries"), "canaries"))
    try:
        return RunConfig(data=_typed(DataConfig, source, "data"), train=_typed(TrainConfig, train, "train"),
                         canaries=CanaryConfig.from_dict(canaries),
                         generate=_typed(SampleConfig, _section(data.get("generate"), "generate"), "generate"),
                         audit=_typed(AuditConfig, _section(data.get("audit"), "audit"), "audit"),
                         policy=_typed(PolicyConfig, policy, "policy"),
                         engine=_typed(EngineConfig, _section(data.get("engine"), "engine"), "engine"))
    except UserError:
        raise
    except (TypeError, ValueError) as exc:
        raise UserError(f"config: {exc}") from None


def _section(values: Any, name: str) -> Mapping[str, Any]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise UserError(f"config: {name} must be a mapping")
    return values


def _typed(cls, values: Mapping[str, Any], section: str):
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise UserError(f"config: unknown {section} key(s) {', '.join(unknown)}")
    return cls(**values)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of a config YAML file; relative data, schema and policy paths resolve against the file.

    Raises:
        UserError: unreadable file, invalid YAML, or not a mapping.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"config {path}: cannot read ({exc.__class__.__name__})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config {path}: {yaml_problem(exc)}") from None
    except ValueError:  # an integer too long to convert (Python caps int parsing at 4,300 digits)
        raise UserError(f"config {path}: a number is too long") from None
    if not isinstance(data, Mapping):
        raise UserError(f"config {path}: expected a mapping")
    data = copy.deepcopy(dict(data))
    if isinstance(data.get("data"), Mapping):
        data["data"] = dict(data["data"])
        for key in ("path", "schema"):
            if data["data"].get(key):
                data["data"][key] = _beside(path, data["data"][key])
    elif data.get("data"):
        data["data"] = _beside(path, data["data"])
    if data.get("schema"):
        data["schema"] = _beside(path, data["schema"])
    policy = data.get("policy")
    name = policy.get("name") if isinstance(policy, Mapping) else policy
    if name and (path.parent / str(name)).is_file():
        data["policy"] = _beside(path, name)
    return data


def _beside(config: Path, value: str) -> str:
    p = Path(str(value)).expanduser()
    return str(p if p.is_absolute() else (config.parent / p))
