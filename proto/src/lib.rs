//! The control-plane contract of intelmq-rs: code generated from `intelmq/control/v1/control.proto`.
//! The `.proto` file is the contract between the node, `intelmqctl` and any other gRPC client.

/// `intelmq.control.v1`: the node's control service.
pub mod control {
    pub mod v1 {
        tonic::include_proto!("intelmq.control.v1");

        /// The encoded file descriptor set of the contract, for gRPC server reflection.
        pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("control_descriptor");
    }
}
