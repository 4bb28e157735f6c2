//! `conformance`: runs the kit's issuer, optionally the server under test, the catalogue
//! against it, and prints the table (and writes JUnit XML).
//!
//! Exit status: 0 every case passed (or `--report-only`), 1 a case failed, 2 the kit
//! could not run (bad settings, the issuer did not start, the target never answered, the
//! command exited early) or the run is inconclusive (the valid token or the valid DPoP
//! proof was refused, so the refusals prove nothing; even with `--report-only`).
//!
//! A command-line program prints its results, hence the allowed print lints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use conformance::{CASES, Kit, Profile, Settings, Target, report};

/// Black-box conformance kit for OAuth 2.0 resource servers: mints crafted tokens with its
/// own issuer's keys and checks how the target answers them.
///
/// Configure the target to trust the issuer URL printed at start (or run it as COMMAND,
/// which gets CONFORMANCE_ISSUER, CONFORMANCE_JWKS_URI, CONFORMANCE_TOKEN_ENDPOINT,
/// CONFORMANCE_CLIENT_ID, CONFORMANCE_CLIENT_SECRET, CONFORMANCE_AUDIENCE,
/// CONFORMANCE_SCOPE and, with --https, CONFORMANCE_CA_FILE in its environment).
#[derive(Parser)]
#[command(name = "conformance", version)]
struct Cli {
    /// Where the kit's issuer listens (port 0: any free port).
    #[arg(long, env = "CONFORMANCE_ISSUER_LISTEN", default_value = "127.0.0.1:0")]
    issuer_listen: SocketAddr,

    /// Serve the issuer over https, with a certificate for 127.0.0.1, ::1 and localhost
    /// signed by a throwaway CA (for targets that refuse plain-http key sets). Needs
    /// --ca-file.
    #[arg(long, requires = "ca_file")]
    https: bool,

    /// With --https: where to write the PEM of the CA the target must trust (also given to
    /// COMMAND as CONFORMANCE_CA_FILE; for Node, NODE_EXTRA_CA_CERTS).
    #[arg(long, value_name = "PATH", requires = "https")]
    ca_file: Option<PathBuf>,

    /// The token shape the target expects.
    #[arg(long, value_enum, default_value = "rfc9068")]
    profile: ProfileArg,

    /// The `aud` of rfc9068/generic tokens (default: RESOURCE of a RESOURCE/NAME scope;
    /// without one, generic runs no audience case).
    #[arg(long)]
    audience: Option<String>,

    /// The scope the target requires: one scope token (MyService/weather_read,
    /// read:messages, api1).
    #[arg(long, required_unless_present = "explain")]
    scope: Option<String>,

    /// The protected URL to GET (e.g. http://127.0.0.1:7062/weatherforecast).
    #[arg(long, required_unless_present = "explain")]
    target: Option<String>,

    /// Print what case CASE sends, what it expects and the standard its verdict rests on,
    /// then exit.
    #[arg(long, value_name = "CASE")]
    explain: Option<String>,

    /// Run the DPoP group (default: detected from the target's challenges and metadata).
    #[arg(long)]
    dpop: bool,

    /// The RFC 9728 resource identifier (default: the target's origin).
    #[arg(long)]
    resource: Option<String>,

    /// How long to wait for the target to answer any HTTP request.
    #[arg(long, default_value_t = 60)]
    wait_secs: u64,

    /// Write JUnit XML here.
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,

    /// Exit 0 even when cases fail (still prints and writes the report).
    #[arg(long)]
    report_only: bool,

    /// The server to start (after the issuer) and stop at the end.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    Cognito,
    Rfc9068,
    Generic,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("conformance: {e}");
            ExitCode::from(2)
        }
    }
}

