//! `intelmq.bots.collectors.mail.collector_mail_url`: unread mails (see [`super::lib`]); in each
//! plain body the first URL matching `url_regex` is downloaded (HTTP parameters as the HTTP
//! collector) into Reports (split into chunks of about `chunk_size` bytes at line ends, the
//! header line repeated with `chunk_replicate_header`) with `feed.url`, `extra.file_name` (the
//! Content-Disposition file name or the URL's last path segment) and the `extra.email_*` fields.
//! A mail whose downloads all worked is marked `\Seen` after the commit; a failed download is
//! logged and the mail left unread for the next run.

use super::lib::{MailSettings, Mailbox};
use crate::bots::collectors::file::collector_file::split_chunks;
use crate::bots::collectors::http::mixin::{self, de, http_params, HttpClient};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};

http_params! {
    /// Parameters of the mail URL collector (IntelMQ's names and defaults).
    pub struct MailUrlCollectorParams {
        /// `mail_host`: the IMAP server; default "<host>".
        #[serde(deserialize_with = "de::string")]
        pub mail_host: String = "<host>".to_string(),
        /// `mail_user`: the IMAP user; default "<user>".
        #[serde(deserialize_with = "de::string")]
        pub mail_user: String = "<user>".to_string(),
        /// `mail_password`: the IMAP password; default "<password>".
        #[serde(deserialize_with = "de::string")]
        pub mail_password: String = "<password>".to_string(),
        /// `mail_ssl`: IMAP over TLS; default true.
        #[serde(deserialize_with = "de::bool")]
        pub mail_ssl: bool = true,
        /// `mail_port`: the IMAP port; default null (143, or 993 with TLS).
        #[serde(deserialize_with = "de::opt_u16")]
        pub mail_port: Option<u16> = None,
        /// `mail_starttls`: STARTTLS on a plain connection (when `mail_ssl` is false); default false.
        #[serde(deserialize_with = "de::bool")]
        pub mail_starttls: bool = false,
        /// `folder`: the folder to read; default "INBOX".
        #[serde(deserialize_with = "de::string")]
        pub folder: String = "INBOX".to_string(),
        /// `subject_regex`: only mails whose subject matches (a search) are read; default "<subject>".
        #[serde(deserialize_with = "de::opt_string")]
        pub subject_regex: Option<String> = Some("<subject>".to_string()),
        /// `sent_from`: only mails from this sender; default null.
        #[serde(deserialize_with = "de::opt_string")]
        pub sent_from: Option<String> = None,
        /// `sent_to`: only mails to this recipient; default null.
        #[serde(deserialize_with = "de::opt_string")]
        pub sent_to: Option<String> = None,
        /// `ssl_ca_certificate`: CA file (PEM) the IMAP server's certificate is verified against
        /// (null: the system's CAs); default null.
        #[serde(deserialize_with = "de::opt_string")]
        pub ssl_ca_certificate: Option<String> = None,
        /// `url_regex`: the URL to download (first match in each plain body); default "http://".
        #[serde(deserialize_with = "de::string")]
        pub url_regex: String = "http://".to_string(),
        /// `chunk_size`: split downloads into reports of about this many bytes; default null (whole).
        #[serde(deserialize_with = "de::opt_string")]
        pub chunk_size: Option<String> = None,
        /// `chunk_replicate_header`: repeat the first line in every chunk; default true.
        #[serde(deserialize_with = "de::bool")]
        pub chunk_replicate_header: bool = true,
        /// `rate_limit`: the fetch interval in seconds, applied by the runtime; default 60.
        #[serde(deserialize_with = "de::f64")]
        pub rate_limit: f64 = 60.0,
    }
    http_timeout_sec = 30.0;
}

/// Downloads URLs found in mails.
pub struct MailUrlCollectorBot {
    mailbox: Mailbox,
    url_regex: regex::Regex,
    chunk_size: Option<u64>,
    replicate_header: bool,
    client: HttpClient,
}

impl BuildBot for MailUrlCollectorBot {
    type Params = MailUrlCollectorParams;

    fn build(p: MailUrlCollectorParams) -> Result<Self, ParamError> {
        let settings = MailSettings::new(
            &p.mail_host,
            &p.mail_user,
            &p.mail_password,
            p.mail_ssl,
            p.mail_port,
            p.mail_starttls,
            &p.folder,
            p.subject_regex.as_deref(),
            p.sent_from.as_deref(),
            p.sent_to.as_deref(),
            p.ssl_ca_certificate.as_deref(),
        )?;
        let url_regex = regex::Regex::new(&p.url_regex).map_err(|e| ParamError::new("url_regex", e.to_string()))?;
        let chunk_size =
            match p.chunk_size.as_deref() {
                None => None,
                Some(s) => Some(s.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    ParamError::new("chunk_size", format!("`{s}` is not a positive number of bytes"))
                })?),
            };
        let http = p.http_settings();
        http.validate()?;
        Ok(MailUrlCollectorBot {
            mailbox: Mailbox::new(settings),
            url_regex,
            chunk_size,
            replicate_header: p.chunk_replicate_header,
            client: HttpClient::new(http),
        })
    }
}

