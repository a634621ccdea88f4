//! The forwarder and the intake against an in-memory broker that can lose confirms and deliver
//! again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::store::{Durability, Step};

/// A message in the broker: its id and body.
type Msg = (Option<String>, Vec<u8>);

/// An in-memory broker shared by the mock transports of a test.
#[derive(Default)]
struct Broker {
    queues: HashMap<String, VecDeque<Msg>>,
    /// Delivered, not yet acknowledged: (token, queue, message).
    unacked: Vec<(u64, String, Msg)>,
    next_token: u64,
    /// Confirm at most this many messages of the next publish, then fail (the rest is lost).
    confirm_only: Option<usize>,
    /// Take the next publish but lose its confirms (the messages are in the queue).
    lose_confirms: bool,
    /// Fail the next ack (the connection broke after the commit).
    fail_ack: bool,
    /// Inbox length of the watched queue at each ack.
    inbox_at_ack: Vec<u64>,
}

struct Mock {
    broker: Arc<Mutex<Broker>>,
    /// (store, queue) whose inbox length each ack records.
    watch: Option<(Arc<Store>, String)>,
}

impl Transport for Mock {
    fn declare(&mut self, queue: &str) -> Result<(), TransportError> {
        self.broker.lock().expect("broker").queues.entry(queue.to_string()).or_default();
        Ok(())
    }

    fn publish(&mut self, queue: &str, batch: &[Outgoing<'_>]) -> Published {
        let mut b = self.broker.lock().expect("broker");
        let limit = b.confirm_only.take();
        let lose = std::mem::take(&mut b.lose_confirms);
        let mut published = Published::default();
        for (i, m) in batch.iter().enumerate() {
            if limit.is_some_and(|n| i >= n) {
                published.failure = Some(TransportError("connection lost".into()));
                break;
            }
            b.queues.entry(queue.to_string()).or_default().push_back((Some(m.id.to_string()), m.data.to_vec()));
            if !lose {
                published.confirmed.push(m.seq);
            }
        }
        if lose {
            published.failure = Some(TransportError("no confirm: connection lost".into()));
        }
        published
    }

    fn receive(&mut self, queue: &str, max: usize, _wait: Duration) -> Result<Vec<Incoming>, TransportError> {
        let mut b = self.broker.lock().expect("broker");
        let mut out = Vec::new();
        while out.len() < max {
            let Some(m) = b.queues.get_mut(queue).and_then(VecDeque::pop_front) else { break };
            b.next_token += 1;
            let token = b.next_token;
            b.unacked.push((token, queue.to_string(), m.clone()));
            out.push(Incoming { id: m.0, data: m.1, token });
        }
        Ok(out)
    }

    fn ack(&mut self, token: u64) -> Result<(), TransportError> {
        let mut b = self.broker.lock().expect("broker");
        if let Some((store, queue)) = &self.watch {
            b.inbox_at_ack.push(store.queue_len(queue));
        }
        if std::mem::take(&mut b.fail_ack) {
            return Err(TransportError("connection lost".into()));
        }
        b.unacked.retain(|(t, _, _)| *t > token);
        Ok(())
    }

    fn reset(&mut self) {
        // Whatever was delivered and not acknowledged goes back to the head of its queue.
        let mut b = self.broker.lock().expect("broker");
        let back: Vec<_> = b.unacked.drain(..).collect();
        for (_, queue, m) in back.into_iter().rev() {
            b.queues.entry(queue).or_default().push_front(m);
        }
    }
}

fn store(dir: &std::path::Path, remote: &[(&str, &str)]) -> Arc<Store> {
    let s = Store::open(dir, Durability::Never, &[]).expect("open");
    s.set_remote_queues(remote.iter().map(|(q, n)| (q.to_string(), n.to_string())).collect()).expect("remote");
    Arc::new(s)
}

fn send(s: &Store, queue: &str, bodies: &[&str]) {
    let mut step = Step::new();
    for b in bodies {
        step.put(queue, b.as_bytes().to_vec());
    }
    s.commit(step).expect("commit");
}

fn inbox(s: &Store, queue: &str) -> Vec<String> {
    s.read(queue, 10_000).expect("read").iter().map(|q| String::from_utf8_lossy(&q.data).into_owned()).collect()
}

fn no_wake() -> Waker {
    Arc::new(|_: &[String]| {})
}

#[test]
fn the_forwarder_deletes_only_what_the_broker_confirmed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), &[("far", "node-b")]);
    send(&s, "far", &["m0", "m1", "m2", "m3", "m4"]);
    let broker = Arc::new(Mutex::new(Broker { confirm_only: Some(2), ..Broker::default() }));
    let mut f = Forwarder::new(s.clone(), "node-a", "far", "p.far", Mock { broker: broker.clone(), watch: None });
    assert!(f.pump().is_err(), "the connection broke after two confirms");
    let left: Vec<Vec<u8>> = s.outbox_read("far", 10).expect("outbox").into_iter().map(|e| e.data).collect();
    assert_eq!(left, [b"m2".to_vec(), b"m3".to_vec(), b"m4".to_vec()]);
    f.reset();
    assert_eq!(f.pump().expect("pump"), 3);
    assert_eq!(s.outbox_len("far"), 0);
    assert_eq!(f.pump().expect("pump"), 0, "an empty outbox publishes nothing");
    let b = broker.lock().expect("broker");
    let ids: Vec<&str> = b.queues["p.far"].iter().filter_map(|m| m.0.as_deref()).collect();
    let inc = s.incarnation();
    let want: Vec<String> = (0..5).map(|seq| format!("node-a/{inc}/{seq}")).collect();
    assert_eq!(ids, want);
}

