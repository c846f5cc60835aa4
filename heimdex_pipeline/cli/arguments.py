"""Argument types shared by the commands: they say what was expected, naming the value."""

from __future__ import annotations

import argparse


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0 or value > 10**9:
        raise argparse.ArgumentTypeError(f"expected 0 to 1000000000, not {text}")
    return value


def seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None
