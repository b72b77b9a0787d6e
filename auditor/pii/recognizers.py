"""The registry of PII recognizers, built from config data, never from the network.

The scan skips a recognizer where it provably cannot match (:mod:`auditor.pii.prefilter`);
the recognizers themselves find what Presidio's find.
Each registry entry turns one ``recognizers:`` item of the YAML config
(:class:`auditor.pii.config.RecognizerSpec`) into a Presidio recognizer. Most
are Presidio's predefined recognizers; one is ours:

- :class:`OfflineEmailRecognizer`: Presidio's ``EmailRecognizer`` validates a
  match with the module-level ``tldextract.extract``, whose default extractor
  downloads the Public Suffix List on first use (and caches it under ``$HOME``).
  Ours validates with an extractor that reads only tldextract's bundled snapshot.
  (Presidio 2.2's ``UrlRecognizer`` is a plain regex and needs no fix.)
- ``pattern``: a regex recognizer with context words, defined entirely in YAML.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable

import tldextract
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    CryptoRecognizer,
    DateRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    MedicalLicenseRecognizer,
    NhsRecognizer,
    PhoneRecognizer,
    SpacyRecognizer,
    UrlRecognizer,
    UsBankRecognizer,
    UsItinRecognizer,
    UsLicenseRecognizer,
    UsPassportRecognizer,
    UsSsnRecognizer,
)

from auditor.errors import UserError
from auditor.pii.config import RecognizerSpec

#: Entity types only a statistical NER model finds (no pattern recognizer does).
NER_ONLY_ENTITIES = ("PERSON", "LOCATION", "NRP")


@functools.cache
def offline_tld_extractor() -> tldextract.TLDExtract:
    """A tldextract extractor that never fetches: no suffix-list URLs, no disk cache.

    With ``suffix_list_urls=()`` tldextract skips the HTTP fetch and, with
    ``fallback_to_snapshot=True``, uses the Public Suffix List snapshot shipped
    inside the package.
    """
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer, validating domains against the bundled suffix list."""

    def validate_result(self, pattern_text: str) -> bool:
        """A match is an e-mail address if its domain has a known public suffix."""
        return offline_tld_extractor()(pattern_text).fqdn != ""


@dataclass(frozen=True)
class RecognizerType:
    """A registry entry.

    Attributes:
        build: ``(spec, language=..., ner_entities=...) -> EntityRecognizer``.
        needs_ner: the recognizer reads entities of a statistical NER model and
            cannot run on a blank pipeline.
    """

    build: Callable[..., EntityRecognizer]
    needs_ner: bool = False


def _predefined(cls: type[EntityRecognizer]) -> RecognizerType:
    """Entry for a Presidio recognizer whose only option is its context words."""

    def build(spec: RecognizerSpec, *, language: str, ner_entities: tuple[str, ...]) -> EntityRecognizer:
        context = spec.option("context")
        kwargs = {"supported_language": language}
        if context:
            kwargs["context"] = [str(c) for c in context]
        return cls(**kwargs)

    return RecognizerType(build=build)


def _build_phone(spec: RecognizerSpec, *, language: str, ner_entities: tuple[str, ...]) -> EntityRecognizer:
    regions = spec.option("regions", list(PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS))
    context = spec.option("context")
    return PhoneRecognizer(
        supported_language=language,
        supported_regions=tuple(str(r) for r in regions),
        context=[str(c) for c in context] if context else None,
    )


def _build_spacy_ner(spec: RecognizerSpec, *, language: str, ner_entities: tuple[str, ...]) -> EntityRecognizer:
    return SpacyRecognizer(supported_language=language, supported_entities=list(ner_entities))


def _build_pattern(spec: RecognizerSpec, *, language: str, ner_entities: tuple[str, ...]) -> EntityRecognizer:
    """A ``PatternRecognizer`` from YAML.

    Options: ``entity`` (required), ``name``, ``patterns`` (list of
    ``{name, regex, score}``, required), ``context`` (list of words).
    """
    entity = spec.option("entity")
    name = spec.option("name") or f"pattern_{entity}"
    patterns = spec.option("patterns")
    if not entity or not patterns:
        raise UserError(f"pattern recognizer {name!r} needs 'entity' and 'patterns'")
    built = []
    for i, pat in enumerate(patterns):
        if not isinstance(pat, dict) or "regex" not in pat:
            raise UserError(f"pattern recognizer {name!r}: pattern {i} needs a 'regex'")
        try:
            re.compile(pat["regex"])
        except re.error as exc:
            raise UserError(f"pattern recognizer {name!r}: pattern {i} is not a valid regex ({exc.msg})") from None
        score = float(pat.get("score", 0.5))
        if not 0.0 <= score <= 1.0:
            raise UserError(f"pattern recognizer {name!r}: pattern {i} score must lie in [0, 1]")
        built.append(Pattern(name=str(pat.get("name", f"{name}_{i}")), regex=str(pat["regex"]), score=score))
    context = spec.option("context")
    return PatternRecognizer(
        supported_entity=str(entity),
        name=str(name),
        patterns=built,
        context=[str(c) for c in context] if context else None,
        supported_language=language,
    )


REGISTRY: dict[str, RecognizerType] = {
    "spacy_ner": RecognizerType(build=_build_spacy_ner, needs_ner=True),
    "email": _predefined(OfflineEmailRecognizer),
    "url": _predefined(UrlRecognizer),
    "phone": RecognizerType(build=_build_phone),
    "credit_card": _predefined(CreditCardRecognizer),
    "us_ssn": _predefined(UsSsnRecognizer),
    "us_itin": _predefined(UsItinRecognizer),
    "us_passport": _predefined(UsPassportRecognizer),
    "us_driver_license": _predefined(UsLicenseRecognizer),
    "us_bank_number": _predefined(UsBankRecognizer),
    "medical_license": _predefined(MedicalLicenseRecognizer),
    "uk_nhs": _predefined(NhsRecognizer),
    "iban": _predefined(IbanRecognizer),
    "ip_address": _predefined(IpRecognizer),
    "date": _predefined(DateRecognizer),
    "crypto": _predefined(CryptoRecognizer),
    "pattern": RecognizerType(build=_build_pattern),
}


def recognizer_type(spec: RecognizerSpec) -> RecognizerType:
    """The registry entry for ``spec``, or a ``UserError`` naming the known types."""
    try:
        return REGISTRY[spec.type]
    except KeyError:
        raise UserError(f"unknown recognizer type {spec.type!r}; known: {', '.join(sorted(REGISTRY))}") from None
