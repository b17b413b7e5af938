--- Report buffers the backend fills (`:Boo usage`): read-only, `q` closes, `r` refreshes.
local M = {}

--- The user's local midnight in unix seconds, for the report's "Today".
function M.today()
  local t = os.date('*t')
  return os.time({ year = t.year, month = t.month, day = t.day, hour = 0 })
end

function M.request() require('boo')._action('usage', { today = M.today() }) end

--- `op`: {name, lines, filetype?} (a turn's diff is a report with filetype `diff`). Reuses the buffer (and its window, when shown).
function M.show(op)
  local buf = vim.fn.bufnr(op.name)
  if buf == -1 or not vim.api.nvim_buf_is_valid(buf) then
    buf = vim.api.nvim_create_buf(true, true)
    vim.api.nvim_buf_set_name(buf, op.name)
    vim.bo[buf].filetype = op.filetype or 'boo-usage'
    vim.keymap.set('n', 'q', '<cmd>close<cr>', { buffer = buf, desc = 'boo: close' })
    if not op.filetype then vim.keymap.set('n', 'r', M.request, { buffer = buf, desc = 'boo: refresh the report' }) end
  end
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, op.lines or {})
  vim.bo[buf].modifiable, vim.bo[buf].modified = false, false
  require('boo.util').show_in_split(buf)
end

return M
