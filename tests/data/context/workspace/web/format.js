/**
 * Format a number of cents as a currency string.
 */
export function formatCurrency(cents, currencyCode) {
  return (cents / 100).toFixed(2) + " " + currencyCode;
}
