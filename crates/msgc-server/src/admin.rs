//! The operator's view of a server (`msgc.v1.Admin`): groups and members,
//! the installed server view and the state of each peer link.

use proto::msgc::v1::{GetServerViewRequest, ListGroupsRequest, ListGroupsResponse, ServerStatus};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use crate::driver::{CoreHandle, Input, Query};
use crate::error::BusError;
use crate::names;

/// The `msgc.v1.Admin` service.
pub struct AdminService {
    core: CoreHandle,
}

impl AdminService {
    /// Answers from `core`.
    pub fn new(core: CoreHandle) -> Self {
        Self { core }
    }

    async fn ask<T>(&self, query: impl FnOnce(oneshot::Sender<T>) -> Query) -> Result<T, Status> {
        let (tx, rx) = oneshot::channel();
        if !self.core.send(Input::Query(query(tx))) {
            return Err(BusError::Stopping.into());
        }
        rx.await.map_err(|_| BusError::Stopping.into())
    }
}

#[tonic::async_trait]
impl proto::msgc::v1::admin_server::Admin for AdminService {
    async fn list_groups(
        &self,
        request: Request<ListGroupsRequest>,
    ) -> Result<Response<ListGroupsResponse>, Status> {
        let group = request.into_inner().group;
        let filter = if group.is_empty() {
            None
        } else {
            names::check_group(&group).map_err(BusError::from)?;
            Some(group)
        };
        let groups = self.ask(|tx| Query::Groups(filter, tx)).await?;
        Ok(Response::new(ListGroupsResponse { groups }))
    }

    async fn get_server_view(
        &self,
        _request: Request<GetServerViewRequest>,
    ) -> Result<Response<ServerStatus>, Status> {
        Ok(Response::new(self.ask(Query::Status).await?))
    }
}
