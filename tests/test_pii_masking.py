"""Masking rules of reports.pii_masking: shapes kept, values never shown."""

import os

import pytest

from reports.pii_masking import Redactor, mask_value, salted_hash
from reports.atomic import write_private


@pytest.mark.parametrize("value,kind,masked", [
    ("123-45-6789", None, "***-**-6789"),
    ("4829", None, "****"),
    ("123", None, "***"),
    ("Apt 4B", None, "A*** **"),
    ("John Smith", None, "J*** S***"),
    ("jane.doe@example.com", None, "j***@e***.com"),
    ("1984-03-07", "DATE_TIME", "****-**-**"),
    ("Mary PIN 8271", "secret", "**** *** ****"),
])
def test_mask_value(value, kind, masked):
    assert mask_value(value, kind) == masked


def test_salted_hash_depends_on_salt_and_hides_value():
    assert salted_hash("123-45-6789", "s1") != salted_hash("123-45-6789", "s2")
    assert salted_hash("123-45-6789", "s1") == salted_hash("123-45-6789", "s1")
    h = Redactor("salt").text("123-45-6789")
    assert "123-45" not in h and h.startswith("***-**-6789 (h:")


def test_write_private_mode(tmp_path):
    p = write_private(tmp_path / "secret.json", {"a": 1})
    assert os.stat(p).st_mode & 0o777 == 0o600
