//! Runs a sandbox until Ctrl-C: `cargo run -p ledgerflow-sandbox --example serve [ADDR]`.
//! The product's `ledgerflow sandbox` command does the same with its own configuration.

use ledgerflow_sandbox::{start, SandboxConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into())
        .parse()?;
    let sandbox = start(SandboxConfig {
        bind,
        ..SandboxConfig::default()
    })
    .await?;
    println!("{}", sandbox.describe());
    tokio::signal::ctrl_c().await?;
    sandbox.shutdown().await;
    Ok(())
}
