//! Servers as processes, for tests that kill one (`kill -9`: gone at once, as in a crash)
//! and start another on the same port.

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Child, Command, Stdio};

/// A python3 script run as a server; killed when dropped.
#[derive(Debug)]
pub struct ScriptServer {
    child: Child,
}

impl ScriptServer {
    /// Runs the python3 `serve` code as a server on 127.0.0.1:`port`, and returns once it
    /// listens. The code finds `s`, the listening socket, `socket` and `sys` imported, and
    /// `args` as `sys.argv[2:]`. Panics without python3 (the CI script installs it).
    pub fn python<I, S>(port: u16, serve: &str, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(format!("{LISTEN}{serve}"))
            .arg(port.to_string())
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (the CI script installs it)");
        let mut ready = [0u8; 6];
        let stdout = child.stdout.as_mut().expect("stdout");
        stdout
            .read_exact(&mut ready)
            .expect("the server says ready");
        assert_eq!(&ready, b"ready\n");
        Self { child }
    }

    /// SIGKILL, and the wait for the process to be gone.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What every script server begins with: a socket listening on the port in `sys.argv[1]`,
/// and `ready` once it does.
const LISTEN: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
print("ready", flush=True)
"#;

/// A port on 127.0.0.1 that was free a moment ago, for a server process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
