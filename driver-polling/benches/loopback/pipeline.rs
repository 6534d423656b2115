//! Kamaelia's pipeline, RateControlledFileReader into TCPClient, at full rate: a file sent by
//! the `tcpclient` program with `--send-file`, and by `std::io::copy` for comparison.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Writes a file of `size` bytes (a repeating pattern) for the pipeline to send.
pub fn make_file(path: &Path, size: u64) -> io::Result<()> {
    let block: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut file = io::BufWriter::new(std::fs::File::create(path)?);
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.flush()
}

/// Builds the `tcpclient` program (it lives in the `tcpclient-cli` crate, which this
/// benchmark's crate does not depend on) with this benchmark's profile; returns its path.
pub fn build_cli() -> io::Result<PathBuf> {
    let mut build = Command::new(env!("CARGO"));
    build.args([
        "build",
        "--quiet",
        "-p",
        "tcpclient-cli",
        "--bin",
        "tcpclient",
    ]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let status = build.status()?;
    if !status.success() {
        return Err(io::Error::other(format!("building tcpclient: {status}")));
    }
    // This benchmark runs as target/<profile>/deps/loopback-<hash>; the program is in
    // target/<profile>.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| io::Error::other("cannot find the target directory"))?;
    Ok(profile_dir.join("tcpclient"))
}

/// The CLI: `tcpclient --send-file PATH 127.0.0.1 PORT`.
pub fn cli(program: &Path, path: &Path, addr: SocketAddr, size: u64) -> io::Result<f64> {
    let start = Instant::now();
    // The program and all its threads on the client's core, like the other contenders.
    let mut command = match crate::pinning::client_core() {
        Some(core) if which("taskset") => {
            let mut command = Command::new("taskset");
            command.args(["-c", &core.to_string()]).arg(program);
            command
        }
        _ => Command::new(program),
    };
    let status = command
        .arg("--send-file")
        .arg(path)
        .args([addr.ip().to_string(), addr.port().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!("tcpclient exited with {status}")));
    }
    Ok(size as f64 / start.elapsed().as_secs_f64() / 1e9)
}

/// The same with `std::io::copy` from the file to a blocking socket.
pub fn std_copy(path: &Path, addr: SocketAddr, size: u64) -> io::Result<f64> {
    let start = Instant::now();
    let mut file = std::fs::File::open(path)?;
    let mut stream = TcpStream::connect(addr)?;
    io::copy(&mut file, &mut stream)?;
    stream.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    Ok(size as f64 / start.elapsed().as_secs_f64() / 1e9)
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
