//! The `vitalfarm` binary.

mod cli;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    vitalfarm_app::install_crypto_provider();
    match cli::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vitalfarm: {e:#}");
            ExitCode::FAILURE
        }
    }
}
