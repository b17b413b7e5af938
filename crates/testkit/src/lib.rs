//! Test support shared by boo.nvim's test layers (and the try-out command): where the tools
//! are, a scripted OpenAI-compatible model, and sandboxes for opencode and Neovim.

pub mod fake_model;
pub mod nvim;
pub mod opencode;
pub mod repo;
pub mod tools;
