"""The PII audit's configuration: one frozen, hashable object, loaded from YAML.

The packaged defaults live in ``auditor/data/pii_recognizers.yaml``. A config is
hashable so that the analyzer engine it describes can be built once per process
and cached under it (``auditor.pii.engine.get_engine``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from auditor.errors import UserError

DEFAULTS_RESOURCE = "pii_recognizers.yaml"


class FrozenMapping(tuple):
    """A YAML mapping frozen as a tuple of ``(key, value)`` pairs, sorted by key."""


def freeze(value: Any) -> Any:
    """A hashable copy of YAML data: mappings -> :class:`FrozenMapping`, lists -> tuples."""
    if isinstance(value, Mapping):
        return FrozenMapping(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: plain dicts and lists again."""
    if isinstance(value, FrozenMapping):
        return {k: thaw(v) for k, v in value}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class RecognizerSpec:
    """One entry of ``recognizers:``: a registry type and its options.

    Attributes:
        type: key in ``auditor.pii.recognizers.REGISTRY``.
        options: the entry's other keys, frozen (see :func:`freeze`).
    """

    type: str
    options: FrozenMapping = FrozenMapping()

    @classmethod
    def from_mapping(cls, data: Any) -> "RecognizerSpec":
        if not isinstance(data, Mapping) or "type" not in data:
            raise UserError("each recognizer entry must be a mapping with a 'type' key")
        opts = {k: v for k, v in data.items() if k != "type"}
        return cls(type=str(data["type"]), options=freeze(opts))

    def option(self, name: str, default: Any = None) -> Any:
        """The option ``name`` as plain YAML data (lists, dicts), or ``default``."""
        return thaw(dict(self.options)[name]) if name in dict(self.options) else default


@dataclass(frozen=True)
class PiiConfig:
    """Everything the PII audit can be told.

    Attributes:
        language: language code of the data (the NLP pipeline and recognizers).
        model: spaCy pipeline name or path; ``None`` picks the best installed one.
        ner: ``False`` forces the blank pipeline (pattern recognizers only).
        entities: entity types to report; ``None`` means all the recognizers support.
        score_threshold: findings scoring below this are dropped (0..1).
        allow_list: exact strings never reported as PII.
        recognizers: the detectors, by registry type.
        ner_labels_to_ignore: spaCy NER labels dropped before mapping to entities.
        batch_size: texts per ``nlp.pipe`` batch.
        n_process: processes for ``nlp.pipe``.
        max_examples: redacted examples kept in the report.
        quasi_identifiers: role -> accepted (normalised) column names.
    """

    language: str = "en"
    model: str | None = None
    ner: bool = True
    entities: tuple[str, ...] | None = None
    score_threshold: float = 0.4
    allow_list: tuple[str, ...] = ()
    recognizers: tuple[RecognizerSpec, ...] = ()
    ner_labels_to_ignore: tuple[str, ...] = ()
    batch_size: int = 256
    n_process: int = 1
    max_examples: int = 20
    quasi_identifiers: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def __post_init__(self):
        if not 0.0 <= float(self.score_threshold) <= 1.0:
            raise UserError(f"score_threshold must lie in [0, 1], got {self.score_threshold}")
        for name in ("batch_size", "n_process"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if int(self.max_examples) < 0:
            raise UserError(f"max_examples must be >= 0, got {self.max_examples}")
        if not self.recognizers:
            raise UserError("the PII config names no recognizers")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base: "PiiConfig | None" = None) -> "PiiConfig":
        """A config from YAML-like data; keys not given (or null) keep ``base``'s values.

        Raises:
            UserError: an unknown key or a value of the wrong shape.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown PII config key(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if value is None and key not in ("entities", "model"):
                continue  # null means "not given": keep the base value
            if key == "recognizers":
                value = tuple(RecognizerSpec.from_mapping(v) for v in (value or ()))
            elif key == "quasi_identifiers":
                value = tuple(
                    (str(role), tuple(normalise_column_name(c) for c in cols))
                    for role, cols in (value or {}).items()
                )
            elif key in ("entities",):
                value = None if value is None else tuple(str(v) for v in value)
            elif key in ("allow_list", "ner_labels_to_ignore"):
                value = tuple(str(v) for v in (value or ()))
            elif key == "score_threshold":
                value = float(value)
            elif key in ("batch_size", "n_process", "max_examples"):
                value = int(value)
            values[key] = value
        if base is None:
            return cls(**values)
        return dataclasses.replace(base, **values)

    def with_extra_recognizers(self, specs: tuple[RecognizerSpec, ...]) -> "PiiConfig":
        """This config with ``specs`` appended to its recognizers."""
        return dataclasses.replace(self, recognizers=self.recognizers + tuple(specs))


def normalise_column_name(name: Any) -> str:
    """Lower-case, non-alphanumerics -> ``_`` (``"Date of Birth"`` -> ``date_of_birth``)."""
    return "".join(ch if ch.isalnum() else "_" for ch in str(name).strip().lower()).strip("_")


def _read_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UserError(f"{path} is not valid YAML{where}") from None


def default_config() -> PiiConfig:
    """The packaged defaults (``auditor/data/pii_recognizers.yaml``)."""
    text = resources.files("auditor").joinpath("data", DEFAULTS_RESOURCE).read_text(encoding="utf-8")
    return PiiConfig.from_mapping(yaml.safe_load(text))


def load_config(config: "PiiConfig | Mapping[str, Any] | str | Path | None" = None) -> PiiConfig:
    """Resolve what a caller passes as ``config``.

    Args:
        config: a ``PiiConfig`` (returned as is), a mapping or a YAML path
            (overrides of the packaged defaults), or ``None`` (the defaults).
    """
    if isinstance(config, PiiConfig):
        return config
    base = default_config()
    if config is None:
        return base
    if isinstance(config, (str, Path)):
        data = _read_yaml(config) or {}
        if not isinstance(data, Mapping):
            raise UserError(f"{config} must hold a mapping of PII config keys")
        return PiiConfig.from_mapping(data, base=base)
    return PiiConfig.from_mapping(config, base=base)


def load_recognizer_specs(path: str | Path) -> tuple[RecognizerSpec, ...]:
    """The ``recognizers:`` list of a YAML file (for ``--recognizers``)."""
    data = _read_yaml(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("recognizers"), list):
        raise UserError(f"{path} must hold a 'recognizers:' list")
    return tuple(RecognizerSpec.from_mapping(v) for v in data["recognizers"])


def load_allow_list(path: str | Path) -> tuple[str, ...]:
    """One allowed value per line; blank lines and ``#`` comments skipped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"allow-list file not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#"))
