//! Foundation figures, printed: cold start to `/healthz` 200 on a fresh home, idle resident memory
//! of `serve`, and the size of the binary. Run with `cargo bench -p ledgerflow --bench startup`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ledgerflow");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn healthz_ok(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && &buf[9..12] == b"200")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let runs = 10;
    let mut starts = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        let home = tempfile::tempdir().unwrap();
        let port = free_port();
        let t0 = Instant::now();
        let mut child = Command::new(BIN)
            .args(["serve", "--port", &port.to_string()])
            .env("LEDGERFLOW_HOME", home.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while !healthz_ok(port) {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "server did not start"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        starts.push(t0.elapsed());
        std::thread::sleep(Duration::from_secs(1));
        rss.push(rss_kib(child.id()));
        let _ = child.kill();
        let _ = child.wait();
    }
    starts.sort();
    rss.sort();
    let size = std::fs::metadata(BIN).map(|m| m.len()).unwrap_or(0);
    println!("ledgerflow foundation figures ({runs} fresh-home starts, SQLite):");
    println!(
        "  cold start to /healthz 200: median {:.1} ms, max {:.1} ms (includes creating the key file and migrating)",
        starts[runs / 2].as_secs_f64() * 1e3,
        starts[runs - 1].as_secs_f64() * 1e3
    );
    println!(
        "  idle RSS of serve: median {:.1} MiB, max {:.1} MiB",
        rss[runs / 2] as f64 / 1024.0,
        rss[runs - 1] as f64 / 1024.0
    );
    println!(
        "  binary size: {:.1} MiB ({size} bytes)",
        size as f64 / 1048576.0
    );
}
