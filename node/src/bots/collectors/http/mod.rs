//! The `intelmq.bots.collectors.http` modules (URL fetcher and line stream) and what the network
//! collectors share: [`mixin`] (IntelMQ's HttpMixin, `utils.unzip`, URL time formatting) and
//! [`stream`] (a reconnecting line stream).

pub mod collector_http;
pub mod collector_http_stream;
pub mod mixin;
pub mod stream;
