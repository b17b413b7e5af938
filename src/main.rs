//! `boocoder`: started by the Lua side with `jobstart({rpc=true})`; speaks msgpack-RPC on stdio.

use std::path::PathBuf;
use std::process::ExitCode;

use boocoder::error::AppError;

const USAGE: &str = "usage: boocoder [--log FILE] [--version]\n       boocoder task --repo DIR --prompt TEXT [--agent A] [--model M] [--json] [--log FILE]";

struct Args {
    log: PathBuf,
    /// `boocoder task ...`: one turn without Neovim.
    task: Option<(TaskOptions, bool)>,
}

use boocoder::app::headless::TaskOptions;

/// The arguments after `task`; `--log` is shared with the RPC mode.
fn parse_task(
    it: &mut impl Iterator<Item = String>,
) -> Result<(TaskOptions, bool, Option<PathBuf>), AppError> {
    let mut o = TaskOptions::default();
    let (mut repo, mut prompt, mut json, mut log) = (None, None, false, None);
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| AppError::Usage(format!("{name} needs a value; {USAGE}")))
        };
        match a.as_str() {
            "--repo" => repo = Some(PathBuf::from(value("--repo")?)),
            "--prompt" => prompt = Some(value("--prompt")?),
            "--agent" => o.agent = Some(value("--agent")?),
            "--model" => o.model = Some(value("--model")?),
            "--log" => log = Some(PathBuf::from(value("--log")?)),
            "--json" => json = true,
            other => {
                return Err(AppError::Usage(format!(
                    "unknown task argument '{other}'; {USAGE}"
                )))
            }
        }
    }
    o.repo = repo.ok_or_else(|| AppError::Usage(format!("task needs --repo DIR; {USAGE}")))?;
    o.prompt = prompt
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| AppError::Usage(format!("task needs --prompt TEXT; {USAGE}")))?;
    Ok((o, json, log))
}

fn parse_args() -> Result<Option<Args>, AppError> {
    let mut log = None;
    let mut task = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "task" => {
                let (o, json, l) = parse_task(&mut it)?;
                log = l.or(log);
                task = Some((o, json));
            }
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
    Ok(Some(Args { log, task }))
}

/// How the process ends: an RPC session, or a task's turn (failed: exit 1).
fn try_main() -> Result<bool, AppError> {
    let Some(args) = parse_args()? else {
        return Ok(true);
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
    let result = match args.task {
        None => rt.block_on(boocoder::app::run()).map(|()| true),
        Some((opts, json)) => rt.block_on(boocoder::app::headless::run(opts)).map(|s| {
            if json {
                println!("{}", serde_json::to_string(&s).unwrap_or_default());
            } else {
                print!("{}", s.text());
            }
            s.ok()
        }),
    };
    // Agent processes are ours: end them even when the channel ended in an error.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    tracing::info!(ok = result.is_ok(), "exit");
    result
}

fn main() -> ExitCode {
    match try_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("boocoder: {e}");
            ExitCode::from(2)
        }
    }
}
