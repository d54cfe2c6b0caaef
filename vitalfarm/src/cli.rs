//! The `vitalfarm` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use vitalfarm_api::{apidoc, server};
use vitalfarm_app::config::{Config, Overrides};

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
    /// Benchmarks; each prints its figures beside the same run's baseline.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
    /// Operator tasks.
    Admin {
        #[command(subcommand)]
        task: AdminCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Prints the OpenAPI document, or writes it to a file.
    Openapi {
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// A fleet of simulated devices sending realistic vital signs, for
    /// demos, load and benchmarks.
    Simulate(vitalfarm_tools::simulate::SimulateArgs),
    /// A guided run of mashups, alerts, webhooks and the live stream over
    /// the public API, on a fresh embedded service (or `--url`).
    Demo {
        /// A running vitalfarm to drive instead (`http://host:port`).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Upload and download of 1 MiB and 100 MiB files through the HTTP API,
    /// beside the raw write and read speed of the same disk.
    Farm(vitalfarm_tools::bench::FarmBench),
    /// Readings ingested over HTTP batches and over MQTT, and the 24-hour
    /// one-subject query on a store filled to `--store` readings, beside
    /// PostgreSQL's own COPY rate and the broker's bare publish→subscribe
    /// rate.
    Ingest(vitalfarm_tools::bench::IngestBench),
    /// A membership export of `--readings` readings through the job worker:
    /// readings per second and the peak resident memory during it.
    Export(vitalfarm_tools::bench::ExportBench),
    /// Reads on a large store over HTTP: a year of one subject, the
    /// elderly watch over every enrollee and the cohort analysis, each
    /// with its median and p95.
    Analytics(vitalfarm_tools::bench::AnalyticsBench),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Sets the storage quota of a membership's farm.
    SetQuota {
        /// The membership whose farm it is.
        membership: uuid::Uuid,
        /// The new quota in bytes.
        bytes: u64,
    },
    /// Marks an account's email address verified without the mailed
    /// token, for demos and support (the operator vouches for the address).
    VerifyEmail {
        /// The account's email address.
        email: String,
    },
}

#[allow(clippy::print_stdout, reason = "commands report to the operator on stdout")]
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
        Command::Demo { url } => vitalfarm_tools::demo::command(vitalfarm_tools::demo::DemoOptions { url }).await,
        Command::Migrate { common } => {
            let config = Config::load(
                common.config.as_deref(),
                Overrides {
                    data_dir: common.data_dir,
                    ..Overrides::default()
                },
            )?;
            vitalfarm_app::telemetry::init_logging(&config);
            std::fs::create_dir_all(&config.data_dir)?;
            let db = vitalfarm_storage::Database::connect(&config.database_url()).await?;
            db.migrate().await?;
            tracing::info!(database = %config.database_url_redacted(), "migrations applied");
            Ok(())
        }
        Command::Bench { which } => match which {
            BenchCommand::Farm(opts) => vitalfarm_tools::bench::farm(opts).await,
            BenchCommand::Ingest(opts) => {
                print!("{}", vitalfarm_tools::bench::ingest(opts).await?);
                Ok(())
            }
            BenchCommand::Export(opts) => vitalfarm_tools::bench::export(opts).await,
            BenchCommand::Analytics(opts) => {
                print!("{}", vitalfarm_tools::bench::analytics(opts).await?);
                Ok(())
            }
        },
        Command::Admin {
            task: AdminCommand::SetQuota { membership, bytes },
            common,
        } => {
            let config = Config::load(
                common.config.as_deref(),
                Overrides {
                    data_dir: common.data_dir,
                    ..Overrides::default()
                },
            )?;
            let db = vitalfarm_storage::Database::connect(&config.database_url()).await?;
            db.migrate().await?;
            let farm = vitalfarm_storage::repo::farms::find_by_membership(
                &db,
                vitalfarm_domain::MembershipId::from_uuid(membership),
            )
            .await?
            .ok_or_else(|| anyhow::anyhow!("no membership {membership}"))?;
            let quota = i64::try_from(bytes).map_err(|_| anyhow::anyhow!("quota too large"))?;
            vitalfarm_storage::repo::farms::set_quota(&db, vitalfarm_domain::FarmId::from_uuid(farm.id), quota).await?;
            println!("farm {} of membership {membership}: quota {bytes} bytes", farm.id);
            Ok(())
        }
        Command::Admin {
            task: AdminCommand::VerifyEmail { email },
            common,
        } => {
            let config = Config::load(
                common.config.as_deref(),
                Overrides {
                    data_dir: common.data_dir,
                    ..Overrides::default()
                },
            )?;
            let db = vitalfarm_storage::Database::connect(&config.database_url()).await?;
            db.migrate().await?;
            let address = vitalfarm_app::admin::verify_email(&db, &email).await?;
            println!("{address}: email verified");
            Ok(())
        }
        Command::Simulate(args) => vitalfarm_tools::simulate::command(args).await,
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
