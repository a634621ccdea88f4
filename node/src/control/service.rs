//! [`ControlService`]: the gRPC service, a thin translation between the contract's messages and
//! the runtime ([`NodeHandle`]) and [`super::ops`]. With peers, a call about a bot or queue placed
//! on another node goes to that node ([`super::peers`]), and a call about the whole botnet merges
//! every node's answer ([`super::merge`]); a call forwarded by a peer is answered locally.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use intelmq_proto::control::v1 as pb;
use intelmq_proto::control::v1::control_server::Control;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::merge;
use super::ops;
use super::peers::{is_forwarded, Client, Peer, PeerError, Peers, ACTION_TIMEOUT, QUERY_TIMEOUT};
use crate::bots::Level;
use crate::config::Botnet;
use crate::runtime::{BotStatusInfo, Command, ControlError, NodeHandle, RunState, Selector};

/// Samples of a counter per bot, covering the last `window`: a bot's rate is how much its counter
/// grew over that window, per second.
#[derive(Debug)]
pub struct RateWindow {
    window: Duration,
    samples: HashMap<String, VecDeque<(Instant, u64)>>,
}

impl RateWindow {
    pub fn new(window: Duration) -> Self {
        RateWindow { window, samples: HashMap::new() }
    }

    /// How often the sampler should record counters: ten samples per window, 50 ms to 1 s apart.
    pub fn sample_every(&self) -> Duration {
        (self.window / 10).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }

    /// Records `count` for `bot` at `now`, dropping samples no longer needed: the newest sample at
    /// or before the start of the window is kept as the baseline.
    pub fn record(&mut self, bot: &str, now: Instant, count: u64) {
        let q = self.samples.entry(bot.to_string()).or_default();
        q.push_back((now, count));
        let start = now.checked_sub(self.window);
        while let (Some(start), Some(&(second, _))) = (start, q.get(1)) {
            if second > start {
                break;
            }
            q.pop_front();
        }
    }

    /// Forgets the bots not in `bots` (after a reload removed them).
    pub fn retain(&mut self, bots: &[&str]) {
        self.samples.retain(|b, _| bots.contains(&b.as_str()));
    }

    /// Per second over the window (or since the first sample, if younger): the counter now is
    /// `count`. A counter that went back (a new store) counts as 0.
    pub fn rate(&self, bot: &str, now: Instant, count: u64) -> f64 {
        let Some(&(then, before)) = self.samples.get(bot).and_then(|q| q.front()) else { return 0.0 };
        let dt = now.saturating_duration_since(then).as_secs_f64();
        if dt < 0.05 {
            return 0.0;
        }
        count.saturating_sub(before) as f64 / dt
    }
}

/// The control service of one node.
#[derive(Clone)]
pub struct ControlService {
    node: NodeHandle,
    /// Samples of the `received` counters, for rates.
    rates: Arc<Mutex<RateWindow>>,
    /// The other nodes of the botnet.
    peers: Arc<Peers>,
}

impl ControlService {
    pub fn new(node: NodeHandle, peers: Peers) -> Self {
        let window =
            node.botnet().map(|b| b.node.control.rate_window_ms).unwrap_or(crate::config::DEFAULT_RATE_WINDOW_MS);
        ControlService {
            node,
            rates: Arc::new(Mutex::new(RateWindow::new(Duration::from_millis(window)))),
            peers: Arc::new(peers),
        }
    }

    /// Whether a call about the whole botnet asks the peers too: there are peers, and the call was
    /// not forwarded by one.
    fn fans_out<T>(&self, r: &Request<T>) -> bool {
        !self.peers.is_empty() && !is_forwarded(r)
    }

    /// The peer holding `bot_id`, when the call goes on to another node.
    fn bot_peer<T>(&self, r: &Request<T>, bot_id: &str) -> Option<Arc<Peer>> {
        if !self.fans_out(r) {
            return None;
        }
        self.peer_of_bot(bot_id)
    }

    /// The peer `bot_id` is placed on (none for this node's bots and unknown bots).
    fn peer_of_bot(&self, bot_id: &str) -> Option<Arc<Peer>> {
        let botnet = self.node.botnet.read().ok()?;
        let node = botnet.bot(bot_id)?.node.as_deref()?;
        self.peers.get(node).cloned()
    }

    /// The peer holding `queue` (its consumer's node), when the call goes on to another node.
    fn queue_peer<T>(&self, r: &Request<T>, queue: &str) -> Option<Arc<Peer>> {
        if !self.fans_out(r) {
            return None;
        }
        let botnet = self.node.botnet.read().ok()?;
        self.peers.get(merge::home_of(&botnet, queue)).cloned()
    }

