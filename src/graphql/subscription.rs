//! The `Subscription` root: live assignment events.

use async_graphql::{Context, Enum, ID, Object, Result, Subscription};
use futures_util::{Stream, StreamExt as _};

use super::{
    types::{self, DateTime},
    viewer,
};
use crate::{
    db::listen::Notifications,
    error::AppError,
    mappings::events::{self, MappingEvent},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::mappings::events::EventKind")]
pub enum MappingEventKind {
    Assigned,
    Removed,
}

pub struct MappingEventNode(MappingEvent);

#[Object(name = "MappingEvent")]
impl MappingEventNode {
    async fn kind(&self) -> MappingEventKind {
        self.0.kind.into()
    }
    async fn mapping_id(&self) -> ID {
        ID(self.0.mapping_id.to_string())
    }
    async fn patient_id(&self) -> ID {
        ID(self.0.patient_id.to_string())
    }
    async fn doctor_id(&self) -> ID {
        ID(self.0.doctor_id.to_string())
    }
    async fn at(&self) -> DateTime {
        DateTime(self.0.at)
    }
}

#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Assignments made or removed, on any server replica, for patients the subscriber may see; optionally one patient only.
    async fn mapping_events(
        &self,
        ctx: &Context<'_>,
        patient_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<MappingEventNode>> + use<>> {
        let viewer = viewer(ctx)?.clone();
        let patient = types::optional_id("patientId", patient_id.as_ref())?;
        let notifications = ctx
            .data::<Notifications>()
            .map_err(|_| AppError::internal(anyhow::anyhow!("the schema has no notifications")))?;
        Ok(events::events_for(notifications, viewer, patient)
            .map(|event| event.map(MappingEventNode).map_err(async_graphql::Error::from)))
    }
}
