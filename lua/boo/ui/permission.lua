--- Permission requests: a `vim.ui.select` prompt (works with any picker) answered back to Rust.
local M = {}

M.asking = {} -- request ids with a prompt open, so a redraw does not stack prompts

--- `op`: {id, chat, title, permission, patterns}
function M.prompt(op)
  if M.asking[op.id] then return end
  M.asking[op.id] = true
  -- Opened after the render batch returns: a picker that waits for keys (inputlist) must not
  -- hold the frame, and so the backend, while it is open.
  vim.schedule(function() M.open(op) end)
end

function M.open(op)
  vim.api.nvim_exec_autocmds('User', { pattern = 'BooPermission', data = op, modeline = false })
  local choices = { 'once', 'always', 'reject' }
  local labels = { once = 'Allow once', always = 'Always allow', reject = 'Reject' }
  vim.ui.select(choices, {
    prompt = ('boo: allow %s: %s?'):format(op.permission or 'permission', op.title or ''),
    format_item = function(c) return labels[c] end,
    kind = 'boo.permission',
  }, function(choice)
    M.asking[op.id] = nil
    -- No choice keeps the request pending (listed by :Boo permissions); never auto-answered.
    if not choice then return end
    require('boo.rpc').notify('permission_reply', { id = op.id, reply = choice })
  end)
end

return M
