//! `DATABASE_URL=postgres://... cargo run -p tracker`: the Tracker server (env `PORT`,
//! default 3001).

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("set DATABASE_URL=postgres://user@host/db"))?;
    let port: u16 = std::env::var("PORT")
        .ok()
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(3001);
    let reactive = tracker::open(&url).await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("tracker: http://{addr}/api  (database {url})");
    println!("tracker: demo mode — bearer tokens:");
    for (org, token) in tracker::auth::DEMO_TOKENS {
        println!("  {token:<14} → {org}");
    }
    reactive::serve(listener, tracker::app(&reactive))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
