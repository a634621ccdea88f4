//! `intelmq.bots.collectors.github_api.collector_github_contents_api`: walks the GitHub contents
//! API of `repository` recursively (`GET <api>/repos/<repository>/contents`, directories
//! followed through their `url`); every file whose name matches `regex` (a search) is downloaded
//! from its `download_url` into a Report with `raw`, `feed.url` = the download URL and
//! `extra.file_metadata` = the listed `extra_fields` of the file entry. Requests carry
//! `Authorization: token <personal_access_token>` (or basic auth from the deprecated
//! `basic_auth_username`/`basic_auth_password`). `github_api_url` (our addition) is the API's base
//! URL, so tests can point it at a local server; real use needs the network.

use serde_json::{Map, Value};

use crate::bots::collectors::http::mixin::{self, de, http_params, HttpClient};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};

http_params! {
    /// Parameters of the GitHub contents collector (IntelMQ's names and defaults).
    pub struct GithubContentsApiCollectorParams {
        /// `personal_access_token`: a GitHub token; default null.
        #[serde(deserialize_with = "de::opt_string")]
        pub personal_access_token: Option<String> = None,
        /// `basic_auth_username`: deprecated basic auth user; default null.
        #[serde(deserialize_with = "de::opt_string")]
        pub basic_auth_username: Option<String> = None,
        /// `basic_auth_password`: deprecated basic auth password; default null.
        #[serde(deserialize_with = "de::opt_string")]
        pub basic_auth_password: Option<String> = None,
        /// `repository`: `<owner>/<repo>`; default null (required).
        #[serde(deserialize_with = "de::opt_string")]
        pub repository: Option<String> = None,
        /// `regex`: files whose name matches are collected; default null (required; IntelMQ's docs suggest ".*.json").
        #[serde(deserialize_with = "de::opt_string")]
        pub regex: Option<String> = None,
        /// `extra_fields`: file entry fields copied to `extra.file_metadata` (comma string or list); default null.
        #[serde(deserialize_with = "de::opt_string_list")]
        pub extra_fields: Option<Vec<String>> = None,
        /// `github_api_url`: base URL of the GitHub API (our addition); default "https://api.github.com".
        #[serde(deserialize_with = "de::string")]
        pub github_api_url: String = "https://api.github.com".to_string(),
        /// `rate_limit`: the fetch interval in seconds, applied by the runtime; default 3600.
        #[serde(deserialize_with = "de::f64")]
        pub rate_limit: f64 = 3600.0,
    }
    http_timeout_sec = 30.0;
}

/// Collects matching files of a GitHub repository.
pub struct GithubContentsApiCollectorBot {
    base_url: String,
    regex: regex::Regex,
    extra_fields: Vec<String>,
    auth: Option<String>,
    client: HttpClient,
}

impl BuildBot for GithubContentsApiCollectorBot {
    type Params = GithubContentsApiCollectorParams;

    fn build(params: GithubContentsApiCollectorParams) -> Result<Self, ParamError> {
        let repository =
            params.repository.clone().ok_or_else(|| ParamError::new("repository", "expected `<owner>/<repo>`"))?;
        let pattern = params.regex.clone().ok_or_else(|| ParamError::new("regex", "no file name regex given"))?;
        let regex = regex::Regex::new(&pattern).map_err(|e| ParamError::new("regex", e.to_string()))?;
        let auth = match (&params.personal_access_token, &params.basic_auth_username) {
            (Some(token), _) => Some(format!("token {token}")),
            (None, Some(user)) => {
                let pass = params.basic_auth_password.clone().unwrap_or_default();
                Some(format!(
                    "Basic {}",
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{user}:{pass}"))
                ))
            }
            _ => None,
        };
        let settings = params.http_settings();
        settings.validate()?;
        Ok(GithubContentsApiCollectorBot {
            base_url: format!("{}/repos/{repository}/contents", params.github_api_url.trim_end_matches('/')),
            regex,
            extra_fields: params.extra_fields.clone().unwrap_or_default(),
            auth,
            client: HttpClient::new(settings),
        })
    }
}

/// A file found in the repository.
struct Found {
    download_url: String,
    metadata: Map<String, Value>,
}

impl GithubContentsApiCollectorBot {
    /// One API call (IntelMQ `github_api`): JSON, a 401/403 is an error with GitHub's message.
    fn api(&mut self, url: &str) -> Result<Value, BotError> {
        let mut headers = vec![("Accept", "application/vnd.github.v3.text-match+json".to_string())];
        if let Some(a) = &self.auth {
            headers.push(("Authorization", a.clone()));
        }
        let resp = self.client.get(url, &headers)?;
        if resp.status == 401 || resp.status == 403 {
            let msg = resp.json().ok().and_then(|v| v["message"].as_str().map(str::to_string)).unwrap_or_default();
            return Err(BotError::Transient(format!("GitHub refused {url} ({}): {msg}", resp.status)));
        }
        resp.check_status()?.json()
    }

