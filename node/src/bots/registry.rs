//! The one explicit list of every bot module this node can run, keyed by IntelMQ's module path.
//! Grepping this file shows everything that exists.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{collectors, experts, outputs, parsers, Bot, BotKind, ParamError, Params};

/// A bot type that can be built from its typed parameters.
pub trait BuildBot: Sized + 'static {
    /// The bot's parameters: a serde struct with `deny_unknown_fields` and a written `Default`.
    type Params: DeserializeOwned + Serialize + Default;
    /// Checks the parameters and builds the bot (no network or store access here).
    fn build(params: Self::Params) -> Result<Self, ParamError>;
}

/// One registered module.
pub struct BotEntry {
    /// IntelMQ's module path, e.g. `intelmq.bots.parsers.generic.parser_csv`.
    pub module: &'static str,
    pub kind: BotKind,
    /// The parameters and their defaults, for the BOTS catalogue.
    pub defaults: fn() -> Value,
    /// Builds the bot from its bot-specific parameters.
    pub build: fn(&Params) -> Result<Bot, ParamError>,
}

/// Deserializes a bot's parameters; an unknown or mistyped key names the key.
pub fn parse_params<P: DeserializeOwned>(params: &Params) -> Result<P, ParamError> {
    serde_json::from_value(Value::Object(params.clone())).map_err(|e| {
        let text = e.to_string();
        let key = text
            .split('`')
            .nth(1)
            .filter(|_| text.starts_with("unknown field") || text.starts_with("missing field"))
            .unwrap_or("")
            .to_string();
        ParamError { key, reason: text }
    })
}

fn defaults_of<B: BuildBot>() -> Value {
    serde_json::to_value(B::Params::default()).unwrap_or(Value::Null)
}

macro_rules! entry {
    ($kind:ident, $module:literal, $ty:ty) => {
        BotEntry {
            module: $module,
            kind: BotKind::$kind,
            defaults: defaults_of::<$ty>,
            build: |p| {
                let params = parse_params::<<$ty as BuildBot>::Params>(p)?;
                Ok(Bot::$kind(Box::new(<$ty as BuildBot>::build(params)?)))
            },
        }
    };
}

