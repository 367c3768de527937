//! The data before the run, made through TeamHub's own mutations: each demo
//! organization topped up to `agents` agents, each agent with a few messages and a
//! memory (as a team that has been working a while).

use std::io;

use serde_json::{Value, json};

use crate::http::Conn;
use crate::workload::{Org, Rng, Zipf};

/// TeamHub's demo organizations and their tokens (`examples/teamhub/src/seed.rs`).
const ORGS: [(&str, &str); 2] = [("org-1", "token-org-1"), ("org-2", "token-org-2")];

/// Messages each agent has sent before the run.
const SEED_MESSAGES: usize = 3;

/// Calls `function` as the organization's demo user; the answer's `data`.
async fn rpc(conn: &mut Conn, function: &str, input: Value) -> io::Result<Value> {
    let answer = conn
        .request(
            "POST",
            &format!("/api/rpc/{function}"),
            Some(&input.to_string()),
        )
        .await?;
    if answer.status != 200 {
        return Err(io::Error::other(format!(
            "{function} answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        )));
    }
    let mut body: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(body["data"].take())
}

/// The ids of the organization's agents, in list order.
async fn agent_ids(conn: &mut Conn, org: &str) -> io::Result<Vec<String>> {
    let list = rpc(conn, "agents.findMany", json!({ "organizationId": org })).await?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["id"].as_str().map(str::to_string))
        .collect())
}

/// Tops every organization up to `agents` agents with some history; the organizations
/// with their agents in list order (rank 1, the most popular, first).
pub async fn prepare(
    addr: &str,
    agents: usize,
    zipf: &Zipf,
    rng: &mut Rng,
) -> io::Result<Vec<Org>> {
    let mut orgs = Vec::new();
    for (id, token) in ORGS {
        let mut conn = Conn::connect(addr)
            .await?
            .with_header("authorization", &format!("Bearer {token}"));
        let existing = agent_ids(&mut conn, id).await?.len();
        for n in existing..agents {
            rpc(
                &mut conn,
                "agents.create",
                json!({ "organizationId": id, "name": format!("agent {n}") }),
            )
            .await?;
        }
        let ids = agent_ids(&mut conn, id).await?;
        for (from, sender) in ids.iter().enumerate() {
            for m in 0..SEED_MESSAGES {
                let to = loop {
                    let to = zipf.sample(rng);
                    if to != from {
                        break to;
                    }
                };
                let input = json!({
                    "organizationId": id, "fromAgentId": sender, "toAgentId": ids[to],
                    "body": format!("seed message {m}"),
                });
                rpc(&mut conn, "messages.send", input).await?;
            }
            let input =
                json!({ "organizationId": id, "agentId": sender, "content": "seed memory" });
            rpc(&mut conn, "memory.add", input).await?;
        }
        orgs.push(Org {
            id: id.to_string(),
            token: token.to_string(),
            agents: ids,
        });
    }
    Ok(orgs)
}
