//! The proxy's port and the launchd/systemd services.

use super::*;

/// Is a `/health` answer from our own proxy ([`Health`](crate::proxy::health::Health))?
/// Its version when it is.
pub fn is_our_health(body: &str) -> Option<String> {
    crate::proxy::health::Health::parse(body.as_bytes()).map(|h| h.version)
}

pub(super) fn proxy_port(f: &Facts) -> Check {
    let p = &f.proxy;
    match &p.probe {
        PortProbe::Closed => Check::warn(
            "proxy.port",
            format!("nothing listens on {}: the proxy is not running", p.url),
            "`ccr-setup up` (or `ccr-setup code`, which starts it when needed)",
        ),
        PortProbe::Unknown(e) => Check::warn(
            "proxy.port",
            format!("cannot tell whether anything listens on {}", p.url),
            "check your firewall; then `ccr-setup status`",
        )
        .with_detail(e.clone()),
        PortProbe::Open => {
            let answer = p.health.as_ref();
            let ours = answer
                .and_then(|a| a.as_ref().ok())
                .filter(|a| a.status == 200)
                .and_then(|a| is_our_health(&a.body));
            match ours {
                Some(v) if v == f.self_version => {
                    Check::ok("proxy.port", format!("our proxy {v} answers at {}", p.url))
                }
                Some(v) => Check::warn(
                    "proxy.port",
                    format!(
                        "our proxy answers at {} but runs version {v}; this is {}",
                        p.url, f.self_version
                    ),
                    "restart it so it runs this binary: `ccr-setup stop`, then `ccr-setup up`",
                ),
                None => {
                    let what = match answer {
                        Some(Ok(a)) => format!(
                            "GET /health answered HTTP {}{}: {}",
                            a.status,
                            a.server
                                .as_ref()
                                .map(|s| format!(" (server: {s})"))
                                .unwrap_or_default(),
                            crate::sanitize::untrusted(&a.body, 200)
                        ),
                        Some(Err(e)) => format!("GET /health failed: {e}"),
                        None => String::new(),
                    };
                    let ccr = if p.port == crate::config::DEFAULT_PORT {
                        " (claude-code-router's Node server uses this port: `ccr stop` stops it)"
                    } else {
                        ""
                    };
                    Check::fail(
                        "proxy.port",
                        format!(
                            "port {} is taken by another program, not our proxy{ccr}",
                            p.port
                        ),
                        format!(
                            "stop that program, or set \"PORT\" in {} to a free port",
                            f.config.path.display()
                        ),
                    )
                    .with_detail(what)
                }
            }
        }
    }
}

/// Another user's process on the proxy's port receives what clients send there:
/// `ccr-setup` clients refuse to send the key to it, but Claude Code started by hand
/// would send the key, and the prompts, to it.
pub(super) fn proxy_owner(f: &Facts) -> Check {
    let p = &f.proxy;
    match &p.foreign_owner {
        None => Check::ok(
            "proxy.owner",
            format!("port {} is not held by another user", p.port),
        ),
        Some(owner) => Check::warn(
            "proxy.owner",
            format!(
                "port {} is held by another user's process ({owner}): prompts and keys sent to {} reach it",
                p.port, p.url
            ),
            format!(
                "have that process stopped, or set \"PORT\" in {} to a free port",
                f.config.path.display()
            ),
        ),
    }
}

pub(super) fn services(f: &Facts) -> Check {
    let s = &f.services;
    let installed: Vec<_> = s.states.iter().filter(|st| st.installed).collect();
    if installed.is_empty() {
        return Check::ok(
            "services",
            format!(
                "no {} services installed (optional: `ccr-setup init` installs them)",
                s.manager.name()
            ),
        );
    }
    let mut r = ServicesReport {
        worst: Status::Ok,
        lines: Vec::new(),
        fixes: Vec::new(),
        reload: Vec::new(),
    };
    for st in &installed {
        r.add(f, st);
    }
    let ServicesReport {
        worst,
        lines,
        mut fixes,
        reload,
    } = r;
    let mut check = match worst {
        Status::Ok => Check::ok(
            "services",
            format!("{} service(s) installed and loaded", installed.len()),
        ),
        Status::Warn => Check::warn(
            "services",
            "services installed, but not all are loaded or current",
            String::new(),
        ),
        Status::Fail => Check::fail(
            "services",
            "a service file is broken or points at a missing program",
            String::new(),
        ),
    };
    if !reload.is_empty() {
        let cmds = crate::doctor::fix::load_commands(s.manager, &f.home, &reload);
        fixes.push(
            cmds.iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join("; "),
        );
        check = check.with_action(FixAction::LoadServices {
            manager: s.manager,
            kinds: reload,
        });
    }
    if worst != Status::Ok {
        if fixes.is_empty() {
            fixes.push(format!(
                "check {} with `ccr-setup status`",
                s.manager.name()
            ));
        }
        check.fix = Some(fixes.join("\n"));
    }
    check.with_detail(lines.join("\n"))
}

/// What the installed services add up to, one service at a time.
struct ServicesReport {
    worst: Status,
    lines: Vec<String>,
    fixes: Vec<String>,
    /// Installed but not loaded: `--fix` loads them.
    reload: Vec<ServiceKind>,
}

impl ServicesReport {
    fn add(&mut self, f: &Facts, st: &crate::service::ServiceState) {
        let s = &f.services;
        if st.kind == ServiceKind::Proxy {
            if let (Some(prog), Some(exe)) = (&st.program, &f.current_exe) {
                let same = Path::new(prog) == exe
                    || matches!(
                        (std::fs::canonicalize(prog), std::fs::canonicalize(exe)),
                        (Ok(a), Ok(b)) if a == b
                    );
                if st.problems.is_empty() && !same {
                    self.worst = self.worst.max(Status::Warn);
                    self.lines.push(format!(
                        "{}: runs {prog}, but this ccr-setup is {}",
                        st.name,
                        exe.display()
                    ));
                    self.fixes.push(
                        "`ccr-setup init` rewrites the service files for this binary".to_owned(),
                    );
                }
            }
        }
        if !st.problems.is_empty() {
            self.worst = Status::Fail;
            self.lines
                .push(format!("{}: {}", st.name, st.problems.join("; ")));
            self.fixes.push(format!("`ccr-setup init` rewrites {} with the current paths (a stale path after a move or upgrade)", st.path.display()));
            return;
        }
        match st.loaded {
            Some(true) => self.lines.push(format!(
                "{}: installed and loaded ({})",
                st.name,
                st.path.display()
            )),
            Some(false) => {
                self.worst = self.worst.max(Status::Warn);
                self.lines
                    .push(format!("{}: installed but not loaded", st.name));
                self.reload.push(st.kind);
            }
            None => {
                self.worst = self.worst.max(Status::Warn);
                self.lines.push(format!(
                    "{}: installed; {} could not say whether it is loaded{}",
                    st.name,
                    s.manager.name(),
                    if s.manager_running {
                        ""
                    } else {
                        " (it is not running here)"
                    }
                ));
            }
        }
    }
}
