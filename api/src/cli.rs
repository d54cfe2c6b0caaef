//! The `vitalfarm` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::{apidoc, server};

#[derive(Debug, Parser)]
#[command(name = "vitalfarm", version, about = "Multi-tenant health data platform")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// TOML configuration file (also VITALFARM_CONFIG).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for embedded state (also VITALFARM_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the service; migrations are applied on start.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on (also VITALFARM_BIND).
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
        /// Address of the in-process MQTT broker (also VITALFARM_MQTT_BIND).
        #[arg(long, value_name = "ADDR")]
        mqtt_bind: Option<String>,
        /// Runs without MQTT (also VITALFARM_NO_MQTT).
        #[arg(long)]
        no_mqtt: bool,
    },
    /// Applies pending migrations and exits.
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Prints the OpenAPI document, or writes it to a file.
    Openapi {
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            common,
            bind,
            mqtt_bind,
            no_mqtt,
        } => {
            let config = Config::load(
                common.config.as_deref(),
                Overrides {
                    bind,
                    data_dir: common.data_dir,
                    mqtt_bind,
                    no_mqtt: no_mqtt.then_some(true),
                },
            )?;
            server::serve(config).await
        }
        Command::Migrate { common } => {
            let config = Config::load(
                common.config.as_deref(),
                Overrides {
                    data_dir: common.data_dir,
                    ..Overrides::default()
                },
            )?;
            crate::telemetry::init_logging(&config);
            std::fs::create_dir_all(&config.data_dir)?;
            let db = vitalfarm_storage::Database::connect(&config.database_url()).await?;
            db.migrate().await?;
            tracing::info!(database = %config.database_url_redacted(), "migrations applied");
            Ok(())
        }
        Command::Openapi { out } => {
            match out {
                Some(path) => std::fs::write(&path, apidoc::spec_json())?,
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(apidoc::spec_json().as_bytes())?;
                }
            }
            Ok(())
        }
    }
}
