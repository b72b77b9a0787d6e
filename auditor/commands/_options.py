"""The command-line flags of every setting, from one table, and the ``RunConfig`` they build.

Each row of ``FLAGS`` names a flag, the config setting it sets (``section.field``
of ``auditor.config``), its type (a range of ``auditor.bounds``, a choice, a
comma-separated list, a switch) and its help. The default is the config's own
field default, shown in the help; a setting whose default is None says what None
means (``none_means``, e.g. "fitted from the data"). ``auditor train``, ``run``,
``demo``, ``sweep`` and ``generate`` take their flags from here.

Precedence: the config's defaults, then a YAML file (``--config``), then the flags the
user actually gave (click's ``ParameterSource``; a flag left at its default never
overrides the file).

Imports only click and the light config modules: ``--help`` must not wait for torch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import click
from click.core import ParameterSource

from auditor.bounds import Bound, BoundedListType, BoundedType
from auditor.bounds import AUDIT_CANARIES, DATA, NUM_RECORDS, REPETITIONS, SAMPLE, TRAIN, WORKERS
from auditor.config import CLIPPING, DOMAINS, PRESET_NAMES, SCRUB_PII, RunConfig, field_default, from_mapping, load_yaml
from auditor.errors import UserError
from auditor.execution import ENGINES, EngineConfig

LORA_RANK = 8  # the rank of --lora without --lora-rank


@dataclass(frozen=True)
class Flag:
    """One command-line flag of a config setting.

    Attributes:
        flag: the long flag (``--epsilon``); its parameter name is the flag's words joined by ``_``.
        path: the setting it sets, ``section.field``; None for a flag with its own rule (``--lora``).
        help: what it does (the default is added from the config).
        type: a ``Bound`` (a number in range), a tuple of choices, ``list`` of a ``Bound`` via
            ``listed``, ``bool`` for a switch, or None for text.
        invert: a switch that sets its setting to False (``--no-dp`` sets ``train.dp``).
        none_means: the help's default when the config's default is None.
        short: a one-letter alias (``-n``).
        metavar: the value's name in the help.
        listed: the type is a comma-separated list of numbers in ``type``'s range.
    """

    flag: str
    path: str | None
    help: str
    type: Any = None
    invert: bool = False
    none_means: str | None = None
    short: str | None = None
    metavar: str | None = None
    listed: bool = False

    @property
    def name(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def default_text(self, defaults: Mapping[str, Any]) -> str | None:
        """The default shown in the help: the command's own (``defaults``: a value or its description), else the
        config's."""
        if self.type is bool:
            return None
        if self.path is None:
            return None
        value = defaults[self.path] if self.path in defaults else field_default(self.path)
        if value is None:
            return self.none_means
        if isinstance(value, (tuple, list)):
            return ",".join(str(v) for v in value)
        return str(value)