/// `--explain CASE`: the case's line of the catalogue, in words.
fn explain(id: &str) -> Result<ExitCode, String> {
    let Some(case) = CASES.iter().find(|c| c.id == id) else {
        return Err(format!(
            "--explain {id:?}: no such case (the ids are in the table's first column)"
        ));
    };
    println!("{}: {}", case.id, case.name);
    println!("  group:    {}", case.group.as_str());
    println!(
        "  severity: {} ({})",
        case.severity.as_str(),
        match case.severity {
            conformance::Severity::Must =>
                "fails as must when the server accepts what it must refuse, or refuses what it must accept",
            conformance::Severity::Should => "a difference of shape or an advisory check",
        }
    );
    println!("  expects:  {}", case.check.describe());
    println!("  basis:    {}", case.basis);
    if case.audience {
        println!("  runs:     under rfc9068, and under generic when an audience is given");
    } else if case.applies != conformance::catalogue::Applies::Any {
        println!("  runs:     under the {:?} profile only", case.applies);
    }
    if case.needs_dpop {
        println!("  runs:     only for a target that speaks DPoP");
    }
    if case.http_stack {
        println!(
            "  note:     decided by the HTTP stack (its header size and count limits, how it \
             merges repeated headers) rather than by the auth middleware"
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    if let Some(id) = &cli.explain {
        return explain(id);
    }
    // clap requires both unless --explain is given.
    let (Some(scope), Some(target_url)) = (&cli.scope, &cli.target) else {
        return Err("--scope and --target are required".into());
    };
    let profile = match cli.profile {
        ProfileArg::Cognito => Profile::Cognito,
        ProfileArg::Rfc9068 => Profile::Rfc9068,
        ProfileArg::Generic => Profile::Generic,
    };
    let settings =
        Settings::new(profile, scope, cli.audience.as_deref()).map_err(|e| e.to_string())?;
    let mut target = Target::new(target_url).map_err(|e| e.to_string())?;
    if let Some(resource) = &cli.resource {
        target.resource = resource.clone();
    }
    target.metadata_url().map_err(|e| e.to_string())?;
    if cli.dpop {
        target.dpop = Some(true);
    }
    let kit = if cli.https {
        Kit::start_https(settings, cli.issuer_listen).await
    } else {
        Kit::start(settings, cli.issuer_listen).await
    }
    .map_err(|e| e.to_string())?;
    // Written before the command starts: it reads the file at start (Node does).
    if let (Some(path), Some(pem)) = (&cli.ca_file, kit.ca_pem()) {
        std::fs::write(path, pem)
            .map_err(|e| format!("cannot write --ca-file {}: {e}", path.display()))?;
    }
    let issuer = kit.issuer();
    let (client_id, client_secret) = kit.client();
    println!("conformance issuer: {}", issuer.issuer());
    println!("  jwks_uri:       {}", issuer.jwks_uri());
    println!("  token endpoint: {}", issuer.token_endpoint());
    if let Some(path) = &cli.ca_file {
        println!(
            "  CA file:        {} (the CA of the issuer's certificate; trust it)",
            path.display()
        );
    }
    println!("  client:         {client_id} / {client_secret} (a throwaway secret for this run)");
    println!(
        "  scope:          {} (audience {})",
        kit.settings().scope,
        kit.settings().audience.as_deref().unwrap_or("none")
    );

    let mut child = match cli.command.split_first() {
        None => None,
        Some((program, args)) => {
            let mut command = tokio::process::Command::new(program);
            command
                .args(args)
                .env("CONFORMANCE_ISSUER", issuer.issuer())
                .env("CONFORMANCE_JWKS_URI", issuer.jwks_uri())
                .env("CONFORMANCE_TOKEN_ENDPOINT", issuer.token_endpoint())
                .env("CONFORMANCE_CLIENT_ID", client_id)
                .env("CONFORMANCE_CLIENT_SECRET", client_secret)
                .env(
                    "CONFORMANCE_AUDIENCE",
                    kit.settings().audience.as_deref().unwrap_or(""),
                )
                .env("CONFORMANCE_SCOPE", &kit.settings().scope)
                .kill_on_drop(true);
            if let Some(path) = &cli.ca_file {
                command.env("CONFORMANCE_CA_FILE", path);
            }
            // Its own process group, so stopping it also stops what it started (a shell
            // wrapper's server).
            #[cfg(unix)]
            command.process_group(0);
            let child = command
                .spawn()
                .map_err(|e| format!("cannot start {program}: {e}"))?;
            Some(child)
        }
    };
    let outcome = test(&kit, &target, &cli, child.as_mut()).await;
    if let Some(mut child) = child {
        stop(&mut child).await;
    }
    outcome
}

/// Stops the command and its process group.
async fn stop(child: &mut tokio::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        // No signal API without `unsafe` in std: the `kill` utility signals the group.
        let _ = tokio::process::Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pid}")])
            .status()
            .await;
    }
    let _ = child.kill().await;
}

async fn test(
    kit: &Kit,
    target: &Target,
    cli: &Cli,
    child: Option<&mut tokio::process::Child>,
) -> Result<ExitCode, String> {
    let wait = kit.wait_for(target, Duration::from_secs(cli.wait_secs));
    match child {
        None => wait.await.map_err(|e| e.to_string())?,
        // The command exiting before its server answers is a kit failure, not a timeout.
        Some(child) => tokio::select! {
            r = wait => r.map_err(|e| e.to_string())?,
            status = child.wait() => {
                return Err(format!("the command exited before the target answered ({})",
                    status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())));
            }
        },
    }
    let report = kit.run(target, CASES).await;
    println!("\n{}", report::table(&report));
    if let Some(path) = &cli.junit {
        std::fs::write(path, report::junit(&report))
            .map_err(|e| format!("cannot write --junit {}: {e}", path.display()))?;
        println!("JUnit XML: {}", path.display());
    }
    if let Some((count, last)) = kit.tls_handshake_failures() {
        eprintln!(
            "conformance: {count} TLS handshakes with the kit's https issuer failed (last \
             {last}): does the target trust the CA in --ca-file?"
        );
    }
    if let Some(why) = report.inconclusive() {
        return Err(format!("inconclusive: {why}"));
    }
    let (_, must, should, errors) = report.counts();
    if must + should + errors == 0 || cli.report_only {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}
