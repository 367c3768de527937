//! Proc-macro shell for `reactive`. All logic lives in `reactive-codegen`
//! (`reactive_codegen::expand`), where it is unit-tested; this crate only converts
//! between `proc_macro` and `proc_macro2`.

use proc_macro::TokenStream;

/// Turns an `async fn(db: &ReactiveDb, input: Input) -> reactive::Result<Output>`
/// into a reactive function: its dependencies are inferred from the SQL literals
/// in its body (or checked against `dependencies(...)`), and it registers itself
/// with the runtime (router, TypeScript client).
///
/// Arguments (all optional):
/// - `name = "agents.findMany"`: the procedure name (default: the fn's name);
/// - `query` / `mutation`: the kind (default: inferred; a write makes a mutation);
/// - `dependencies(agent, message)`: the tables it reads, checked against the body;
///   required when the body builds SQL at run time or calls plain helpers with `db`;
/// - `invalidates(agent)`: tables a mutation writes beyond what its body shows;
/// - `requires_ack`: clients must acknowledge the events this mutation causes;
/// - `push` (queries): a client subscribed to one of its query keys receives the new
///   result in the event stream after a write, instead of refetching it;
/// - `dialect = "postgres" | "sqlite" | "mysql"`: how the SQL literals are parsed
///   (default `postgres`, `$1` placeholders).
///
/// The function itself is emitted unchanged and stays callable from Rust.
#[proc_macro_attribute]
pub fn reactive_function(attr: TokenStream, item: TokenStream) -> TokenStream {
    reactive_codegen::expand::reactive_function(attr.into(), item.into()).into()
}

/// Declares the relations between tables used to widen invalidation:
///
/// ```ignore
/// #[derive(Relations)]
/// #[relations(
///     agent(organization, message.from_agent_id, memory.agent_id),
///     organization(agent.organization_id, tool.organization_id),
/// )]
/// pub struct Schema;
/// ```
///
/// `agent(message.from_agent_id)`: a change to the `agent` row with `id = X` also
/// invalidates what reads `message` rows with `from_agent_id = X`; a bare table name
/// means the whole table.
#[proc_macro_derive(Relations, attributes(relations))]
pub fn derive_relations(input: TokenStream) -> TokenStream {
    reactive_codegen::expand::derive_relations(input.into()).into()
}
