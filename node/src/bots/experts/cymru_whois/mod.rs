//! The `intelmq.bots.experts.cymru_whois` module: the expert and its minimal DNS TXT client.

pub mod dns;
pub mod expert;
