//! Numbers for people: byte sizes, token counts and durations, written one way everywhere
//! (`up`'s step lines, `doctor`, `init`'s model list, `stats` and the dashboard).

use std::time::Duration;

/// Token counts: 950, 12.3k, 4.56M.
pub fn tokens(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}

/// Money: `$0.0042` below a dollar (small local runs are the point), `$12.34` above,
/// `$0.00` for nothing; `stats`, the dashboard's chart and its page (`app.js`) agree.
pub fn usd(v: f64) -> String {
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if a == 0.0 {
        "$0.00".into()
    } else if a < 1.0 {
        format!("{sign}${a:.4}")
    } else {
        format!("{sign}${a:.2}")
    }
}

/// Bytes in decimal units, as Ollama and disk tools print them: `512 B`, `13.8 GB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// `0.42s`, `12.00s`, `3m05s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 60.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.2}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(bytes(13_800_000_000), "13.8 GB");
        assert_eq!(bytes(400_000_000), "400.0 MB");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(duration(Duration::from_millis(420)), "0.42s");
        assert_eq!(duration(Duration::from_secs(185)), "3m05s");
    }
}
