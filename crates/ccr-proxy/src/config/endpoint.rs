//! Is this the same server? One answer for `up`'s provider lookup, its re-pointing of a
//! local provider, and `doctor`'s recognition of the Ollama provider and the proxy URL.

use url::Url;

use super::is_loopback_host;

/// Is the URL's host a loopback name or address (`localhost`, `127.0.0.1`, `[::1]`)?
pub fn is_loopback_url(url: &Url) -> bool {
    url.host_str().is_some_and(is_loopback_host)
}

/// Do `a` and `b` reach the same server: the same port and host, where every loopback
/// name or address is one host (a config says `localhost`, `OLLAMA_HOST` `127.0.0.1`)?
/// Scheme and path do not matter: one port serves one of them.
pub fn same_server(a: &Url, b: &Url) -> bool {
    a.port_or_known_default() == b.port_or_known_default()
        && match (a.host(), b.host()) {
            (Some(x), Some(y)) => x == y || (is_loopback_url(a) && is_loopback_url(b)),
            _ => false,
        }
}

/// The OpenAI-compatible chat URL of the Ollama server at `base` (what `init` writes
/// and `up` re-points a local provider to).
///
/// Not Ollama's native `/v1/messages` (v0.14+), though Claude Code speaks it: there a
/// mid-stream failure ends with no `message_stop` and no `event: error`, so the proxy
/// could not rescue a turn (the retry and fallback of `server::translated`); its
/// `tool_use` would bypass the repair layer; it sends no pings during a long prefill
/// (Claude Code gives up after 300 s of silence); and it reports no cache usage and
/// has no `count_tokens`. Through `/v1/chat/completions` the proxy sees every chunk.
pub fn ollama_chat_url(base: &Url) -> String {
    format!(
        "{}/v1/chat/completions",
        base.as_str().trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        same_server(&Url::parse(a).unwrap(), &Url::parse(b).unwrap())
    }

    #[test]
    fn loopback_names_are_one_host_and_ports_must_match() {
        let ollama = "http://127.0.0.1:11434/";
        assert!(same("http://localhost:11434/v1/chat/completions", ollama));
        assert!(same("http://127.0.0.1:11434/v1/chat/completions", ollama));
        assert!(same("http://[::1]:11434/v1/chat/completions", ollama));
        assert!(!same("http://127.0.0.1:8080/v1/chat/completions", ollama));
        assert!(!same("http://10.0.0.2:11434/", ollama));
        assert!(same("http://10.0.0.2:11434/", "http://10.0.0.2:11434/v1"));
        // The default ports count.
        assert!(same(
            "https://api.anthropic.com/v1/messages",
            "https://api.anthropic.com:443/"
        ));
    }
}
