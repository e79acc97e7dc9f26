"""Side-by-side comparison of two template versions, field by field.

Each prompt field is compared line by line (``difflib``); the answer is rows of
``(left line number, left text, right line number, right text, change)`` ready for a
two-column table, with ``change`` one of ``same``, ``changed``, ``added``, ``removed``.
Settings (model, parameters, inputs, tests) are compared as values.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

TEXT_FIELDS = ("system_prompt", "user_prompt")
VALUE_FIELDS = ("engine", "model", "params", "variables", "use_notes", "starters")


@dataclass(frozen=True)
class Row:
    """One row of a side-by-side diff."""

    left_number: int | None
    left: str
    right_number: int | None
    right: str
    change: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "left_number": self.left_number,
            "left": self.left,
            "right_number": self.right_number,
            "right": self.right,
            "change": self.change,
        }


def side_by_side(left: str, right: str) -> list[Row]:
    """The rows comparing two texts line by line."""
    a, b = left.splitlines(), right.splitlines()
    rows: list[Row] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs = zip(range(i1, i2), range(j1, j2), strict=True)
            rows += [Row(i + 1, a[i], j + 1, b[j], "same") for i, j in pairs]
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            has_left, has_right = i < i2, j < j2
            change = "changed" if has_left and has_right else ("removed" if has_left else "added")
            rows.append(
                Row(
                    i + 1 if has_left else None,
                    a[i] if has_left else "",
                    j + 1 if has_right else None,
                    b[j] if has_right else "",
                    change,
                )
            )
    return rows


def versions_diff(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """Compare two versions given as dicts of their fields: text rows and changed values."""
    texts = {
        name: [row.as_dict() for row in side_by_side(left.get(name, ""), right.get(name, ""))]
        for name in TEXT_FIELDS
    }
    values = {
        name: {"left": left.get(name), "right": right.get(name)}
        for name in VALUE_FIELDS
        if left.get(name) != right.get(name)
    }
    return {"texts": texts, "values": values}
