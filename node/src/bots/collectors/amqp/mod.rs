//! The `intelmq.bots.collectors.amqp` module.

pub mod collector_amqp;
