use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct Rename {
    pub id: i64,
    pub name: String,
}

#[reactive_function(query)]
pub async fn rename_agent(db: &ReactiveDb<sqlx::Any>, input: Rename) -> reactive::Result<()> {
    sqlx::query("UPDATE agent SET name = $1 WHERE id = $2")
        .bind(&input.name)
        .bind(input.id)
        .execute(db)
        .await?;
    Ok(())
}

fn main() {}
