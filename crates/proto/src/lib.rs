//! Generated code for every gRPC contract in `proto/`, shared by the services,
//! their clients and tests, plus the descriptor set that reflection serves.
#![allow(missing_docs)]

/// The encoded `FileDescriptorSet` of the `msgc.*` protos (what msgc-server
/// serves), for reflection.
pub const MSGC_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/msgc_descriptor.bin"));

/// The encoded `FileDescriptorSet` of the `eccluster.*` protos (what
/// cluster-listener serves), for reflection.
pub const ECCLUSTER_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/eccluster_descriptor.bin"));

/// The msgc bus.
pub mod msgc {
    /// Version 1 of the bus contracts.
    pub mod v1 {
        tonic::include_proto!("msgc.v1");
    }
}

/// The ECCluster_Listener node channel.
pub mod eccluster {
    /// Version 1 of the node contracts.
    pub mod v1 {
        tonic::include_proto!("eccluster.v1");
    }
}
