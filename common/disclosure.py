"""Statistics safe to publish: primary and complementary cell suppression of a table of counts with its totals.

Pure: a table of counts in, a mark per cell out. A table has rows x columns of counts; its margins (each row's total,
each column's total, the grand total) are published with it, so each row and each column is a line: its cells add up
to its total. Primary suppression hides every count from 1 to k-1 ("<5" for k = 5). Complementary suppression then
hides more, the smallest non-zero count first (inner cells before totals), in every line that holds exactly one
hidden value, until no line does: a line with one hidden value gives it away by subtraction (total minus the others),
and a line with two or more gives none of them, so no hidden value can be worked out from the published table by
subtraction, however the lines are combined. (Zero counts are shown and never used as complements: a zero beside a
"<5" would give the small count away.) The method is the one statistical offices describe for tabular data (e.g.
Hundepool et al., Statistical Disclosure Control, Wiley 2012, ch. 4 "Magnitude tabular data" and ch. 5 "Frequency
tables": primary suppression, then secondary suppression so that suppressed cells cannot be recalculated).
"""

from __future__ import annotations

from collections.abc import Sequence

SHOWN, SMALL, HIDDEN = "shown", "small", "hidden"  # a cell's mark: published, primary ("<k"), complementary ("x")
K = 5  # counts under this are not published


def with_totals(cells: Sequence[Sequence[int]]) -> list[list[int]]:
    """The table with its margins: each row followed by its total, then the row of column totals and the grand
    total (an (r+1) x (c+1) grid)."""
    grid = [[*row, sum(row)] for row in cells]
    width = len(grid[0]) if grid else 1
    grid.append([sum(row[j] for row in grid) for j in range(width)])
    return grid


def lines(rows: int, columns: int) -> list[list[tuple[int, int]]]:
    """The positions of every line of an (rows+1) x (columns+1) grid with margins: each row with its total (the
    row of totals too), each column with its total (the column of totals too)."""
    return ([[(i, j) for j in range(columns + 1)] for i in range(rows + 1)]
            + [[(i, j) for i in range(rows + 1)] for j in range(columns + 1)])


def suppress(cells: Sequence[Sequence[int]], k: int = K) -> list[list[str]]:
    """The mark of every cell of the table with its margins (see `with_totals`): SHOWN, SMALL (primary: 1 to k-1)
    or HIDDEN (complementary), such that no line holds exactly one suppressed value."""
    grid = with_totals(cells)
    rows, columns = len(grid) - 1, len(grid[0]) - 1
    marks = [[SMALL if 0 < v < k else SHOWN for v in row] for row in grid]
    every = lines(rows, columns)

    def margin(pos: tuple[int, int]) -> bool:
        return pos[0] == rows or pos[1] == columns

    changed = True
    while changed:
        changed = False
        for line in every:
            hidden = [p for p in line if marks[p[0]][p[1]] != SHOWN]
            if len(hidden) != 1:
                continue
            candidates = [p for p in line if marks[p[0]][p[1]] == SHOWN and grid[p[0]][p[1]] > 0]
            if not candidates:  # cannot happen for counts (a line's small value makes another non-zero): be safe
                continue
            i, j = min(candidates, key=lambda p: (margin(p), grid[p[0]][p[1]], p))
            marks[i][j] = HIDDEN
            changed = True
    return marks


def shown(value: int, mark: str, k: int = K) -> str:
    """A published count: the number, "<k" for a small one, "x" for one hidden so that a small one stays hidden."""
    if mark == SMALL:
        return f"<{k}"
    return "x" if mark == HIDDEN else str(value)


def publish(cells: Sequence[Sequence[int]], k: int = K) -> list[list[str]]:
    """The table with its margins as it may be published: every count, or "<k", or "x"."""
    grid = with_totals(cells)
    marks = suppress(cells, k)
    return [[shown(v, m, k) for v, m in zip(row, mrow, strict=True)] for row, mrow in zip(grid, marks, strict=True)]


def rate(numerator: str, denominator: str) -> str:
    """A share of two published counts ("0.40"), only when both are published as numbers and the denominator is not
    zero; "" otherwise (a rate beside a hidden count would give the count away)."""
    if not (numerator.isdigit() and denominator.isdigit()) or int(denominator) == 0:
        return ""
    return f"{int(numerator) / int(denominator):.2f}"


__all__ = ["HIDDEN", "SHOWN", "SMALL", "K", "lines", "publish", "rate", "shown", "suppress", "with_totals"]
