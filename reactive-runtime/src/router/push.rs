//! What the hub's pusher computes: a subscribed query key of a `push` function, run as a
//! call of its tenant, through the cache, with the watermark a request would get.

use std::sync::{Arc, Weak};

use super::State;
use super::auth::{CallOrigin, Principal};
use crate::realtime::{PushCompute, PushRequest, Pushed};
use crate::types::EventId;

/// The compute function for `state`'s functions. It holds the state weakly: the
/// realtime side (which keeps it) must not keep the router's state alive.
pub(crate) fn compute(state: Weak<State>) -> PushCompute {
    Arc::new(move |request: PushRequest| {
        let state = state.clone();
        Box::pin(async move {
            let state = state.upgrade()?;
            run(&state, request).await
        })
    })
}

async fn run(state: &State, request: PushRequest) -> Option<Pushed> {
    let (name, input) = request.key.split_once(':')?;
    let def = state.function(name)?;
    let input = serde_json::from_str(input).ok()?;
    // As for a request: the log's head before the call is what the result reflects at
    // least; an unreadable log gives no usable watermark, so the clients refetch.
    let before = state.realtime().head(&request.tenant).await.ok()?;
    // The result is shared by every connection of the tenant holding this key, as the
    // cache shares it: the subject is one of them.
    let origin = CallOrigin::new(Principal::new(&*request.tenant, request.subject));
    match state.db.call(def, origin, input, before.0).await {
        Ok(output) => Some(Pushed {
            bytes: output.bytes,
            watermark: EventId(output.watermark),
        }),
        Err(e) => {
            tracing::debug!(key = request.key, error = %e, "a pushed result failed; its clients refetch it");
            None
        }
    }
}
