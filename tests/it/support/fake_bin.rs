//! Fake executables on PATH for integration tests: `launchctl`, `systemctl`, `brew`,
//! `npm`, `curl`, `claude`, `ollama`… Each one appends its name and argv (one line per
//! call) to a shared log, then runs a scripted body (print, exit code, create a file).
//!
//! The PATH it builds holds only the fakes plus a few basic tools, so a real `npm` or
//! `systemctl` on the machine never leaks into a test.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Tools the code under test may legitimately need besides the fakes.
const BASICS: &[&str] = &[
    "sh", "bash", "cat", "env", "ps", "sleep", "setsid", "rm", "mkdir", "chmod",
];

pub struct FakeBin {
    /// The directory on PATH.
    pub dir: PathBuf,
    /// One line per call: `name arg1 arg2 …` (arguments separated by single spaces).
    pub log: PathBuf,
}

impl FakeBin {
    /// Create `<root>/fakebin` with links to the basic tools.
    pub fn new(root: &Path) -> FakeBin {
        let dir = root.join("fakebin");
        std::fs::create_dir_all(&dir).unwrap();
        for tool in BASICS {
            for base in ["/usr/bin", "/bin"] {
                let real = Path::new(base).join(tool);
                if real.exists() {
                    let _ = std::os::unix::fs::symlink(&real, dir.join(tool));
                    break;
                }
            }
        }
        let log = root.join("fakebin.log");
        std::fs::write(&log, "").unwrap();
        FakeBin { dir, log }
    }

    /// A fake that records its call and exits 0.
    pub fn add(&self, name: &str) -> PathBuf {
        self.add_script(name, "exit 0")
    }

    /// A fake that records its call and then runs `body` (POSIX sh; `$@` holds the args).
    pub fn add_script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.join(name);
        let _ = std::fs::remove_file(&path);
        let log = self.log.display().to_string().replace('\'', r"'\''");
        let script = format!(
            "#!/bin/sh\n{{ printf '%s' '{name}'; for a in \"$@\"; do printf ' %s' \"$a\"; done; printf '\\n'; }} >> '{log}'\n{body}\n"
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Remove a fake (the tool is then missing).
    pub fn remove(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.join(name));
    }

    /// The PATH value: the fakes and the basics only.
    pub fn path_env(&self) -> String {
        self.dir.display().to_string()
    }

    /// Every recorded call so far, in order.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Recorded calls of one tool.
    pub fn calls_of(&self, name: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c == name || c.starts_with(&format!("{name} ")))
            .collect()
    }

    /// Forget the calls so far.
    pub fn clear(&self) {
        std::fs::write(&self.log, "").unwrap();
    }
}

/// Stateful fakes of the service managers and installers, sharing `state` (a directory)
/// so that `launchctl print` answers "loaded" after `bootstrap`, `systemctl is-active`
/// after `enable --now`, and `brew`/`npm`/`curl` installs make `ollama`/`claude` appear.
impl FakeBin {
    fn tool_stub(&self, name: &str, version: &str) -> String {
        format!(
            "printf '#!/bin/sh\\necho \"{name} version {version}\"\\n' > '{dir}/{name}'; chmod 755 '{dir}/{name}'",
            dir = self.dir.display()
        )
    }

    /// `launchctl` that tracks bootstrap/bootout in `state`.
    pub fn add_launchctl(&self, state: &Path) {
        std::fs::create_dir_all(state).unwrap();
        let st = state.display();
        self.add_script(
            "launchctl",
            &format!(
                r#"case "$1" in
  print) [ -e "{st}/${{2##*/}}" ] || {{ echo "Could not find service" >&2; exit 113; }} ;;
  bootstrap) l="${{3##*/}}"; : > "{st}/${{l%.plist}}" ;;
  bootout) [ -e "{st}/${{2##*/}}" ] || {{ echo "No such process" >&2; exit 3; }}; rm -f "{st}/${{2##*/}}" ;;
esac"#
            ),
        );
    }

    /// `systemctl --user` that tracks enable/disable/start/stop in `state`.
    pub fn add_systemctl(&self, state: &Path) {
        std::fs::create_dir_all(state).unwrap();
        let st = state.display();
        self.add_script(
            "systemctl",
            &format!(
                r#"[ "$1" = --user ] && shift
case "$1" in
  is-active) [ -e "{st}/$2" ] || {{ echo inactive; exit 3; }}; echo active ;;
  enable|disable) op="$1"; shift; [ "$1" = --now ] && shift
    for u in "$@"; do if [ "$op" = enable ]; then : > "{st}/$u"; else rm -f "{st}/$u"; fi; done ;;
  start) : > "{st}/$2" ;;
  stop) rm -f "{st}/$2" ;;
esac"#
            ),
        );
    }

    /// `brew` whose `install ollama` puts a fake `ollama` on PATH.
    pub fn add_brew(&self) {
        let stub = self.tool_stub("ollama", "0.12.3");
        self.add_script(
            "brew",
            &format!("[ \"$1 $2\" = \"install ollama\" ] && {{ {stub}; }}\nexit 0"),
        );
    }

    /// `npm` whose `install -g @anthropic-ai/claude-code` puts a fake `claude` on PATH.
    pub fn add_npm(&self) {
        let stub = self.tool_stub("claude", "2.1.197");
        self.add_script(
            "npm",
            &format!("[ \"$3\" = \"@anthropic-ai/claude-code\" ] && {{ {stub}; }}\nexit 0"),
        );
    }

    /// `curl` that writes, at its `-o` path, an installer script creating a fake `ollama`.
    pub fn add_curl(&self) {
        let stub = self.tool_stub("ollama", "0.12.3").replace('\'', "'\\''");
        self.add_script(
            "curl",
            &format!(
                "out=''; while [ $# -gt 0 ]; do [ \"$1\" = -o ] && out=\"$2\"; shift; done\n[ -n \"$out\" ] && printf '%s\\n' '{stub}' > \"$out\"\nexit 0"
            ),
        );
    }
}
