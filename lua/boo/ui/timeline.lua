--- `:Boo timeline`: a chat's turns, newest last: number, local time, diffstat and prompt.
--- `<CR>` shows the turn's own diff, `u` undoes back to it (that turn and every later one),
--- `f` forks a new chat there, `r` refreshes, `q` closes.
local M = {}
local H = {}

function M.request(chat) require('boo')._action('timeline', { chat = chat, pane = require('boo.ui.pane').current() }) end

--- The turn of the cursor's line, or nil (with a hint).
function H.turn_here(buf)
  local turns = vim.b[buf].boo_turns or {}
  local t = turns[vim.api.nvim_win_get_cursor(0)[1]]
  if not t or t == 0 then
    require('boo.util').notify('put the cursor on a turn', vim.log.levels.WARN)
    return nil
  end
  return t
end

function H.keys(buf)
  local function map(lhs, desc, fn)
    vim.keymap.set('n', lhs, fn, { buffer = buf, desc = 'boo: ' .. desc, nowait = true })
  end
  local function chat() return vim.b[buf].boo_chat end
  map('<CR>', "show the turn's diff", function()
    local t = H.turn_here(buf)
    if t then require('boo')._action('turn_diff', { chat = chat(), turn = t }) end
  end)
  map('u', 'undo back to this turn', function()
    local t = H.turn_here(buf)
    if not t then return end
    require('boo')._action('undo_to', { chat = chat(), turn = t })
    M.request(chat())
  end)
  map('f', 'fork a new chat at this turn', function()
    local t = H.turn_here(buf)
    if t then require('boo')._action('fork', { chat = chat(), turn = t }) end
  end)
  map('r', 'refresh the timeline', function() M.request(chat()) end)
  map('q', 'close', '<cmd>close<cr>')
end

--- One line per turn.
function H.line(t)
  local when = t.at_ms > 0 and os.date('%Y-%m-%d %H:%M', math.floor(t.at_ms / 1000)) or '-'
  local stat = t.checkpointed and ('%d file(s) +%d -%d'):format(t.files, t.additions, t.deletions) or 'no checkpoint'
  local state = t.state ~= 'done' and ('  (' .. t.state .. ')') or ''
  local prompt = vim.trim((t.prompt or ''):gsub('%s+', ' '))
  return ('#%-3d %s  %-22s %s%s'):format(t.turn, when, stat, prompt, state)
end

--- `op`: {chat, title, turns}. One buffer per chat, reused (and its window, when shown).
function M.show(op)
  local name = ('boo://timeline/%d'):format(op.chat)
  local buf = vim.fn.bufnr(name)
  if buf == -1 or not vim.api.nvim_buf_is_valid(buf) then
    buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, name)
    vim.bo[buf].filetype = 'boo-timeline'
    H.keys(buf)
  end
  local lines = { ('Turns of %s   <CR> diff  u undo back to it  f fork  r refresh  q close'):format(op.title) }
  local turns = { 0 }
  for _, t in ipairs(op.turns or {}) do
    lines[#lines + 1] = H.line(t)
    turns[#turns + 1] = t.turn
  end
  if #lines == 1 then lines[2] = 'No turns yet.' end
  vim.b[buf].boo_chat, vim.b[buf].boo_turns = op.chat, turns
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable, vim.bo[buf].modified = false, false
  vim.api.nvim_buf_clear_namespace(buf, H.ns, 0, -1)
  vim.api.nvim_buf_set_extmark(buf, H.ns, 0, 0, { end_row = 1, hl_group = 'BooInfo', hl_eol = true })
  for i, t in ipairs(op.turns or {}) do
    if t.state ~= 'done' then
      vim.api.nvim_buf_set_extmark(buf, H.ns, i, 0, { end_row = i + 1, hl_group = 'BooUndone', hl_eol = true })
    end
  end
  require('boo.util').show_in_split(buf)
end

H.ns = vim.api.nvim_create_namespace('boo.timeline')

return M
