//! The control-plane contract of intelmq-rs: code generated from `intelmq/control/v1/*.proto`.

/// `intelmq.control.v1`: the node's control service.
pub mod control {
    pub mod v1 {
        tonic::include_proto!("intelmq.control.v1");
    }
}
