"""Statistics safe to publish: no suppressed count can be worked out from a published table by subtraction."""

from __future__ import annotations

import random

from common.disclosure import HIDDEN, SMALL, determined, lines, publish, rate, suppress, with_totals
from ivr.tools import published


def recovered(published: list[list[str]], marks: list[list[str]] | None = None) -> set[tuple[int, int]]:
    """The suppressed cells of a published table (with its margins) a reader can work out exactly, by any
    combination of its rows, columns and totals: the linear-algebra audit (common/disclosure.determined)."""
    marks = marks or [["shown" if v.isdigit() else HIDDEN for v in row] for row in published]
    values = [[int(v) if v.isdigit() else 0 for v in row] for row in published]
    return {(i, j) for _, i, j in determined([values], [marks])}


Table = tuple[list[list[str]], list[list[int]]]  # a table with its margins: as published, and exact


def linked_leaks(tables: list[Table], links: list[tuple[int, int]]) -> set[tuple[int, int, int]]:
    """The suppressed cells (table, row, column) a reader works out from several published tables together, where
    the grand total of table a and a total in the last row of table b with the same exact value are the same
    number (links: (a, b)), beyond what the tables other than b give away with all of b hidden."""
    marks = [[["shown" if v.isdigit() else HIDDEN for v in row] for row in pub] for pub, _ in tables]
    values = [exact for _, exact in tables]
    same = [((b, len(values[b]) - 1, j), (a, len(values[a]) - 1, len(values[a][-1]) - 1)) for a, b in links
            for j, v in enumerate(values[b][-1]) if v == values[a][-1][-1]]
    found = determined(values, marks, same)
    for b in {b for _, b in links}:
        marks[b] = [[HIDDEN] * len(row) for row in marks[b]]
    return found - determined(values, marks, same)


def test_a_breakdown_gives_nothing_away_beside_the_report_totals() -> None:
    """The language breakdown's totals are the report's own total calls (37) and answered (34): published beside
    them, its hidden answered total is 34, so not answered is 3, and with zeros beside it ja's "<5" is 3. Its totals
    are now suppressed with the report's as known: only the not-answered total (37 - 34, the report's own
    numbers) can be worked out, and nothing of any language."""
    cells = [[2, 0], [30, 3], [2, 0]]
    rows = published.table_rows("language", ["en", "ja", "fil"], ["answered", "not_answered"], cells, True,
                                {37: "37", 34: "34"})
    breakdown = ([r[1:4] for r in rows[1:]], with_totals(cells))
    calls, answered = ([["37", "37"], ["37", "37"]], [[37, 37], [37, 37]]), ([["34"] * 2] * 2, [[34] * 2] * 2)
    assert linked_leaks([calls, answered, breakdown], [(0, 2), (1, 2)]) == set()
    assert rows[2][2] == "<5" and rows[4][1:4] == ["34", "<5", "37"]
    assert recovered(breakdown[0]) == {(3, 1)}  # the not-answered total: 37 - 34, which the report gives anyway


def test_combined_lines_do_not_give_a_hidden_count_away() -> None:
    """Column 0 gives a + f, row 2 gives g - f, the total column and row 0 then give the hidden 3: no line holds
    exactly one hidden value, yet the lines together recover it. Hidden values are now audited as a whole."""
    published = publish([[1, 3, 0], [10, 3, 3], [5, 8, 0]])
    assert published[0][:3] == ["<5", "<5", "0"] and published[1][1] == "<5"
    assert recovered(published) == set(), published


def test_the_leaks_of_the_old_published_report_are_closed() -> None:
    """The issue's own example: an option with 5 calls and 2 answered, beside options with more calls and a day's
    total. Answered is "<5", no rate gives it away, and the day's total does not give it away by subtraction."""
    calls = [[5, 40, 12]]
    answered = [[2, 30, 9]]
    pub_calls, pub_answered = publish(calls), publish(answered)
    assert pub_answered[0][0] == "<5" and rate(pub_answered[0][0], pub_calls[0][0]) == ""
    assert pub_answered[0].count("x") + pub_answered[0].count("<5") >= 2  # never alone in its row
    assert recovered(pub_answered) == set() and recovered(pub_calls) == set()


def test_random_tables_leave_nothing_to_subtract() -> None:
    """Five hundred tables of small and large counts (days x options, with totals): every count from 1 to 4 is
    published as "<5", every line with a suppressed value has another, and no combination of lines recovers one."""
    rng = random.Random(17)
    for _ in range(500):
        rows, columns = rng.randint(1, 8), rng.randint(1, 7)
        cells = [[rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 9, 20, 150]) for _ in range(columns)] for _ in range(rows)]
        grid, marks, published = with_totals(cells), suppress(cells), publish(cells)
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                assert (marks[i][j] == SMALL) == (0 < v < 5)
                assert published[i][j] == {SMALL: "<5", HIDDEN: "x"}.get(marks[i][j], str(v))
        for line in lines(rows, columns):
            assert sum(marks[i][j] != "shown" for i, j in line) != 1
        assert recovered(published) == set(), (cells, published)


def test_a_table_without_small_counts_is_published_whole() -> None:
    """Nothing small, nothing hidden: the operators' and the public's numbers agree."""
    assert publish([[5, 6], [7, 0]]) == [["5", "6", "11"], ["7", "0", "7"], ["12", "6", "18"]]
    assert rate("6", "12") == "0.50" and rate("x", "12") == "" and rate("3", "0") == ""
