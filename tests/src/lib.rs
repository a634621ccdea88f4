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
