import pytest

from canaries.occurrences import ScrubResult, count_occurrences, normalize, partial_runs, scrub

SECRETS = {"c0001": "123-45-6789", "c0002": "Mary Smith"}


def test_normalize_and_partial_runs():
    assert normalize("123-45 6789") == "123456789"
    assert normalize("Mary  Smith!") == "marysmith"
    assert partial_runs("123-45-6789", partial_fraction=2 / 3) == [
        "123456", "234567", "345678", "456789"]
    with pytest.raises(ValueError, match="partial_fraction"):
        partial_runs("1", partial_fraction=0)


def test_full_partial_and_no_cross_column_matches():
    rows = [
        {"ssn": "123456789", "name": "Ann Lee"},      # full c0001
        {"note": "call 345-678 now"},                  # partial c0001
        {"a": "12345", "b": "6789"},                   # split over two cells: nothing
        {"name": "mary smith", "ssn": "000-00-0000"},  # full c0002
        "plain text mentions 123-45-6789",             # text record: full c0001
    ]
    counts = count_occurrences(SECRETS, rows)
    assert (counts["c0001"].full, counts["c0001"].partial) == (2, 1)
    assert (counts["c0002"].full, counts["c0002"].partial) == (1, 0)


def test_scrub_drops_rows_with_a_full_secret_only():
    rows = [{"ssn": "123-45-6789"}, {"note": "345678"}, {"name": "Mary Smith"}, {"x": "nothing"}]
    result = scrub(rows, SECRETS, drop_ids=["c0001"])
    assert result.kept == [{"note": "345678"}, {"name": "Mary Smith"}, {"x": "nothing"}]
    assert result.scrubbed_rows == 1
    assert result.occurrences["c0002"].full == 1
    data = result.to_dict()
    assert "123" not in str(data) and "Mary" not in str(data)
    assert ScrubResult.counts_from_dict(data)[0] == 1
    with pytest.raises(ValueError, match="drop_ids"):
        scrub(rows, SECRETS, drop_ids=["c9999"])


def test_designated_field_limits_matching_to_that_cell():
    from canaries.occurrences import scrub

    rows = [{"card": "4111 2222 3333 4829", "note": "Mary PIN 0000"},
            {"card": "4111 2222 3333 0000", "note": "John PIN 4829"}]
    everywhere = scrub(rows, {"c1": "4829"})
    assert everywhere.scrubbed_rows == 2
    in_note = scrub(rows, {"c1": "4829"}, fields={"c1": "note"})
    assert in_note.scrubbed_rows == 1 and in_note.kept == [rows[0]]
    assert in_note.occurrences["c1"].full == 1
