"""Statistics safe to publish: no suppressed count can be worked out from a published table by subtraction."""

from __future__ import annotations

import random

from common.disclosure import HIDDEN, SMALL, lines, publish, rate, suppress, with_totals


def recovered(published: list[list[str]]) -> dict[tuple[int, int], int]:
    """What a reader works out from a published table with its margins (the last row and column are totals): every
    line (a row or a column with its total) holding one unpublished value gives it by subtraction, and what is found
    goes back into the other lines, again and again. The values recovered, by position."""
    known = {(i, j): int(v) for i, row in enumerate(published) for j, v in enumerate(row) if v.isdigit()}
    rows, columns = len(published) - 1, len(published[0]) - 1
    found: dict[tuple[int, int], int] = {}
    progress = True
    while progress:
        progress = False
        for line in lines(rows, columns):
            unknown = [p for p in line if p not in known]
            if len(unknown) != 1:
                continue
            total, members = line[-1], line[:-1]
            p = unknown[0]
            value = sum(known[q] for q in members) if p == total else known[total] - sum(
                known[q] for q in members if q != p)
            known[p] = found[p] = value
            progress = True
    return found


def test_the_leaks_of_the_old_published_report_are_closed() -> None:
    """The issue's own example: an option with 5 calls and 2 answered, beside options with more calls and a day's
    total. Answered is "<5", no rate gives it away, and the day's total does not give it away by subtraction."""
    calls = [[5, 40, 12]]
    answered = [[2, 30, 9]]
    pub_calls, pub_answered = publish(calls), publish(answered)
    assert pub_answered[0][0] == "<5" and rate(pub_answered[0][0], pub_calls[0][0]) == ""
    assert pub_answered[0].count("x") + pub_answered[0].count("<5") >= 2  # never alone in its row
    assert recovered(pub_answered) == {} and recovered(pub_calls) == {}


def test_random_tables_leave_nothing_to_subtract() -> None:
    """Two hundred tables of small and large counts (days x options, with totals): every count from 1 to 4 is
    published as "<5", every line with a suppressed value has another, and subtraction recovers none."""
    rng = random.Random(17)
    for _ in range(200):
        rows, columns = rng.randint(1, 8), rng.randint(1, 7)
        cells = [[rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 9, 20, 150]) for _ in range(columns)] for _ in range(rows)]
        grid, marks, published = with_totals(cells), suppress(cells), publish(cells)
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                assert (marks[i][j] == SMALL) == (0 < v < 5)
                assert published[i][j] == {SMALL: "<5", HIDDEN: "x"}.get(marks[i][j], str(v))
        for line in lines(rows, columns):
            assert sum(marks[i][j] != "shown" for i, j in line) != 1
        assert recovered(published) == {}, (cells, published)


def test_a_table_without_small_counts_is_published_whole() -> None:
    """Nothing small, nothing hidden: the operators' and the public's numbers agree."""
    assert publish([[5, 6], [7, 0]]) == [["5", "6", "11"], ["7", "0", "7"], ["12", "6", "18"]]
    assert rate("6", "12") == "0.50" and rate("x", "12") == "" and rate("3", "0") == ""
