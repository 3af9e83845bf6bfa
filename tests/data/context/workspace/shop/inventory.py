import json


def load_inventory_from_json(path):
    with open(path) as handle:
        records = json.load(handle)
    return {record["sku"]: record["stock"] for record in records}


def restock_warehouse_shelves(inventory, shipment):
    for sku, count in shipment.items():
        inventory[sku] = inventory.get(sku, 0) + count
    return inventory