    fn local_id(&self) -> Result<String, Status> {
        let botnet = self.node.botnet.read().map_err(|_| Status::internal("config lock poisoned"))?;
        Ok(botnet.node.node_id.clone())
    }

    /// Records every bot's `received` counter now and then, for [`RateWindow::rate`]. Runs until the
    /// process ends; call it inside the control plane's runtime.
    pub fn spawn_sampler(&self) {
        let svc = self.clone();
        tokio::spawn(async move {
            loop {
                let every = match svc.sample() {
                    Ok(every) => every,
                    Err(e) => {
                        tracing::warn!(error = %e, "stats sampling failed");
                        Duration::from_secs(1)
                    }
                };
                tokio::time::sleep(every).await;
            }
        });
    }

    fn sample(&self) -> Result<Duration, Status> {
        let botnet = self.node.botnet()?;
        let mut counts = Vec::with_capacity(botnet.bots.len());
        for b in &botnet.bots {
            let c = self.node.store.counters(&b.id).map_err(|e| Status::internal(e.to_string()))?;
            counts.push((b.id.as_str(), c.received));
        }
        let now = Instant::now();
        let mut rates = self.rates.lock().map_err(|_| Status::internal("rates lock poisoned"))?;
        for (bot, count) in &counts {
            rates.record(bot, now, *count);
        }
        rates.retain(&counts.iter().map(|(b, _)| *b).collect::<Vec<_>>());
        Ok(rates.sample_every())
    }

    async fn local_lifecycle(&self, cmd: Command, sel: Option<pb::BotSelector>) -> Result<Vec<pb::BotStatus>, Status> {
        let sel = sel.map(|s| Selector { bot_id: s.bot_id, group: s.group }).unwrap_or_default();
        let bots = self.node.control(cmd, sel).await?;
        Ok(bots.into_iter().map(to_pb).collect())
    }

    /// A lifecycle verb for one bot (on its node), or a group or every bot (on every node; the bots
    /// of a node that does not answer show the state `unknown`).
    async fn lifecycle<T>(
        &self,
        r: &Request<T>,
        cmd: Command,
        sel: Option<pb::BotSelector>,
    ) -> Result<Vec<pb::BotStatus>, Status> {
        if !self.fans_out(r) {
            return self.local_lifecycle(cmd, sel).await;
        }
        let (bot_id, group) = sel.as_ref().map(|s| (s.bot_id.clone(), s.group.clone())).unwrap_or_default();
        if !bot_id.is_empty() {
            let Some(peer) = self.peer_of_bot(&bot_id) else { return self.local_lifecycle(cmd, sel).await };
            let status = matches!(cmd, Command::Status);
            return match peer.lifecycle(cmd, sel).await {
                Ok(bots) => Ok(bots),
                Err(PeerError::Down(d)) if status => {
                    let botnet = self.node.botnet()?;
                    Ok(botnet.bot(&bot_id).map(|b| merge::unknown_status(&botnet, b, &d)).into_iter().collect())
                }
                Err(e) => Err(e.into()),
            };
        }
        let ask = |p: Arc<Peer>| {
            let (cmd, sel) = (cmd.clone(), sel.clone());
            async move { p.lifecycle(cmd, sel).await }
        };
        let (local, remote) = tokio::join!(self.local_lifecycle(cmd.clone(), sel.clone()), self.peers.each(ask));
        let mut bots = local?;
        let botnet = self.node.botnet()?;
        for (peer, answer) in remote {
            match answer {
                Ok(b) => bots.extend(b),
                Err(e) => bots.extend(merge::unknown_statuses(&botnet, &e.into_down(&peer), &group)),
            }
        }
        merge::sort_by_config(&botnet, &mut bots, |b| &b.bot_id);
        Ok(bots)
    }

    /// This node's own queue sizes: inboxes, and for a queue another node owns, the depth of this
    /// node's outbox for it (`outbox_to` names the owner).
    fn local_queues(&self, botnet: &Botnet, non_zero: bool) -> pb::ListQueuesResponse {
        let store = &self.node.store;
        let mut answer = merge::queues(botnet, non_zero, |_, q| store.waiting(q));
        let bots =
            answer.bots.iter_mut().flat_map(|b| b.source_queue.iter_mut().chain(b.destination_queues.iter_mut()));
        for q in answer.queues.iter_mut().chain(bots) {
            if let Some(owner) = store.remote_owner(&q.name) {
                q.outbox_to = owner;
            }
        }
        answer
    }

