//! Ports for tests. Always bind port 0 or ask here: other engineers' servers share
//! this machine.

/// A loopback port nothing listens on now, for a server a test starts or as a "nobody
/// answers here" address. It is picked below the ephemeral range (32768–60999 on
/// Linux, 49152–65535 on macOS), so no `bind(…:0)` elsewhere on the machine (this test
/// run, or other engineers' servers) can take it before the process we start binds it.
/// A port-0 pick could: CI once saw another program's "404 page not found" where the
/// dashboard should have been.
pub fn unbound_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ (std::process::id() << 8)
        ^ COUNTER.fetch_add(7919, Ordering::Relaxed);
    let mut x = seed | 1;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let port = 20_000 + (x % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-31999");
}
