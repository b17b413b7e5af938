//! Recovery of the opencode backend: the server killed mid-turn, the event stream cut
//! mid-turn (through a TCP proxy), boocoder killed with SIGKILL, shutdown with a pending
//! permission, and a missing `opencode` binary.

use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::opencode::{opencode_pids_with, rest_parts, Harness, T};
use boo_testkit::fake_model::FakeModel;
use boo_testkit::opencode::{OpencodeEnv, Sandbox, SandboxOptions};
use boocoder::agent::opencode::OpencodeBackend;
use boocoder::agent::{AgentBackend, AgentEvent, TurnOutcome};
use boocoder::model::{ItemChange, ItemKind};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

fn is_append(e: &AgentEvent, chat: i64) -> bool {
    matches!(e, AgentEvent::Item { chat: c, change: ItemChange::Append { .. } } if *c == chat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_turn_fails_clearly_and_the_next_prompt_restarts_it() {
    let mut h = Harness::new();
    let dir = h.dir();
    h.dispatcher.send(h.req(1, &dir, "[fake:stall 120]"));
    h.until(T, |e| is_append(e, 1)).await;
    let server = h.backend.server().await.expect("server");
    let pid = server.pid().expect("we started it") as i32;
    drop(server);
    let killed = Instant::now();
    // SAFETY: kill(2) on the server's process group.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    match h.done(1, Duration::from_secs(10)).await {
        TurnOutcome::Failed(msg) => assert!(msg.contains("exited"), "{msg}"),
        o => panic!("expected failure, got {o:?}"),
    }
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "{:?}",
        killed.elapsed()
    );

    let mut req = h.req(1, &dir, "after restart");
    req.binding = h.binding(1);
    h.dispatcher.send(req);
    assert_eq!(h.done(1, T).await, TurnOutcome::Done);
    assert!(h
        .transcript(1)
        .texts(ItemKind::Text)
        .contains(&"Echo: after restart".to_string()));
    let new_pid = h
        .backend
        .server()
        .await
        .expect("server")
        .pid()
        .expect("pid") as i32;
    assert_ne!(new_pid, pid);
    h.backend.shutdown().await;
}