    /// This node's bots' counters and rates.
    fn stats(&self) -> Result<Vec<pb::BotStats>, Status> {
        let botnet = self.node.botnet()?;
        let rates = self.rates.lock().map_err(|_| Status::internal("rates lock poisoned"))?;
        let now = Instant::now();
        let mut out = Vec::new();
        let local = &botnet.node.node_id;
        for b in botnet.bots.iter().filter(|b| botnet.node.is_local(b.node.as_deref())) {
            let c = self.node.store.counters(&b.id).map_err(|e| Status::internal(e.to_string()))?;
            let rate = rates.rate(&b.id, now, c.received);
            out.push(pb::BotStats {
                bot_id: b.id.clone(),
                state: String::new(),
                received: c.received,
                sent: c.sent,
                dumped: c.dumped,
                retries: c.retries,
                rate,
                queue_size: b.source_queue.as_ref().map(|q| self.node.store.queue_len(q)).unwrap_or(0),
                node: local.clone(),
                outbox_size: b.source_queue.as_ref().map(|q| self.node.store.outbox_len(q)).unwrap_or(0),
            });
        }
        Ok(out)
    }

    async fn stats_with_states(&self) -> Result<(u64, Vec<pb::BotStats>), Status> {
        let mut stats = self.stats()?;
        let states = self.node.control(Command::Status, Selector::default()).await?;
        for s in &mut stats {
            if let Some(st) = states.iter().find(|b| b.bot_id == s.bot_id) {
                s.state = st.state.as_str().to_string();
            }
        }
        Ok((now_ms(), stats))
    }

    /// The stats of the whole botnet when `fan_out`, else of this node; with the notes on nodes
    /// that did not answer.
    async fn botnet_stats(&self, fan_out: bool) -> Result<(u64, Vec<pb::BotStats>, Vec<String>), Status> {
        if !fan_out {
            let (t, bots) = self.stats_with_states().await?;
            return Ok((t, bots, Vec::new()));
        }
        let ask = |mut c: Client, r| async move { c.get_stats(r).await };
        let (local, remote) =
            tokio::join!(self.stats_with_states(), self.peers.ask_all(pb::GetStatsRequest {}, QUERY_TIMEOUT, ask));
        let (t, mut bots) = local?;
        let botnet = self.node.botnet()?;
        let mut notes = Vec::new();
        for (peer, answer) in remote {
            match answer {
                Ok(r) => bots.extend(r.bots),
                Err(e) => {
                    let down = e.into_down(&peer);
                    bots.extend(merge::unknown_stats(&botnet, &down));
                    notes.push(down.to_string());
                }
            }
        }
        merge::sort_by_config(&botnet, &mut bots, |b| &b.bot_id);
        // What this node holds in its outboxes for bots on other nodes.
        let store = &self.node.store;
        for b in bots.iter_mut() {
            let queue = botnet.bots.iter().find(|c| c.id == b.bot_id).and_then(|c| c.source_queue.as_deref());
            if let Some(q) = queue.filter(|q| store.remote_owner(q).is_some()) {
                b.outbox_size += store.outbox_len(q);
            }
        }
        Ok((t, bots, notes))
    }

    /// This node as `ListNodes` shows it.
    async fn local_node(&self) -> Result<pb::NodeInfo, Status> {
        let (node_id, endpoint) = {
            let botnet = self.node.botnet.read().map_err(|_| Status::internal("config lock poisoned"))?;
            let endpoint = match botnet.node.control.tcp {
                Some(addr) => addr.to_string(),
                None => super::socket_path(&botnet.root).display().to_string(),
            };
            (botnet.node.node_id.clone(), endpoint)
        };
        let bots = self.node.control(Command::Status, Selector::default()).await?;
        Ok(pb::NodeInfo {
            node_id,
            endpoint,
            local: true,
            reachable: true,
            version: env!("CARGO_PKG_VERSION").to_string(),
            load1: load_average(),
            running_bots: bots.iter().filter(|b| b.state == RunState::Running).count() as u32,
            bots: bots.len() as u32,
            last_answer_ms: Some(0),
            error: String::new(),
        })
    }

