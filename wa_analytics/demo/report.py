"""Printing mart rows as readable tables in a terminal."""

from datetime import date, datetime
from decimal import Decimal


def format_value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | Decimal):
        return f"{value:,.2f}" if abs(value) >= 1 or value == 0 else f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def table(title: str, columns: list[str], rows: list[tuple], limit: int | None = None) -> str:
    """A plain-text table with a title; numbers right-aligned; ``limit`` rows, then a count."""
    shown = rows if limit is None else rows[:limit]
    # Codes and ids are labels, not quantities: no thousands separators.
    labels = [c.endswith(("_code", "_id")) for c in columns]
    cells = [
        [
            str(v) if label and v is not None else format_value(v)
            for v, label in zip(row, labels, strict=True)
        ]
        for row in shown
    ]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row[i], int | float | Decimal) or row[i] is None for row in shown)
               for i in range(len(columns))]  # fmt: skip

    def line(values):
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        )

    out = [f"\n{title}", line(columns), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    if limit is not None and len(rows) > limit:
        out.append(f"... {len(rows) - limit} more rows")
    return "\n".join(out)
