//! Waiting on the usage ledger's background writer in tests.

use std::time::{Duration, Instant};

use ccr_setup::ledger::LedgerHandle;

/// Wait until the writer has settled `n` rows (written or dropped); fail after 10 s.
pub fn wait_settled(handle: &LedgerHandle, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = handle.health();
        if h.written + h.dropped >= n {
            return;
        }
        assert!(Instant::now() < deadline, "writer did not settle: {h:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// [`wait_settled`] from async code, off the runtime's threads.
pub async fn wait_settled_async(handle: &LedgerHandle, n: u64) {
    let handle = handle.clone();
    tokio::task::spawn_blocking(move || wait_settled(&handle, n))
        .await
        .unwrap();
}
