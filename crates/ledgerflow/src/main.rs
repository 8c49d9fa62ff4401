//! The `ledgerflow` binary: command-line parsing, configuration and wiring of the library crates.
//! Nothing here speaks SQL or knows a route's insides.

use std::io::{BufRead, IsTerminal};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use ledgerflow_server::{AppState, ServerConfig};
use ledgerflow_store::{Keyring, Store};

#[derive(Parser)]
#[command(
    name = "ledgerflow",
    version,
    about = "Self-hosted workflow automation for accounting integrations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Folder for the embedded database and the encryption key file.
    #[arg(long, env = "LEDGERFLOW_HOME", global = true)]
    home: Option<PathBuf>,
    /// Use this database instead of the embedded SQLite file (postgres://user@host:port/db).
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys for scripts.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    /// Manage the encryption keys of stored secrets.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect, connect, test and delete credentials.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Run the Xero sandbox on its own: a stateful Xero emulator with a developer portal.
    Sandbox(SandboxArgs),
    /// Import, export, list, run, activate and deactivate workflows.
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// List, show, retry and cancel executions.
    #[command(subcommand)]
    Executions(ExecutionsCommand),
    /// Describe node types.
    #[command(subcommand)]
    Nodes(NodesCommand),
}

#[derive(Subcommand)]
enum NodesCommand {
    /// Resources, operations, parameters and scopes of a node (`xero`).
    Describe {
        node: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum WorkflowCommand {
    /// Import a workflow JSON file (an n8n export or Ledgerflow's own); prints its id.
    Import {
        #[command(flatten)]
        common: Common,
        /// The file (`-` for standard input).
        file: PathBuf,
        /// Activate it after importing.
        #[arg(long)]
        activate: bool,
    },
    /// Print a workflow's JSON.
    Export {
        #[command(flatten)]
        common: Common,
        id: String,
    },
    /// List workflows.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Run a workflow now, in this process, and print the result of its last node.
    Run {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        urls: Urls,
        id: String,
    },
    /// Activate a workflow's triggers (schedules, webhooks, Xero triggers).
    Activate {
        #[command(flatten)]
        common: Common,
        id: String,
    },
    /// Deactivate a workflow's triggers.
    Deactivate {
        #[command(flatten)]
        common: Common,
        id: String,
    },
}

#[derive(Subcommand)]
enum ExecutionsCommand {
    /// List recent executions.
    List {
        #[command(flatten)]
        common: Common,
        /// Only this workflow's.
        #[arg(long)]
        workflow: Option<String>,
        /// Only with this status (queued, running, succeeded, failed, cancelled, crashed).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Show one execution with its per-node input and output (JSON).
    Show {
        #[command(flatten)]
        common: Common,
        id: String,
    },
    /// Queue a new execution with the same input.
    Retry {
        #[command(flatten)]
        common: Common,
        id: String,
    },
    /// Cancel a queued or running execution.
    Cancel {
        #[command(flatten)]
        common: Common,
        id: String,
    },
}

#[derive(Args)]
struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// Invoices and bills generated per demo organisation.
    #[arg(long, default_value_t = 300)]
    seed_invoices: usize,
    /// Contacts generated per demo organisation.
    #[arg(long, default_value_t = 40)]
    seed_contacts: usize,
    /// Approve consent without showing the sign-in and consent pages (for scripts).
    #[arg(long)]
    auto_approve: bool,
    /// Switch Xero's rate limits off.
    #[arg(long)]
    no_rate_limits: bool,
    /// Access token lifetime in seconds (Xero: 1800).
    #[arg(long, default_value_t = 1800)]
    access_token_ttl: u64,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "LEDGERFLOW_BIND")]
    bind: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080, env = "LEDGERFLOW_PORT")]
    port: u16,
    /// The URL this server is reached at (for OAuth redirect and webhook URLs).
    /// Defaults to http://<bind>:<port>.
    #[arg(long, env = "LEDGERFLOW_PUBLIC_URL")]
    public_url: Option<url::Url>,
    /// Also run the built-in Xero sandbox, and let credentials use it (demo and offline testing).
    #[arg(long)]
    sandbox: bool,
    /// Port of the built-in Xero sandbox.
    #[arg(long, default_value_t = 8090, env = "LEDGERFLOW_SANDBOX_PORT")]
    sandbox_port: u16,
    /// Use a Xero sandbox already running at this URL (`ledgerflow sandbox`), e.g. shared by
    /// several servers, instead of starting one.
    #[arg(long, env = "LEDGERFLOW_SANDBOX_URL", conflicts_with = "sandbox")]
    sandbox_url: Option<String>,
}

