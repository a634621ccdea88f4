//! The `intelmq.bots.outputs.amqptopic` module, the AMQP connection shared with the AMQP
//! collector, and the export helpers shared by the database and broker outputs.

pub mod connection;
pub mod output;
pub mod shared;
