//! The fields the runtime's spans carry, captured by a subscriber: procedure, tenant,
//! cache outcome, the invalidation's reasons and the event it produced, nested so that
//! one request reads end to end. One test in its own binary: the subscriber is global
//! (the server's tasks record too).

mod realtime_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use realtime_support::*;
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

type Fields = BTreeMap<String, String>;

/// A span or event as seen when it closed (or happened): its name, its fields, and its
/// ancestors' names and fields, innermost first.
#[derive(Debug, Clone)]
struct Seen {
    name: String,
    fields: Fields,
    ancestors: Vec<(String, Fields)>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    fn within(&self, span: &str) -> Option<&Fields> {
        self.ancestors
            .iter()
            .find(|(n, _)| n == span)
            .map(|(_, f)| f)
    }
}

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<Seen>>>,
    events: Arc<Mutex<Vec<Seen>>>,
}

fn ancestors<S>(scope: Option<tracing_subscriber::registry::Scope<'_, S>>) -> Vec<(String, Fields)>
where
    S: for<'a> LookupSpan<'a>,
{
    scope
        .into_iter()
        .flatten()
        .map(|span| {
            let fields = span
                .extensions()
                .get::<Fields>()
                .cloned()
                .unwrap_or_default();
            (span.name().to_owned(), fields)
        })
        .collect()
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Visitor(&mut fields));
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let mut ext = span.extensions_mut();
        values.record(&mut Visitor(ext.get_mut::<Fields>().unwrap()));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        self.events.lock().unwrap().push(Seen {
            name: fields.get("message").cloned().unwrap_or_default(),
            fields,
            ancestors: ancestors(ctx.event_scope(event)),
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        let fields = span
            .extensions()
            .get::<Fields>()
            .cloned()
            .unwrap_or_default();
        let parents = ancestors(span.parent().map(|p| p.scope()));
        self.spans.lock().unwrap().push(Seen {
            name: span.name().to_owned(),
            fields,
            ancestors: parents,
        });
    }
}

#[tokio::test]
async fn a_request_reads_end_to_end_with_procedure_tenant_outcome_and_reasons() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(capture.clone()))
        .expect("the only subscriber of this binary");

    let s = start().await;
    let mut sse = s
        .events(
            "A:u",
            &[("subscribe", r#"rt.items.byOrg:{"org":"A"}"#)],
            None,
        )
        .await;
    sse.ready().await;
    for _ in 0..2 {
        assert_eq!(
            s.post("A:u", "rt.items.byOrg", json!({"org": "A"})).await.0,
            200
        );
    }
    let (st, _) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert_eq!(st, 200);
    sse.next_event(LONG).await.expect("the write's event");

    let spans = capture.spans.lock().unwrap().clone();
    let calls: Vec<&Seen> = spans.iter().filter(|s| s.name == "reactive.call").collect();
    let outcome = |procedure: &str| -> Vec<&str> {
        calls
            .iter()
            .filter(|c| c.field("procedure") == Some(procedure))
            .map(|c| {
                assert_eq!(c.field("tenant"), Some("A"), "{c:?}");
                c.field("cache").expect("the cache outcome is recorded")
            })
            .collect()
    };
    assert_eq!(outcome("rt.items.byOrg"), ["miss", "hit"]);
    assert_eq!(outcome("rt.items.create"), ["none"]);

    // The write's invalidation, inside the mutation's call, names the entry and why.
    let invalidation = spans
        .iter()
        .find(|s| s.name == "reactive.invalidate")
        .expect("an invalidation span");
    let call = invalidation
        .within("reactive.call")
        .unwrap_or_else(|| panic!("the invalidation runs inside the call: {invalidation:?}"));
    assert_eq!(
        call.get("procedure").map(String::as_str),
        Some("rt.items.create")
    );
    assert_eq!(invalidation.field("entries"), Some("1"));
    let reasons = invalidation.field("reasons").expect("reasons recorded");
    assert!(reasons.starts_with("key rt_item.org="), "{reasons}");
    assert!(
        reasons.ends_with(r#"=> rt.items.byOrg {"org":"A"}"#),
        "{reasons}"
    );

    // The event it produced, inside the same invalidation and call.
    let events = capture.events.lock().unwrap().clone();
    let published = events
        .iter()
        .find(|e| e.name == "event published")
        .expect("an event-published record");
    assert_eq!(published.field("tenant"), Some("A"));
    assert_eq!(published.field("keys"), Some("1"));
    assert!(published.field("event_id").is_some());
    let within = published
        .within("reactive.invalidate")
        .expect("published inside the invalidation");
    assert_eq!(within.get("reasons").map(String::as_str), Some(reasons));
    assert_eq!(
        published
            .within("reactive.call")
            .and_then(|c| c.get("procedure"))
            .map(String::as_str),
        Some("rt.items.create")
    );
}
