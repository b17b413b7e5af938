//! The ACP agents boo knows by name: their command, the arguments that make them speak ACP,
//! how a model is chosen, and how to install them. `agents.<name>` of the config overrides
//! `cmd`, adds `args` (after the built-in ones) and `env`; any other name with
//! `protocol = 'acp'` and a `cmd` is an ACP agent too.

/// A known ACP agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Builtin {
    pub name: &'static str,
    pub cmd: &'static str,
    /// Always given (the user's `args` follow).
    pub args: &'static [&'static str],
    /// The option that picks the model (the agent restarts when a chat's model changes).
    pub model_flag: Option<&'static str>,
    pub install: &'static str,
    /// Also a stream-json CLI of `agent::external` that stays the default: ACP only with
    /// `protocol = 'acp'`.
    pub also_cli: bool,
}

pub const BUILTIN: &[Builtin] = &[
    Builtin {
        name: "opencode-acp",
        cmd: "opencode",
        args: &["acp"],
        model_flag: None,
        install: "comes with opencode (see https://opencode.ai)",
        also_cli: false,
    },
    Builtin {
        name: "qwen",
        cmd: "qwen",
        args: &["--acp"],
        model_flag: Some("-m"),
        install: "npm install -g @qwen-code/qwen-code",
        also_cli: false,
    },
    Builtin {
        name: "goose",
        cmd: "goose",
        args: &["acp"],
        model_flag: None,
        install: "see https://block.github.io/goose/",
        also_cli: false,
    },
    Builtin {
        name: "gemini",
        cmd: "gemini",
        args: &["--acp"],
        model_flag: Some("-m"),
        install: "npm install -g @google/gemini-cli",
        also_cli: false,
    },
    Builtin {
        name: "claude",
        cmd: "claude-agent-acp",
        args: &[],
        model_flag: None,
        install: "npm install -g @agentclientprotocol/claude-agent-acp (it drives an installed Claude Code)",
        also_cli: true,
    },
    Builtin {
        name: "codex-acp",
        cmd: "codex-acp",
        args: &[],
        model_flag: None,
        install: "npm install -g @zed-industries/codex-acp",
        also_cli: false,
    },
];

pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTIN.iter().find(|b| b.name == name)
}
