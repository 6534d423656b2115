//! `tcpclient`: a TCP/TLS client in the manner of `nc` and `openssl s_client`, built on
//! `tcpclient-core` and the polling driver. `tcpclient --help` says how to use it.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