/// A TCP proxy whose connections can all be cut at once, and whose event streams can be
/// muted (bytes from the server dropped while the connection stays open).
struct Proxy {
    port: u16,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    first_lines: Arc<Mutex<Vec<String>>>,
    mute: Arc<std::sync::atomic::AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let first_lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let mute: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let (c2, f2, m2) = (conns.clone(), first_lines.clone(), mute.clone());
        let accept = tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let (f3, m3) = (f2.clone(), m2.clone());
                let task = tokio::spawn(async move {
                    let Ok(up) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut dr, mut dw) = down.into_split();
                    let (mut ur, mut uw) = up.into_split();
                    // Connections are pooled: a connection carries an event stream once an
                    // event request went over it.
                    let is_event = std::sync::atomic::AtomicBool::new(false);
                    let pass_next = std::sync::atomic::AtomicBool::new(false);
                    let c2s = async {
                        let mut b = vec![0u8; 16384];
                        loop {
                            let n = match dr.read(&mut b).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let text = String::from_utf8_lossy(&b[..n]);
                            if let Some(line) = text.lines().find(|l| l.starts_with("GET /event")) {
                                f3.lock().push(line.to_string());
                                is_event.store(true, std::sync::atomic::Ordering::SeqCst);
                                pass_next.store(true, std::sync::atomic::Ordering::SeqCst);
                            }
                            if uw.write_all(&b[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let s2c = async {
                        let mut b = vec![0u8; 16384];
                        loop {
                            let n = match ur.read(&mut b).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let muted = is_event.load(std::sync::atomic::Ordering::SeqCst)
                                && m3.load(std::sync::atomic::Ordering::SeqCst)
                                && !pass_next.swap(false, std::sync::atomic::Ordering::SeqCst);
                            if muted {
                                continue;
                            }
                            if dw.write_all(&b[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    tokio::select! {
                        _ = c2s => {}
                        _ = s2c => {}
                    }
                });
                c2.lock().push(task);
            }
        });
        Proxy {
            port,
            conns,
            first_lines,
            mute,
            accept,
        }
    }

    fn cut(&self) {
        for t in self.conns.lock().drain(..) {
            t.abort();
        }
    }

    fn set_mute(&self, on: bool) {
        self.mute.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    fn event_connections(&self) -> usize {
        self.first_lines
            .lock()
            .iter()
            .filter(|l| l.starts_with("GET /event"))
            .count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_cut_mid_turn_ends_equal_to_the_server_transcript() {
    let model = FakeModel::start();
    let sb = Sandbox::start(&model);
    let upstream = sb.url().trim_start_matches("http://").to_string();
    let proxy = Proxy::start(upstream).await;
    let cfg = boocoder::agent::opencode::OpencodeConfig {
        attach_url: Some(format!("http://127.0.0.1:{}", proxy.port)),
        attach_password: Some(sb.password().to_string()),
        ..crate::support::opencode::config(&sb.env)
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let backend = OpencodeBackend::new(cfg, tx);
    let dir = sb.project_dir().to_path_buf();
    let mut transcript = crate::support::opencode::Transcript::default();
    let mut log = Vec::new();
    backend
        .start_turn(boocoder::agent::TurnRequest {
            chat: 7,
            task: 0,
            directory: dir.clone(),
            text: "stream please [fake:long 80 40]".into(),
            model: None,
            agent: None,
            binding: None,
            extras: Default::default(),
        })
        .await
        .expect("start");
    let mut appends = 0;
    let mut cuts = 0;
    let mut session = None;
    let outcome = tokio::time::timeout(T, async {
        loop {
            let ev = rx.recv().await.expect("channel");
            log.push(ev.clone());
            match &ev {
                AgentEvent::Item { change, .. } => {
                    transcript.apply(change);
                    if matches!(change, ItemChange::Append { .. }) {
                        appends += 1;
                        // Cut twice: once early, once later in the stream.
                        if (appends == 10 && cuts == 0) || (appends == 40 && cuts == 1) {
                            proxy.cut();
                            cuts += 1;
                        }
                    }
                }
                AgentEvent::SessionBound { external_id, .. } => session = Some(external_id.clone()),
                AgentEvent::TurnDone { outcome, .. } => return outcome.clone(),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("turn did not end; log: {log:#?}"));
    assert_eq!(outcome, TurnOutcome::Done);
    assert!(cuts >= 1, "the stream was never cut");
    assert!(proxy.event_connections() >= 2, "no reconnect happened");
    let session = session.expect("session bound");
    let server = backend.server().await.expect("server");
    let rest = server
        .client()
        .messages(&session, &dir)
        .await
        .expect("messages");
    assert_eq!(transcript.parts(), rest_parts(&rest));
    let want: String = (0..80)
        .map(|i| format!("chunk-{i}{}", if i % 10 == 9 { "\n" } else { " " }))
        .collect();
    assert_eq!(transcript.texts(ItemKind::Text), vec![want]);
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_server_even_with_a_pending_permission() {
    let mut h = Harness::new();
    let dir = h.dir();
    h.dispatcher.send(h.req(1, &dir, "[fake:bash echo wait]"));
    h.until(T, |e| matches!(e, AgentEvent::PermissionAsked { .. }))
        .await;
    let pid = h
        .backend
        .server()
        .await
        .expect("server")
        .pid()
        .expect("pid");
    let t0 = Instant::now();
    tokio::time::timeout(Duration::from_secs(15), h.backend.shutdown())
        .await
        .expect("shutdown hangs");
    assert!(t0.elapsed() < Duration::from_secs(8));
    let gone = !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
        || std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| c.is_empty())
            .unwrap_or(true);
    assert!(gone, "opencode serve {pid} still runs");
    // The chat's turn ended, the backend refuses new work.
    assert_eq!(h.done(1, T).await, TurnOutcome::Aborted);
    assert!(h.backend.server().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_opencode_binary_gives_one_clear_message() {
    let mut h = Harness::with(SandboxOptions::default(), |c| {
        c.command = "/nonexistent/bin/opencode".into();
    });
    let dir = h.dir();
    h.dispatcher.send(h.req(1, &dir, "hello"));
    match h.done(1, T).await {
        TurnOutcome::Failed(msg) => {
            assert!(msg.contains("opencode not found"), "{msg}");
            assert!(!msg.contains('\n'));
        }
        o => panic!("{o:?}"),
    }
    // The server error is also reported as such (it may arrive just after the TurnDone).
    if !h
        .log
        .iter()
        .any(|e| matches!(e, AgentEvent::ServerError(_)))
    {
        h.until(Duration::from_secs(5), |e| {
            matches!(e, AgentEvent::ServerError(_))
        })
        .await;
    }
    assert!(h
        .log
        .iter()
        .any(|e| matches!(e, AgentEvent::ServerError(m) if m.contains("not found"))));
}

const CHILD_ENV: &str = "BOO_TEST_SERVER_HOLDER";

/// Not a test on its own: the child process of the SIGKILL test (re-executed test binary).
#[test]
#[ignore]
fn child_holds_a_server() {
    let Ok(mark) = std::env::var(CHILD_ENV) else {
        return;
    };
    // Idle blocking-pool threads are reaped after 100 ms here: the server is asked for from
    // such a thread, the case where a naive parent-death signal would fire too early.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(100))
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let model = FakeModel::start();
        let env = OpencodeEnv::new(&model, &SandboxOptions::default());
        let mut cfg = crate::support::opencode::config(&env);
        // The parent finds the server by `BOO_TEST_MARK=<mark>` in its environment.
        cfg.env.push(("BOO_TEST_MARK".into(), mark));
        let (tx, _rx) = mpsc::unbounded_channel();
        let backend = OpencodeBackend::new(cfg, tx);
        let b = backend.clone();
        let server = tokio::task::spawn_blocking(move || {
            tokio::runtime::Handle::current().block_on(async move { b.server().await })
        })
        .await
        .expect("join")
        .expect("server");
        println!("SERVER_PID {}", server.pid().expect("pid"));
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    });
}

#[test]
fn killed_boocoder_leaves_no_opencode_serve() {
    let mark = format!(
        "mark-{}-{}",
        std::process::id(),
        boocoder::agent::opencode::server::random_password()
    );
    let child_tmp = boo_testkit::dir::TestDir::new("boo-child-");
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "opencode_recovery::child_holds_a_server",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &mark)
        // The child is killed, never dropping its sandbox: its files go in ours.
        .env("TMPDIR", child_tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    // Whatever happens below, the child does not outlive the test.
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            // SAFETY: kill(2) of our own child process.
            unsafe {
                libc::kill(self.0 as i32, libc::SIGKILL);
            }
        }
    }
    let _guard = KillOnDrop(child.id());
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(p) = line.split("SERVER_PID ").nth(1) {
                let _ = tx.send(p.trim().parse::<u32>().unwrap_or(0));
            }
        }
    });
    let pid = rx
        .recv_timeout(Duration::from_secs(90))
        .expect("child reported no server");
    assert!(pid > 0);
    assert_eq!(
        opencode_pids_with(&format!("BOO_TEST_MARK={mark}")),
        vec![pid]
    );
    // The blocking-pool thread that asked for the server is reaped meanwhile; the server must
    // survive that. Then the parent is killed hard.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        opencode_pids_with(&format!("BOO_TEST_MARK={mark}")),
        vec![pid],
        "server died with its spawning thread"
    );
    child.kill().expect("SIGKILL child");
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = opencode_pids_with(&format!("BOO_TEST_MARK={mark}"));
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for p in &left {
                // SAFETY: kill(2) of the leftover server, so a failed run cleans up.
                unsafe {
                    libc::kill(*p as i32, libc::SIGKILL);
                }
            }
            panic!("opencode serve left behind: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_event_stream_falls_back_to_polling() {
    let model = FakeModel::start();
    let sb = Sandbox::start(&model);
    let proxy = Proxy::start(sb.url().trim_start_matches("http://").to_string()).await;
    let cfg = boocoder::agent::opencode::OpencodeConfig {
        attach_url: Some(format!("http://127.0.0.1:{}", proxy.port)),
        attach_password: Some(sb.password().to_string()),
        poll_after: Duration::from_secs(1),
        ..crate::support::opencode::config(&sb.env)
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let backend = OpencodeBackend::new(cfg, tx);
    let dir = sb.project_dir().to_path_buf();
    let req = |text: &str| boocoder::agent::TurnRequest {
        chat: 3,
        task: 0,
        directory: dir.clone(),
        text: text.into(),
        model: None,
        agent: None,
        binding: None,
        extras: Default::default(),
    };
    let mut transcript = crate::support::opencode::Transcript::default();
    let mut session = None;
    let mut appends = 0;
    for (text, mute) in [("warm up", false), ("nobody hears [fake:slow 30]", true)] {
        proxy.set_mute(mute);
        appends = 0;
        backend.start_turn(req(text)).await.expect("start");
        let outcome = tokio::time::timeout(T, async {
            loop {
                match rx.recv().await.expect("channel") {
                    AgentEvent::Item { change, .. } => {
                        appends += usize::from(matches!(change, ItemChange::Append { .. }));
                        transcript.apply(&change);
                    }
                    AgentEvent::SessionBound { external_id, .. } => session = Some(external_id),
                    AgentEvent::TurnDone { outcome, .. } => return outcome,
                    _ => {}
                }
            }
        })
        .await
        .expect("turn did not end");
        assert_eq!(outcome, TurnOutcome::Done, "{text}");
    }
    // Nothing arrived over SSE for the second turn (no deltas, all from REST polls), yet the
    // transcript is complete.
    assert_eq!(appends, 0);
    assert_eq!(proxy.event_connections(), 1);
    let rest = backend
        .server()
        .await
        .expect("server")
        .client()
        .messages(&session.expect("bound"), &dir)
        .await
        .expect("messages");
    assert_eq!(transcript.parts(), rest_parts(&rest));
    assert!(transcript
        .texts(ItemKind::Text)
        .contains(&"Echo: nobody hears".to_string()));
    backend.shutdown().await;
}
