//! The `intelmq.bots.collectors.github_api` module: files of a GitHub repository.

pub mod collector_github_contents_api;