    fn walk(&mut self, url: &str, ctx: &mut Context<'_>, found: &mut Vec<Found>) -> Result<(), BotError> {
        let listing = self.api(url)?;
        let Some(entries) = listing.as_array() else {
            return Err(BotError::Transient(format!("GitHub answered {url} with no file list")));
        };
        for entry in entries {
            match entry["type"].as_str() {
                Some("dir") => {
                    if let Some(sub) = entry["url"].as_str() {
                        self.walk(sub, ctx, found)?;
                    }
                }
                Some("file") if entry["name"].as_str().is_some_and(|n| self.regex.is_match(n)) => {
                    let Some(download_url) = entry["download_url"].as_str() else { continue };
                    let mut metadata = Map::new();
                    for field in &self.extra_fields {
                        match entry.get(field) {
                            Some(v) => {
                                metadata.insert(field.clone(), v.clone());
                            }
                            None => ctx.log.log(
                                Level::Warning,
                                &format!("Field {field:?} does not exist in the Github file data."),
                            ),
                        }
                    }
                    found.push(Found { download_url: download_url.to_string(), metadata });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl CollectorBot for GithubContentsApiCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        let mut found = Vec::new();
        let base = self.base_url.clone();
        self.walk(&base, ctx, &mut found)?;
        for file in found {
            let content = self.client.get(&file.download_url, &[])?.check_status()?;
            let mut report = mixin::raw_report(ctx, &content.body)?;
            report.add("feed.url", file.download_url.as_str())?;
            if !file.metadata.is_empty() {
                report.add("extra.file_metadata", Value::Object(file.metadata))?;
            }
            out.send(report);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::collectors::http::mixin::test_server::{collect, ok, params, raw, TestServer};
    use crate::bots::MemoryState;

    #[test]
    fn matching_files_are_fetched_recursively_with_metadata() {
        let addr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let a = addr.clone();
        let server =
            TestServer::start(move |req| {
                let base = a.lock().unwrap().clone();
                match req.url.as_str() {
                "/repos/o/r/contents" => ok(json!([
                    {"type": "file", "name": "a.json", "path": "a.json", "sha": "s1",
                     "url": format!("{base}/repos/o/r/contents/a.json"), "download_url": format!("{base}/raw/a.json")},
                    {"type": "file", "name": "readme.md", "path": "readme.md", "sha": "s2",
                     "url": "x", "download_url": format!("{base}/raw/readme.md")},
                    {"type": "dir", "name": "sub", "path": "sub", "url": format!("{base}/repos/o/r/contents/sub")}
                ]).to_string()),
                "/repos/o/r/contents/sub" => ok(json!([
                    {"type": "file", "name": "b.json", "path": "sub/b.json", "sha": "s3",
                     "url": "y", "download_url": format!("{base}/raw/b.json")}
                ]).to_string()),
                "/raw/a.json" => ok("[1]"),
                "/raw/b.json" => ok("[2]"),
                _ => (404, Vec::new(), Vec::new()),
            }
            });
        *addr.lock().unwrap() = server.base.clone();
        let mut bot = GithubContentsApiCollectorBot::build(params(json!({
            "repository": "o/r", "regex": ".*\\.json", "extra_fields": "sha, path",
            "personal_access_token": "tok", "github_api_url": server.base.clone()
        })))
        .unwrap();
        let (r, reports, _) = collect(&mut bot, &mut MemoryState::default());
        r.unwrap();
        assert_eq!(reports.iter().map(raw).collect::<Vec<_>>(), vec!["[1]", "[2]"]);
        assert_eq!(reports[0].get_str("feed.url"), Some(format!("{}/raw/a.json", server.base).as_str()));
        assert_eq!(reports[1].get("extra.file_metadata"), Some(&json!({"sha": "s3", "path": "sub/b.json"})));
        let seen = server.requests();
        assert_eq!(seen[0].header("authorization"), Some("token tok"));
        assert!(seen.iter().all(|s| s.url != "/raw/readme.md"));
    }

    #[test]
    fn repository_and_regex_are_required() {
        assert_eq!(
            GithubContentsApiCollectorBot::build(params(json!({"regex": "x"}))).err().unwrap().key,
            "repository"
        );
        assert_eq!(
            GithubContentsApiCollectorBot::build(params(json!({"repository": "o/r"}))).err().unwrap().key,
            "regex"
        );
    }
}
