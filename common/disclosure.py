"""Statistics safe to publish: primary and complementary cell suppression of a table of counts with its totals.

Pure: a table of counts in, a mark per cell out. A table has rows x columns of counts; its margins (each row's total,
each column's total, the grand total) are published with it, so each row and each column is a line: its cells add up
to its total. Primary suppression hides every count from 1 to k-1 ("<5" for k = 5). Complementary suppression then
hides more, the smallest non-zero count first (inner cells before totals), in every line that holds exactly one
hidden value, until no line does: a line with one hidden value gives it away by subtraction (total minus the others).
That is not enough, because lines combine (a column gives a + f, a row gives g - f, the totals give the rest...), so
the table is then audited as a system of linear equations (`determined`): a hidden value can be worked out from the
published numbers exactly when its unit vector lies in the row space of the lines' equations over the hidden values
(exact rational Gaussian elimination). While one can, the next-smallest shown count of its lines is hidden too.
Zero counts are hidden only as a last resort (when no non-zero count is left to hide). A breakdown published beside
another table may share margins with it: `known` names the cells a reader has from the other table (treated as
published) and `withheld` those the other table hides (hidden here too); a cell the other table's numbers give away
whatever is hidden here (a total that is the difference of two of its totals) is beyond this table's reach. The
method is the one statistical offices describe for tabular data (e.g. Hundepool et al., Statistical Disclosure
Control, Wiley 2012, ch. 4 "Magnitude tabular data" and ch. 5 "Frequency tables": primary suppression, then secondary
suppression so that suppressed cells cannot be recalculated, audited by linear programming or, for exact recovery,
linear algebra).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from fractions import Fraction

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


def suppress(cells: Sequence[Sequence[int]], k: int = K, known: Collection[tuple[int, int]] = (),
             withheld: Collection[tuple[int, int]] = ()) -> list[list[str]]:
    """The mark of every cell of the table with its margins (see `with_totals`): SHOWN, SMALL (primary: 1 to k-1)
    or HIDDEN (complementary), such that no hidden value can be worked out from the published ones (`determined`).
    `known`: positions a reader knows from another published table (never hidden here); `withheld`: positions another
    table hides (hidden here too)."""
    grid = with_totals(cells)
    rows, columns = len(grid) - 1, len(grid[0]) - 1
    marks = [[SMALL if 0 < v < k else SHOWN for v in row] for row in grid]
    for i, j in withheld:
        if marks[i][j] == SHOWN and (i, j) not in known:
            marks[i][j] = HIDDEN
    every = lines(rows, columns)

    def order(p: tuple[int, int]) -> tuple[bool, bool, int, tuple[int, int]]:
        return grid[p[0]][p[1]] == 0, p[0] == rows or p[1] == columns, grid[p[0]][p[1]], p

    def open_(p: tuple[int, int]) -> bool:  # a cell that may still be hidden
        return marks[p[0]][p[1]] == SHOWN and p not in known

    def seen() -> list[list[str]]:  # the marks as the audit sees them: what another table publishes is known
        return [[SHOWN if (i, j) in known else m for j, m in enumerate(row)] for i, row in enumerate(marks)]

    # what the other table's numbers give away whatever is hidden here is out of this table's reach: not a goal
    given = determined([grid], [[[SHOWN if (i, j) in known else HIDDEN for j in range(columns + 1)]
                                 for i in range(rows + 1)]]) if known else set()
    while True:
        changed = True
        while changed:
            changed = False
            view = seen()
            for line in every:
                hidden = [p for p in line if view[p[0]][p[1]] != SHOWN]
                candidates = [p for p in line if open_(p) and grid[p[0]][p[1]] > 0]
                if len(hidden) == 1 and candidates:
                    i, j = min(candidates, key=order)
                    marks[i][j] = view[i][j] = HIDDEN
                    changed = True
        found = determined([grid], [seen()]) - given
        if not found:
            return marks
        target = min(found)
        near = [p for line in every if target[1:] in line for p in line if open_(p)]
        rest = sorted(near or [(i, j) for i in range(rows + 1) for j in range(columns + 1) if open_((i, j))],
                      key=order)
        if not rest:  # cannot happen (with everything else hidden only `given` is determined): be safe
            return marks
        i, j = next((p for p in rest if target not in _with(grid, seen(), p)), rest[0])
        marks[i][j] = HIDDEN


def _with(grid: list[list[int]], marks: list[list[str]], extra: tuple[int, int]) -> set[tuple[int, int, int]]:
    """What `determined` finds in one table once the cell `extra` is hidden too."""
    marks[extra[0]][extra[1]] = HIDDEN
    return determined([grid], [marks])


def determined(grids: Sequence[Sequence[Sequence[int]]], marks: Sequence[Sequence[Sequence[str]]],
               same: Iterable[tuple[tuple[int, int, int], tuple[int, int, int]]] = ()) -> set[tuple[int, int, int]]:
    """The suppressed cells (table, row, column) whose value follows from the published ones of the tables (each
    with its margins, marked as by `suppress`), by any combination of their lines. `same` links cells of different
    tables that are the same number (a breakdown's total and the main table's): a reader who sees one knows both.
    A suppressed cell is determined exactly when its unit vector lies in the row space of the lines' equations over
    the suppressed cells: in the reduced row echelon form, its column is a pivot whose row has no other entry."""
    parent: dict[tuple[int, int, int], tuple[int, int, int]] = {}

    def root(c: tuple[int, int, int]) -> tuple[int, int, int]:
        while parent.get(c, c) != c:
            c = parent[c]
        return c

    for a, b in same:
        parent[root(a)] = root(b)
    cells = [(t, i, j) for t, grid in enumerate(grids) for i, row in enumerate(grid) for j in range(len(row))]
    public = {root(c) for c in cells if marks[c[0]][c[1]][c[2]] == SHOWN}
    unknowns = sorted({root(c) for c in cells} - public)
    column = {c: n for n, c in enumerate(unknowns)}
    equations: list[list[Fraction]] = []
    for t, grid in enumerate(grids):
        for line in lines(len(grid) - 1, len(grid[0]) - 1):
            row = [Fraction(0)] * len(unknowns)
            for n, (i, j) in enumerate(line):
                c = root((t, i, j))
                if c in column:
                    row[column[c]] += -1 if n == len(line) - 1 else 1  # the members less the total
            if any(row):
                equations.append(row)
    pivots = _reduce(equations, len(unknowns))
    found = {unknowns[p] for r, p in pivots if sum(1 for v in equations[r] if v) == 1}
    return {c for c in cells if root(c) in found and marks[c[0]][c[1]][c[2]] != SHOWN}


def _reduce(rows: list[list[Fraction]], width: int) -> list[tuple[int, int]]:
    """Bring `rows` to reduced row echelon form in place; the (row, column) of each pivot."""
    pivots: list[tuple[int, int]] = []
    r = 0
    for col in range(width):
        pick = next((i for i in range(r, len(rows)) if rows[i][col]), None)
        if pick is None:
            continue
        rows[r], rows[pick] = rows[pick], rows[r]
        lead = rows[r][col]
        rows[r] = [v / lead for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][col]:
                factor = rows[i][col]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append((r, col))
        r += 1
    return pivots


def shown(value: int, mark: str, k: int = K) -> str:
    """A published count: the number, "<k" for a small one, "x" for one hidden so that a small one stays hidden."""
    if mark == SMALL:
        return f"<{k}"
    return "x" if mark == HIDDEN else str(value)


def publish(cells: Sequence[Sequence[int]], k: int = K, known: Collection[tuple[int, int]] = (),
            withheld: Collection[tuple[int, int]] = ()) -> list[list[str]]:
    """The table with its margins as it may be published: every count, or "<k", or "x" (`suppress`)."""
    grid = with_totals(cells)
    marks = suppress(cells, k, known, withheld)
    return [[shown(v, m, k) for v, m in zip(row, mrow, strict=True)] for row, mrow in zip(grid, marks, strict=True)]


def exact(cells: Sequence[Sequence[int]]) -> list[list[str]]:
    """The table with its margins, every count as it is: what only the operators see."""
    return [[str(v) for v in row] for row in with_totals(cells)]


def rate(numerator: str, denominator: str) -> str:
    """A share of two published counts ("0.40"), only when both are published as numbers and the denominator is not
    zero; "" otherwise (a rate beside a hidden count would give the count away)."""
    if not (numerator.isdigit() and denominator.isdigit()) or int(denominator) == 0:
        return ""
    return f"{int(numerator) / int(denominator):.2f}"


__all__ = ["HIDDEN", "SHOWN", "SMALL", "K", "determined", "exact", "lines", "publish", "rate", "shown", "suppress",
           "with_totals"]
