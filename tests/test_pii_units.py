"""Pure parts of auditor.pii: normal forms, overlap resolution, replay classes, config.

No analyzer engine here: these run in milliseconds.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from presidio_analyzer import RecognizerResult

from auditor.errors import UserError
from auditor.pii.config import PiiConfig, RecognizerSpec, default_config, load_config, normalise_column_name
from auditor.pii.normalize import (
    alnum_key,
    date_key,
    digits_key,
    email_key,
    name_key,
    phone_key,
    replay_key,
    text_key,
    url_key,
)
from auditor.pii.prefilter import min_phone_digits
from auditor.pii.recognizers import REGISTRY, offline_tld_extractor, recognizer_type
from auditor.pii.replay import (
    IN_CONTEXT,
    NOVEL,
    REPLAYED,
    ReplayIndex,
    classify,
    exact_row_copies,
    quasi_identifier_copies,
    replay_counts,
)
from auditor.pii.scan import Finding, as_table, cell_text, column_context, resolve_overlaps, score_summary

# ----------------------------------------------------------------- normal forms


def test_phone_key_drops_formatting_extension_and_country_code():
    assert phone_key("+1 (555) 010-2030 x12") == "5550102030"
    assert phone_key("555.010.2030") == "5550102030"
    assert phone_key("001-555-010-2030") == "5550102030"
    assert phone_key("+44 20 7946 0958") == "442079460958"


@settings(max_examples=50, deadline=None)
@given(st.from_regex(r"[2-9]\d{2}[2-9]\d{6}", fullmatch=True), st.sampled_from(["{a}-{b}-{c}", "({a}) {b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}", "{a}{b}{c}"]))
def test_phone_key_is_format_invariant(number, fmt):
    text = fmt.format(a=number[:3], b=number[3:6], c=number[6:])
    assert phone_key(text) == number


def test_digit_and_code_keys():
    assert digits_key("123-45-6789") == "123456789"
    assert alnum_key("DE89 3704-0044") == "de8937040044"


def test_email_and_url_keys():
    assert email_key(" MailTo:J.Doe@Example.COM ") == "j.doe@example.com"
    assert url_key("https://www.Example.com/path/") == "example.com/path"


def test_name_key_folds_case_accents_titles_and_order():
    assert name_key("Dr. José  SMITH") == "jose smith"
    assert name_key("Smith, Jose") == "jose smith"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.from_regex(r"[A-Za-z]{2,8}", fullmatch=True), min_size=1, max_size=4))
def test_name_key_ignores_token_order_and_case(tokens):
    assert name_key(" ".join(tokens)) == name_key(" ".join(reversed(tokens)).upper())


def test_date_key_parses_common_formats_to_iso():
    for text in ("1984-03-07", "03/07/1984", "March 7, 1984", "7 Mar 1984", "1984/03/07"):
        assert date_key(text) == "1984-03-07"
    assert date_key("next Tuesday") == "next tuesday"


def test_text_key_and_replay_key_families():
    assert text_key("  New   York, ") == "new york"
    assert replay_key("PERSON", "Jordan") == replay_key("LOCATION", "jordan")
    assert replay_key("US_SSN", "123-45-6789") == replay_key("US_BANK_NUMBER", "123456789")
    assert replay_key("PHONE_NUMBER", "ext") == ("text", "ext")
    assert replay_key("SOMETHING_NEW", " Ab ") == ("text", "ab")


# ----------------------------------------------------------------- scan helpers


def test_cell_text_and_column_context():
    assert cell_text(None) is None
    assert cell_text(float("nan")) is None
    assert cell_text("   ") is None
    assert cell_text(12345.0) == "12345"
    assert cell_text(1.5) == "1.5"
    assert column_context("phoneNumber") == ["phone", "number"]
    assert column_context("date_of-birth") == ["date", "of", "birth"]


def test_as_table_accepts_frames_and_text_records_only():
    table, is_text = as_table(["a", "b"])
    assert is_text and list(table.columns) == ["text"] and len(table) == 2
    with pytest.raises(UserError):
        as_table("a single string")
    with pytest.raises(UserError):
        as_table(["ok", 3])
    with pytest.raises(UserError, match="duplicate column"):
        as_table(pd.DataFrame([[1, 2]], columns=["a", "a"]))


def _res(entity, start, end, score):
    return RecognizerResult(entity_type=entity, start=start, end=end, score=score)


def test_resolve_overlaps_drops_contained_and_lower_scored_same_span():
    email = _res("EMAIL_ADDRESS", 0, 19, 1.0)
    domain = _res("URL", 8, 19, 0.5)
    ssn = _res("US_SSN", 25, 36, 0.85)
    ssn_as_phone = _res("PHONE_NUMBER", 25, 36, 0.4)
    partial = _res("DATE_TIME", 30, 40, 0.85)
    kept = resolve_overlaps([domain, ssn_as_phone, email, partial, ssn])
    assert {(r.entity_type, r.start) for r in kept} == {("EMAIL_ADDRESS", 0), ("US_SSN", 25), ("DATE_TIME", 30)}
    ner_date = _res("DATE_TIME", 0, 11, 0.85)
    assert [r.entity_type for r in resolve_overlaps([ner_date, _res("PHONE_NUMBER", 0, 11, 0.4)])] == ["PHONE_NUMBER"]


def test_score_summary():
    assert score_summary([]) == dict.fromkeys(("min", "p25", "median", "p75", "mean", "max"))
    s = score_summary([0.2, 0.4, 0.6, 0.8])
    assert (s["min"], s["median"], s["mean"], s["max"]) == (0.2, 0.5, 0.5, 0.8)
    assert s["p25"] == pytest.approx(0.35)


# ----------------------------------------------------------------- replay classes


def F(row, column, entity, text, start=0):
    return Finding(row, column, entity, start, start + len(text), 0.9, text)


def test_classify_replayed_in_context_replayed_and_novel():
    train = [
        F(0, "name", "PERSON", "Ann Lee"), F(0, "email", "EMAIL_ADDRESS", "ann@x.org"),
        F(1, "name", "PERSON", "Bo Chan"), F(1, "email", "EMAIL_ADDRESS", "bo@x.org"),
    ]  # fmt: skip
    index = ReplayIndex.from_findings(train)
    synthetic = [
        F(0, "name", "PERSON", "ann lee"), F(0, "email", "EMAIL_ADDRESS", "ANN@x.org"),  # one record: in context
        F(1, "name", "PERSON", "Ann Lee"), F(1, "email", "EMAIL_ADDRESS", "bo@x.org"),  # two records: alone
        F(2, "name", "PERSON", "Cy Dunn"), F(2, "email", "EMAIL_ADDRESS", "ann@x.org"),  # one new, one alone
    ]  # fmt: skip
    assert classify(synthetic, index) == [IN_CONTEXT, IN_CONTEXT, REPLAYED, REPLAYED, NOVEL, REPLAYED]
    counts = replay_counts(synthetic, classify(synthetic, index))
    assert (counts[REPLAYED], counts[IN_CONTEXT], counts[NOVEL]) == (3, 2, 1)
    assert counts["rows_with_replay"] == 3 and counts["rows_replayed_in_context"] == 1
    assert counts["by_entity"]["PERSON"] == {REPLAYED: 1, IN_CONTEXT: 1, NOVEL: 1}


def test_same_value_twice_or_overlapping_spans_is_not_context():
    index = ReplayIndex.from_findings([F(0, "text", "PERSON", "Ann Lee"), F(0, "text", "LOCATION", "Lee", start=4)])
    twice = [F(0, "text", "PERSON", "Ann Lee"), F(0, "text", "PERSON", "ann lee", start=20)]
    assert classify(twice, index) == [REPLAYED, REPLAYED]
    overlapping = [F(0, "text", "PERSON", "Ann Lee"), F(0, "text", "LOCATION", "Lee", start=4)]
    assert classify(overlapping, index) == [REPLAYED, REPLAYED]
    separate = [F(0, "text", "PERSON", "Ann Lee"), F(0, "text", "LOCATION", "Lee", start=30)]
    assert classify(separate, index) == [IN_CONTEXT, IN_CONTEXT]


def test_exact_row_and_quasi_identifier_copies():
    config = default_config()
    train = pd.DataFrame({"Name": ["Ann Lee", "Bo Chan"], "DOB": ["1980-01-02", "1990-03-04"], "zip": ["02134", "94110"], "x": ["1", "2"]})
    synthetic = pd.DataFrame(
        {"Name": ["ann  lee", "Lee, Ann", "Bo Chan"], "DOB": ["1980-01-02", "01/02/1980", "1990-03-05"],
         "zip": ["02134", "02134", "94110"], "x": ["1", "9", "2"]}
    )  # fmt: skip
    assert exact_row_copies(synthetic, train) == 1
    assert quasi_identifier_copies(synthetic, train, config=config) == (2, ["name", "birth_date", "zip"])
    assert quasi_identifier_copies(synthetic[["Name"]], train, config=config) == (None, ["name"])
    assert exact_row_copies(["Ann Lee called", "hi"], ["ann lee  called"]) == 1
    assert exact_row_copies(pd.DataFrame({"a": ["1"]}), pd.DataFrame({"b": ["1"]})) is None


# ----------------------------------------------------------------- config and registry


def test_default_config_is_hashable_and_complete():
    config = default_config()
    hash(config)
    assert {s.type for s in config.recognizers} <= set(REGISTRY)
    assert "spacy_ner" in {s.type for s in config.recognizers}
    assert dict(config.quasi_identifiers)["birth_date"][:2] == ("birth_date", "birthdate")
    assert normalise_column_name("Date of Birth") == "date_of_birth"


def test_load_config_overrides_and_rejects_unknown_keys():
    config = load_config({"score_threshold": 0.7, "entities": ["PERSON"]})
    assert config.score_threshold == 0.7 and config.entities == ("PERSON",)
    assert load_config(config) is config
    assert load_config({"score_threshold": None, "ner": None}) == default_config()
    with pytest.raises(UserError, match="unknown PII config key"):
        load_config({"treshold": 0.5})
    with pytest.raises(UserError, match="score_threshold"):
        load_config({"score_threshold": 1.5})


def test_recognizer_spec_options_round_trip():
    spec = RecognizerSpec.from_mapping({"type": "pattern", "entity": "EMPLOYEE_ID", "patterns": [{"regex": "E\\d+", "score": 0.3}], "context": ["staff"]})
    hash(spec)
    assert spec.option("patterns") == [{"regex": "E\\d+", "score": 0.3}]
    assert spec.option("context") == ["staff"]
    assert spec.option("missing", 7) == 7
    pairs = RecognizerSpec.from_mapping({"type": "x", "context": [["ab", "cd"]]})
    assert pairs.option("context") == [["ab", "cd"]]


def test_bad_recognizer_specs_raise_one_line_user_errors():
    with pytest.raises(UserError, match="unknown recognizer type 'nope'"):
        recognizer_type(RecognizerSpec("nope"))
    bad_regex = RecognizerSpec.from_mapping({"type": "pattern", "entity": "X", "patterns": [{"regex": "(unclosed"}]})
    with pytest.raises(UserError, match="not a valid regex"):
        REGISTRY["pattern"].build(bad_regex, language="en", ner_entities=())
    with pytest.raises(UserError, match="needs 'entity' and 'patterns'"):
        REGISTRY["pattern"].build(RecognizerSpec("pattern"), language="en", ner_entities=())
    with pytest.raises(UserError):
        RecognizerSpec.from_mapping(["type", "email"])
    with pytest.raises(UserError, match="names no recognizers"):
        PiiConfig()


def test_offline_helpers():
    assert 1 <= min_phone_digits() <= 7
    assert offline_tld_extractor()("someone@mail.example.co.uk").fqdn == "mail.example.co.uk"
    assert offline_tld_extractor()("someone@host.invalidtld").fqdn == ""


def test_dates_are_masked_whole_and_other_kinds_unchanged():
    from reports.pii_masking import mask_value

    assert mask_value("1984-03-07", "DATE_TIME") == "****-**-**"
    assert mask_value("March 7, 1984", "DATE_TIME") == "M*** *, ****"
    assert mask_value("123-45-6789", "US_SSN") == "***-**-6789"
    assert mask_value("j.doe@example.com", "EMAIL_ADDRESS") == "j***@e***.com"
    assert mask_value("John Smith", "PERSON") == "J*** S***"
