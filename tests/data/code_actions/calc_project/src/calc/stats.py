"""Statistics."""


def mean(values: list[float]) -> float:
    # An empty list has no mean: 0.0 keeps callers simple (héllo, 😀 non-ASCII on purpose).
    return sum(values) / len(values) if values else 0.0
