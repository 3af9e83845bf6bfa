"""A small inventory module: the sample file that `make demo` completes in."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Item:
    """One stock-keeping unit."""

    sku: str
    name: str
    quantity: int = 0
    price_cents: int = 0
    tags: list[str] = field(default_factory=list)

    @property
    def value_cents(self) -> int:
        return self.quantity * self.price_cents


class Inventory:
    """Items by SKU, with loading and saving."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}

    def add(self, item: Item) -> None:
        if item.sku in self.items:
            raise ValueError(f"duplicate SKU {item.sku}")
        self.items[item.sku] = item

    def remove(self, sku: str) -> Item:
        return self.items.pop(sku)

    def total_value_cents(self) -> int:
        return sum(item.value_cents for item in self.items.values())

    def low_stock(self, threshold: int = 5) -> list[Item]:
        return [item for item in self.items.values() if item.quantity < threshold]

    def with_tag(self, tag: str) -> list[Item]:
        return [item for item in self.items.values() if tag in item.tags]

    def save_json(self, path: Path) -> None:
        data = [item.__dict__ for item in self.items.values()]
        path.write_text(json.dumps(data, indent=2))

    @classmethod
    def load_csv(cls, path: Path) -> Inventory:
        inventory = cls()
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                inventory.add(Item(
                    sku=row["sku"],
                    name=row["name"],
                    quantity=int(row["quantity"]),
                    price_cents=int(row["price_cents"]),
                ))
        return inventory
