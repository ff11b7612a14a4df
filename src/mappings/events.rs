//! Live assignment events: what the database announces on `mapping_events`
//! (a trigger, in the changing transaction), filtered for one viewer. The
//! access rule (`patients::access::may_see`) is applied to every event as it
//! is delivered, to the patient's creator that the trigger looked up.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt as _, stream};
use serde::Deserialize;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use uuid::Uuid;

use crate::{db::listen::Notifications, error::AppError, patients::access::may_see, viewer::Viewer};

/// The channel the `mappings_notify` trigger announces on.
pub const CHANNEL: &str = "mapping_events";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventKind {
    Assigned,
    Removed,
}

/// An assignment made or removed: ids only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingEvent {
    pub kind: EventKind,
    pub mapping_id: Uuid,
    pub patient_id: Uuid,
    pub doctor_id: Uuid,
    pub at: DateTime<Utc>,
}

/// The trigger's payload.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    kind: EventKind,
    mapping_id: Uuid,
    patient_id: Uuid,
    doctor_id: Uuid,
    /// The patient's creator; null when the patient was already gone.
    owner: Option<Uuid>,
    at_micros: i64,
}

fn parse(raw: &str) -> Option<(Option<Uuid>, MappingEvent)> {
    let p: Payload = serde_json::from_str(raw).ok()?;
    Some((
        p.owner,
        MappingEvent {
            kind: p.kind,
            mapping_id: p.mapping_id,
            patient_id: p.patient_id,
            doctor_id: p.doctor_id,
            at: DateTime::from_timestamp_micros(p.at_micros)?,
        },
    ))
}

/// The events the viewer may see from now on, of one patient or all. A
/// subscriber that falls too far behind gets one error and no more events,
/// rather than a gap it cannot see.
pub fn events_for(
    notifications: &Notifications,
    viewer: Viewer,
    patient_id: Option<Uuid>,
) -> impl Stream<Item = Result<MappingEvent, AppError>> + Send + use<> {
    let receiver: Receiver<Arc<str>> = notifications.subscribe();
    stream::unfold(Some(receiver), move |state| {
        let viewer = viewer.clone();
        async move {
            let mut receiver = state?;
            loop {
                match receiver.recv().await {
                    Ok(raw) => {
                        let Some((owner, event)) = parse(&raw) else {
                            tracing::warn!("an assignment event could not be read");
                            continue;
                        };
                        if may_see(&viewer, owner) && patient_id.is_none_or(|p| p == event.patient_id) {
                            return Some((Ok(event), Some(receiver)));
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a subscriber fell behind and was stopped");
                        return Some((Err(AppError::SubscriberTooSlow), None));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_read_strictly() {
        let id = Uuid::new_v4();
        let raw = format!(
            r#"{{"kind":"ASSIGNED","mappingId":"{id}","patientId":"{id}","doctorId":"{id}","owner":null,"atMicros":1790000000000000}}"#
        );
        let (owner, event) = parse(&raw).unwrap();
        assert_eq!(owner, None);
        assert_eq!(event.kind, EventKind::Assigned);
        assert!(parse("{}").is_none());
        assert!(parse(&raw.replace("ASSIGNED", "MOVED")).is_none());
    }
}
