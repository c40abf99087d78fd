"""Reading analysis results (the AI Vision 4.0 shape) in tests."""

from __future__ import annotations


def tag_names(result: dict[str, object], top: int = 10) -> list[str]:
    """The names of the ``top`` first tags of an analysis result."""
    values = result["tagsResult"]["values"]  # type: ignore[index]
    return [t["name"] for t in values[:top]]
