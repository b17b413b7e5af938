--- The view's entry points that are not render ops: set-up and reset.
local M = {}

M.did_setup = false

function M.setup()
  if M.did_setup then return end
  M.did_setup = true
  require('boo.ui.highlight').setup()
  require('boo.ui.pane').setup()
  -- Chat transcripts are markdown to treesitter.
  pcall(vim.treesitter.language.register, 'markdown', 'boo')
end

--- Forgets views of a previous backend process: closes its panes; chat buffers are reused by
--- name and refilled by the new process.
function M.reset()
  M.setup()
  local pane = require('boo.ui.pane')
  for id in pairs(pane.panes) do
    pane.close({ pane = id })
  end
  local chat = require('boo.ui.chat')
  chat.chats, chat.by_buf = {}, {}
end

return M
