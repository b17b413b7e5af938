//! Turns state changes into render batches for Lua; the only module that draws.
