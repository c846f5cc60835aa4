"""LanceDB filter text: the only way user values reach a `where`, always quoted."""

from __future__ import annotations


def quote(value: str) -> str:
    """A SQL string literal for a LanceDB filter: the only way user text reaches a `where`."""
    if not isinstance(value, str):
        raise TypeError("filter values must be strings")
    if "\x00" in value:
        raise ValueError("filter values must not contain NUL")
    return "'" + value.replace("'", "''") + "'"


def videos_filter(video_ids: list[str]) -> str:
    return f"video_id IN ({', '.join(quote(v) for v in video_ids)})"
