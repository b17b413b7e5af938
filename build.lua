-- lazy.nvim runs this file as the plugin's build step: build the backend in release mode.
local root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h')
local out = vim.system({ 'cargo', 'build', '--release' }, { cwd = root, text = true }):wait()
if out.code ~= 0 then error('boo.nvim: cargo build --release failed:\n' .. (out.stderr or '')) end
