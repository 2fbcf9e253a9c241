//! How a joined laptop shows the server's usage report: `stats` (today's use against
//! the limits) and the status line (the session, then today).

use super::usage::{Totals, Usage};
use crate::humanize;
use crate::sanitize;

/// The lines `stats` prints on a joined laptop.
pub fn stats_lines(server: &str, u: &Usage) -> Vec<String> {
    let tz = u.timezone.as_deref().unwrap_or("UTC");
    let limit = |n: Option<String>| n.map(|l| format!(" (limit {l})")).unwrap_or_default();
    vec![
        format!(
            "Team server {server}: client {}, {} ({})",
            sanitize::field(&u.client),
            sanitize::field(&u.day),
            sanitize::field(tz)
        ),
        format!(
            "  requests today  {}{}",
            u.today.requests,
            limit(u.limits.daily_requests.map(|n| n.to_string()))
        ),
        format!(
            "  tokens          {} in, {} out",
            humanize::tokens(u.today.input_tokens),
            humanize::tokens(u.today.output_tokens)
        ),
        format!(
            "  cloud spend     ${:.2}{}",
            u.today.cloud_usd,
            limit(u.limits.daily_cloud_usd.map(|x| format!("${x:.2}")))
        ),
        format!("  saved           ${:.2}", u.today.saved_usd),
    ]
}

/// The status line on a joined laptop; None: the server did not answer in time.
pub fn status_line(u: Option<&Usage>) -> String {
    let Some(u) = u else {
        return "ccr · team server not answering (ccr-setup doctor)".to_owned();
    };
    let mut parts = vec![format!("ccr · team {}", sanitize::field(&u.client))];
    match &u.session {
        Some(s) => {
            if let Some(target) = &s.last_model {
                let model = target.split_once(',').map_or(target.as_str(), |(_, m)| m);
                parts.push(sanitize::field(model).into_owned());
            }
            if s.context_cleared_blocks > 0 {
                parts.push(format!(
                    "{} old tool result{} cleared to fit",
                    s.context_cleared_blocks,
                    if s.context_cleared_blocks == 1 {
                        ""
                    } else {
                        "s"
                    }
                ));
            }
            parts.push(format!("session {}", totals(&s.totals, None)));
        }
        None => parts.push("no request yet in this session".to_owned()),
    }
    parts.push(format!(
        "today {}",
        totals(&u.today, u.limits.daily_requests)
    ));
    parts.join(" · ")
}

/// Requests (of the daily limit, when there is one), input tokens, spend and savings.
fn totals(t: &Totals, limit: Option<u64>) -> String {
    let of = limit.map(|l| format!("/{l}")).unwrap_or_default();
    let mut s = format!(
        "{}{of} req, {} in",
        t.requests,
        humanize::tokens(t.input_tokens)
    );
    if t.cloud_usd > 0.0 {
        s.push_str(&format!(", cloud ${:.2}", t.cloud_usd));
    }
    if t.saved_usd > 0.0 {
        s.push_str(&format!(", saved ${:.2}", t.saved_usd));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(session: bool) -> Usage {
        let mut v = serde_json::json!({"client":"alice","day":"2026-12-07","timezone":"UTC",
            "today":{"requests":12,"input_tokens":120000,"output_tokens":3000,"cloud_usd":0.5,"saved_usd":3.1},
            "limits":{"daily_requests":500,"daily_cloud_usd":5.0},"session":null});
        if session {
            v["session"] = serde_json::json!({"requests":3,"input_tokens":30000,"output_tokens":900,"cloud_usd":0.0,"saved_usd":0.4,"last_model":"vllm,openai/gpt-oss-20b","context_cleared_blocks":1});
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn stats_show_today_against_the_limits() {
        let lines = stats_lines("https://t", &usage(false)).join("\n");
        assert!(lines.contains("client alice, 2026-12-07 (UTC)"), "{lines}");
        assert!(lines.contains("requests today  12 (limit 500)"), "{lines}");
        assert!(
            lines.contains("cloud spend     $0.50 (limit $5.00)"),
            "{lines}"
        );
        assert!(lines.contains("saved           $3.10"), "{lines}");
    }

    #[test]
    fn the_status_line_shows_the_session_then_today() {
        let line = status_line(Some(&usage(true)));
        assert!(line.starts_with("ccr · team alice · openai/gpt-oss-20b · 1 old tool result cleared to fit · session 3 req"), "{line}");
        assert!(
            line.ends_with("today 12/500 req, 120.0k in, cloud $0.50, saved $3.10"),
            "{line}"
        );
        assert!(status_line(None).contains("not answering"));
        assert!(status_line(Some(&usage(false))).contains("no request yet"));
    }
}
