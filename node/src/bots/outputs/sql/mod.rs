//! The `intelmq.bots.outputs.sql` module and the EventDB schema generator (`intelmq_psql_initdb`).

pub mod initdb;
pub mod output;
pub mod tls;
