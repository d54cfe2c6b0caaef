//! TCP_NODELAY for PostgreSQL connections.
//!
//! sqlx 0.9.0 stopped disabling Nagle's algorithm on its sockets
//! (transact-rs/sqlx#4335; fixed upstream by #4336, not yet released). A
//! large statement, such as a batch of readings bound as arrays, then
//! leaves its last segment waiting for the server's delayed ACK: about 40
//! ms added to every such write. `vitalfarm bench ingest` showed it as a
//! 34 ms floor under every coalesced write, capping single-reading MQTT
//! messages at 15,000/s over TCP against 25,000/s over a Unix socket.
//!
//! sqlx offers no hook into its socket, so when the pool opens a
//! connection this duplicates the process's own descriptors (pidfd_getfd,
//! a safe call on one's own process), finds the TCP sockets whose peer is
//! the database's port, and sets TCP_NODELAY on them: a socket option
//! applies to the socket, whichever descriptor sets it. Where the kernel or
//! a sandbox refuses, nothing changes but the latency. Remove this module
//! once a sqlx release sets TCP_NODELAY again.

#[cfg(target_os = "linux")]
pub fn apply(db_port: u16) {
    use rustix::net::SocketAddrAny;
    use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};

    let Ok(pidfd) = pidfd_open(getpid(), PidfdFlags::empty()) else {
        tracing::debug!("pidfd_open refused: TCP_NODELAY not set on database connections");
        return;
    };
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(number) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(fd) = pidfd_getfd(&pidfd, number, PidfdGetfdFlags::empty()) else {
            continue;
        };
        let peer = rustix::net::getpeername(&fd).ok().flatten();
        let to_database = peer
            .and_then(|p: SocketAddrAny| std::net::SocketAddr::try_from(p).ok())
            .is_some_and(|p| p.port() == db_port);
        if to_database && let Err(e) = rustix::net::sockopt::set_tcp_nodelay(&fd, true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY on a database connection failed");
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn apply(_db_port: u16) {}
