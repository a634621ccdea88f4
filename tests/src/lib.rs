//! Helpers for the end-to-end tests: [`TestNode`] (a temporary root with a config, running the real
//! `intelmq-node` binary), service detection, and workspace paths.

pub mod conformance;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// The workspace root (the folder holding `etc/`).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `shared/` folder beside the clone (conformance corpora, bench tools).
pub fn shared_dir() -> PathBuf {
    workspace_dir().join("../shared")
}

/// A release binary of this workspace, next to the test executable's `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(format!("{}_BIN", name.to_uppercase().replace('-', "_"))) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current test executable");
    let dir = exe.parent().and_then(Path::parent).expect("target profile directory");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} not found: build it first with `cargo build --release --workspace --bins` (make test does)",
        bin.display()
    );
    bin
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A node root in a temporary directory.
pub struct TestNode {
    pub dir: tempfile::TempDir,
}

impl TestNode {
    /// An empty root (no etc/).
    pub fn empty() -> TestNode {
        TestNode { dir: tempfile::tempdir().expect("tempdir") }
    }

    /// A root holding a copy of the shipped `etc/`.
    pub fn with_shipped_etc() -> TestNode {
        let node = TestNode::empty();
        copy_dir(&workspace_dir().join("etc"), &node.root().join("etc"));
        node
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file under the root, creating directories.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let path = self.root().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(path, content).expect("write file");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root().join(rel)).unwrap_or_default()
    }

    /// `intelmq-node --root <root> <args>`, not started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(binary("intelmq-node"));
        c.arg("--root").arg(self.root()).args(args);
        c.env_remove("INTELMQ_ROOT_DIR");
        c
    }

    /// Runs the node with `--until-idle` and returns its output.
    pub fn run_until_idle(&self) -> Output {
        self.command(&["--until-idle"]).output().expect("run intelmq-node")
    }

    /// Starts the node with `--until-idle` in the background.
    pub fn spawn_until_idle(&self) -> Child {
        self.command(&["--until-idle"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn intelmq-node")
    }

    /// The events of a file output, one JSON object per line.
    pub fn events(&self, rel: &str) -> Vec<Value> {
        self.read(rel)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad output line {l:?}: {e}")))
            .collect()
    }
}

/// Whether tests that need an external service must fail instead of skipping.
pub fn services_required() -> bool {
    std::env::var("INTELMQ_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// What one `intelmqctl` run printed and returned.
#[derive(Debug)]
pub struct CtlOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CtlOutput {
    /// stdout as JSON (panics with the whole output when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// Asserts the exit code, showing the output otherwise.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }
}

/// Runs the real `intelmqctl` against a node root (`--root`), without the caller's INTELMQ_* env.
#[derive(Clone, Debug)]
pub struct Ctl {
    root: PathBuf,
    env: Vec<(String, String)>,
}

impl Ctl {
    pub fn new(root: &Path) -> Ctl {
        Ctl { root: root.to_path_buf(), env: Vec::new() }
    }

    /// Sets an environment variable for every run.
    pub fn env(mut self, key: &str, value: &str) -> Ctl {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// `intelmqctl <args> --root <root>`.
    pub fn run(&self, args: &[&str]) -> CtlOutput {
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        all.push(std::ffi::OsStr::new("--root"));
        all.push(self.root.as_os_str());
        self.run_raw(&all)
    }

    /// `intelmqctl <args>` exactly as given.
    pub fn run_raw<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> CtlOutput {
        let mut c = Command::new(binary("intelmqctl"));
        c.args(args).stdin(Stdio::null());
        for k in [
            "INTELMQ_ROOT_DIR",
            "INTELMQ_CTL_ENDPOINT",
            "INTELMQ_CTL_TOKEN_FILE",
            "INTELMQ_CTL_CA",
            "INTELMQ_CTL_CERT",
            "INTELMQ_CTL_KEY",
            "EDITOR",
            "VISUAL",
        ] {
            c.env_remove(k);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let out = c.output().expect("run intelmqctl");
        CtlOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Polls `cond` every 25 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// `intelmq-node --root R` running as a daemon; ready once its control socket accepts
/// connections. Dropping it sends SIGTERM, waits, and kills it if it does not stop.
pub struct DaemonNode {
    pub node: TestNode,
    child: Option<Child>,
}

impl DaemonNode {
    /// Starts a daemon on the shipped `etc/`.
    pub fn shipped() -> DaemonNode {
        DaemonNode::start(TestNode::with_shipped_etc())
    }

    /// Starts a daemon on `node`'s root and waits for its control socket.
    pub fn start(node: TestNode) -> DaemonNode {
        let mut d = DaemonNode { node, child: None };
        d.launch();
        d
    }

    /// Spawns `intelmq-node` on the root (its output appended to `node.stdout` and `node.stderr`)
    /// and waits until its control socket accepts connections.
    fn launch(&mut self) {
        let log = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.node.root().join(name))
                .expect("open node log")
        };
        let child = self
            .node
            .command(&[])
            .stdout(log("node.stdout"))
            .stderr(log("node.stderr"))
            .spawn()
            .expect("spawn intelmq-node");
        self.child = Some(child);
        let socket = self.socket();
        let start = std::time::Instant::now();
        loop {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                break;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "intelmq-node exited with {status} before serving {}: {}",
                    socket.display(),
                    self.node.read("node.stderr")
                );
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "{} did not accept connections within 60 s: {}",
                socket.display(),
                self.node.read("node.stderr")
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Kills the node with SIGKILL (no clean shutdown) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node again on the same root (after [`Self::kill`] or [`Self::stop`]) and waits
    /// for its control socket.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn root(&self) -> &Path {
        self.node.root()
    }

    pub fn socket(&self) -> PathBuf {
        self.root().join("var/run/control.sock")
    }

    /// An `intelmqctl` runner for this node.
    pub fn ctl(&self) -> Ctl {
        Ctl::new(self.root())
    }

    /// Waits until the shipped pipeline has written every expected event and all queues are empty.
    pub fn wait_idle(&self, expected_events: usize) {
        let ctl = self.ctl();
        wait_for("the pipeline to go idle", std::time::Duration::from_secs(60), || {
            let lines = self.node.read("var/lib/bots/file-output/events.txt").lines().count();
            let total = ctl.run(&["queue", "list", "--count", "--json"]);
            lines >= expected_events && total.code == 0 && total.json()["total-messages"] == 0
        });
    }

    /// Sends SIGTERM and waits for the node to exit; returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(15) {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for DaemonNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP proxy the test owns, between a bot and a service on loopback: `cut()` drops every
/// connection and refuses new ones (an outage), `restore()` lets traffic through again. The
/// machine's service itself is never stopped.
pub struct TcpProxy {
    addr: std::net::SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `target`.
    pub fn start(target: std::net::SocketAddr) -> TcpProxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>> = Default::default();
        let (o, s, c) = (open.clone(), stop.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::Acquire) {
                    break;
                }
                let Ok(client) = client else { continue };
                if !o.load(Ordering::Acquire) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(upstream) = std::net::TcpStream::connect(target) else {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                if let (Ok(c1), Ok(u1), Ok(c2), Ok(u2)) =
                    (client.try_clone(), upstream.try_clone(), client.try_clone(), upstream.try_clone())
                {
                    if let Ok(mut list) = c.lock() {
                        list.push(c2);
                        list.push(u2);
                    }
                    std::thread::spawn(move || pipe(client, u1));
                    std::thread::spawn(move || pipe(upstream, c1));
                }
            }
        });
        TcpProxy { addr, open, conns, stop }
    }

    /// Where bots should connect instead of the service.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Starts an outage: existing connections are cut, new ones are closed at once.
    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::Release);
        if let Ok(mut list) = self.conns.lock() {
            for s in list.drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Ends the outage.
    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.cut();
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

fn pipe(mut from: std::net::TcpStream, mut to: std::net::TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

/// Whether a TCP service answers on `addr`; when it does not, the test skips with a message, or
/// fails when `INTELMQ_REQUIRE_SERVICES=1`. Returns true when the test should go on.
pub fn service_available(name: &str, addr: &str) -> bool {
    let ok = addr
        .parse::<std::net::SocketAddr>()
        .ok()
        .and_then(|a| std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).ok())
        .is_some();
    if !ok {
        assert!(!services_required(), "{name} is required at {addr} (INTELMQ_REQUIRE_SERVICES=1) but does not answer");
        eprintln!("skipped: {name} does not answer at {addr}");
    }
    ok
}
