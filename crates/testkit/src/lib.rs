//! Test support shared by boo.nvim's test layers (and the try-out command): where the tools
//! are, temp dirs kept only when a test fails, a scripted OpenAI-compatible model, and sandboxes for opencode and Neovim.

pub mod dir;
pub mod fake_model;
pub mod nvim;
pub mod opencode;
pub mod repo;
pub mod tools;
pub mod world;
