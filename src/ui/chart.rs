//! The savings-per-day bar chart, drawn here as SVG so the page needs no chart library.
//!
//! The SVG carries no style of its own: only geometry and class names, so the page's
//! stylesheet colours it (light and dark) and the strict Content-Security-Policy needs
//! no `unsafe-inline`. Each bar has a `<title>` (the browser's tooltip) and `data-day`
//! / `data-usd` attributes (what the tests read).

use std::fmt::Write as _;

use chrono::{Duration as ChronoDuration, NaiveDate};

use crate::humanize::usd;
use crate::ledger::DaySavings;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// `days` days ending on `last_day`, each with its savings from `savings` (0 when the
/// ledger has no row that day).
pub fn last_days(savings: &[DaySavings], last_day: NaiveDate, days: u32) -> Vec<DaySavings> {
    (0..days)
        .rev()
        .map(|back| {
            let day = (last_day - ChronoDuration::days(i64::from(back))).to_string();
            let usd = savings
                .iter()
                .find(|d| d.day == day)
                .map_or(0.0, |d| d.savings_usd);
            DaySavings {
                day,
                savings_usd: usd,
            }
        })
        .collect()
}

/// A round step for `n` gridlines up to `max`: 1, 2 or 5 × a power of ten.
fn nice_step(max: f64, n: f64) -> f64 {
    let raw = max / n;
    let magnitude = 10f64.powf(raw.log10().floor());
    let unit = raw / magnitude;
    let nice = if unit <= 1.0 {
        1.0
    } else if unit <= 2.0 {
        2.0
    } else if unit <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// An axis label: as many decimals as the step needs (`$0.2`, `$0.05`, `$10`).
fn axis_usd(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    let sign = if v < 0.0 { "-" } else { "" };
    format!("{sign}${:.*}", decimals, v.abs())
}

/// `Nov 3` for `2026-11-03`.
fn short_day(day: &str) -> String {
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map(|d| d.format("%b %-d").to_string())
        .unwrap_or_else(|_| day.to_owned())
}

/// The value range the y axis spans: whole steps around `min`..`max`, zero included.
/// A negative dip smaller than a tenth of a step (a day whose only local request
/// failed costs a fraction of a cent) does not get an axis below zero of its own.
fn y_range(min: f64, max: f64) -> (f64, f64, f64) {
    let span = max - min.min(0.0);
    let step = if span > 0.0 {
        nice_step(span, 4.0)
    } else {
        0.01
    };
    let top = (max / step).ceil().max(1.0) * step;
    let bottom = if min < -step / 10.0 {
        (min / step).floor() * step
    } else {
        0.0
    };
    (bottom, top, step)
}

/// The chart of `days` (oldest first) as an SVG document.
pub fn savings_svg(days: &[DaySavings]) -> String {
    let max = days.iter().map(|d| d.savings_usd).fold(0.0_f64, f64::max);
    let min = days.iter().map(|d| d.savings_usd).fold(0.0_f64, f64::min);
    let (bottom, top, step) = y_range(min, max);
    let plot_h = HEIGHT - TOP - BOTTOM;
    // Clamped to the plot, so a dip too small for its own axis draws as nothing.
    let y = |v: f64| TOP + (top - v.clamp(bottom, top)) / (top - bottom) * plot_h;

    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" class="chart" role="img" aria-label="Savings per day">"#
    );
    let lines = ((top - bottom) / step).round() as i64;
    for i in 0..=lines {
        let v = bottom + step * i as f64;
        let is_zero = v.abs() < step / 2.0;
        let gy = y(v);
        let _ = write!(
            o,
            r#"<line class="chart-grid{}" x1="{LEFT}" x2="{}" y1="{gy:.1}" y2="{gy:.1}"/><text class="chart-label" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            if is_zero { " chart-zero" } else { "" },
            WIDTH - RIGHT,
            LEFT - 6.0,
            gy + 4.0,
            axis_usd(if is_zero { 0.0 } else { v }, step)
        );
    }
    let n = days.len().max(1) as f64;
    let slot = (WIDTH - LEFT - RIGHT) / n;
    let bar_w = (slot * 0.7).max(1.0);
    let zero = y(0.0);
    for (i, d) in days.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let end = y(d.savings_usd);
        let (bar_y, bar_h) = if end <= zero {
            (end, zero - end)
        } else {
            (zero, end - zero)
        };
        let class = if d.savings_usd < 0.0 {
            "chart-bar chart-neg"
        } else {
            "chart-bar"
        };
        let _ = write!(
            o,
            r#"<rect class="{class}" x="{x:.1}" y="{bar_y:.1}" width="{bar_w:.1}" height="{bar_h:.1}" rx="2" data-day="{}" data-usd="{}"><title>{}: {}</title></rect>"#,
            d.day,
            d.savings_usd,
            d.day,
            usd(d.savings_usd)
        );
        // A date under every 7th bar counting back from the last one (today).
        if (days.len() - 1 - i).is_multiple_of(7) {
            let _ = write!(
                o,
                r#"<text class="chart-label" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bar_w / 2.0,
                HEIGHT - 8.0,
                short_day(&d.day)
            );
        }
    }
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str, usd: f64) -> DaySavings {
        DaySavings {
            day: d.into(),
            savings_usd: usd,
        }
    }

    #[test]
    fn last_days_fills_gaps_and_drops_older_days() {
        let saved = [
            day("2026-10-01", 9.0),
            day("2026-11-02", 0.5),
            day("2026-11-04", 1.25),
        ];
        let last = NaiveDate::from_ymd_opt(2026, 11, 4).unwrap();
        let days = last_days(&saved, last, 4);
        let got: Vec<(&str, f64)> = days
            .iter()
            .map(|d| (d.day.as_str(), d.savings_usd))
            .collect();
        assert_eq!(
            got,
            [
                ("2026-11-01", 0.0),
                ("2026-11-02", 0.5),
                ("2026-11-03", 0.0),
                ("2026-11-04", 1.25)
            ]
        );
    }

    /// (day, height) of every bar in an SVG.
    fn bars(svg: &str) -> Vec<(String, f64)> {
        svg.split("<rect ")
            .skip(1)
            .map(|r| {
                let attr = |name: &str| {
                    let start = r.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
                    r[start..].split('"').next().unwrap().to_owned()
                };
                (attr("data-day"), attr("height").parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn bars_are_proportional_to_savings() {
        let svg = savings_svg(&[
            day("2026-11-01", 0.5),
            day("2026-11-02", 0.0),
            day("2026-11-03", 1.0),
        ]);
        let b = bars(&svg);
        assert_eq!(b.len(), 3);
        assert_eq!(b[1].1, 0.0);
        assert!((b[2].1 / b[0].1 - 2.0).abs() < 0.01, "{b:?}");
        assert!(svg.contains("<title>2026-11-03: $1.00</title>"));
        assert!(!svg.contains("style"), "no inline style under the CSP");
    }

    #[test]
    fn negative_days_hang_below_zero_and_empty_charts_draw() {
        let svg = savings_svg(&[day("2026-11-01", -0.2), day("2026-11-02", 0.4)]);
        assert!(svg.contains("chart-neg"));
        let b = bars(&svg);
        assert!((b[1].1 / b[0].1 - 2.0).abs() < 0.01, "{b:?}");
        let empty = savings_svg(&[day("2026-11-01", 0.0)]);
        assert!(empty.starts_with("<svg") && empty.ends_with("</svg>"));
        // A dip of a fraction of a cent next to dollars of savings: no axis below zero.
        let tiny = savings_svg(&[day("2026-11-01", -0.0001), day("2026-11-02", 0.45)]);
        assert!(!tiny.contains(">-$"), "{tiny}");
        assert_eq!(bars(&tiny)[0].1, 0.0);
    }

    #[test]
    fn money_and_steps() {
        assert_eq!(usd(0.0), "$0.00"); // as `stats` and the page print it
        assert_eq!(usd(0.00425), "$0.0043");
        assert_eq!(usd(12.345), "$12.35");
        assert_eq!(nice_step(1.0, 4.0), 0.5);
        assert!((nice_step(0.3, 4.0) - 0.1).abs() < 1e-12);
        assert_eq!(nice_step(7.0, 4.0), 2.0);
        assert_eq!(axis_usd(0.2, 0.1), "$0.2");
        assert_eq!(axis_usd(-0.05, 0.05), "-$0.05");
        assert_eq!(axis_usd(10.0, 5.0), "$10");
        assert_eq!(short_day("2026-11-03"), "Nov 3");
    }
}
