mod ledger;

fn main() {
    let mut ledger = Vec::new();
    let id = ledger::record_booking(&mut ledger, 100);
}
