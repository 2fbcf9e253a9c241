//! Who listens on a local TCP port, where the system tells (Linux: `/proc/net/tcp`
//! gives the socket's owner uid and inode; the process is found by the inode among
//! `/proc/*/fd`, which works for our own processes and, as root, for all). Used to name
//! a squatter on the proxy's port and for `doctor`'s check of the port's owner.

use std::fmt;

/// A listening socket's owner, as far as it could be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortOwner {
    pub uid: u32,
    pub user: Option<String>,
    pub pid: Option<u32>,
    pub command: Option<String>,
}

impl PortOwner {
    /// The socket belongs to the user running this process.
    pub fn is_current_user(&self) -> bool {
        self.uid == nix::unistd::geteuid().as_raw()
    }
}

impl fmt::Display for PortOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(user) => write!(f, "user {user} (uid {})", self.uid)?,
            None => write!(f, "uid {}", self.uid)?,
        }
        if let Some(pid) = self.pid {
            write!(f, ", pid {pid}")?;
            if let Some(command) = &self.command {
                write!(f, " ({})", crate::sanitize::field(command))?;
            }
        }
        Ok(())
    }
}

/// The owner of the socket listening on `port` (any local address), when the system
/// says; None on systems without `/proc/net/tcp` or when nothing listens.
pub fn listening_owner(port: u16) -> Option<PortOwner> {
    let (uid, inode) = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .find_map(|text| listening_socket(&text, port))?;
    let pid = pid_of_socket(inode);
    Some(PortOwner {
        uid,
        user: nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name),
        pid,
        command: pid.and_then(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .ok()
                .map(|c| c.trim().to_owned())
        }),
    })
}

/// `(uid, inode)` of the LISTEN socket on `port` in a `/proc/net/tcp` table.
fn listening_socket(table: &str, port: u16) -> Option<(u32, u64)> {
    const LISTEN: &str = "0A";
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = fields.get(1)?.rsplit_once(':')?.1;
        let listening = fields.get(3) == Some(&LISTEN);
        (listening && u16::from_str_radix(local_port, 16).ok()? == port)
            .then(|| Some((fields.get(7)?.parse().ok()?, fields.get(9)?.parse().ok()?)))
            .flatten()
    })
}

/// The process holding socket `inode`, among those whose descriptors we may read.
fn pid_of_socket(inode: u64) -> Option<u32> {
    let wanted = format!("socket:[{inode}]");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str())
                })
                .then_some(pid)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_socket_from_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:0D80 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 424242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:0D80 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 7 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(listening_socket(table, 3456), Some((1001, 424242)));
        assert_eq!(listening_socket(table, 3457), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn finds_our_own_listener_and_its_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let owner = listening_owner(port).expect("our socket is listed");
        assert!(owner.is_current_user());
        assert_eq!(owner.pid, Some(std::process::id()));
        assert!(owner
            .to_string()
            .contains(&format!("pid {}", std::process::id())));
    }
}