/// Every module this node knows, one line each.
pub static REGISTRY: &[BotEntry] = &[
    entry!(
        Collector,
        "intelmq.bots.collectors.file.collector_file",
        collectors::file::collector_file::FileCollectorBot
    ),
    entry!(
        Collector,
        "intelmq.bots.collectors.amqp.collector_amqp",
        collectors::amqp::collector_amqp::AmqpCollectorBot
    ),
    entry!(Collector, "intelmq.bots.collectors.api.collector_api", collectors::api::collector_api::ApiCollectorBot),
    entry!(Collector, "intelmq.bots.collectors.tcp.collector", collectors::tcp::collector::TcpCollectorBot),
    entry!(
        Collector,
        "intelmq.bots.collectors.http.collector_http",
        collectors::http::collector_http::HttpCollectorBot
    ),
    entry!(
        Collector,
        "intelmq.bots.collectors.http.collector_http_stream",
        collectors::http::collector_http_stream::HttpStreamCollectorBot
    ),
    entry!(
        Collector,
        "intelmq.bots.collectors.alienvault_otx.collector",
        collectors::alienvault_otx::collector::AlienvaultOtxCollectorBot
    ),
    entry!(
        Collector,
        "intelmq.bots.collectors.blueliv.collector_crimeserver",
        collectors::blueliv::collector_crimeserver::BluelivCrimeserverCollectorBot
    ),
    entry!(
        Collector,
        "intelmq.bots.collectors.github_api.collector_github_contents_api",
        collectors::github_api::collector_github_contents_api::GithubContentsApiCollectorBot
    ),
    entry!(
        Collector,
        "intelmq.bots.collectors.microsoft.collector_interflow",
        collectors::microsoft::collector_interflow::MicrosoftInterflowCollectorBot
    ),
    entry!(Collector, "intelmq.bots.collectors.misp.collector", collectors::misp::collector::MispCollectorBot),
    entry!(
        Collector,
        "intelmq.bots.collectors.shadowserver.collector_reports_api",
        collectors::shadowserver::collector_reports_api::ShadowserverReportsApiCollectorBot
    ),
    entry!(
        Collector,
        "intelmq.bots.collectors.shodan.collector_stream",
        collectors::shodan::collector_stream::ShodanStreamCollectorBot
    ),
    entry!(
        Collector,
        "intelmq.bots.collectors.mail.collector_mail_attach",
        collectors::mail::collector_mail_attach::MailAttachCollectorBot
    ),
    entry!(
        Collector,
        "intelmq.bots.collectors.mail.collector_mail_body",
        collectors::mail::collector_mail_body::MailBodyCollectorBot
    ),
    entry!(
        Collector,
        "intelmq.bots.collectors.mail.collector_mail_url",
        collectors::mail::collector_mail_url::MailUrlCollectorBot
    ),
    entry!(
        Collector,
        "intelmq.bots.collectors.rsync.collector_rsync",
        collectors::rsync::collector_rsync::RsyncCollectorBot
    ),
    entry!(Collector, "intelmq.bots.collectors.stomp.collector", collectors::stomp::collector::StompCollectorBot),
    // registry:collectors-net
    // -- parsers (alphabetical within each block) --
    entry!(Parser, "intelmq.bots.parsers.generic.parser_csv", parsers::generic::parser_csv::GenericCsvParserBot),
    entry!(
        Parser,
        "intelmq.bots.parsers.abusech.parser_feodotracker",
        parsers::abusech::parser_feodotracker::AbusechFeodotrackerParserBot
    ),
    entry!(Parser, "intelmq.bots.parsers.alienvault.parser", parsers::alienvault::parser::AlienvaultParserBot),
    entry!(
        Parser,
        "intelmq.bots.parsers.alienvault.parser_otx",
        parsers::alienvault::parser_otx::AlienvaultOtxParserBot
    ),
    entry!(
        Parser,
        "intelmq.bots.parsers.anubisnetworks.parser",
        parsers::anubisnetworks::parser::AnubisnetworksParserBot
    ),
    entry!(
        Parser,
        "intelmq.bots.parsers.blueliv.parser_crimeserver",
        parsers::blueliv::parser_crimeserver::BluelivCrimeserverParserBot
    ),
    entry!(
        Parser,
        "intelmq.bots.parsers.calidog.parser_certstream",
        parsers::calidog::parser_certstream::CalidogCertstreamParserBot
    ),
    entry!(Parser, "intelmq.bots.parsers.cznic.parser_haas", parsers::cznic::parser_haas::CznicHaasParserBot),
    entry!(Parser, "intelmq.bots.parsers.cznic.parser_proki", parsers::cznic::parser_proki::CznicProkiParserBot),
    entry!(Parser, "intelmq.bots.parsers.eset.parser", parsers::eset::parser::EsetParserBot),
    entry!(
        Parser,
        "intelmq.bots.parsers.fraunhofer.parser_dga",
        parsers::fraunhofer::parser_dga::FraunhoferDgaParserBot
    ),
    entry!(Parser, "intelmq.bots.parsers.json.parser", parsers::json::parser::JsonParserBot),
    entry!(Parser, "intelmq.bots.parsers.key_value.parser", parsers::key_value::parser::KeyValueParserBot),
    // registry:parsers-json
    entry!(
        Parser,
        "intelmq.bots.parsers.cymru.parser_cap_program",
        parsers::cymru::parser_cap_program::CymruCapProgramParserBot
    ),
    entry!(
        Parser,
        "intelmq.bots.parsers.cymru.parser_full_bogons",
        parsers::cymru::parser_full_bogons::CymruFullBogonsParserBot
    ),
    entry!(Parser, "intelmq.bots.parsers.shadowserver.parser", parsers::shadowserver::parser::ShadowserverParserBot),
    // registry:parsers-shadowserver
    entry!(Parser, "intelmq.bots.parsers.bambenek.parser", parsers::bambenek::parser::BambenekParserBot),
    entry!(Parser, "intelmq.bots.parsers.blocklistde.parser", parsers::blocklistde::parser::BlockListDEParserBot),
    entry!(Parser, "intelmq.bots.parsers.cert_eu.parser_csv", parsers::cert_eu::parser_csv::CertEUCSVParserBot),
    entry!(Parser, "intelmq.bots.parsers.ci_army.parser", parsers::ci_army::parser::CIArmyParserBot),
    entry!(
        Parser,
        "intelmq.bots.parsers.danger_rulez.parser",
        parsers::danger_rulez::parser::BruteForceBlockerParserBot
    ),
    entry!(Parser, "intelmq.bots.parsers.dataplane.parser", parsers::dataplane::parser::DataplaneParserBot),
    entry!(Parser, "intelmq.bots.parsers.dshield.parser_asn", parsers::dshield::parser_asn::DShieldASNParserBot),
    entry!(Parser, "intelmq.bots.parsers.dshield.parser_block", parsers::dshield::parser_block::DshieldBlockParserBot),
    entry!(Parser, "intelmq.bots.parsers.dyn.parser", parsers::r#dyn::parser::DynParserBot),
    entry!(
        Parser,
        "intelmq.bots.parsers.malwarepatrol.parser_dansguardian",
        parsers::malwarepatrol::parser_dansguardian::DansParserBot
    ),
    entry!(Parser, "intelmq.bots.parsers.openphish.parser", parsers::openphish::parser::OpenPhishParserBot),
    entry!(
        Parser,
        "intelmq.bots.parsers.openphish.parser_commercial",
        parsers::openphish::parser_commercial::OpenPhishCommercialParserBot
    ),
    entry!(Parser, "intelmq.bots.parsers.spamhaus.parser_cert", parsers::spamhaus::parser_cert::SpamhausCERTParserBot),
    entry!(Parser, "intelmq.bots.parsers.spamhaus.parser_drop", parsers::spamhaus::parser_drop::SpamhausDropParserBot),
    entry!(Parser, "intelmq.bots.parsers.surbl.parser", parsers::surbl::parser::SurblParserBot),
    entry!(Parser, "intelmq.bots.parsers.turris.parser", parsers::turris::parser::TurrisGreylistParserBot),
    entry!(Parser, "intelmq.bots.parsers.vxvault.parser", parsers::vxvault::parser::VXVaultParserBot),
    entry!(Parser, "intelmq.bots.parsers.zoneh.parser", parsers::zoneh::parser::ZoneHParserBot),
    // registry:parsers-text
    entry!(Parser, "intelmq.bots.parsers.html_table.parser", parsers::html_table::parser::HtmlTableParserBot),
    entry!(Parser, "intelmq.bots.parsers.malwareurl.parser", parsers::malwareurl::parser::MalwareurlParserBot),
    entry!(Parser, "intelmq.bots.parsers.threatminer.parser", parsers::threatminer::parser::ThreatminerParserBot),
    entry!(Parser, "intelmq.bots.parsers.cleanmx.parser", parsers::cleanmx::parser::CleanmxParserBot),
    entry!(Parser, "intelmq.bots.parsers.fireeye.parser", parsers::fireeye::parser::FireeyeParserBot),
    entry!(Parser, "intelmq.bots.parsers.github_feed.parser", parsers::github_feed::parser::GithubFeedParserBot),
    entry!(Parser, "intelmq.bots.parsers.hibp.parser_callback", parsers::hibp::parser_callback::HibpCallbackParserBot),
    entry!(Parser, "intelmq.bots.parsers.mcafee.parser_atd", parsers::mcafee::parser_atd::McafeeAtdParserBot),
    entry!(
        Parser,
        "intelmq.bots.parsers.microsoft.parser_bingmurls",
        parsers::microsoft::parser_bingmurls::MicrosoftBingMurlsParserBot
    ),
    entry!(
        Parser,
        "intelmq.bots.parsers.microsoft.parser_ctip",
        parsers::microsoft::parser_ctip::MicrosoftCtipParserBot
    ),
    entry!(Parser, "intelmq.bots.parsers.misp.parser", parsers::misp::parser::MispParserBot),
    entry!(Parser, "intelmq.bots.parsers.n6.parser_n6stomp", parsers::n6::parser_n6stomp::N6StompParserBot),
    entry!(Parser, "intelmq.bots.parsers.phishtank.parser", parsers::phishtank::parser::PhishtankParserBot),
    entry!(Parser, "intelmq.bots.parsers.shodan.parser", parsers::shodan::parser::ShodanParserBot),
    entry!(Parser, "intelmq.bots.parsers.twitter.parser", parsers::twitter::parser::TwitterParserBot),
    // registry:parsers-markup
    // -- experts --
    entry!(Expert, "intelmq.bots.experts.deduplicator.expert", experts::deduplicator::expert::DeduplicatorExpertBot),
    entry!(Expert, "intelmq.bots.experts.taxonomy.expert", experts::taxonomy::expert::TaxonomyExpertBot),
    entry!(Expert, "intelmq.bots.experts.url2fqdn.expert", experts::url2fqdn::expert::Url2fqdnExpertBot),
    entry!(Expert, "intelmq.bots.experts.sieve.expert", experts::sieve::expert::SieveExpertBot),
    // registry:experts-sieve
    entry!(Expert, "intelmq.bots.experts.aggregate.expert", experts::aggregate::expert::AggregateExpertBot),
    entry!(Expert, "intelmq.bots.experts.csv_converter.expert", experts::csv_converter::expert::CsvConverterExpertBot),
    entry!(Expert, "intelmq.bots.experts.domain_suffix.expert", experts::domain_suffix::expert::DomainSuffixExpertBot),
    entry!(Expert, "intelmq.bots.experts.domain_valid.expert", experts::domain_valid::expert::DomainValidExpertBot),
    entry!(Expert, "intelmq.bots.experts.field_reducer.expert", experts::field_reducer::expert::FieldReducerExpertBot),
    entry!(Expert, "intelmq.bots.experts.filter.expert", experts::filter::expert::FilterExpertBot),
    entry!(Expert, "intelmq.bots.experts.format_field.expert", experts::format_field::expert::FormatFieldExpertBot),
    entry!(Expert, "intelmq.bots.experts.geohash.expert", experts::geohash::expert::GeohashExpertBot),
    entry!(Expert, "intelmq.bots.experts.idea.expert", experts::idea::expert::IdeaExpertBot),
    entry!(Expert, "intelmq.bots.experts.jinja.expert", experts::jinja::expert::JinjaExpertBot),
    entry!(Expert, "intelmq.bots.experts.modify.expert", experts::modify::expert::ModifyExpertBot),
    entry!(Expert, "intelmq.bots.experts.remove_affix.expert", experts::remove_affix::expert::RemoveAffixExpertBot),
    entry!(Expert, "intelmq.bots.experts.rfc1918.expert", experts::rfc1918::expert::Rfc1918ExpertBot),
    entry!(Expert, "intelmq.bots.experts.threshold.expert", experts::threshold::expert::ThresholdExpertBot),
    entry!(
        Expert,
        "intelmq.bots.experts.truncate_by_delimiter.expert",
        experts::truncate_by_delimiter::expert::TruncateByDelimiterExpertBot
    ),
    entry!(Expert, "intelmq.bots.experts.url.expert", experts::url::expert::UrlExpertBot),
    entry!(Expert, "intelmq.bots.experts.wait.expert", experts::wait::expert::WaitExpertBot),
    // registry:experts-general
    entry!(Expert, "intelmq.bots.experts.asn_lookup.expert", experts::asn_lookup::expert::AsnLookupExpertBot),
    entry!(Expert, "intelmq.bots.experts.cymru_whois.expert", experts::cymru_whois::expert::CymruWhoisExpertBot),
    entry!(
        Expert,
        "intelmq.bots.experts.generic_db_lookup.expert",
        experts::generic_db_lookup::expert::GenericDbLookupExpertBot
    ),
    entry!(Expert, "intelmq.bots.experts.gethostbyname.expert", experts::gethostbyname::expert::GethostbynameExpertBot),
    entry!(Expert, "intelmq.bots.experts.maxmind_geoip.expert", experts::maxmind_geoip::expert::MaxmindGeoipExpertBot),
    entry!(
        Expert,
        "intelmq.bots.experts.recordedfuture_iprisk.expert",
        experts::recordedfuture_iprisk::expert::RecordedfutureIpriskExpertBot
    ),
    entry!(Expert, "intelmq.bots.experts.reverse_dns.expert", experts::reverse_dns::expert::ReverseDnsExpertBot),
    entry!(Expert, "intelmq.bots.experts.tor_nodes.expert", experts::tor_nodes::expert::TorNodesExpertBot),
    // registry:experts-lookup
    // -- outputs --
    entry!(Output, "intelmq.bots.outputs.file.output", outputs::file::output::FileOutputBot),
    entry!(Output, "intelmq.bots.outputs.amqptopic.output", outputs::amqptopic::output::AmqpTopicOutputBot),
    entry!(Output, "intelmq.bots.outputs.elasticsearch.output", outputs::elasticsearch::output::ElasticsearchOutputBot),
    entry!(Output, "intelmq.bots.outputs.mqtt.output", outputs::mqtt::output::MqttOutputBot),
    entry!(Output, "intelmq.bots.outputs.redis.output", outputs::redis::output::RedisOutputBot),
    entry!(Output, "intelmq.bots.outputs.sql.output", outputs::sql::output::SqlOutputBot),
    // registry:outputs-db
    entry!(Output, "intelmq.bots.outputs.blackhole.output", outputs::blackhole::output::BlackholeOutputBot),
    entry!(Output, "intelmq.bots.outputs.bro_file.output", outputs::bro_file::output::BroFileOutputBot),
    entry!(Output, "intelmq.bots.outputs.files.output", outputs::files::output::FilesOutputBot),
    entry!(Output, "intelmq.bots.outputs.restapi.output", outputs::restapi::output::RestapiOutputBot),
    entry!(Output, "intelmq.bots.outputs.rpz_file.output", outputs::rpz_file::output::RpzFileOutputBot),
    entry!(Output, "intelmq.bots.outputs.smtp.output", outputs::smtp::output::SmtpOutputBot),
    entry!(Output, "intelmq.bots.outputs.stomp.output", outputs::stomp::output::StompOutputBot),
    entry!(Output, "intelmq.bots.outputs.tcp.output", outputs::tcp::output::TcpOutputBot),
    entry!(
        Output,
        "intelmq.bots.outputs.templated_smtp.output",
        outputs::templated_smtp::output::TemplatedSmtpOutputBot
    ),
    entry!(Output, "intelmq.bots.outputs.touch.output", outputs::touch::output::TouchOutputBot),
    entry!(Output, "intelmq.bots.outputs.udp.output", outputs::udp::output::UdpOutputBot),
    // registry:outputs-net
];

/// The entry of a module, if registered.
pub fn find(module: &str) -> Option<&'static BotEntry> {
    REGISTRY.iter().find(|e| e.module == module)
}