    /// Imports an IntelMQ dump whose entries name bots on several nodes: each node gets its part.
    /// `None` when every entry is for this node (or the document is not a dump: the local import
    /// says why).
    async fn import_spread(&self, dump_json: &str) -> Result<Option<u64>, Status> {
        let Ok(doc) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(dump_json) else {
            return Ok(None);
        };
        let mut local = serde_json::Map::new();
        let mut remote: Vec<(Arc<Peer>, serde_json::Map<String, serde_json::Value>)> = Vec::new();
        for (key, entry) in doc {
            let peer = entry.get("bot_id").and_then(serde_json::Value::as_str).and_then(|b| self.peer_of_bot(b));
            match peer {
                Some(p) => match remote.iter_mut().find(|(q, _)| q.id == p.id) {
                    Some((_, part)) => {
                        part.insert(key, entry);
                    }
                    None => remote.push((p, serde_json::Map::from_iter([(key, entry)]))),
                },
                None => {
                    local.insert(key, entry);
                }
            }
        }
        if remote.is_empty() {
            return Ok(None);
        }
        let mut imported = 0;
        for (peer, part) in remote {
            let req = pb::ImportDumpsRequest {
                dump_json: serde_json::Value::Object(part).to_string(),
                bot_id: String::new(),
            };
            imported +=
                peer.call(req, ACTION_TIMEOUT, |mut c, r| async move { c.import_dumps(r).await }).await?.imported;
        }
        if !local.is_empty() {
            imported += ops::import_dumps(&self.node, &serde_json::Value::Object(local).to_string(), "")?;
        }
        Ok(Some(imported))
    }
}

/// Sends a call on to the node holding its bot or queue and returns that node's answer.
async fn forward<Req, Resp, F, Fut>(peer: &Peer, r: Request<Req>, call: F) -> Result<Response<Resp>, Status>
where
    F: FnOnce(Client, Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    Ok(Response::new(peer.call(r.into_inner(), ACTION_TIMEOUT, call).await?))
}

/// The 1-minute load average of the machine, 0 when unknown.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|l| l.parse().ok()))
        .unwrap_or(0.0)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn to_pb(b: BotStatusInfo) -> pb::BotStatus {
    let reason = match &b.state {
        RunState::Failed(r) => r.clone(),
        _ => b.note.clone().unwrap_or_default(),
    };
    pb::BotStatus {
        bot_id: b.bot_id,
        group: b.group,
        module: b.module,
        node: b.node,
        state: b.state.as_str().to_string(),
        reason,
        enabled: b.enabled,
    }
}

fn dump_to_pb(id: u64, e: crate::store::DumpEntry) -> pb::DumpEntry {
    pb::DumpEntry {
        id,
        bot_id: e.bot_id,
        source_queue: e.source_queue.unwrap_or_default(),
        time: e.time,
        traceback: e.traceback,
        message: e.message,
        message_type: e.message_type.unwrap_or_default(),
    }
}

fn known_bot(node: &NodeHandle, bot_id: &str) -> Result<(), Status> {
    if node.botnet()?.bot(bot_id).is_some() {
        Ok(())
    } else {
        Err(ControlError::UnknownBot(bot_id.to_string()).into())
    }
}

