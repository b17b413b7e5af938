--- boo.nvim: coding agents in Neovim, each session in its own git worktree.
--- Public API. `setup()` is optional and can be called again; see `:h boo`.
local M = {}

--- Applies `opts` over the defaults and `vim.g.boo`. Bad keys are reported in one message.
function M.setup(opts)
  require('boo.config').set(opts)
end

--- Shows/hides the floating chat.
function M.toggle()
  local _, err = require('boo.rpc').ensure()
  if err then return require('boo.util').notify(err, vim.log.levels.ERROR) end
  require('boo.util').notify(':Boo toggle is not available yet', vim.log.levels.WARN)
end

--- Cheap state for statuslines. Never starts the backend.
function M.status()
  return {
    session = nil,
    chat = nil,
    agent = nil,
    model = nil,
    busy = false,
    pending_changes = 0,
    permissions = 0,
  }
end

--- Opens the backend log (the Lua side writes its errors there too).
function M.log()
  vim.cmd.split(vim.fn.fnameescape(require('boo.rpc').log_file()))
end

return M
