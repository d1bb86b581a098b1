"""How tunnel engineers write positions: chainage as kilometres + metres, tracks as T-0042."""

from __future__ import annotations


def format_chainage(metres: float | None, decimals: int = 3) -> str:
    """Chainage in engineering form: 400.03 m → "0+400.030", 12345.6789 m → "12+345.679"."""
    if metres is None:
        return ""
    total = round(abs(float(metres)), decimals)
    km = int(total // 1000)
    rest = total - km * 1000
    sign = "-" if metres < 0 and total else ""
    return f"{sign}{km}+{rest:0{4 + decimals}.{decimals}f}"


def track_label(track_id: int | None) -> str:
    """The stable name of a crack followed across inspections (its track): "T-0042"."""
    return "" if track_id is None else f"T-{track_id:04d}"
