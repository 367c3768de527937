//! `Reactive::builder()`: what it requires, and that one Redis URL gives the cache store,
//! the event log and the bus, with the hub configured by `Redis::hub` (the Redis part needs
//! TEST_REDIS_URL).

use reactive_runtime::{BuildError, Reactive, ReactiveDb};

#[tokio::test]
async fn building_without_a_database_fails() {
    let built = Reactive::<sqlx::Any>::builder().build().await;
    assert!(matches!(built, Err(BuildError::NoDatabase)), "{built:?}");
}

#[tokio::test]
async fn the_defaults_keep_everything_in_memory_and_routers_can_be_taken_again() {
    let db = ReactiveDb::connect("sqlite::memory:")
        .await
        .expect("sqlite");
    let app = Reactive::builder()
        .database(db)
        .build()
        .await
        .expect("build");
    assert_eq!(app.db().engine().store().name(), "memory");
    // Routers are plain values: taking them twice wires nothing twice.
    let _ = app.router();
    let _ = app.clone().rpc_router().merge(app.events_router());
    assert_eq!(app.realtime().connections(), 0);
}

#[tokio::test]
async fn engine_settings_reach_the_handles_engine_with_or_without_a_store() {
    use reactive_runtime::EngineConfig;
    use reactive_runtime::cache::memory::MemoryStore;
    use reactive_runtime::engine::{RelationEdge, Relations};

    let edges =
        Relations::from_edges([RelationEdge::new("parents", "children", Some("parent_id"))]);
    let config = || EngineConfig {
        relations: edges.clone(),
        ..EngineConfig::default()
    };
    let db = ReactiveDb::connect("sqlite::memory:")
        .await
        .expect("sqlite");
    let own_store = db.engine().store().clone();
    let app = Reactive::builder()
        .database(db)
        .engine(config())
        .build()
        .await
        .expect("build");
    assert_eq!(*app.db().engine().relations(), edges);
    // Without `cache(..)`, the handle keeps its own store.
    assert!(std::sync::Arc::ptr_eq(
        app.db().engine().store(),
        &own_store
    ));

    let db = ReactiveDb::connect("sqlite::memory:")
        .await
        .expect("sqlite");
    let app = Reactive::builder()
        .database(db)
        .cache(MemoryStore::default())
        .engine(config())
        .build()
        .await
        .expect("build");
    assert_eq!(*app.db().engine().relations(), edges);
    assert!(!std::sync::Arc::ptr_eq(
        app.db().engine().store(),
        &own_store
    ));
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn one_redis_url_gives_the_cache_store_the_event_log_and_the_bus() {
    use reactive_runtime::Redis;
    use reactive_runtime::types::{ChangeSet, EventDraft};

    let url = match std::env::var("TEST_REDIS_URL") {
        Ok(url) => url,
        Err(_) if std::env::var("CI").is_ok() => panic!("TEST_REDIS_URL must be set in CI"),
        Err(_) => return eprintln!("skipped: TEST_REDIS_URL not set"),
    };
    let prefix = format!(
        "builder-test-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let db = ReactiveDb::connect("sqlite::memory:")
        .await
        .expect("sqlite");
    let app = Reactive::builder()
        .database(db)
        .redis(Redis::new(url.clone()).prefix(prefix.clone()))
        .build()
        .await
        .expect("build");
    assert_eq!(app.db().engine().store().name(), "redis");
    let event = app
        .realtime()
        .publish(EventDraft {
            tenant: "t".to_owned(),
            changes: ChangeSet::tables(["agent"]),
            requires_ack: false,
            invalidated: Vec::new(),
            show_keys: false,
        })
        .await
        .expect("the log appends");
    assert_eq!(
        app.realtime().log().head("t").await.expect("head"),
        event.id()
    );

    // `Redis::hub` configures the instance's live connections: with no stream allowed
    // per principal, a stream is refused.
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use reactive_runtime::realtime::HubConfig;
    use tower::ServiceExt;
    let db = ReactiveDb::connect("sqlite::memory:")
        .await
        .expect("sqlite");
    let hub = HubConfig {
        max_streams_per_principal: 0,
        ..HubConfig::default()
    };
    let app = Reactive::builder()
        .database(db)
        .redis(Redis::new(url).prefix(format!("{prefix}-hub")).hub(hub))
        .build()
        .await
        .expect("build");
    let request = Request::get("/events?subscribe=*")
        .body(Body::empty())
        .expect("request");
    let answer = app.router().oneshot(request).await.expect("served");
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Code written before the builder still compiles and is served the same routes.
#[tokio::test]
#[allow(deprecated)]
async fn the_deprecated_router_function_still_serves_every_route() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use reactive_runtime::RouterConfig;
    use reactive_runtime::router::SingleTenant;
    use tower::ServiceExt;

    let db = ReactiveDb::connect("sqlite::memory:")
        .await
        .expect("sqlite");
    let routes = reactive_runtime::router(db, RouterConfig::new(SingleTenant::new("t", "dev")));
    let status = |uri: &str| {
        let routes = routes.clone();
        let request = Request::get(uri).body(Body::empty()).expect("request");
        async move { routes.oneshot(request).await.expect("served").status() }
    };
    assert_eq!(
        status("/rpc/no.such.procedure").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(status("/poll").await, StatusCode::OK);
    assert_eq!(status("/no/such/route").await, StatusCode::NOT_FOUND);
}

/// `database` also takes a native pool (wrapped, its catalog read, at build) and, for
/// `Reactive<Any>`, a URL; a URL that cannot be opened fails the build with its cause.
#[tokio::test]
async fn a_native_pool_or_a_url_is_opened_by_build() {
    let pool = sqlx::SqlitePool::connect("sqlite::memory:")
        .await
        .expect("sqlite");
    sqlx::query("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    let app = Reactive::<sqlx::Sqlite>::builder()
        .database(pool)
        .build()
        .await
        .expect("build over a pool");
    sqlx::query("INSERT INTO note (body) VALUES ('x')")
        .execute(app.db())
        .await
        .expect("writes go through the wrapped pool");

    let app = Reactive::builder()
        .database("sqlite::memory:")
        .build()
        .await
        .expect("build over a URL");
    assert_eq!(app.db().engine().store().name(), "memory");
    let failed = Reactive::builder()
        .database("nosuchdb://nowhere")
        .build()
        .await;
    assert!(matches!(failed, Err(BuildError::Database(_))), "{failed:?}");
}
