import math

import numpy as np
import pytest

from canaries.formats import (
    bundled_names,
    luhn_check_digit,
    luhn_valid,
    make_format,
    pattern_alphabets,
)


def test_digits_space_and_enumeration_order():
    fmt = make_format("digits:2")
    assert fmt.size == 100
    assert fmt.log2_size == pytest.approx(math.log2(100))
    assert fmt.at(0) == "00" and fmt.at(42) == "42" and fmt.at(99) == "99"
    assert list(fmt.enumerate()) == [f"{i:02d}" for i in range(100)]
    with pytest.raises(ValueError, match="index 100"):
        fmt.at(100)


def test_ssn_space_follows_ssa_rules():
    fmt = make_format("ssn")
    assert fmt.size == 898 * 99 * 9999
    assert fmt.at(0) == "001-01-0001"
    assert fmt.at(fmt.size - 1) == "899-99-9999"
    rng = np.random.default_rng(0)
    for _ in range(200):
        area, group, serial = fmt.sample(rng).split("-")
        assert area not in ("000", "666") and int(area) < 900
        assert group != "00" and serial != "0000"


def test_phone_and_email_and_name_sizes():
    assert make_format("phone").size == 8 * 10 * 10 * 8 * 10 * 10 * 10**4
    first, last = bundled_names("first"), bundled_names("last")
    assert len(first) >= 200 and len(last) >= 200
    assert len(set(first)) == len(first) and len(set(last)) == len(last)
    assert make_format("name").size == len(first) * len(last)
    assert make_format("email_local").size == len(first) * len(last) * 100
    assert make_format("name").at(0) == f"{first[0]} {last[0]}"
    assert make_format("email_local").at(1) == f"{first[0].lower()}.{last[0].lower()}01"


def test_luhn_check_digit_known_values():
    # ISO/IEC 7812 worked example: payload 7992739871 has check digit 3.
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert luhn_valid("4111111111111111")
    with pytest.raises(ValueError, match="digit string"):
        luhn_check_digit("12a")


def test_card_numbers_are_luhn_valid_and_sized():
    fmt = make_format("card")
    assert fmt.size == 10**14
    rng = np.random.default_rng(1)
    for card in [fmt.sample(rng) for _ in range(50)] + [fmt.at(0), fmt.at(fmt.size - 1)]:
        assert len(card) == 16 and card.startswith("4") and luhn_valid(card)
    spaced = make_format("card:space")
    assert spaced.spec == "card:space" and spaced.size == 10**14
    assert spaced.at(0) == "4000 0000 0000 0002" and make_format("card:dash").at(0) == "4000-0000-0000-0002"
    with pytest.raises(ValueError, match="'space' or 'dash'"):
        make_format("card:x")


def test_composite_is_the_product_in_mixed_radix():
    fmt = make_format("digits:1+digits:2")
    assert fmt.size == 1000
    assert fmt.spec == "digits:1+digits:2"
    assert fmt.at(0) == "0 00" and fmt.at(123) == "1 23" and fmt.at(999) == "9 99"
    assert make_format(fmt.spec).size == fmt.size


def test_pattern_format_and_escapes():
    fmt = make_format("pattern:Ad-\\d")
    assert fmt.size == 26 * 10
    assert fmt.at(0) == "A0-d" and fmt.at(259) == "Z9-d"
    assert pattern_alphabets("a")[0][0] == "a"
    with pytest.raises(ValueError, match="no class position"):
        make_format("pattern:--")
    with pytest.raises(ValueError, match="lone backslash"):
        make_format("pattern:d\\")


def test_sampling_is_uniform_over_digits():
    fmt = make_format("digits:1")
    rng = np.random.default_rng(2)
    counts = np.bincount([int(fmt.sample(rng)) for _ in range(10000)], minlength=10)
    # chi-square with 9 d.o.f.: the 0.999 quantile is 27.9.
    chi2 = float(((counts - 1000) ** 2 / 1000).sum())
    assert chi2 < 27.9


@pytest.mark.parametrize("spec,match", [
    ("", "non-empty"), ("nope", "unknown canary format 'nope'"), ("digits", "digits:6"),
    ("digits:0", "digits:6"), ("ssn:3", "takes no argument"), ("card:1", "card:1"), ("pattern:", "needs a pattern"),
])
def test_bad_specs_are_named(spec, match):
    with pytest.raises(ValueError, match=match):
        make_format(spec)
