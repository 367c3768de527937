//! The workload's shape: TeamHub's organizations and agents, the queries of its agent
//! screen, the operations users make, and the skew that picks agents.

use serde_json::{Value, json};

/// A small deterministic generator (splitmix64): the schedule of a seed is the same
/// from run to run, so push off and push on replay the same operations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }
}

/// Ranks `0..n` drawn with weight `1 / (rank + 1)^s`.
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let mut cumulative: Vec<f64> = (1..=n)
            .map(|r| {
                total += 1.0 / (r as f64).powf(s);
                total
            })
            .collect();
        for c in &mut cumulative {
            *c /= total;
        }
        Zipf { cumulative }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cumulative
            .partition_point(|c| *c <= u)
            .min(self.cumulative.len() - 1)
    }

    /// The probability of the most popular rank.
    pub fn top(&self) -> f64 {
        self.cumulative[0]
    }
}

/// An organization: its bearer token and its agents, most popular first.
#[derive(Debug, Clone)]
pub struct Org {
    pub id: String,
    pub token: String,
    pub agents: Vec<String>,
}

/// A query of the screen: the function and its input, and the key the server
/// subscribes and pushes it under (`name:` + canonical JSON, keys sorted).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    pub function: &'static str,
    pub input: String,
}

impl Query {
    fn new(function: &'static str, input: &Value) -> Query {
        // serde_json's map keeps keys sorted: the canonical form.
        Query {
            function,
            input: input.to_string(),
        }
    }

    pub fn key(&self) -> String {
        format!("{}:{}", self.function, self.input)
    }
}

/// The read functions of TeamHub's agent screen, in report order.
pub const READS: [&str; 5] = [
    "agents.findMany",
    "tools.available",
    "agents.getWithStats",
    "messages.getAll",
    "memory.recent",
];

/// The organization's queries of the screen: the agent list and the tools (the left
/// panel, always mounted).
pub fn panel(org: &Org) -> Vec<Query> {
    let input = json!({ "organizationId": org.id });
    vec![
        Query::new("agents.findMany", &input),
        Query::new("tools.available", &input),
    ]
}

/// The queries of one agent's detail (`AgentDetail.tsx`).
pub fn detail(org: &Org, agent: &str) -> Vec<Query> {
    let input = json!({ "agentId": agent, "organizationId": org.id });
    ["agents.getWithStats", "messages.getAll", "memory.recent"]
        .into_iter()
        .map(|f| Query::new(f, &input))
        .collect()
}

/// What a user does.
#[derive(Debug, Clone)]
pub enum Op {
    /// Opens the detail of agent (index in the organization's list).
    Navigate(usize),
    /// Calls a mutation: function and input.
    Write(&'static str, Value),
}

/// The write mix: 60% `messages.send` (from the user's agent to a Zipf-picked one),
/// 25% `agents.update` of a Zipf-picked agent (half renames, half status changes),
/// 15% `memory.add` to the user's agent.
pub fn write(org: &Org, own: usize, zipf: &Zipf, rng: &mut Rng, n: u64) -> Op {
    let other = |rng: &mut Rng| loop {
        let a = zipf.sample(rng);
        if a != own {
            return a;
        }
    };
    let roll = rng.unit();
    if roll < 0.60 {
        let to = other(rng);
        Op::Write(
            "messages.send",
            json!({
                "organizationId": org.id,
                "fromAgentId": org.agents[own],
                "toAgentId": org.agents[to],
                "body": format!("hitrate message {n}"),
            }),
        )
    } else if roll < 0.85 {
        let agent = zipf.sample(rng);
        let data = if rng.unit() < 0.5 {
            json!({ "name": format!("agent {agent} v{n}") })
        } else {
            json!({ "status": if n.is_multiple_of(2) { "active" } else { "idle" } })
        };
        Op::Write(
            "agents.update",
            json!({ "organizationId": org.id, "id": org.agents[agent], "data": data }),
        )
    } else {
        Op::Write(
            "memory.add",
            json!({
                "organizationId": org.id,
                "agentId": org.agents[own],
                "content": format!("hitrate memory {n}"),
            }),
        )
    }
}
