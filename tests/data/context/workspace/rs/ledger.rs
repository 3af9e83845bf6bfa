/// Record one booking in the ledger and return its id.
pub fn record_booking(ledger: &mut Vec<i64>, cents: i64) -> usize {
    ledger.push(cents);
    ledger.len() - 1
}