/// The file name of a download: Content-Disposition's `filename`, else the URL's last segment.
fn file_name(resp: &mixin::HttpResponse, url: &str) -> String {
    if let Some(cd) = resp.header("content-disposition") {
        if let Some(i) = cd.find("filename=") {
            let name = cd[i + 9..].split(';').next().unwrap_or("").trim().trim_matches('"');
            if !name.is_empty() {
                return name.to_string();
            }
        }
    }
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or("").to_string()
}

impl CollectorBot for MailUrlCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        for mail in self.mailbox.unread(ctx)? {
            let mut reports = Vec::new();
            let mut erroneous = false;
            for body in &mail.plain {
                let Some(m) = self.url_regex.find(body) else { continue };
                let url = m.as_str().trim().to_string();
                ctx.log.log(Level::Info, &format!("Downloading report from {url:?}."));
                let resp = match self.client.get(&url, &[]).and_then(mixin::HttpResponse::check_status) {
                    Ok(r) => r,
                    Err(e) => {
                        ctx.log.log(Level::Error, &format!("Could not download {url:?}: {e}."));
                        erroneous = true;
                        continue;
                    }
                };
                if resp.body.is_empty() {
                    ctx.log.log(Level::Warning, "Got empty response from server.");
                    continue;
                }
                ctx.log.log(Level::Info, "Report downloaded.");
                let name = file_name(&resp, &url);
                for chunk in split_chunks(&resp.body, self.chunk_size, self.replicate_header) {
                    let mut report = mixin::raw_report(ctx, &chunk)?;
                    report.add("feed.url", url.as_str())?;
                    report.add("extra.file_name", name.as_str())?;
                    mail.add_extras(&mut report)?;
                    reports.push(report);
                }
            }
            if erroneous {
                ctx.log.log(Level::Error, &format!("Mail {} left unread for the next run.", mail.uid));
                continue;
            }
            if !reports.is_empty() {
                for r in reports {
                    out.send(r);
                }
                self.mailbox.used(ctx, mail.uid);
                ctx.log.log(Level::Info, "Email report read.");
            }
        }
        Ok(())
    }

    fn committed(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        self.mailbox.committed(ctx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::super::lib::test_imap::{text_mail, TestImap};
    use super::*;
    use crate::bots::collectors::http::mixin::test_server::{collect, committed, ok, params, raw, TestServer};
    use crate::bots::MemoryState;

    #[test]
    fn urls_in_mails_are_downloaded_in_chunks_with_file_names() {
        let web = TestServer::start(|req| match req.url.as_str() {
            "/dl/feed.csv" => ok("h\n1\n2\n"),
            "/named" => {
                (200, vec![("Content-Disposition".into(), "attachment; filename=\"x.csv\"".into())], b"h\na\n".to_vec())
            }
            _ => (500, Vec::new(), Vec::new()),
        });
        let server = TestImap::start(vec![
            text_mail("Feed", &format!("Get it at {}/dl/feed.csv today", web.base), ""),
            text_mail("Feed 2", &format!("{}/named", web.base), ""),
            text_mail("Feed 3", &format!("{}/broken", web.base), ""),
        ]);
        let mut b = MailUrlCollectorBot::build(params(json!({
            "mail_host": "127.0.0.1", "mail_port": server.port, "mail_ssl": false, "subject_regex": "Feed",
            "url_regex": "http://[^ ]+", "chunk_size": 2
        })))
        .unwrap();
        let mut state = MemoryState::default();
        let (r, reports, _) = collect(&mut b, &mut state);
        r.unwrap();
        let got: Vec<(String, String)> =
            reports.iter().map(|r| (r.get_str("extra.file_name").unwrap().to_string(), raw(r))).collect();
        assert_eq!(
            got,
            vec![
                ("feed.csv".into(), "h\n1\n".into()),
                ("feed.csv".into(), "h\n2\n".into()),
                ("x.csv".into(), "h\na\n".into())
            ]
        );
        assert_eq!(reports[0].get_str("feed.url"), Some(format!("{}/dl/feed.csv", web.base).as_str()));
        assert_eq!(reports[0].get_str("extra.email_subject"), Some("Feed"));
        committed(&mut b, &mut state).unwrap();
        assert_eq!(server.seen(), vec![1, 2], "the mail with the failed download stays unread");
    }
}
