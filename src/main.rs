//! `boocoder`: started by the Lua side with `jobstart({rpc=true})`; speaks msgpack-RPC on stdio.

use std::path::PathBuf;
use std::process::ExitCode;

use boocoder::error::AppError;

const USAGE: &str = "usage: boocoder [--log FILE] [--version]";

struct Args {
    log: PathBuf,
}

fn parse_args() -> Result<Option<Args>, AppError> {
    let mut log = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--log" => {
                let v = it
                    .next()
                    .ok_or_else(|| AppError::Usage(format!("--log needs a path; {USAGE}")))?;
                log = Some(PathBuf::from(v));
            }
            "--guard" => {
                // Internal: the process guard boocoder starts for itself (agent::process).
                let token = it
                    .next()
                    .ok_or_else(|| AppError::Usage(format!("--guard needs a token; {USAGE}")))?;
                boocoder::agent::process::run_guard(&token);
                return Ok(None);
            }
            "--version" => {
                println!(
                    "boocoder {} ({}) protocol {}",
                    boocoder::VERSION,
                    boocoder::GIT_REVISION,
                    boocoder::PROTOCOL_VERSION
                );
                return Ok(None);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => {
                return Err(AppError::Usage(format!(
                    "unknown argument '{other}'; {USAGE}"
                )))
            }
        }
    }
    let Some(log) = log.or_else(boocoder::logging::default_log_path) else {
        return Err(AppError::Usage(format!(
            "no --log FILE and no per-user directory (XDG_STATE_HOME, HOME, XDG_RUNTIME_DIR); {USAGE}"
        )));
    };
    Ok(Some(Args { log }))
}

fn try_main() -> Result<(), AppError> {
    let Some(args) = parse_args()? else {
        return Ok(());
    };
    boocoder::logging::init(&args.log)?;
    tracing::info!(
        version = boocoder::VERSION,
        revision = boocoder::GIT_REVISION,
        "start"
    );
    // Before any agent starts: what they start must be swept when we end, however we end.
    boocoder::agent::process::start_guard();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AppError::Channel(format!("cannot start the runtime: {e}")))?;
    let result = rt.block_on(boocoder::app::run());
    // Agent processes are ours: end them even when the channel ended in an error.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    tracing::info!(ok = result.is_ok(), "exit");
    result
}

fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("boocoder: {e}");
            ExitCode::FAILURE
        }
    }
}
