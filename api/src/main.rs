//! The `vitalfarm` binary.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    vitalfarm_api::install_crypto_provider();
    match vitalfarm_api::cli::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vitalfarm: {e:#}");
            ExitCode::FAILURE
        }
    }
}
