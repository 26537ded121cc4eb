//! A real DNS server for the engine's RFC 3263 tests: dnsmasq (Debian dnsmasq-base) serving
//! the given records on a loopback address, port 53, for the lifetime of the value. Each test
//! file uses its own address so that tests running in parallel do not collide.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Dns(Child);

impl Dns {
    /// Starts dnsmasq on `address` with `records` (`--srv-host=…`, `--host-record=…`) and
    /// waits until it says its sockets are bound.
    pub fn start(address: &str, records: &[String]) -> Self {
        let mut child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--log-queries",
                "--log-facility=-",
                "--port=53",
                &format!("--listen-address={address}"),
                "--interface=lo",
            ])
            .args(records)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dnsmasq (Debian dnsmasq-base)");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        // dnsmasq logs "started" once its sockets are bound.
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("dnsmasq did not start");
            if line.contains("started") {
                break;
            }
            assert!(!line.contains("failed"), "dnsmasq: {line}");
        }
        Self(child)
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
