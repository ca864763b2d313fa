//! Generated code for every gRPC contract in `proto/`, shared by the services,
//! their clients and tests, plus the descriptor set that reflection serves.
#![allow(missing_docs)]

/// The encoded `FileDescriptorSet` of every proto in `proto/`, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

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
