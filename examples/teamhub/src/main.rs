//! `cargo run -p teamhub [-- --port N]`: the TeamHub server.

use std::net::SocketAddr;
use std::process::Command;

use teamhub::{Config, seed::DEMO_TENANTS};

fn port_from_args() -> anyhow::Result<u16> {
    let mut args = std::env::args().skip(1);
    let mut port = std::env::var("PORT")
        .ok()
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(3000);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                port = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--port needs a number"))?
                    .parse()?
            }
            "--help" | "-h" => {
                println!(
                    "usage: teamhub [--port N]   (env: PORT, DATABASE_URL, REDIS_URL, TEAMHUB_PUSH=off, TEAMHUB_SKIP_WEB_BUILD)"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument `{other}` (try --help)"),
        }
    }
    Ok(port)
}

/// Builds the page with npm when its build is missing or older than its sources.
fn build_web_if_needed() {
    if std::env::var_os("TEAMHUB_SKIP_WEB_BUILD").is_some() {
        return;
    }
    let web = teamhub::web_dir();
    // The page and the client runtime package it imports (`@reactive/client`, linked by path).
    let newest_source = [
        "src",
        "index.html",
        "vue.html",
        "tanstack.html",
        "vite.config.ts",
        "vite.pages.config.ts",
        "../../../reactive-codegen/ts/src",
    ]
    .iter()
    .map(|f| newest_mtime(&web.join(f)))
    .max()
    .flatten();
    let built = std::fs::metadata(web.join("dist/index.html"))
        .and_then(|m| m.modified())
        .ok();
    if built.is_some_and(|b| Some(b) >= newest_source) {
        return;
    }
    println!(
        "teamhub: building the web page (npm ci && npm run build in {})",
        web.display()
    );
    let ok = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&web)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("npm")
            .args(["run", "build"])
            .current_dir(&web)
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "teamhub: could not build the web page (is Node.js 20+ installed?); the API still runs"
        );
    }
}

fn newest_mtime(path: &std::path::Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}

/// Counts every request served but `/metrics` (added after this layer) into
/// `teamhub_http_requests_total`: what a change in the client's traffic costs the
/// server (the hit-rate bench reads it).
async fn count_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    metrics::counter!("teamhub_http_requests_total").increment(1);
    next.run(request).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let port = port_from_args()?;
    let config = Config::from_env();

    build_web_if_needed();

    let (reactive, seeded) = teamhub::open(&config).await?;
    if seeded {
        println!("teamhub: seeded demo data");
    }
    // The runtime's metrics in Prometheus's text format (open, as a demo: a real app keeps
    // /metrics off the public listener or behind its own check).
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let app = teamhub::app(&reactive, &config.web_dist)
        .layer(axum::middleware::from_fn(count_request))
        .route(
            "/metrics",
            axum::routing::get(move || std::future::ready(prometheus.render())),
        );

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "teamhub: http://{addr}  (database {}, {})",
        config.database_url,
        match &config.redis_url {
            Some(url) => format!("cache, events and bus in Redis at {url}"),
            None => "in-memory cache and events".to_string(),
        }
    );
    println!("teamhub: demo mode — sign in with one of these bearer tokens:");
    for (org, name, token) in DEMO_TENANTS {
        println!("  {token:<12} → {org} ({name})");
    }
    reactive::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
