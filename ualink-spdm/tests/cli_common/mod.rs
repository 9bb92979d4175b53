//! Shared plumbing for the CLI tests: run the built `ualink-spdm` binary with bounded waits,
//! and a `respond` child that is killed when the test ends, however it ends.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Upper bound for any one child process.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ualink-spdm"))
}

/// A file in tests/data.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A fresh, empty scratch directory for this test (removed on drop).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("ualink-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished command left.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Runs `cmd` to completion, killing it after [`TIMEOUT`].
pub fn run(mut cmd: Command) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status = wait_bounded(&mut child, TIMEOUT);
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "command did not finish within {TIMEOUT:?}; stderr: {}",
                err.join().unwrap()
            );
        }
    };
    Outcome {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Waits for `child` up to `limit`; `None` if it is still running.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= end {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A running `ualink-spdm respond`, killed on drop.
pub struct Responder {
    child: Option<Child>,
    log_reader: Option<thread::JoinHandle<()>>,
    pub addr: SocketAddr,
    /// Everything the responder printed on stdout.
    pub stdout: Arc<Mutex<String>>,
    /// Everything the responder logged on stderr so far.
    pub log: Arc<Mutex<String>>,
}

impl Responder {
    /// Starts `respond --listen 127.0.0.1:0` with `args` and waits for its
    /// `listening on ADDR` line.
    pub fn start(args: &[&str]) -> Self {
        let mut child = bin()
            .args(["respond", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let log_reader = {
            let log = log.clone();
            let mut err = BufReader::new(child.stderr.take().unwrap());
            thread::spawn(move || {
                let mut line = String::new();
                while err.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    log.lock().unwrap().push_str(&line);
                    line.clear();
                }
            })
        };
        let (tx, rx) = mpsc::channel();
        {
            let stdout = stdout.clone();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            thread::spawn(move || {
                let mut line = String::new();
                while out.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    stdout.lock().unwrap().push_str(&line);
                    if let Some(rest) = line.strip_prefix("listening on ") {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                        let _ = tx.send(addr);
                    }
                    line.clear();
                }
            });
        }
        let mut r = Self {
            child: Some(child),
            log_reader: Some(log_reader),
            addr: "0.0.0.0:0".parse().unwrap(),
            stdout,
            log,
        };
        match rx.recv_timeout(TIMEOUT) {
            Ok(a) => r.addr = a.parse().unwrap(),
            Err(_) => panic!(
                "respond never said where it listens; log: {}",
                r.log.lock().unwrap()
            ),
        }
        r
    }

    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Waits (bounded) for the responder to exit by itself; once it has, its whole log is
    /// in [`Responder::log`].
    pub fn wait_exit(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let status = wait_bounded(child, TIMEOUT)?;
        if let Some(r) = self.log_reader.take() {
            let _ = r.join();
        }
        Some(status)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `probe --connect ADDR` with `args`.
pub fn probe(addr: &str, args: &[&str]) -> Outcome {
    let mut cmd = bin();
    cmd.args(["probe", "--connect", addr]).args(args);
    run(cmd)
}
