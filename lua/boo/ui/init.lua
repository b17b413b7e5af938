--- The view's entry points that are not render ops: set-up and reset.
local M = {}

M.did_setup = false

function M.setup()
  if M.did_setup then return end
  M.did_setup = true
  require('boo.ui.highlight').setup()
  require('boo.ui.pane').setup()
  require('boo.ui.renderers').setup()
  -- Chat transcripts are markdown to treesitter.
  pcall(vim.treesitter.language.register, 'markdown', 'boo')
end

--- Forgets views of a previous backend process. The chat panes on screen stay open and are
--- returned (as `restore` takes them): the new process adopts them under the same ids, so an
--- action naming one still reaches it. Other panes close; chat buffers are reused by name and
--- refilled by the new process.
function M.reset()
  M.setup()
  local pane = require('boo.ui.pane')
  local keep = pane.snapshot()
  local kept = {}
  for _, v in ipairs(keep) do
    kept[v.pane] = true
  end
  for id in pairs(pane.panes) do
    if not kept[id] then pane.close({ pane = id }) end
  end
  local chat = require('boo.ui.chat')
  chat.chats, chat.by_buf = {}, {}
  return keep
end

return M