type StatsStream = Pin<Box<dyn Stream<Item = Result<pb::WatchStatsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Control for ControlService {
    async fn start_bot(&self, r: Request<pb::StartBotRequest>) -> Result<Response<pb::StartBotResponse>, Status> {
        let bots = self.lifecycle(&r, Command::Start, r.get_ref().selector.clone()).await?;
        Ok(Response::new(pb::StartBotResponse { bots }))
    }

    async fn stop_bot(&self, r: Request<pb::StopBotRequest>) -> Result<Response<pb::StopBotResponse>, Status> {
        let bots = self.lifecycle(&r, Command::Stop, r.get_ref().selector.clone()).await?;
        Ok(Response::new(pb::StopBotResponse { bots }))
    }

    async fn restart_bot(&self, r: Request<pb::RestartBotRequest>) -> Result<Response<pb::RestartBotResponse>, Status> {
        let bots = self.lifecycle(&r, Command::Restart, r.get_ref().selector.clone()).await?;
        Ok(Response::new(pb::RestartBotResponse { bots }))
    }

    async fn reload_bot(&self, r: Request<pb::ReloadBotRequest>) -> Result<Response<pb::ReloadBotResponse>, Status> {
        let bots = self.lifecycle(&r, Command::Reload, r.get_ref().selector.clone()).await?;
        Ok(Response::new(pb::ReloadBotResponse { bots }))
    }

    async fn get_status(&self, r: Request<pb::GetStatusRequest>) -> Result<Response<pb::GetStatusResponse>, Status> {
        let bots = self.lifecycle(&r, Command::Status, r.get_ref().selector.clone()).await?;
        Ok(Response::new(pb::GetStatusResponse { bots }))
    }

    async fn enable_bot(&self, r: Request<pb::EnableBotRequest>) -> Result<Response<pb::EnableBotResponse>, Status> {
        if let Some(peer) = self.bot_peer(&r, &r.get_ref().bot_id) {
            return forward(&peer, r, |mut c, r| async move { c.enable_bot(r).await }).await;
        }
        let b = self.node.set_enabled(&r.into_inner().bot_id, true).await?;
        Ok(Response::new(pb::EnableBotResponse { bot: Some(to_pb(b)) }))
    }

    async fn disable_bot(&self, r: Request<pb::DisableBotRequest>) -> Result<Response<pb::DisableBotResponse>, Status> {
        if let Some(peer) = self.bot_peer(&r, &r.get_ref().bot_id) {
            return forward(&peer, r, |mut c, r| async move { c.disable_bot(r).await }).await;
        }
        let b = self.node.set_enabled(&r.into_inner().bot_id, false).await?;
        Ok(Response::new(pb::DisableBotResponse { bot: Some(to_pb(b)) }))
    }

    async fn list_bots(&self, r: Request<pb::ListBotsRequest>) -> Result<Response<pb::ListBotsResponse>, Status> {
        let r = r.into_inner();
        if !r.configured {
            let catalogue = crate::bots::registry::catalogue().to_string();
            return Ok(Response::new(pb::ListBotsResponse { catalogue_json: catalogue, bots: Vec::new() }));
        }
        let botnet = self.node.botnet()?;
        let local = botnet.node.node_id.clone();
        let bots = botnet
            .bots
            .iter()
            .filter(|b| !r.enabled_only || b.enabled)
            .map(|b| {
                let mut params = b.params.clone();
                if let Some(q) = &b.source_queue {
                    params.insert("source_queue".into(), serde_json::Value::String(q.clone()));
                }
                params.insert(
                    "destination_queues".into(),
                    serde_json::to_value(&b.destination_queues).unwrap_or(serde_json::Value::Null),
                );
                pb::ConfiguredBot {
                    bot_id: b.id.clone(),
                    description: b.description.clone().unwrap_or_default(),
                    group: crate::runtime::group_of(b).to_string(),
                    module: b.module.clone(),
                    enabled: b.enabled,
                    node: b.node.clone().unwrap_or_else(|| local.clone()),
                    parameters_json: serde_json::Value::Object(params).to_string(),
                }
            })
            .collect();
        Ok(Response::new(pb::ListBotsResponse { catalogue_json: String::new(), bots }))
    }

    async fn list_queues(&self, r: Request<pb::ListQueuesRequest>) -> Result<Response<pb::ListQueuesResponse>, Status> {
        let fan_out = self.fans_out(&r);
        let non_zero = r.into_inner().non_zero;
        if !fan_out {
            let botnet = self.node.botnet()?;
            return Ok(Response::new(self.local_queues(&botnet, non_zero)));
        }
        // Every node's own sizes, then each queue's size from the node holding it.
        let ask = |mut c: Client, r| async move { c.list_queues(r).await };
        let remote = self.peers.ask_all(pb::ListQueuesRequest { non_zero: false }, QUERY_TIMEOUT, ask).await;
        let botnet = self.node.botnet()?;
        let mut answers = vec![(botnet.node.node_id.clone(), self.local_queues(&botnet, false))];
        let mut notes = Vec::new();
        for (peer, answer) in remote {
            match answer {
                Ok(a) => answers.push((peer.id.clone(), a)),
                Err(e) => notes.push(e.into_down(&peer).to_string()),
            }
        }
        let sizes = merge::sizes_by_node(answers.iter().map(|(n, a)| (n.as_str(), a)));
        let size = |n: &str, q: &str| sizes.get(&(n.to_string(), q.to_string())).copied().unwrap_or(0);
        let mut merged = merge::queues(&botnet, non_zero, size);
        notes.extend(merge::outbox_notes(answers.iter().map(|(n, a)| (n.as_str(), a))));
        merged.notes = notes;
        Ok(Response::new(merged))
    }

    async fn clear_queue(&self, r: Request<pb::ClearQueueRequest>) -> Result<Response<pb::ClearQueueResponse>, Status> {
        if let Some(peer) = self.queue_peer(&r, &r.get_ref().queue) {
            return forward(&peer, r, |mut c, r| async move { c.clear_queue(r).await }).await;
        }
        let queue = r.into_inner().queue;
        let cleared = ops::clear_queue(&self.node, &queue)?;
        Ok(Response::new(pb::ClearQueueResponse { queue, cleared }))
    }

    async fn get_log(&self, r: Request<pb::GetLogRequest>) -> Result<Response<pb::GetLogResponse>, Status> {
        if let Some(peer) = self.bot_peer(&r, &r.get_ref().bot_id) {
            return forward(&peer, r, |mut c, r| async move { c.get_log(r).await }).await;
        }
        let r = r.into_inner();
        known_bot(&self.node, &r.bot_id)?;
        let level = if r.level.is_empty() {
            Level::Info
        } else {
            Level::parse(&r.level).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "unknown log level `{}` (DEBUG, INFO, WARNING, ERROR, CRITICAL)",
                    r.level
                ))
            })?
        };
        let lines = if r.lines == 0 { 10 } else { r.lines };
        let root = self.node.botnet()?.root;
        let records = ops::read_log(&root, &r.bot_id, lines, level)?;
        let lines = records
            .into_iter()
            .map(|l| pb::LogLine {
                date: l.date,
                bot_id: l.bot_id,
                thread_id: l.thread_id,
                log_level: l.log_level,
                message: l.message,
                extended_message: l.extended_message,
            })
            .collect();
        Ok(Response::new(pb::GetLogResponse { lines }))
    }

    async fn check(&self, r: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
        let fan_out = self.fans_out(&r);
        let req = r.into_inner();
        let connections = !req.no_connections;
        let local = async {
            let root = self.node.botnet()?.root;
            let node = self.node.clone();
            // Connection checks block for up to a second: off the runtime's threads.
            let mut lines = tokio::task::spawn_blocking(move || ops::check(&root, Some(&node), connections))
                .await
                .map_err(|e| Status::internal(format!("check failed: {e}")))?;
            for b in self.node.control(Command::Status, Selector::default()).await? {
                if let RunState::Failed(reason) = &b.state {
                    lines.push(("warning".into(), format!("Bot {:?} has failed: {reason}.", b.bot_id)));
                }
            }
            Ok::<_, Status>(lines.into_iter().map(|(level, message)| pb::CheckLine { level, message }).collect())
        };
        let remote = async {
            if !fan_out {
                return Vec::new();
            }
            let ask = |mut c: Client, r| async move { c.check(r).await };
            self.peers.ask_all(req, ACTION_TIMEOUT, ask).await
        };
        let (local, remote) = tokio::join!(local, remote);
        let remote = remote.into_iter().map(|(peer, answer)| {
            let answer = answer.map(|a| a.lines).map_err(|e| e.into_down(&peer).to_string());
            (peer.id.clone(), answer)
        });
        let lines = merge::check_lines(local?, remote);
        let status = if lines.iter().any(|l| l.level == "error") { "error" } else { "success" };
        Ok(Response::new(pb::CheckResponse { status: status.to_string(), lines }))
    }

    async fn run_bot(&self, r: Request<pb::RunBotRequest>) -> Result<Response<pb::RunBotResponse>, Status> {
        if let Some(peer) = self.bot_peer(&r, &r.get_ref().bot_id) {
            return forward(&peer, r, |mut c, r| async move { c.run_bot(r).await }).await;
        }
        let r = r.into_inner();
        let message = if r.message_json.trim().is_empty() {
            None
        } else {
            serde_json::from_str::<serde_json::Value>(&r.message_json)
                .map_err(|e| Status::invalid_argument(format!("the message is not JSON: {e}")))?;
            Some(r.message_json.into_bytes())
        };
        let run = self.node.run_once(&r.bot_id, message, r.dryrun).await?;
        let sent = run
            .sent
            .into_iter()
            .map(|(path, queues, json)| pb::SentMessage {
                path,
                queues,
                message_json: if r.show_sent { json } else { String::new() },
            })
            .collect();
        Ok(Response::new(pb::RunBotResponse {
            input_json: run.input,
            sent,
            acknowledged: run.acknowledged,
            log: run.log,
            error: run.error.unwrap_or_default(),
        }))
    }

    async fn list_dumps(&self, r: Request<pb::ListDumpsRequest>) -> Result<Response<pb::ListDumpsResponse>, Status> {
        let node = self.local_id()?;
        let mut bots: Vec<pb::DumpCount> = ops::dump_counts(&self.node)?
            .into_iter()
            .map(|(bot_id, count)| pb::DumpCount { bot_id, count, node: node.clone() })
            .collect();
        let mut notes = Vec::new();
        if self.fans_out(&r) {
            let ask = |mut c: Client, r| async move { c.list_dumps(r).await };
            for (peer, answer) in self.peers.ask_all(pb::ListDumpsRequest {}, QUERY_TIMEOUT, ask).await {
                match answer {
                    Ok(a) => bots.extend(a.bots),
                    Err(e) => notes.push(e.into_down(&peer).to_string()),
                }
            }
            bots.sort_by(|a, b| (&a.bot_id, &a.node).cmp(&(&b.bot_id, &b.node)));
        }
        Ok(Response::new(pb::ListDumpsResponse { bots, notes }))
    }

    async fn show_dumps(&self, r: Request<pb::ShowDumpsRequest>) -> Result<Response<pb::ShowDumpsResponse>, Status> {
        if let Some(peer) = self.bot_peer(&r, &r.get_ref().bot_id) {
            return forward(&peer, r, |mut c, r| async move { c.show_dumps(r).await }).await;
        }
        let r = r.into_inner();
        known_bot(&self.node, &r.bot_id)?;
        let entries = ops::dump_entries(&self.node, &r.bot_id, &r.ids)?;
        Ok(Response::new(pb::ShowDumpsResponse {
            entries: entries.into_iter().map(|(i, e)| dump_to_pb(i, e)).collect(),
        }))
    }

    async fn delete_dumps(
        &self,
        r: Request<pb::DeleteDumpsRequest>,
    ) -> Result<Response<pb::DeleteDumpsResponse>, Status> {
        if let Some(peer) = self.bot_peer(&r, &r.get_ref().bot_id) {
            return forward(&peer, r, |mut c, r| async move { c.delete_dumps(r).await }).await;
        }
        let r = r.into_inner();
        known_bot(&self.node, &r.bot_id)?;
        if !r.all && r.ids.is_empty() {
            return Err(Status::invalid_argument("name the dump ids to delete, or all"));
        }
        let deleted = ops::delete_dumps(&self.node, &r.bot_id, &r.ids, r.all)?;
        Ok(Response::new(pb::DeleteDumpsResponse { deleted }))
    }

    async fn recover_dumps(
        &self,
        r: Request<pb::RecoverDumpsRequest>,
    ) -> Result<Response<pb::RecoverDumpsResponse>, Status> {
        if let Some(peer) = self.bot_peer(&r, &r.get_ref().bot_id) {
            return forward(&peer, r, |mut c, r| async move { c.recover_dumps(r).await }).await;
        }
        let r = r.into_inner();
        known_bot(&self.node, &r.bot_id)?;
        if !r.all && r.ids.is_empty() {
            return Err(Status::invalid_argument("name the dump ids to recover, or all"));
        }
        let ids = ops::recover_dumps(&self.node, &r.bot_id, &r.ids, r.all, &r.queue)?;
        self.node.wake(&self.node.botnet()?.queues());
        Ok(Response::new(pb::RecoverDumpsResponse { recovered: ids.len() as u64, ids }))
    }

    async fn update_dump(&self, r: Request<pb::UpdateDumpRequest>) -> Result<Response<pb::UpdateDumpResponse>, Status> {
        if let Some(peer) = self.bot_peer(&r, &r.get_ref().bot_id) {
            return forward(&peer, r, |mut c, r| async move { c.update_dump(r).await }).await;
        }
        let r = r.into_inner();
        let (id, entry) = ops::update_dump(&self.node, r.id, &r.message)?;
        Ok(Response::new(pb::UpdateDumpResponse { entry: Some(dump_to_pb(id, entry)) }))
    }

    async fn export_dumps(
        &self,
        r: Request<pb::ExportDumpsRequest>,
    ) -> Result<Response<pb::ExportDumpsResponse>, Status> {
        if let Some(peer) = self.bot_peer(&r, &r.get_ref().bot_id) {
            return forward(&peer, r, |mut c, r| async move { c.export_dumps(r).await }).await;
        }
        let r = r.into_inner();
        known_bot(&self.node, &r.bot_id)?;
        Ok(Response::new(pb::ExportDumpsResponse { dump_json: ops::export_dumps(&self.node, &r.bot_id)? }))
    }

    async fn import_dumps(
        &self,
        r: Request<pb::ImportDumpsRequest>,
    ) -> Result<Response<pb::ImportDumpsResponse>, Status> {
        let fan_out = self.fans_out(&r);
        if let Some(peer) = self.bot_peer(&r, &r.get_ref().bot_id) {
            return forward(&peer, r, |mut c, r| async move { c.import_dumps(r).await }).await;
        }
        let r = r.into_inner();
        if !r.bot_id.is_empty() {
            known_bot(&self.node, &r.bot_id)?;
        } else if fan_out {
            if let Some(imported) = self.import_spread(&r.dump_json).await? {
                return Ok(Response::new(pb::ImportDumpsResponse { imported }));
            }
        }
        let imported = ops::import_dumps(&self.node, &r.dump_json, &r.bot_id)?;
        Ok(Response::new(pb::ImportDumpsResponse { imported }))
    }

    async fn inject_message(
        &self,
        r: Request<pb::InjectMessageRequest>,
    ) -> Result<Response<pb::InjectMessageResponse>, Status> {
        if let Some(peer) = self.queue_peer(&r, &r.get_ref().queue) {
            return forward(&peer, r, |mut c, r| async move { c.inject_message(r).await }).await;
        }
        let r = r.into_inner();
        let size = ops::inject(&self.node, &r.queue, &r.message_json, &r.default_type)?;
        // Wake the consumer: a running bot picks the message up at once.
        self.node.wake(&[r.queue.clone()]);
        Ok(Response::new(pb::InjectMessageResponse { queue: r.queue, size }))
    }

    async fn get_stats(&self, r: Request<pb::GetStatsRequest>) -> Result<Response<pb::GetStatsResponse>, Status> {
        let (timestamp_ms, bots, notes) = self.botnet_stats(self.fans_out(&r)).await?;
        Ok(Response::new(pb::GetStatsResponse { timestamp_ms, bots, notes }))
    }

    type WatchStatsStream = StatsStream;

    async fn watch_stats(&self, r: Request<pb::WatchStatsRequest>) -> Result<Response<Self::WatchStatsStream>, Status> {
        let fan_out = self.fans_out(&r);
        let every = Duration::from_millis(match r.into_inner().interval_ms {
            0 => 1000,
            n => n.max(100),
        });
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let svc = self.clone();
        tokio::spawn(async move {
            loop {
                let item = svc.botnet_stats(fan_out).await.map(|(timestamp_ms, bots, notes)| pb::WatchStatsResponse {
                    timestamp_ms,
                    bots,
                    notes,
                });
                if tx.send(item).await.is_err() {
                    break;
                }
                tokio::time::sleep(every).await;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn list_nodes(&self, r: Request<pb::ListNodesRequest>) -> Result<Response<pb::ListNodesResponse>, Status> {
        let fan_out = self.fans_out(&r);
        let ask = |mut c: Client, r| async move { c.list_nodes(r).await };
        let remote = async {
            if fan_out {
                self.peers.ask_all(pb::ListNodesRequest {}, QUERY_TIMEOUT, ask).await
            } else {
                Vec::new()
            }
        };
        let (local, remote) = tokio::join!(self.local_node(), remote);
        let mut nodes = vec![local?];
        for (peer, answer) in remote {
            nodes.push(match answer {
                Ok(a) => {
                    let mut n = a.nodes.into_iter().next().unwrap_or_default();
                    if n.node_id != peer.id {
                        n.error = format!("the node at {} says it is `{}`", peer.endpoint, n.node_id);
                    }
                    pb::NodeInfo {
                        node_id: peer.id.clone(),
                        endpoint: peer.endpoint.clone(),
                        local: false,
                        reachable: true,
                        last_answer_ms: Some(0),
                        ..n
                    }
                }
                Err(e) => {
                    let down = e.into_down(&peer);
                    pb::NodeInfo {
                        node_id: peer.id.clone(),
                        endpoint: peer.endpoint.clone(),
                        last_answer_ms: down.last_answer.map(|d| d.as_millis() as u64),
                        error: down.reason,
                        ..Default::default()
                    }
                }
            });
        }
        Ok(Response::new(pb::ListNodesResponse { nodes }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_covers_the_window_and_falls_to_zero_when_idle() {
        let mut w = RateWindow::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(w.rate("a", t0, 5), 0.0, "no sample yet");
        w.record("a", t0, 0);
        assert_eq!(w.rate("a", t0, 0), 0.0);
        // 10 messages per second for 10 s.
        for i in 1..=10u64 {
            w.record("a", t0 + Duration::from_secs(i), i * 10);
        }
        let now = t0 + Duration::from_secs(10);
        assert!((w.rate("a", now, 100) - 10.0).abs() < 1e-9, "{}", w.rate("a", now, 100));
        // Then nothing for a window: the old samples go, the rate is 0 again.
        for i in 11..=21u64 {
            w.record("a", t0 + Duration::from_secs(i), 100);
        }
        assert_eq!(w.rate("a", t0 + Duration::from_secs(21), 100), 0.0);
        assert!(w.samples["a"].len() <= 12, "{:?}", w.samples["a"]);
        // A burst within the window shows, a lifetime average would not.
        let now = t0 + Duration::from_secs(22);
        w.record("a", now, 150);
        assert!(w.rate("a", now, 150) > 4.0, "{}", w.rate("a", now, 150));
    }

    #[test]
    fn samples_are_bounded_and_removed_bots_forgotten() {
        let mut w = RateWindow::new(Duration::from_millis(500));
        assert_eq!(w.sample_every(), Duration::from_millis(50));
        assert_eq!(RateWindow::new(Duration::from_secs(60)).sample_every(), Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..1000u64 {
            w.record("a", t0 + Duration::from_millis(50 * i), i);
            w.record("b", t0 + Duration::from_millis(50 * i), 0);
        }
        assert!(w.samples["a"].len() <= 12, "{}", w.samples["a"].len());
        w.retain(&["a"]);
        assert!(!w.samples.contains_key("b"));
        assert_eq!(w.rate("a", t0 + Duration::from_millis(50 * 999), 999), 20.0);
    }
}
