//! `Config::push` (`TEAMHUB_PUSH=off`): with push on, a new message reaches a stream
//! subscribed to `messages.getAll` with the new list in the event's `results`; with push
//! off, the same event names the query and carries no results (the client refetches).
//! The stream signs in as a user of its own (`token-org-1.<user>`).

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

const KEY: &str = r#"messages.getAll:{"agentId":"agent-1","organizationId":"org-1"}"#;

/// The `invalidate` event that follows a message from agent-1, on a server with `push`.
async fn event_after_a_message(push: bool) -> Value {
    let db = std::env::temp_dir().join(format!("teamhub-push-{}-{push}.db", std::process::id()));
    let config = teamhub::Config {
        database_url: format!("sqlite://{}?mode=rwc", db.display()),
        redis_url: None,
        web_dist: std::env::temp_dir().join("teamhub-push-no-web"),
        push,
    };
    let (reactive, _) = teamhub::open(&config).await.expect("database");
    let app = teamhub::app(&reactive, &config.web_dist);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let http = reqwest::Client::new();
    let res = http
        .get(format!("{base}/api/events?subscribe={}", encode(KEY)))
        .bearer_auth("token-org-1.reader")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut buf = String::new();
    let mut next_frame = async || loop {
        if let Some(end) = buf.find("\n\n") {
            return buf.drain(..end + 2).collect::<String>();
        }
        let chunk = stream.next().await.expect("the stream stays open").unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    };
    let wait = Duration::from_secs(10);
    while !tokio::time::timeout(wait, next_frame())
        .await
        .expect("ready within 10 s")
        .contains("event: ready")
    {}

    let send = json!({"organizationId": "org-1", "fromAgentId": "agent-1", "toAgentId": "agent-2", "body": "pushed?"});
    let res = http
        .post(format!("{base}/api/rpc/messages.send"))
        .bearer_auth("token-org-1.writer")
        .json(&send)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let event = loop {
        let frame = tokio::time::timeout(wait, next_frame())
            .await
            .expect("an event within 10 s");
        if let Some(data) = frame
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .filter(|_| frame.contains("event: invalidate"))
        {
            break serde_json::from_str::<Value>(data).unwrap();
        }
    };
    drop(reactive);
    let _ = std::fs::remove_file(&db);
    event
}

/// `text` percent-encoded for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn push_on_carries_the_new_list() {
    let event = event_after_a_message(true).await;
    assert!(
        event["queries"].as_array().unwrap().contains(&json!(KEY)),
        "{event}"
    );
    let list = event["results"][KEY]["data"]
        .as_array()
        .expect("a pushed list");
    assert!(list.iter().any(|m| m["body"] == "pushed?"), "{event}");
}

#[tokio::test]
async fn push_off_names_the_query_without_results() {
    let event = event_after_a_message(false).await;
    assert!(
        event["queries"].as_array().unwrap().contains(&json!(KEY)),
        "{event}"
    );
    assert_eq!(event.get("results"), None, "{event}");
}
