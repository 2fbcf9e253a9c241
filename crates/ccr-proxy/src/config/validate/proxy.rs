//! The proxy's own guard keys: which browser origins may call it (`ALLOWED_ORIGINS`) and
//! how many requests it serves at once (`MAX_REQUESTS_IN_FLIGHT`). Both exist because
//! loopback is not a wall: any page the user opens can send requests to the proxy.

use serde_json::{Map, Value};

use super::{kind_of, Checker};

/// Requests served at once before the excess get a 429.
pub const DEFAULT_MAX_REQUESTS_IN_FLIGHT: u64 = 64;

/// `ALLOWED_ORIGINS` as origins (`scheme://host[:port]`, lowercase, no path), and
/// `MAX_REQUESTS_IN_FLIGHT`.
pub(super) fn build_guard(c: &mut Checker, root: &Map<String, Value>) -> (Vec<String>, usize) {
    let origins = match root.get("ALLOWED_ORIGINS") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| origin(c, i, item))
            .collect(),
        Some(other) => {
            c.add(
                "ALLOWED_ORIGINS",
                format!("expected a list of origins, found {}", kind_of(other)),
                "write it as a list, e.g. \"ALLOWED_ORIGINS\": [\"http://localhost:5173\"]",
            );
            Vec::new()
        }
    };
    let in_flight = match c.opt_u64(root, "MAX_REQUESTS_IN_FLIGHT", "MAX_REQUESTS_IN_FLIGHT") {
        None => DEFAULT_MAX_REQUESTS_IN_FLIGHT,
        Some(0) => {
            c.add(
                "MAX_REQUESTS_IN_FLIGHT",
                "0 would refuse every request",
                format!("remove it for the default ({DEFAULT_MAX_REQUESTS_IN_FLIGHT}) or give a number > 0"),
            );
            DEFAULT_MAX_REQUESTS_IN_FLIGHT
        }
        Some(n) => n,
    };
    (origins, usize::try_from(in_flight).unwrap_or(usize::MAX))
}

fn origin(c: &mut Checker, i: usize, item: &Value) -> Option<String> {
    let path = format!("ALLOWED_ORIGINS[{i}]");
    let fix = "give the page's origin: scheme, host and port, e.g. \"http://localhost:5173\"";
    let Some(text) = item.as_str() else {
        c.add(
            path,
            format!("expected a string, found {}", kind_of(item)),
            fix,
        );
        return None;
    };
    if text.trim() == "*" {
        c.add(
            path,
            "\"*\" would let every web page you open spend your keys through the proxy",
            "list the origins that need the proxy, one by one",
        );
        return None;
    }
    match url::Url::parse(text.trim()) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && matches!(u.path(), "" | "/")
                && u.query().is_none() =>
        {
            Some(u.origin().ascii_serialization())
        }
        _ => {
            c.add(path, format!("\"{text}\" is not an origin"), fix);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value) -> (Vec<String>, usize, Vec<String>) {
        let mut c = Checker {
            problems: Vec::new(),
        };
        let (o, n) = build_guard(&mut c, doc.as_object().unwrap());
        (o, n, c.problems.into_iter().map(|p| p.path).collect())
    }

    #[test]
    fn origins_are_normalised_and_bad_ones_named() {
        let (o, n, problems) = run(json!({
            "ALLOWED_ORIGINS": ["HTTP://LocalHost:5173/", "https://app.example", "*", "ftp://x", "http://a/path", 3]
        }));
        assert_eq!(o, ["http://localhost:5173", "https://app.example"]);
        assert_eq!(n, 64);
        assert_eq!(
            problems,
            [
                "ALLOWED_ORIGINS[2]",
                "ALLOWED_ORIGINS[3]",
                "ALLOWED_ORIGINS[4]",
                "ALLOWED_ORIGINS[5]"
            ]
        );
    }

    #[test]
    fn in_flight_limit_must_be_positive() {
        assert_eq!(run(json!({"MAX_REQUESTS_IN_FLIGHT": 8})).1, 8);
        let (_, n, problems) = run(json!({"MAX_REQUESTS_IN_FLIGHT": 0}));
        assert_eq!(
            (n, problems),
            (64, vec!["MAX_REQUESTS_IN_FLIGHT".to_owned()])
        );
        assert_eq!(run(json!({"ALLOWED_ORIGINS": "x"})).2, ["ALLOWED_ORIGINS"]);
    }
}
