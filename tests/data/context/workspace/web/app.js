import { formatCurrency } from "./format";

function renderPrice(element, cents) {
  element.textContent = formatCurrency(cents, "EUR");
}