def _flags() -> dict[str, Flag]:
    rows = [
        # data
        Flag("--schema", "data.schema", "Declared (public) schema YAML. Without it the schema is inferred and "
             "reported as outside the DP guarantee.", metavar="FILE",
             none_means="inferred from the data (outside the guarantee)"),
        Flag("--holdout", "data.holdout", "Fraction of records held out (never trained on).", DATA["holdout"]),
        Flag("--domains", "data.domains", "Undeclared categorical domains and numeric magnitudes: selected with DP, "
             "or taken from the data (outside the guarantee).", DOMAINS),
        Flag("--learn-identifiers", "data.learn_identifiers", "Without --schema: learn the detected direct identifiers "
             "(names, emails, phones, IDs ...) instead of faking them.", bool),
        # train
        Flag("--model", "train.model", f"Size preset ({' | '.join(PRESET_NAMES)}), or a pretrained Hugging Face "
             "causal LM: a local directory, or a hub name (downloaded where the hub is reachable)."),
        Flag("--lora", None, "Pretrained --model only: train LoRA adapters (plus the embeddings) instead of every "
             f"weight (rank {LORA_RANK} unless --lora-rank).", bool),
        Flag("--lora-rank", "train.lora_rank", "Rank of the LoRA adapters (implies --lora).", TRAIN["lora_rank"],
             none_means=f"{LORA_RANK} with --lora"),
        Flag("--epsilon", "train.epsilon", "Target epsilon (noise found by the accountant); dropped when "
             "--noise-multiplier is given.", TRAIN["epsilon"]),
        Flag("--delta", "train.delta", "Target delta.", TRAIN["delta"], none_means="min(1e-5, 0.1/n)"),
        Flag("--noise-multiplier", "train.noise_multiplier", "Fixed noise multiplier instead of --epsilon.",
             TRAIN["noise_multiplier"]),
        Flag("--max-grad-norm", "train.max_grad_norm", "Per-example clipping norm C.", TRAIN["max_grad_norm"]),
        Flag("--epochs", "train.epochs", "Passes over the training records.", TRAIN["epochs"],
             none_means="fitted from the data"),
        Flag("--batch-size", "train.batch_size", "Expected (logical) batch size; Poisson sampling.",
             TRAIN["batch_size"], none_means="fitted from the data"),
        Flag("--physical-batch-size", "train.physical_batch_size", "Examples per forward pass (memory only).",
             TRAIN["physical_batch_size"], none_means="fitted to the row length"),
        Flag("--lr", "train.lr", "Peak learning rate.", TRAIN["lr"], none_means="fitted from the data"),
        Flag("--seed", "train.seed", "Seed of what is not a DP mechanism: model initialisation, holdout split, "
             "canary layout. DP randomness (sampling, noise, domain selection, canary secrets) is always secret.",
             TRAIN["seed"], none_means="fresh OS entropy"),
        Flag("--reproducible-noise", "train.reproducible_noise", "Debugging and tests only: draw the DP randomness "
             "from SEED, recorded in the run; the run has NO DP guarantee and every max_epsilon check fails.",
             TRAIN["seed"], metavar="SEED"),
        Flag("--keep-checkpoints", "train.keep_checkpoints", "Keep the last checkpoint (private, mode 0600, under "
             "RUN/.private/) after training.", bool),
        Flag("--keep-train-log", "train.keep_train_log", "Keep the exact training losses (private, mode 0600, "
             "RUN/.private/train_log.json); they are not DP.", bool),
        Flag("--no-dp", "train.dp", "Train the same model without DP (baseline; no DP guarantee).", bool,
             invert=True),
        Flag("--device", "train.device", "auto | cpu | cuda."),
        Flag("--clipping", "train.clipping", "Per-sample clipping engine (epsilon does not depend on it).",
             CLIPPING),
        Flag("--checkpoint-every", "train.checkpoint_every", "Steps between checkpoints.",
             TRAIN["checkpoint_every"]),
        # canaries
        Flag("--no-canaries", "canaries.enabled", "Do not plant canaries (no exposure audit).", bool, invert=True),
        Flag("--canary-repetitions", "canaries.repetitions", "Copies per scheduled canary.", REPETITIONS,
             listed=True),
        Flag("--audit-canaries", "canaries.audit_canaries", "Coin-flip canaries for the one-run DP audit.",
             AUDIT_CANARIES),
        # generate
        Flag("--num-records", "generate.num_records", "Rows to generate.", NUM_RECORDS, short="-n",
             none_means="as many as the input records"),
        Flag("--temperature", "generate.temperature", "Sampling temperature.", SAMPLE["temperature"]),
        Flag("--top-p", "generate.top_p", "Nucleus sampling: keep the likeliest tokens up to this mass.",
             SAMPLE["top_p"]),
        Flag("--magnitude-min-p", "generate.magnitude_min_p", "At each number's magnitude token, drop magnitudes "
             "less likely than this times the likeliest (cuts the DP noise floor that skews means).",
             SAMPLE["magnitude_min_p"], none_means="fitted from the data"),
        Flag("--gen-seed", "generate.seed", "Seed of the sampler.", SAMPLE["seed"]),
        Flag("--scrub-pii", "generate.scrub_pii", "Drop rows replaying training PII (outside the DP guarantee).",
             SCRUB_PII, none_means="keep them"),
        # audit and policy
        Flag("--no-ner", "audit.pii_ner", "PII scan with pattern recognizers only.", bool, invert=True),
        Flag("--policy", "policy.name", "Gate the report on a policy: internal, external or a policy YAML file.",
             metavar="P", none_means="no verdict"),
        # engine (auditor.execution): where the PII scan, distance attacks and generation run
        Flag("--partitions", "generate.partitions", "Independent sampling streams the rows are cut into; the "
             "rows depend on --gen-seed and this, never on the engine.", SAMPLE["partitions"],
             none_means="one per 25,000 rows"),
        Flag("--engine", "engine.name", "Where the PII scan, distance attacks and generation run: local worker "
             "processes, or a Dask cluster (docs/scale.md). Results do not depend on it.", ENGINES),
        Flag("--address", "engine.address", "--engine dask: the scheduler address (tcp://host:8786).",
             metavar="ADDR", none_means="a local Dask cluster started for the command"),
        Flag("--workers", "engine.workers", "Local worker processes (or workers of a local Dask cluster).",
             WORKERS, none_means="one per core"),
    ]
    return {row.name: row for row in rows}


FLAGS: dict[str, Flag] = _flags()
TRAIN_FLAGS = tuple(n for n, f in FLAGS.items() if (f.path or "train").split(".")[0] in ("data", "train", "canaries"))
SAMPLE_FLAGS = tuple(n for n, f in FLAGS.items() if (f.path or "").startswith("generate."))
AUDIT_FLAGS = ("no_ner", "policy")
ENGINE_FLAGS = ("engine", "address", "workers")
CONFIG_FLAG = "config"


def _click_type(flag: Flag):
    if flag.type is None or flag.type is bool:
        return None
    if isinstance(flag.type, tuple):
        return click.Choice(list(flag.type))
    if isinstance(flag.type, Bound):
        return BoundedListType(flag.type) if flag.listed else BoundedType(flag.type)
    raise TypeError(flag.type)


