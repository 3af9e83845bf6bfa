"""Arithmetic operations."""

from __future__ import annotations


def add(a: int, b: int) -> int:
    return a + b


def divide(a: float, b: float = 1.0) -> float:
    if b == 0:
        raise ZeroDivisionError("b must not be zero")
    return a / b


def documented(x):
    """Return x unchanged."""
    return x


class Accumulator:
    def __init__(self, start: int = 0):
        self.total = start

    def push(self, value: int) -> int:
        self.total += value
        return self.total
