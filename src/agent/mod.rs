//! Agent backends: opencode (server + SSE) and CLI agents.
