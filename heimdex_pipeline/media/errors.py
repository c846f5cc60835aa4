"""Typed errors that carry the fact a person needs."""

from __future__ import annotations


class InvalidVideoError(Exception):
    """A file that is not a decodable video, with the reason in words."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
