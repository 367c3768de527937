use reactive::{ReactiveDb, reactive_function};

#[reactive_function]
pub fn agent_count(db: &ReactiveDb<sqlx::Any>) -> reactive::Result<i64> {
    let _ = db;
    Ok(0)
}

fn main() {
    // The function is still emitted: this call compiles.
    let _ = agent_count;
}
