//! TLS and mutual TLS on the TCP control listener, with a CA, a server certificate (SAN 127.0.0.1
//! and localhost) and client certificates made in the test: the right CA works, a wrong CA or a
//! missing / foreign client certificate is exit code 4 with one line, a token combines with TLS,
//! and a TLS file that cannot be used stops the node at start, naming the file.

use std::process::Stdio;
use std::time::Duration;

use intelmq_tests::{wait_for, CtlOutput, DaemonNode, TestNode};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

/// A certificate authority made for the test.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).expect("self-signed CA").pem();
        Ca { issuer: Issuer::new(params, key), pem }
    }

    /// A leaf certificate and its key, PEM.
    fn issue(&self, name: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().expect("leaf key");
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
        (cert.pem(), key.serialize_pem())
    }
}

/// A node root holding `etc/tls/`: ca.pem, server.pem/.key, client.pem/.key (from the CA),
/// other-ca.pem and rogue.pem/.key (from another CA).
fn root_with_certificates() -> TestNode {
    let node = TestNode::with_shipped_etc();
    let ca = Ca::new("intelmq-rs test CA");
    let other = Ca::new("another CA");
    let (server, server_key) = ca.issue("node", &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let (client, client_key) = ca.issue("operator", &[], ExtendedKeyUsagePurpose::ClientAuth);
    let (rogue, rogue_key) = other.issue("rogue", &[], ExtendedKeyUsagePurpose::ClientAuth);
    for (file, pem) in [
        ("ca.pem", &ca.pem),
        ("other-ca.pem", &other.pem),
        ("server.pem", &server),
        ("server.key", &server_key),
        ("client.pem", &client),
        ("client.key", &client_key),
        ("rogue.pem", &rogue),
        ("rogue.key", &rogue_key),
    ] {
        node.write(&format!("etc/tls/{file}"), pem);
    }
    node
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Starts a node whose `control` section is `control` plus `tcp` on a free loopback port; returns
/// it with its https endpoint.
fn daemon(node: TestNode, control: serde_json::Value) -> (DaemonNode, String) {
    let port = free_port();
    let mut control = control;
    control["tcp"] = format!("127.0.0.1:{port}").into();
    node.write("etc/node.conf", serde_json::json!({"control": control}).to_string());
    (DaemonNode::start(node), format!("https://127.0.0.1:{port}"))
}

fn tls_file(d: &DaemonNode, name: &str) -> String {
    d.root().join("etc/tls").join(name).display().to_string()
}

/// `intelmqctl --endpoint E <tls args> bot status` against the node.
fn status(d: &DaemonNode, endpoint: &str, args: &[&str]) -> CtlOutput {
    let mut all = vec!["--endpoint", endpoint];
    all.extend_from_slice(args);
    all.extend_from_slice(&["bot", "status"]);
    d.ctl().run_raw(&all)
}

fn assert_one_line_failure(o: &CtlOutput, code: i32, says: &str) {
    assert_eq!(o.code, code, "{o:#?}");
    assert!(o.stdout.is_empty(), "{o:#?}");
    assert_eq!(o.stderr.lines().count(), 1, "one line: {o:#?}");
    assert!(o.stderr.starts_with("intelmqctl: "), "{o:#?}");
    assert!(o.stderr.contains(says), "expected `{says}`: {o:#?}");
}

#[test]
fn tls_with_the_right_ca_works_and_a_wrong_ca_is_refused() {
    let node = root_with_certificates();
    let (d, endpoint) =
        daemon(node, serde_json::json!({"tls_cert": "etc/tls/server.pem", "tls_key": "etc/tls/server.key"}));
    let ca = tls_file(&d, "ca.pem");
    let ok = status(&d, &endpoint, &["--ca", &ca]);
    assert_eq!(ok.code, 0, "{ok:#?}");
    assert!(ok.stdout.contains("file-output"), "{ok:#?}");
    // The CA from the environment, and an endpoint without a scheme: TLS because a CA is given.
    let plain_endpoint = endpoint.trim_start_matches("https://");
    let env = d.ctl().env("INTELMQ_CTL_CA", &ca).run_raw(&["--endpoint", plain_endpoint, "status", "file-output"]);
    assert_eq!(env.code, 0, "{env:#?}");

    let wrong = status(&d, &endpoint, &["--ca", &tls_file(&d, "other-ca.pem")]);
    assert_one_line_failure(&wrong, 4, "TLS certificate is not trusted");
    // The host name must match the certificate: `localhost` does, the CA is right.
    let by_name = status(&d, &endpoint.replace("127.0.0.1", "localhost"), &["--ca", &ca]);
    assert_eq!(by_name.code, 0, "{by_name:#?}");
    // Plain HTTP/2 to a TLS listener does not get through.
    let plain = status(&d, &endpoint.replace("https://", "http://"), &[]);
    assert_one_line_failure(&plain, 3, "https://");
    // The Unix socket ignores TLS settings.
    let local = d.ctl().env("INTELMQ_CTL_CA", "/no/such/ca.pem").run(&["status", "file-output"]);
    assert_eq!(local.code, 0, "{local:#?}");
}

#[test]
fn mutual_tls_needs_a_client_certificate_from_the_client_ca() {
    let node = root_with_certificates();
    let (d, endpoint) = daemon(
        node,
        serde_json::json!({"tls_cert": "etc/tls/server.pem", "tls_key": "etc/tls/server.key",
                           "tls_client_ca": "etc/tls/ca.pem"}),
    );
    let ca = tls_file(&d, "ca.pem");
    let none = status(&d, &endpoint, &["--ca", &ca]);
    assert_one_line_failure(&none, 4, "client certificate");
    let rogue = status(
        &d,
        &endpoint,
        &["--ca", &ca, "--cert", &tls_file(&d, "rogue.pem"), "--key", &tls_file(&d, "rogue.key")],
    );
    assert_one_line_failure(&rogue, 4, "client certificate");
    let (cert, key) = (tls_file(&d, "client.pem"), tls_file(&d, "client.key"));
    let ok = status(&d, &endpoint, &["--ca", &ca, "--cert", &cert, "--key", &key]);
    assert_eq!(ok.code, 0, "{ok:#?}");
    assert!(ok.stdout.contains("file-output"), "{ok:#?}");
    let env = d
        .ctl()
        .env("INTELMQ_CTL_CA", &ca)
        .env("INTELMQ_CTL_CERT", &cert)
        .env("INTELMQ_CTL_KEY", &key)
        .run_raw(&["--endpoint", &endpoint, "--json", "queue", "list", "--count"]);
    assert_eq!(env.code, 0, "{env:#?}");
    assert!(env.json()["total-messages"].is_u64(), "{env:#?}");
}

#[test]
fn a_token_and_tls_combine() {
    let node = root_with_certificates();
    node.write("etc/control.token", "s3cret-token\n");
    let (d, endpoint) = daemon(
        node,
        serde_json::json!({"tls_cert": "etc/tls/server.pem", "tls_key": "etc/tls/server.key",
                           "token_file": "etc/control.token"}),
    );
    let ca = tls_file(&d, "ca.pem");
    let no_token = status(&d, &endpoint, &["--ca", &ca]);
    assert_one_line_failure(&no_token, 4, "authentication failed");
    let token = d.root().join("etc/control.token").display().to_string();
    let ok = status(&d, &endpoint, &["--ca", &ca, "--token-file", &token]);
    assert_eq!(ok.code, 0, "{ok:#?}");
    // The token does not replace the TLS check of the node's certificate.
    let wrong_ca = status(&d, &endpoint, &["--ca", &tls_file(&d, "other-ca.pem"), "--token-file", &token]);
    assert_one_line_failure(&wrong_ca, 4, "not trusted");
}

/// Runs the node on `control` settings that cannot work and returns its exit code and stderr.
fn node_start_failure(node: &TestNode, control: serde_json::Value) -> (i32, String) {
    node.write("etc/node.conf", serde_json::json!({"control": control}).to_string());
    let mut child = node.command(&[]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn node");
    let mut status = None;
    wait_for("the node to refuse to start", Duration::from_secs(30), || {
        status = child.try_wait().expect("wait");
        status.is_some()
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("read stderr");
    (status.and_then(|s| s.code()).unwrap_or(-1), stderr)
}

#[test]
fn tls_files_that_cannot_be_used_stop_the_node_naming_the_file() {
    let node = root_with_certificates();
    let port = free_port();
    let tcp = format!("127.0.0.1:{port}");
    let (code, err) = node_start_failure(
        &node,
        serde_json::json!({"tcp": tcp, "tls_cert": "etc/tls/missing.pem", "tls_key": "etc/tls/server.key"}),
    );
    assert_ne!(code, 0, "{err}");
    let missing = node.root().join("etc/tls/missing.pem").display().to_string();
    assert!(err.contains(&format!("TLS certificate file {missing}")), "{err}");

    // A key that is not the certificate's.
    let (code, err) = node_start_failure(
        &node,
        serde_json::json!({"tcp": tcp, "tls_cert": "etc/tls/server.pem", "tls_key": "etc/tls/client.key"}),
    );
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("client.key"), "{err}");

    node.write("etc/tls/junk.pem", "not a certificate\n");
    let (code, err) = node_start_failure(
        &node,
        serde_json::json!({"tcp": tcp, "tls_cert": "etc/tls/server.pem", "tls_key": "etc/tls/server.key",
                           "tls_client_ca": "etc/tls/junk.pem"}),
    );
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("TLS client CA file") && err.contains("junk.pem"), "{err}");

    // Beyond loopback, TLS without client certificates is not authentication.
    let (code, err) = node_start_failure(
        &node,
        serde_json::json!({"tcp": "0.0.0.0:0", "tls_cert": "etc/tls/server.pem", "tls_key": "etc/tls/server.key"}),
    );
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("control.tls_client_ca"), "{err}");
}