def click_option(flag: Flag, *, defaults: Mapping[str, Any] = {}, help: str | None = None,
                 type: Any = None, name: str | None = None, metavar: str | None = None) -> Callable:
    """The ``click.option`` of ``flag``; ``help``/``type``/``name``/``metavar`` replace the row's (the sweep's
    grid flags)."""
    text = help or flag.help
    shown = flag.default_text(defaults)
    if shown is not None:
        text = f"{text}  [default: {shown}]"
    decls = [flag.flag] + ([flag.short] if flag.short else []) + [name or flag.name]
    if flag.type is bool:
        return click.option(*decls, is_flag=True, default=False, help=text)
    return click.option(*decls, type=type or _click_type(flag), default=None, help=text,
                        metavar=metavar or flag.metavar)


def options(*names: str, defaults: Mapping[str, Any] = {}) -> Callable:
    """Decorate a command with the flags ``names`` (rows of ``FLAGS``), in table order of ``names``."""
    def decorate(f):
        for name in reversed(names):
            f = click_option(FLAGS[name], defaults=defaults)(f)
        return f
    return decorate


def config_option(f):
    return click.option("--config", CONFIG_FLAG, type=click.Path(dir_okay=False), metavar="FILE",
                        help="A YAML file of settings (sections data, train, canaries, generate, audit, policy); "
                             "flags given on the command line win over it.")(f)


def given(ctx: click.Context, name: str) -> bool:
    """Whether the user gave the parameter ``name`` (on the command line or in the environment)."""
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _normalized(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a YAML-shaped mapping with the shorthands expanded (``data: PATH``, ``schema:``, ``policy: P``)."""
    d = copy.deepcopy(dict(mapping))
    source = d.get("data")
    d["data"] = dict(source) if isinstance(source, Mapping) else ({"path": str(source)} if source else {})
    if d.get("schema") is not None:
        d["data"]["schema"] = d.pop("schema")
    d.pop("schema", None)
    policy = d.get("policy")
    d["policy"] = dict(policy) if isinstance(policy, Mapping) else {"name": policy}
    for section in ("data", "train", "canaries", "generate", "audit", "policy", "engine"):
        if not isinstance(d.get(section) or {}, Mapping):
            raise UserError(f"config: {section} must be a mapping")
        d[section] = dict(d.get(section) or {})
    return d


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with the settings of ``over`` put in, section by section (both YAML-shaped)."""
    out, over = _normalized(base), _normalized(over)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update({k: v for k, v in value.items() if not (key == "policy" and v is None)})
        else:
            out[key] = value
    return out


def overlay(ctx: click.Context, mapping: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The YAML-shaped ``mapping`` with every flag of ``FLAGS`` that the user gave put in.

    Raises:
        UserError: --no-dp with --epsilon or --noise-multiplier, or both of those.
    """
    d = _normalized(mapping)
    gave = {name for name in values if name in FLAGS and given(ctx, name)}
    if "no_dp" in gave and gave & {"epsilon", "noise_multiplier"}:
        raise UserError("--no-dp conflicts with --epsilon/--noise-multiplier")
    if {"epsilon", "noise_multiplier"} <= gave:
        raise UserError("give --epsilon or --noise-multiplier, not both")
    for name in gave:
        flag = FLAGS[name]
        if flag.path is None:
            continue
        section, key = flag.path.split(".")
        value = values[name]
        if flag.invert:
            if not value:
                continue
            value = False
        d[section][key] = list(value) if isinstance(value, tuple) else value
    train = d["train"]
    # A target given on the command line replaces the file's other target; --no-dp drops both.
    if "noise_multiplier" in gave:
        train.pop("epsilon", None)
    if "epsilon" in gave:
        train.pop("noise_multiplier", None)
    if "no_dp" in gave:
        train.pop("epsilon", None)
        train.pop("noise_multiplier", None)
    if "lora" in gave and values["lora"] and train.get("lora_rank") is None:
        train["lora_rank"] = LORA_RANK
    return d


def build_config(ctx: click.Context, values: Mapping[str, Any], *, data: str | None = None,
                 base: Mapping[str, Any] | None = None, need_data: bool = False) -> RunConfig:
    """The ``RunConfig`` of a command: ``base`` (a command's own defaults), then ``--config``, then the flags.

    ``data``: the DATA argument, when given (it wins over the file's ``data``); ``need_data``:
    refuse a config without input data.
    """
    mapping = merged(base or {}, load_yaml(values[CONFIG_FLAG]) if values.get(CONFIG_FLAG) else {})
    mapping = overlay(ctx, mapping, values)
    if data is not None:
        mapping["data"]["path"] = data
    config = from_mapping(mapping)
    if need_data and config.data.path is None:
        raise UserError("no input data: give DATA or `data:` in the --config file")
    return config


def engine_config(values: Mapping[str, Any]) -> EngineConfig:
    """The engine of a command without a ``RunConfig`` (``audit``, ``scan``), from its ``ENGINE_FLAGS`` values."""
    return EngineConfig(name=values.get("engine") or "local", address=values.get("address"),
                        workers=values.get("workers"))
