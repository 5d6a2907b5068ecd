"""The revert matrix's board: fault families (rows) by ways out of a run (columns), one cell per
(family, way out), filled in by ``test_revert_matrix.py`` and printed with its count of cases at
the end of the session (``pytest_terminal_summary`` in this directory's conftest).

A module of its own, so the conftest and the tests share one board without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BOARD", "Board"]

PASSED, FAILED, NOT_RUN = "✓", "✗", "·"


@dataclass
class Board:
    rows: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    # (row, column) -> the problems found; empty: the cell passed. Absent: not run.
    cells: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def declare(self, rows: tuple[str, ...], columns: tuple[str, ...]) -> None:
        self.rows, self.columns = rows, columns

    def record(self, row: str, column: str, problems: list[str]) -> None:
        if row not in self.rows or column not in self.columns:
            raise KeyError(f"no cell ({row}, {column}) on the board")
        self.cells[(row, column)] = tuple(problems)

    def render(self) -> list[str]:
        """The matrix as text lines with its count; no lines when no cell was run."""
        if not self.cells:
            return []
        width = max(len(row) for row in self.rows)
        header = " " * width + "  " + "  ".join(self.columns)
        lines = [header]
        for row in self.rows:
            marks = []
            for column in self.columns:
                problems = self.cells.get((row, column))
                mark = NOT_RUN if problems is None else FAILED if problems else PASSED
                marks.append(mark.center(len(column)))
            lines.append((row.ljust(width) + "  " + "  ".join(marks)).rstrip())
        total = len(self.rows) * len(self.columns)
        failed = sum(1 for problems in self.cells.values() if problems)
        passed = len(self.cells) - failed
        lines.append(
            f"{total} cases ({len(self.rows)} fault families x {len(self.columns)} ways out): "
            f"{passed} passed, {failed} failed, {total - len(self.cells)} not run"
        )
        for (row, column), problems in sorted(self.cells.items()):
            lines.extend(f"  {FAILED} {row} / {column}: {problem}" for problem in problems)
        return lines


BOARD = Board()