/// The registered module paths, for error messages.
pub fn known_modules() -> Vec<&'static str> {
    REGISTRY.iter().map(|e| e.module).collect()
}

/// The BOTS catalogue (IntelMQ's `BOTS` file shape): group -> bot name -> module and default
/// parameters. `etc/BOTS` is this, and `intelmq-node --print-bots` prints it.
pub fn catalogue() -> Value {
    let mut groups = serde_json::Map::new();
    for kind in [BotKind::Collector, BotKind::Parser, BotKind::Expert, BotKind::Output] {
        let mut bots = serde_json::Map::new();
        for e in REGISTRY.iter().filter(|e| e.kind == kind) {
            let mut entry = serde_json::Map::new();
            entry.insert("module".into(), Value::String(e.module.to_string()));
            entry.insert("parameters".into(), (e.defaults)());
            bots.insert(e.module.to_string(), Value::Object(entry));
        }
        groups.insert(kind.as_str().to_string(), Value::Object(bots));
    }
    Value::Object(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_is_listed_once_and_builds_from_its_defaults_or_names_the_key() {
        let mut seen = std::collections::HashSet::new();
        for e in REGISTRY {
            assert!(seen.insert(e.module), "{} registered twice", e.module);
            assert!(e.module.starts_with("intelmq.bots."), "{}", e.module);
            assert!((e.defaults)().is_object(), "{} defaults are an object", e.module);
        }
    }

    #[test]
    fn unknown_parameter_names_the_key() {
        let entry = find("intelmq.bots.experts.taxonomy.expert").expect("registered");
        let mut p = Params::new();
        p.insert("no_such_key".into(), Value::Bool(true));
        let err = (entry.build)(&p).err().expect("refused");
        assert_eq!(err.key, "no_such_key");
    }
}
