//! The ACP agents boo knows by name: their command, arguments and how to install them.
//! `agents.<name>` of the config overrides `cmd`, `args` and adds `env`; any other name with
//! `protocol = 'acp'` and a `cmd` is an ACP agent too.

/// A known ACP agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Builtin {
    pub name: &'static str,
    pub cmd: &'static str,
    pub args: &'static [&'static str],
    pub install: &'static str,
    /// Also a stream-json CLI of `agent::external`: ACP only with `protocol = 'acp'`.
    pub also_cli: bool,
}

pub const BUILTIN: &[Builtin] = &[
    Builtin {
        name: "opencode-acp",
        cmd: "opencode",
        args: &["acp"],
        install: "comes with opencode (see https://opencode.ai)",
        also_cli: false,
    },
    Builtin {
        name: "qwen",
        cmd: "qwen",
        args: &["--acp"],
        install: "npm install -g @qwen-code/qwen-code",
        also_cli: true,
    },
    Builtin {
        name: "goose",
        cmd: "goose",
        args: &["acp"],
        install: "see https://block.github.io/goose/",
        also_cli: true,
    },
    Builtin {
        name: "gemini",
        cmd: "gemini",
        args: &["--acp"],
        install: "npm install -g @google/gemini-cli",
        also_cli: false,
    },
    Builtin {
        name: "claude",
        cmd: "claude-agent-acp",
        args: &[],
        install: "npm install -g @agentclientprotocol/claude-agent-acp (it drives an installed Claude Code)",
        also_cli: true,
    },
    Builtin {
        name: "codex-acp",
        cmd: "codex-acp",
        args: &[],
        install: "npm install -g @zed-industries/codex-acp",
        also_cli: false,
    },
];

pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTIN.iter().find(|b| b.name == name)
}
