use reactive::{ReactiveDb, reactive_function};

// A function that calls itself: its own tables already cover the call, inferred or listed.
#[reactive_function]
pub async fn thread_depth(db: &ReactiveDb<sqlx::Any>, post_id: i64) -> reactive::Result<i64> {
    let parent: Option<i64> = sqlx::query_scalar("SELECT parent_id FROM post WHERE id = $1")
        .bind(post_id)
        .fetch_one(db)
        .await?;
    match parent {
        Some(parent) => Ok(1 + Box::pin(thread_depth(db, parent)).await?),
        None => Ok(0),
    }
}

#[reactive_function(dependencies(post))]
pub async fn thread_root(db: &ReactiveDb<sqlx::Any>, post_id: i64) -> reactive::Result<i64> {
    let parent: Option<i64> = sqlx::query_scalar("SELECT parent_id FROM post WHERE id = $1")
        .bind(post_id)
        .fetch_one(db)
        .await?;
    match parent {
        Some(parent) => Box::pin(self::thread_root(db, parent)).await,
        None => Ok(post_id),
    }
}

fn main() {}
