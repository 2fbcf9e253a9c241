//! Small async probes of the machine, each bounded by a timeout so that one stuck tool
//! or server cannot hold up the report.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;

/// A tool looked up on PATH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ToolProbe {
    Missing,
    Found {
        path: PathBuf,
        /// The version from `--version`; None when it did not answer in time or printed
        /// nothing that looks like a version.
        version: Option<String>,
    },
}

impl ToolProbe {
    pub fn version(&self) -> Option<&str> {
        match self {
            ToolProbe::Found { version, .. } => version.as_deref(),
            ToolProbe::Missing => None,
        }
    }
}

/// `which` `name` on `path`, then `name --version` (at most `timeout`; the child is
/// killed when it takes longer). Version parsing is `provision::parse_version`, shared
/// with `init`'s probes.
pub async fn tool(name: &str, path: &OsStr, timeout: Duration) -> ToolProbe {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let Ok(found) = which::which_in(name, Some(path), cwd) else {
        return ToolProbe::Missing;
    };
    let version = version_of(&found, timeout).await;
    ToolProbe::Found {
        path: found,
        version,
    }
}

/// The shared probe (`provision::tool_version_within`), off the async threads.
async fn version_of(path: &Path, timeout: Duration) -> Option<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || crate::provision::tool_version_within(&path, timeout))
        .await
        .ok()?
}

/// Total physical memory in bytes: `/proc/meminfo` on Linux, `sysctl hw.memsize` on macOS.
pub async fn memory_bytes() -> Option<u64> {
    if cfg!(target_os = "macos") {
        let out = tokio::process::Command::new("/usr/sbin/sysctl")
            .args(["-n", "hw.memsize"])
            .stdin(Stdio::null())
            .output()
            .await
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    } else {
        let text = tokio::fs::read_to_string("/proc/meminfo").await.ok()?;
        parse_meminfo_total(&text)
    }
}

/// `MemTotal:  24576000 kB` → bytes.
pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// What answered on a TCP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortProbe {
    /// Connection refused: nothing listens.
    Closed,
    /// Something accepted the connection.
    Open,
    /// No answer in time (a firewall, or a wedged process).
    Unknown(String),
}

/// Try a TCP connection to `host:port`.
pub async fn port(host: &str, port: u16, timeout: Duration) -> PortProbe {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => PortProbe::Open,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => PortProbe::Closed,
        Ok(Err(e)) => PortProbe::Unknown(e.to_string()),
        Err(_) => PortProbe::Unknown(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// An HTTP answer reduced to what the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
    pub server: Option<String>,
}

/// `GET url` with optional headers, bounded by `timeout`. Never follows proxies from the
/// environment for loopback addresses (reqwest's `no_proxy` is set for those).
pub async fn http_get(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<HttpAnswer, String> {
    let mut req = client.get(url).timeout(timeout);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.map_err(describe_reqwest)?;
    let status = resp.status().as_u16();
    let server = resp
        .headers()
        .get(reqwest::header::SERVER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().await.map_err(describe_reqwest)?;
    Ok(HttpAnswer {
        status,
        body,
        server,
    })
}

/// A short reason without reqwest's nested source chain noise.
pub fn describe_reqwest(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer in time".to_owned()
    } else if e.is_connect() {
        "connection refused or unreachable".to_owned()
    } else {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(inner) = src {
            s = format!("{s}: {inner}");
            src = inner.source();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total_is_read_in_bytes() {
        let text = "MemTotal:       24576000 kB\nMemFree:         1000 kB\n";
        assert_eq!(parse_meminfo_total(text), Some(24_576_000 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
    }

    #[tokio::test]
    async fn tool_versions_come_from_stdout_or_stderr() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("ollama");
        std::fs::write(
            &script,
            "#!/bin/sh\necho 'Warning: client version is 0.12.3' >&2\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = tool("ollama", dir.path().as_os_str(), Duration::from_secs(2)).await;
        assert_eq!(t.version(), Some("0.12.3"));
        assert_eq!(
            tool("claude", dir.path().as_os_str(), Duration::from_secs(2)).await,
            ToolProbe::Missing
        );
    }

    #[tokio::test]
    async fn a_hanging_tool_is_cut_off() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("claude");
        std::fs::write(&script, "#!/bin/sh\nexec sleep 10\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let start = std::time::Instant::now();
        let t = tool("claude", dir.path().as_os_str(), Duration::from_millis(200)).await;
        assert!(matches!(t, ToolProbe::Found { version: None, .. }));
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