#[test]
fn the_forwarder_keeps_a_message_whose_confirm_was_lost_and_publishes_it_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), &[("far", "node-b")]);
    send(&s, "far", &["m0"]);
    let broker = Arc::new(Mutex::new(Broker { lose_confirms: true, ..Broker::default() }));
    let mut f = Forwarder::new(s.clone(), "node-a", "far", "p.far", Mock { broker: broker.clone(), watch: None });
    assert!(f.pump().is_err());
    assert_eq!(s.outbox_len("far"), 1, "no confirm, no delete");
    f.reset();
    assert_eq!(f.pump().expect("pump"), 1);
    let b = broker.lock().expect("broker");
    let ids: Vec<&Option<String>> = b.queues["p.far"].iter().map(|m| &m.0).collect();
    assert_eq!(ids.len(), 2, "the broker holds it twice");
    assert_eq!(ids[0], ids[1], "with one id");
}

#[test]
fn the_intake_commits_before_it_acknowledges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), &[]);
    let broker = Arc::new(Mutex::new(Broker::default()));
    {
        let mut b = broker.lock().expect("broker");
        let q = b.queues.entry("p.near".into()).or_default();
        for i in 0..3 {
            q.push_back((Some(format!("node-a/1/{i}")), format!("m{i}").into_bytes()));
        }
    }
    let woken: Arc<Mutex<Vec<String>>> = Arc::default();
    let w = woken.clone();
    let wake: Waker = Arc::new(move |qs: &[String]| w.lock().expect("woken").extend(qs.iter().cloned()));
    let mock = Mock { broker: broker.clone(), watch: Some((s.clone(), "near".into())) };
    let mut i = Intake::new(s.clone(), "near", "p.near", mock, wake, Duration::from_secs(60), 0);
    assert_eq!(i.pump().expect("pump"), Taken { fresh: 3, duplicates: 0 });
    assert_eq!(inbox(&s, "near"), ["m0", "m1", "m2"]);
    assert_eq!(broker.lock().expect("broker").inbox_at_ack, [3], "the ack came after the commit");
    assert!(broker.lock().expect("broker").unacked.is_empty());
    assert_eq!(*woken.lock().expect("woken"), ["near"]);
}

#[test]
fn the_intake_drops_a_redelivery_after_a_lost_ack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), &[]);
    let broker = Arc::new(Mutex::new(Broker { fail_ack: true, ..Broker::default() }));
    broker.lock().expect("broker").queues.entry("p.near".into()).or_default().extend([
        (Some("node-a/1/0".to_string()), b"m0".to_vec()),
        (Some("node-a/1/1".to_string()), b"m1".to_vec()),
        // The same message published twice (a lost confirm on the sending side).
        (Some("node-a/1/1".to_string()), b"m1".to_vec()),
    ]);
    let mock = Mock { broker: broker.clone(), watch: None };
    let mut i = Intake::new(s.clone(), "near", "p.near", mock, no_wake(), Duration::from_secs(60), 0);
    assert!(i.pump().is_err(), "committed, but the ack was lost");
    assert_eq!(inbox(&s, "near"), ["m0", "m1"], "a second publish in one batch is dropped");
    i.reset();
    assert_eq!(i.pump().expect("pump"), Taken { fresh: 0, duplicates: 3 }, "the redelivery is known");
    assert_eq!(inbox(&s, "near"), ["m0", "m1"]);
    assert!(broker.lock().expect("broker").unacked.is_empty());
    // The ids are in the store: a restarted node knows them too.
    let key = [b"near\0".as_slice(), b"node-a/1/0"].concat();
    assert!(s.state_get(intake::STATE_ID, &key).expect("state").is_some());
}

#[test]
fn the_intake_waits_while_its_inbox_is_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), &[]);
    send(&s, "near", &["a", "b"]);
    let broker = Arc::new(Mutex::new(Broker::default()));
    let i =
        Intake::new(s.clone(), "near", "p.near", Mock { broker, watch: None }, no_wake(), Duration::from_secs(60), 2);
    assert!(i.full());
}

#[test]
fn every_message_crosses_exactly_once_through_lost_confirms_and_acks() {
    let (da, db) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let a = store(da.path(), &[("near", "node-b")]);
    let b = store(db.path(), &[]);
    let broker = Arc::new(Mutex::new(Broker::default()));
    let mut f = Forwarder::new(a.clone(), "node-a", "near", "p.near", Mock { broker: broker.clone(), watch: None });
    let mut i = Intake::new(
        b.clone(),
        "near",
        "p.near",
        Mock { broker: broker.clone(), watch: None },
        no_wake(),
        Duration::from_secs(60),
        0,
    );
    let bodies: Vec<String> = (0..3000).map(|n| format!("e{n}")).collect();
    for chunk in bodies.chunks(500) {
        send(&a, "near", &chunk.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let mut round = 0;
    while a.outbox_len("near") > 0 || broker.lock().expect("broker").queues.values().any(|q| !q.is_empty()) {
        round += 1;
        {
            let mut br = broker.lock().expect("broker");
            match round % 4 {
                1 => br.lose_confirms = true,
                2 => br.fail_ack = true,
                3 => br.confirm_only = Some(100),
                _ => {}
            }
        }
        if f.pump().is_err() {
            f.reset();
        }
        if i.pump().is_err() {
            i.reset();
        }
        assert!(round < 100, "no progress");
    }
    assert_eq!(inbox(&b, "near").len(), 3000);
    assert_eq!(inbox(&b, "near"), bodies);
}
