//! Configuration: the shipped etc/ loads; broken configs give their specific error and start nothing.

use intelmq_node::{config, runtime};
use intelmq_tests::TestNode;

#[test]
fn every_shipped_config_file_loads_and_validates() {
    let node = TestNode::with_shipped_etc();
    let botnet = config::load(node.root()).expect("shipped etc/ loads");
    runtime::validate(&botnet).expect("every shipped bot builds");
    assert!(botnet.bots.len() >= 6);
    // The BOTS catalogue is what the registry generates.
    let shipped: serde_json::Value = serde_json::from_str(&node.read("etc/BOTS")).expect("etc/BOTS is JSON");
    assert_eq!(
        shipped,
        intelmq_node::bots::registry::catalogue(),
        "regenerate with `intelmq-node --print-bots > etc/BOTS`"
    );
    // harmonization.conf and node.conf parse as well.
    intelmq_node::message::Harmonization::load(&node.root().join("etc/harmonization.conf")).expect("harmonization");
    let out = node.command(&["--check-config"]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `--check-config` on the shipped etc/ after `edit`, expects exit 2 and all of `needles` in stderr.
fn broken(file: &str, edit: impl Fn(&mut serde_json::Value), needles: &[&str]) {
    let node = TestNode::with_shipped_etc();
    let path = format!("etc/{file}");
    let mut v: serde_json::Value = serde_json::from_str(&node.read(&path)).expect("json");
    edit(&mut v);
    node.write(&path, serde_json::to_string_pretty(&v).expect("json"));
    let out = node.command(&["--check-config"]).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks {n:?}: {stderr}");
    }
    assert!(!node.root().join("var/lib/store").exists(), "nothing starts on an invalid config");
}

#[test]
fn unknown_key_in_a_bot_entry_is_refused() {
    broken(
        "runtime.conf",
        |v| {
            v["taxonomy-expert"]["colour"] = "blue".into();
        },
        &["runtime.conf", "taxonomy-expert", "colour"],
    );
}

#[test]
fn unknown_parameter_of_a_bot_is_refused() {
    broken(
        "runtime.conf",
        |v| {
            v["url2fqdn-expert"]["parameters"]["overwrit"] = true.into();
        },
        &["runtime.conf", "url2fqdn-expert", "overwrit"],
    );
}

#[test]
fn unknown_module_is_refused_with_the_known_ones() {
    broken(
        "runtime.conf",
        |v| {
            v["taxonomy-expert"]["module"] = "intelmq.bots.experts.taxonomy.nope".into();
        },
        &["taxonomy-expert", "intelmq.bots.experts.taxonomy.nope", "intelmq.bots.experts.taxonomy.expert"],
    );
}

#[test]
fn bad_bot_id_is_refused() {
    broken(
        "runtime.conf",
        |v| {
            let entry = v["taxonomy-expert"].clone();
            v.as_object_mut().expect("object").insert("taxonomy_expert".into(), entry);
        },
        &["runtime.conf", "taxonomy_expert"],
    );
}

#[test]
fn dangling_destination_queue_is_refused() {
    broken(
        "pipeline.conf",
        |v| {
            v["taxonomy-expert"]["destination-queues"] = serde_json::json!(["nowhere-queue"]);
        },
        &["pipeline.conf", "taxonomy-expert", "nowhere-queue"],
    );
}

#[test]
fn invalid_json_is_refused_with_its_position() {
    let node = TestNode::with_shipped_etc();
    let text = node.read("etc/runtime.conf").replacen('{', "{,", 1);
    node.write("etc/runtime.conf", text);
    let out = node.command(&["--check-config"]).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("runtime.conf") && stderr.contains("line 1"), "{stderr}");
}
