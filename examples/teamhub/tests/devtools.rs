//! TeamHub's dev tools page over HTTP: renaming an agent shows in the live trace with
//! the cached query it invalidated and why; another organization's user is refused.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

async fn start() -> (String, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    let config = teamhub::Config {
        database_url: format!("sqlite://{}?mode=rwc", dir.path("teamhub.db")),
        redis_url: None,
        web_dist: dir.path("no-web").into(),
        push: true,
    };
    let (reactive, _) = teamhub::open(&config).await.expect("database");
    let app = teamhub::app(&reactive, &config.web_dist);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, dir)
}

/// A folder removed when dropped (no dependency for this one test).
mod tempdir {
    pub struct Dir(std::path::PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            let dir = std::env::temp_dir().join(format!("teamhub-devtools-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }

        pub fn path(&self, name: &str) -> String {
            self.0.join(name).display().to_string()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn rpc(http: &reqwest::Client, base: &str, token: &str, name: &str, input: Value) -> Value {
    let res = http
        .post(format!("{base}/api/rpc/{name}"))
        .bearer_auth(token)
        .json(&input)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{name}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn renaming_an_agent_shows_the_invalidated_key_in_the_trace() {
    let (base, _dir) = start().await;
    let http = reqwest::Client::new();
    let stream_url = format!("{base}/api/devtools/stream");

    // Not an administrator of the demo: refused; no token: unauthorized.
    let refused = http
        .get(&stream_url)
        .bearer_auth("token-org-2")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(http.get(&stream_url).send().await.unwrap().status(), 401);

    let res = http
        .get(&stream_url)
        .bearer_auth("token-org-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut feed = res.bytes_stream();

    let org = json!({"organizationId": "org-1"});
    rpc(&http, &base, "token-org-1", "agents.findMany", org.clone()).await;
    let rename = json!({"organizationId": "org-1", "id": "agent-2", "data": {"name": "Lovelace"}});
    rpc(&http, &base, "token-org-1", "agents.update", rename).await;

    // Read `event: trace` frames until the rename's.
    let mut buf = String::new();
    let record = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                if let Some(data) = frame.strip_prefix("event: trace\ndata: ") {
                    return serde_json::from_str::<Value>(data.trim_end()).unwrap();
                }
            }
            let chunk = feed.next().await.expect("the feed stays open").unwrap();
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await
    .expect("a trace record within 10 s");

    assert_eq!(record["tenant"], "org-1");
    assert!(record["event_id"].as_u64().is_some(), "{record}");
    let entry = record["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"]["procedure"] == "agents.findMany")
        .unwrap_or_else(|| panic!("the cached list is named: {record}"));
    assert_eq!(entry["key"]["tenant"], "org-1");
    assert_eq!(entry["key"]["input"], r#"{"organizationId":"org-1"}"#);
    let reason = &entry["reasons"][0];
    assert_eq!(reason["table"], "agent", "{record}");
    assert_eq!(reason["column"], "organization_id", "{record}");
    assert_eq!(reason["value"], "org-1", "{record}");
}
