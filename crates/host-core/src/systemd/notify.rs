//! The datagram sender.

use std::io;
#[cfg(unix)]
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::logging::LIFETIME_TARGET;

/// Sends `sd_notify` messages to `NOTIFY_SOCKET`.
#[derive(Debug)]
pub(crate) struct Notifier {
    address: Address,
    /// Set once a send has failed and been logged: later failures are not.
    warned: AtomicBool,
}

#[derive(Debug)]
enum Address {
    Path(PathBuf),
    /// An abstract name (`@name`), without the `@`.
    Abstract(Vec<u8>),
}

impl Notifier {
    /// The sender for `NOTIFY_SOCKET`'s value; `None` when it is empty.
    pub(crate) fn new(socket: &str) -> Option<Self> {
        let address = match socket.strip_prefix('@') {
            Some(name) => Address::Abstract(name.as_bytes().to_vec()),
            None if socket.is_empty() => return None,
            None => Address::Path(PathBuf::from(socket)),
        };
        Some(Self {
            address,
            warned: AtomicBool::new(false),
        })
    }

    /// Sends `message` (newline-separated `KEY=value` lines) as one
    /// datagram. A failure is logged the first time, at warn, and otherwise
    /// ignored: systemd's notifications never fail the host.
    pub(crate) fn send(&self, message: &str) {
        if let Err(error) = self.try_send(message)
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(target: LIFETIME_TARGET,
                "systemd notification failed ({error}); sending to {:?} goes on, \
                 failures are no longer logged", self.address);
        }
    }

    #[cfg(unix)]
    fn try_send(&self, message: &str) -> io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        // A full receive queue must not stall the runtime: the message is
        // dropped (and logged) instead.
        socket.set_nonblocking(true)?;
        match &self.address {
            Address::Path(path) => socket.send_to(message.as_bytes(), path)?,
            Address::Abstract(name) => send_abstract(&socket, name, message.as_bytes())?,
        };
        Ok(())
    }

    /// systemd runs on Unix only.
    #[cfg(not(unix))]
    fn try_send(&self, _message: &str) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "systemd notifications need a Unix",
        ))
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_abstract(socket: &UnixDatagram, name: &[u8], message: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(message, &address)
}

/// Abstract sockets exist on Linux only.
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &[u8]) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "an abstract socket address (`@`) is supported on Linux only",
    ))
}