/// How CLI commands that act as the server reach it and the sandbox.
#[derive(Args, Clone)]
struct Urls {
    /// The server's public URL (as `serve` uses it); OAuth redirect URLs are built from it.
    #[arg(
        long,
        env = "LEDGERFLOW_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    public_url: url::Url,
    /// Where the Xero sandbox runs, for credentials set to the sandbox.
    #[arg(
        long,
        env = "LEDGERFLOW_SANDBOX_URL",
        default_value = "http://127.0.0.1:8090"
    )]
    sandbox_url: String,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create the owner account (the password is read from LEDGERFLOW_OWNER_PASSWORD or stdin).
    CreateOwner {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create an API key for the owner and print it (it is shown only once).
    Create {
        #[command(flatten)]
        common: Common,
        /// A name to tell keys apart.
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List API keys (names and prefixes, never the keys).
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Delete an API key by id.
    Delete {
        #[command(flatten)]
        common: Common,
        id: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new key version and re-encrypt every secret with it. Safe to interrupt and re-run.
    Rotate {
        #[command(flatten)]
        common: Common,
    },
    /// Decrypt every stored secret and report any that cannot be read.
    Verify {
        #[command(flatten)]
        common: Common,
    },
    /// Show key versions and how many secrets use each.
    Status {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum CredentialsCommand {
    /// List credentials with their connection status (never their secrets).
    List {
        #[command(flatten)]
        common: Common,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one credential: fields, status, scopes, token expiry, organisations.
    Show {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        urls: Urls,
        id: String,
    },
    /// Print the URL that starts consent (open it in a browser signed in as the owner).
    ConnectUrl {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        urls: Urls,
        id: String,
    },
    /// Call Xero with the credential (/connections, then GET /Organisation per organisation).
    Test {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        urls: Urls,
        id: String,
    },
    /// Disconnect one organisation (by tenant id) from the credential, at Xero too.
    Disconnect {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        urls: Urls,
        id: String,
        tenant_id: String,
    },
    /// Revoke the connection at Xero, then delete the credential.
    Delete {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        urls: Urls,
        id: String,
        /// Delete even if revocation at Xero fails.
        #[arg(long)]
        force: bool,
    },
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("LEDGERFLOW_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

impl Common {
    fn home(&self) -> Result<PathBuf> {
        if let Some(h) = &self.home {
            return Ok(h.clone());
        }
        let base = std::env::var_os("HOME")
            .context("set LEDGERFLOW_HOME (or HOME) to choose where Ledgerflow keeps its data")?;
        Ok(PathBuf::from(base).join(".ledgerflow"))
    }

    async fn open(&self) -> Result<Store> {
        let home = self.home()?;
        std::fs::create_dir_all(&home)
            .with_context(|| format!("cannot create the home folder {}", home.display()))?;
        let env_key = std::env::var(ledgerflow_store::vault::KEY_ENV)
            .ok()
            .filter(|k| !k.trim().is_empty());
        let embedded = self
            .database_url
            .as_deref()
            .is_none_or(|u| u.trim().is_empty());
        let key_file = home.join(ledgerflow_store::vault::KEY_FILE_NAME);
        if embedded
            && env_key.is_none()
            && home.join("ledgerflow.db").exists()
            && !key_file.exists()
        {
            bail!(
                "the database in {} exists but its encryption key file {} is missing; restore the key file (or set {}) — a new key could not decrypt the stored secrets",
                home.display(),
                key_file.display(),
                ledgerflow_store::vault::KEY_ENV
            );
        }
        let keyring = Keyring::load(&home, env_key.as_deref())?;
        let url = match &self.database_url {
            Some(u) if !u.trim().is_empty() => u.clone(),
            _ => ledgerflow_store::sqlite_url(&home),
        };
        let store = Store::connect(&url, keyring).await?;
        Ok(store)
    }
}

#[tokio::main]
async fn main() {
    init_logging();
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::User(UserCommand::CreateOwner { common, email }) => {
            let password = read_password()?;
            if let Err(msg) = ledgerflow_server::auth::validate_new_account(&email, &password) {
                bail!("{msg}");
            }
            let store = common.open().await?;
            let hash =
                ledgerflow_server::auth::hash_password(&password).map_err(anyhow::Error::msg)?;
            let user = store.create_owner(&email, &hash).await?;
            println!("Owner account created for {}.", user.email);
            Ok(())
        }
        Command::Apikey(cmd) => apikey(cmd).await,
        Command::Keys(KeysCommand::Rotate { common }) => {
            let store = common.open().await?;
            let from_file = matches!(
                store.keyring().source(),
                ledgerflow_store::KeySource::File(_)
            );
            if !from_file {
                let usage = store.key_usage().await?;
                let current = store.keyring().current_version();
                if usage.iter().all(|(v, _)| *v == current) {
                    bail!(
                        "keys come from LEDGERFLOW_ENCRYPTION_KEY and every secret already uses its newest version ({current}); to rotate, add a new key as the next version (`{current}:<old>,{}:<new>`; `ledgerflow keys generate` is not needed, any base64 of 32 random bytes works) on every server, then run this again",
                        current + 1
                    );
                }
            }
            let (version, n) = store.rotate_keys(from_file).await?;
            println!("Every secret now uses encryption key version {version} ({n} re-encrypted).");
            Ok(())
        }
        Command::Keys(KeysCommand::Verify { common }) => {
            let store = common.open().await?;
            let (ok, bad) = store.verify_secrets().await?;
            if !bad.is_empty() {
                bail!(
                    "{} secret(s) cannot be decrypted with the loaded keys: credentials {}",
                    bad.len(),
                    bad.join(", ")
                );
            }
            println!("All {ok} secret(s) decrypt with the loaded keys.");
            Ok(())
        }
        Command::Keys(KeysCommand::Status { common }) => {
            let store = common.open().await?;
            println!("Keys from: {}", store.keyring().source());
            println!(
                "Loaded versions: {:?} (new secrets use {})",
                store.keyring().versions(),
                store.keyring().current_version()
            );
            for (v, n) in store.key_usage().await? {
                println!("  version {v}: {n} secret(s)");
            }
            Ok(())
        }
        Command::Credentials(cmd) => credentials(cmd).await,
        Command::Sandbox(args) => sandbox(args).await,
        Command::Workflow(cmd) => workflow(cmd).await,
        Command::Executions(cmd) => executions(cmd).await,
        Command::Nodes(NodesCommand::Describe { node, json }) => {
            if !node.eq_ignore_ascii_case("xero") && node != ledgerflow_nodes_xero::node::TYPE_NAME
            {
                bail!("no documentation for node '{node}'; try `ledgerflow nodes describe xero`");
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&ledgerflow_nodes_xero::docs::describe())?
                );
            } else {
                print!("{}", ledgerflow_nodes_xero::docs::describe_text());
            }
            Ok(())
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runtime settings from the environment (see the README's configuration table).
fn runtime_config() -> ledgerflow_server::runtime::RuntimeConfig {
    let mut c = ledgerflow_server::runtime::RuntimeConfig::default();
    if let Some(n) = env_u64("LEDGERFLOW_CONCURRENCY") {
        c.concurrency = n.max(1) as usize;
    }
    if let Some(s) = env_u64("LEDGERFLOW_EXECUTION_STALE_SECS") {
        c.stale_after = std::time::Duration::from_secs(s.max(1));
    }
    if let Some(d) = env_u64("LEDGERFLOW_EXECUTIONS_RETENTION_DAYS") {
        c.retention = std::time::Duration::from_secs(d.max(1) * 86_400);
    }
    c
}

async fn credential_state(common: &Common, urls: &Urls) -> Result<AppState> {
    let store = common.open().await?;
    Ok(AppState::new(
        store,
        ServerConfig {
            public_url: urls.public_url.clone(),
            sandbox_url: Some(urls.sandbox_url.clone()),
        },
    ))
}

async fn credentials(cmd: CredentialsCommand) -> Result<()> {
    use ledgerflow_server::connect;
    match cmd {
        CredentialsCommand::List { common, json } => {
            let store = common.open().await?;
            let creds = store.list_credentials().await?;
            let mut rows = Vec::new();
            for c in creds {
                let status = if c.type_name == "xeroOAuth2Api" {
                    store.oauth_status(&c.id).await?.status
                } else {
                    "-".into()
                };
                rows.push((c, status));
            }
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(c, s)| {
                        let mut v = serde_json::json!(c);
                        v["status"] = serde_json::json!(s);
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if rows.is_empty() {
                println!("No credentials.");
            } else {
                println!("{:<34} {:<16} {:<16} NAME", "ID", "TYPE", "STATUS");
                for (c, s) in rows {
                    println!("{:<34} {:<16} {:<16} {}", c.id, c.type_name, s, c.name);
                }
            }
        }
        CredentialsCommand::Show { common, urls, id } => {
            let state = credential_state(&common, &urls).await?;
            let v = ledgerflow_server::api::credential_view(&state, &id)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        CredentialsCommand::ConnectUrl { common, urls, id } => {
            let state = credential_state(&common, &urls).await?;
            let owner = owner(&state.store).await?;
            let url = connect::start(&state, &id, &owner).await?;
            eprintln!(
                "Open this URL in a browser signed in to Ledgerflow as the owner, within 10 minutes. The app's redirect URI must be {}",
                connect::redirect_url(&state.config)
            );
            println!("{url}");
        }
        CredentialsCommand::Test { common, urls, id } => {
            let state = credential_state(&common, &urls).await?;
            let report = connect::test(&state, &id).await?;
            println!("{}", report.message);
            for o in &report.organisations {
                println!(
                    "  {} {} ({}): {}",
                    if o.ok { "ok  " } else { "FAIL" },
                    o.tenant_name,
                    o.tenant_id,
                    o.message
                );
            }
            if !report.ok {
                bail!("the credential test failed");
            }
        }
        CredentialsCommand::Disconnect {
            common,
            urls,
            id,
            tenant_id,
        } => {
            let state = credential_state(&common, &urls).await?;
            connect::disconnect(&state, &id, &tenant_id).await?;
            println!("Organisation {tenant_id} disconnected.");
        }
        CredentialsCommand::Delete {
            common,
            urls,
            id,
            force,
        } => {
            let state = credential_state(&common, &urls).await?;
            connect::delete(&state, &id, force).await?;
            println!("Credential {id} deleted.");
        }
    }
    Ok(())
}

/// A server state for commands that act on workflows without a running server.
async fn offline_state(common: &Common, urls: Option<&Urls>) -> Result<AppState> {
    let store = common.open().await?;
    let public_url = match urls {
        Some(u) => u.public_url.clone(),
        None => url::Url::parse("http://127.0.0.1:8080")?,
    };
    Ok(AppState::with_runtime(
        store,
        ServerConfig {
            public_url,
            sandbox_url: urls.map(|u| u.sandbox_url.clone()),
        },
        runtime_config(),
    ))
}

fn api_err(e: ledgerflow_server::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!(e.message)
}

async fn workflow(cmd: WorkflowCommand) -> Result<()> {
    use ledgerflow_server::runtime;
    match cmd {
        WorkflowCommand::Import {
            common,
            file,
            activate,
        } => {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let state = offline_state(&common, None).await?;
            let mut w = runtime::create_workflow(&state, &text)
                .await
                .map_err(api_err)?;
            if activate {
                w = runtime::set_active(&state, &w.id, true)
                    .await
                    .map_err(api_err)?;
            }
            eprintln!(
                "Imported '{}'{}.",
                w.name,
                if w.active { " (active)" } else { "" }
            );
            println!("{}", w.id);
        }
        WorkflowCommand::Export { common, id } => {
            let store = common.open().await?;
            let w = store.workflow(&id).await?;
            let mut v: serde_json::Value = serde_json::from_str(&w.definition)?;
            v["id"] = serde_json::json!(w.id);
            v["active"] = serde_json::json!(w.active);
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        WorkflowCommand::List { common } => {
            let store = common.open().await?;
            let all = store.workflows().await?;
            if all.is_empty() {
                println!("No workflows. Import one with `ledgerflow workflow import FILE`.");
            }
            for w in all {
                println!(
                    "{:<18} {:<8} {}",
                    w.id,
                    if w.active { "active" } else { "-" },
                    w.name
                );
            }
        }
        WorkflowCommand::Run { common, urls, id } => {
            let state = offline_state(&common, Some(&urls)).await?;
            state.store.workflow(&id).await?;
            let trigger = serde_json::to_string(&runtime::TriggerData::default())?;
            let record = state
                .store
                .start_claimed_execution(&id, "cli", &trigger, &state.runtime.worker_id)
                .await?;
            runtime::execute(&state, record.clone()).await;
            let done = state.store.execution(&record.id).await?;
            let v = ledgerflow_server::workflows_api::execution_json(&done, true);
            eprintln!("Execution {} {}.", done.id, done.status);
            println!("{}", serde_json::to_string_pretty(&v)?);
            if done.status != "succeeded" {
                bail!(
                    "the workflow {}: {}",
                    done.status,
                    done.error.unwrap_or_default()
                );
            }
        }
        WorkflowCommand::Activate { common, id } => {
            let state = offline_state(&common, None).await?;
            runtime::set_active(&state, &id, true)
                .await
                .map_err(api_err)?;
            println!("Workflow {id} is active; a running server picks it up within a second.");
        }
        WorkflowCommand::Deactivate { common, id } => {
            let state = offline_state(&common, None).await?;
            runtime::set_active(&state, &id, false)
                .await
                .map_err(api_err)?;
            println!("Workflow {id} is inactive.");
        }
    }
    Ok(())
}

async fn executions(cmd: ExecutionsCommand) -> Result<()> {
    use ledgerflow_server::runtime;
    match cmd {
        ExecutionsCommand::List {
            common,
            workflow,
            status,
            limit,
        } => {
            let store = common.open().await?;
            let list = store
                .executions(&ledgerflow_store::ExecutionFilter {
                    workflow_id: workflow,
                    status,
                    limit: Some(limit),
                })
                .await?;
            if list.is_empty() {
                println!("No executions.");
            }
            for e in list {
                println!(
                    "{}  {:<10} {:<8} {}  {}",
                    e.id,
                    e.status,
                    e.mode,
                    e.workflow_id,
                    e.error.unwrap_or_default()
                );
            }
        }
        ExecutionsCommand::Show { common, id } => {
            let store = common.open().await?;
            let e = store.execution(&id).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&ledgerflow_server::workflows_api::execution_json(
                    &e, true
                ))?
            );
        }
        ExecutionsCommand::Retry { common, id } => {
            let state = offline_state(&common, None).await?;
            let e = runtime::retry(&state, &id).await.map_err(api_err)?;
            println!("Queued execution {} (a running server runs it).", e.id);
        }
        ExecutionsCommand::Cancel { common, id } => {
            let state = offline_state(&common, None).await?;
            if runtime::cancel(&state, &id).await.map_err(api_err)? {
                println!("Execution {id} cancelled.");
            } else {
                bail!("execution {id} had already ended");
            }
        }
    }
    Ok(())
}

fn sandbox_config(bind: SocketAddr) -> ledgerflow_sandbox::SandboxConfig {
    ledgerflow_sandbox::SandboxConfig {
        bind,
        ..Default::default()
    }
}

async fn sandbox(args: SandboxArgs) -> Result<()> {
    let mut config = sandbox_config(SocketAddr::new(args.bind, args.port));
    config.seed_invoices = args.seed_invoices;
    config.seed_contacts = args.seed_contacts;
    config.auto_approve = args.auto_approve;
    config.access_token_ttl = std::time::Duration::from_secs(args.access_token_ttl.max(1));
    if args.no_rate_limits {
        config.rate_limits = None;
    }
    let running = ledgerflow_sandbox::start(config).await?;
    println!("{}", running.describe());
    shutdown_signal().await;
    running.shutdown().await;
    Ok(())
}

fn read_password() -> Result<String> {
    if let Ok(p) = std::env::var("LEDGERFLOW_OWNER_PASSWORD") {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        eprint!("Password (at least 10 characters): ");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn apikey(cmd: ApiKeyCommand) -> Result<()> {
    match cmd {
        ApiKeyCommand::Create { common, name } => {
            let store = common.open().await?;
            let owner = owner(&store).await?;
            let (key, prefix, hash) = ledgerflow_server::auth::new_api_key();
            store.create_api_key(&owner, &name, &prefix, &hash).await?;
            eprintln!("API key '{name}' created. It is shown only this once; use it as `Authorization: Bearer <key>`.");
            println!("{key}");
        }
        ApiKeyCommand::List { common } => {
            let store = common.open().await?;
            for k in store.list_api_keys().await? {
                println!("{}  {}…  {}", k.id, k.prefix, k.name);
            }
        }
        ApiKeyCommand::Delete { common, id } => {
            let store = common.open().await?;
            store.delete_api_key(&id).await?;
            println!("API key {id} deleted.");
        }
    }
    Ok(())
}

async fn owner(store: &Store) -> Result<String> {
    if store.user_count().await? == 0 {
        bail!("there is no owner account yet: run `ledgerflow user create-owner --email you@example.com` or open the web UI first");
    }
    store
        .owner()
        .await?
        .map(|u| u.id)
        .context("no owner account")
}

async fn serve(args: ServeArgs) -> Result<()> {
    let store = args.common.open().await?;
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "cannot listen on {addr}; is another server using that port? Choose one with --port"
        )
    })?;
    let local = listener.local_addr()?;
    let public_url = match args.public_url {
        Some(u) => u,
        None => {
            let host = if local.ip().is_unspecified() {
                "localhost".to_string()
            } else {
                match local.ip() {
                    IpAddr::V6(ip) => format!("[{ip}]"),
                    IpAddr::V4(ip) => ip.to_string(),
                }
            };
            url::Url::parse(&format!("http://{host}:{}", local.port()))?
        }
    };
    let sandbox = if args.sandbox {
        let mut config = sandbox_config(SocketAddr::new(args.bind, args.sandbox_port));
        config.demo_redirect_uris.push(format!(
            "{}{}",
            public_url.as_str().trim_end_matches('/'),
            ledgerflow_server::connect::CALLBACK_PATH
        ));
        let running = ledgerflow_sandbox::start(config)
            .await
            .context("cannot start the Xero sandbox; choose another port with --sandbox-port")?;
        eprintln!("{}", running.describe());
        Some(running)
    } else {
        None
    };
    let state = AppState::with_runtime(
        store.clone(),
        ServerConfig {
            public_url: public_url.clone(),
            sandbox_url: sandbox.as_ref().map(|s| s.base_url()).or(args.sandbox_url),
        },
        runtime_config(),
    );
    tokio::spawn(ledgerflow_server::connect::run_sweeper(state.clone()));
    ledgerflow_server::runtime::spawn(&state);
    tracing::info!(listen = %local, public_url = %public_url, backend = ?store.backend(), "Ledgerflow is ready");
    eprintln!("Ledgerflow is listening on http://{local} (open {public_url})");
    ledgerflow_server::serve(listener, state, shutdown_signal())
        .await
        .context("server failed")?;
    if let Some(s) = sandbox {
        s.shutdown().await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
