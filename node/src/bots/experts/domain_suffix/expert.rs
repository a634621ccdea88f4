//! `intelmq.bots.experts.domain_suffix.expert`: the public suffix (ICANN section of the Public
//! Suffix List in `suffix_file`) of `<dir>.<field>` (`field` = `fqdn` or `reverse_dns`) goes into
//! `<dir>.domain_suffix`, for `source` and `destination`.
//!
//! The suffix is found as `publicsuffixlist` does: exception rules first, then the longest normal
//! or wildcard rule, else the last label (the implicit `*` rule). Unicode rules also match in
//! their punycode form. The list is read when the bot is built if its path is absolute, else on
//! the first message (relative to the node root).

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::{AddOptions, Message};

/// Parameters of the domain suffix expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainSuffixExpertParams {
    /// `fqdn` or `reverse_dns`; default null (must be set).
    pub field: Option<String>,
    /// The Public Suffix List file; default null (must be set).
    pub suffix_file: Option<String>,
}

/// The ICANN rules of a Public Suffix List.
#[derive(Debug, Default)]
pub struct SuffixList {
    rules: HashSet<String>,
    /// `*.x` rules, stored as `x`.
    wildcards: HashSet<String>,
    /// `!x` rules, stored as `x`.
    exceptions: HashSet<String>,
}

impl SuffixList {
    /// Parses the list; only rules between `===BEGIN ICANN DOMAINS===` and
    /// `===END ICANN DOMAINS===` count (a file without those markers counts whole).
    pub fn parse(text: &str) -> SuffixList {
        let has_sections = text.contains("===BEGIN ICANN DOMAINS===");
        let mut in_icann = !has_sections;
        let mut list = SuffixList::default();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("//") {
                if line.contains("===BEGIN ICANN DOMAINS===") {
                    in_icann = true;
                } else if line.contains("===END ICANN DOMAINS===") {
                    in_icann = false;
                }
                continue;
            }
            let Some(rule) = line.split_whitespace().next() else {
                continue;
            };
            if !in_icann {
                continue;
            }
            let rule = rule.to_lowercase();
            let mut forms = vec![rule.clone()];
            if !rule.is_ascii() {
                let (bare, prefix) = match (rule.strip_prefix('!'), rule.strip_prefix("*.")) {
                    (Some(b), _) => (b, "!"),
                    (_, Some(b)) => (b, "*."),
                    _ => (rule.as_str(), ""),
                };
                if let Ok(ascii) = idna::domain_to_ascii(bare) {
                    forms.push(format!("{prefix}{ascii}"));
                }
            }
            for form in forms {
                if let Some(e) = form.strip_prefix('!') {
                    list.exceptions.insert(e.to_string());
                } else if let Some(w) = form.strip_prefix("*.") {
                    list.wildcards.insert(w.to_string());
                } else {
                    list.rules.insert(form);
                }
            }
        }
        list
    }

    /// The public suffix of a domain (`None` for an empty name).
    pub fn public_suffix(&self, domain: &str) -> Option<String> {
        let lower = domain.to_lowercase();
        let labels: Vec<&str> = lower.split('.').collect();
        if lower.is_empty() || labels.iter().any(|l| l.is_empty()) {
            return None;
        }
        let n = labels.len();
        let suffix = |k: usize| labels[n - k..].join(".");
        for k in (2..=n).rev() {
            if self.exceptions.contains(&suffix(k)) {
                return Some(suffix(k - 1));
            }
        }
        for k in (1..=n).rev() {
            if self.rules.contains(&suffix(k)) || (k >= 2 && self.wildcards.contains(&suffix(k - 1))) {
                return Some(suffix(k));
            }
        }
        Some(suffix(1))
    }
}

enum Suffixes {
    Loaded(SuffixList),
    Pending(String),
}

fn load_list(path: &Path) -> Result<SuffixList, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read public suffix list {}: {e}", path.display()))?;
    Ok(SuffixList::parse(&text))
}

/// Adds the public suffix of the domains.
pub struct DomainSuffixExpertBot {
    field: String,
    list: Suffixes,
}

impl BuildBot for DomainSuffixExpertBot {
    type Params = DomainSuffixExpertParams;

    fn build(params: DomainSuffixExpertParams) -> Result<Self, ParamError> {
        let field = match params.field.as_deref() {
            Some(f @ ("fqdn" | "reverse_dns")) => f.to_string(),
            other => {
                return Err(ParamError::new(
                    "field",
                    format!("expected `fqdn` or `reverse_dns`, got {}", other.unwrap_or("nothing")),
                ))
            }
        };
        let Some(file) = params.suffix_file.filter(|f| !f.is_empty()) else {
            return Err(ParamError::new("suffix_file", "no public suffix list given"));
        };
        let list = if Path::new(&file).is_absolute() {
            Suffixes::Loaded(load_list(Path::new(&file)).map_err(|e| ParamError::new("suffix_file", e))?)
        } else {
            Suffixes::Pending(file)
        };
        Ok(DomainSuffixExpertBot { field, list })
    }
}

impl ExpertBot for DomainSuffixExpertBot {
    fn process(&mut self, mut event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if let Suffixes::Pending(path) = &self.list {
            self.list = Suffixes::Loaded(load_list(&ctx.resolve(path)).map_err(BotError::Fatal)?);
        }
        let Suffixes::Loaded(list) = &self.list else {
            return Err(BotError::Fatal("public suffix list is not loaded".to_string()));
        };
        for dir in ["source", "destination"] {
            let Some(domain) = event.get_str(&format!("{dir}.{}", self.field)) else {
                continue;
            };
            let Some(suffix) = list.public_suffix(domain.trim_end_matches('.')) else {
                continue;
            };
            let opts = AddOptions { overwrite: Some(true), ..AddOptions::default() };
            event.add_with(&format!("{dir}.domain_suffix"), Value::String(suffix), opts)?;
        }
        out.send(event);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LIST: &str = "// ===BEGIN ICANN DOMAINS===\nnet\ncom\norg\nexample.com\n*.example.net\n!www.example.net\ncom.cn\n中国\n// ===END ICANN DOMAINS===\n// ===BEGIN PRIVATE DOMAINS===\nblogspot.com\n// ===END PRIVATE DOMAINS===\n";

    #[test]
    fn suffixes_follow_the_psl_algorithm() {
        let list = SuffixList::parse(LIST);
        let s = |d: &str| list.public_suffix(d).unwrap();
        assert_eq!(s("sub.example.com"), "example.com");
        assert_eq!(s("sub.example.net"), "sub.example.net");
        assert_eq!(s("www.example.net"), "example.net");
        assert_eq!(s("www.example.org"), "org");
        assert_eq!(s("xn--85x722f.com.cn"), "com.cn");
        assert_eq!(s("xn--85x722f.xn--fiqs8s"), "xn--fiqs8s");
        assert_eq!(s("foo.blogspot.com"), "com");
        assert_eq!(s("foo.unknown"), "unknown");
    }

    #[test]
    fn field_must_be_fqdn_or_reverse_dns() {
        let params = DomainSuffixExpertParams { field: Some("ip".into()), suffix_file: Some("x".into()) };
        assert_eq!(DomainSuffixExpertBot::build(params).err().unwrap().key, "field");
    }
}
