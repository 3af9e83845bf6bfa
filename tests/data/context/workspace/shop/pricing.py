"""Prices, taxes and discounts."""


def compute_total_price(items, tax_rate=0.2):
    """Sum item prices and add tax; returns a float."""
    subtotal = sum(item.price * item.quantity for item in items)
    return subtotal * (1 + tax_rate)


class DiscountPolicy:
    """Decides how much a customer saves."""

    def __init__(self, percent):
        self.percent = percent

    def apply(self, amount):
        """Apply the discount to an amount."""
        return amount * (1 - self.percent / 100)
