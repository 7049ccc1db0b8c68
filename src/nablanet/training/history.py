"""The per-epoch record of a run."""
from __future__ import annotations


class History:
    """A list of per-epoch metric dicts, with a column view: ``history["validation_accuracy"]``."""

    def __init__(self, rows: list[dict] | None = None):
        self.rows: list[dict] = list(rows or [])

    def append(self, row: dict) -> None:
        self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: str) -> list:
        return [row[key] for row in self.rows if key in row]

    def best(self, key: str, mode: str = "max") -> dict | None:
        """The row with the best value of ``key``."""
        rows = [r for r in self.rows if key in r]
        if not rows:
            return None
        pick = max if mode == "max" else min
        return pick(rows, key=lambda r: r[key])
