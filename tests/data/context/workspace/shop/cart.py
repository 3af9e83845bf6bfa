from shop.pricing import compute_total_price, DiscountPolicy


class Cart:
    def __init__(self):
        self.items = []

    def checkout(self, customer):
        policy = DiscountPolicy(customer.discount)
        total = compute_total_price(self.items)
        return policy.apply(total)
