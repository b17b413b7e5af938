--- The welcome shown in an empty chat: what to type and which keys exist. Drawn as virtual
--- lines (the transcript stays empty) and removed with the chat's first line.
local M = {}
local H = {}

M.ns = vim.api.nvim_create_namespace('boo.welcome')

function M.lines()
  local k = require('boo.config').get().keys
  local function key(name, what)
    local v = k[name]
    return (type(v) == 'string' and v ~= '') and (v .. ' ' .. what) or nil
  end
  local keys = vim.tbl_filter(function(x) return x ~= nil end, {
    key('toggle_block', 'fold'),
    key('next_tab', 'next tab'),
    key('new_tab', 'new tab'),
    key('review', 'review changes'),
    key('abort', 'abort'),
    key('hide', 'hide'),
  })
  local send = vim.tbl_filter(
    function(x) return x ~= nil end,
    { key('send', '(normal)'), key('send_insert', '(insert)') }
  )
  return {
    'Welcome to boo: the agent works in its own git worktree; you review before anything lands.',
    'Type a prompt in the box below and send it with ' .. table.concat(send, ' or ') .. '.',
    'Keys here: ' .. table.concat(keys, ' · '),
    'Try: "explain how this project is built" · "add a test for the parser" · then :Boo diff',
    'Commands: :Boo usage (tokens, cost) · :Boo agent / :Boo model · :checkhealth boo',
  }
end

function H.empty(buf)
  return vim.api.nvim_buf_line_count(buf) == 1 and vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1] == ''
end

--- Shows the welcome in `buf` while it is empty (and the config wants it), hides it once not.
function M.update(buf)
  if not H.empty(buf) then return M.hide(buf) end
  if vim.b[buf].boo_welcome or not require('boo.config').get().ui.welcome then return end
  local virt = vim.tbl_map(function(l) return { { l, 'BooWelcome' } } end, M.lines())
  vim.api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  vim.api.nvim_buf_set_extmark(buf, M.ns, 0, 0, { virt_lines = virt })
  vim.b[buf].boo_welcome = true
end

--- Removes it (the chat has content now).
function M.hide(buf)
  if not vim.b[buf].boo_welcome then return end
  vim.b[buf].boo_welcome = false
  vim.api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
end

return M
