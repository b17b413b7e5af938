--- `:Boo arena`: the picker of contestants and the arena view. The view's lines come from
--- Rust (`ui/arena.rs`); here they are put in a buffer, with keys on each contestant:
--- `<CR>` its transcript, `d` its diff, `c` run the check, `o` the check's output, `w` winner,
--- `r` refresh, `q` close.
local util = require('boo.util')

local M = {}
local H = {}

H.ns = vim.api.nvim_create_namespace('boo.arena')

--- Starts an arena: with `contestants` (a list of 'agent' or 'agent:provider/model'), or the
--- saved set; asks for the prompt when there is none.
function M.start(prompt, contestants)
  local function go(p)
    if not p or vim.trim(p) == '' then return end
    require('boo')._action('arena', { prompt = p, contestants = contestants })
  end
  if prompt and vim.trim(prompt) ~= '' then return go(prompt) end
  vim.ui.input({ prompt = 'boo arena prompt: ' }, go)
end

--- The candidates: the saved set, then opencode's models and the other agents of the probe.
function H.candidates(p)
  local out, seen = {}, {}
  local function add(c)
    if not seen[c] then
      seen[c] = true
      out[#out + 1] = c
    end
  end
  for _, c in ipairs(require('boo.config').get().arena.contestants or {}) do
    add(c)
  end
  for _, m in ipairs(p.models or {}) do
    add('opencode:' .. m)
  end
  for _, a in ipairs(p.agents or {}) do
    if a ~= 'opencode' then add(a) end
  end
  return out
end

--- `:Boo arena [{prompt}]`: a saved set and a prompt start at once; otherwise contestants are
--- picked one by one (the same one may be picked twice) until "start".
function M.command(prompt)
  local saved = require('boo.config').get().arena.contestants or {}
  if #saved > 0 and prompt and vim.trim(prompt) ~= '' then return M.start(prompt, nil) end
  require('boo.ui.picker').when_ready(function(p)
    local candidates = H.candidates(p)
    if #candidates == 0 then
      return util.notify('no agents or models found; see :checkhealth boo', vim.log.levels.WARN)
    end
    local chosen = {}
    local function pick()
      local items = { ('start (%d chosen: %s)'):format(#chosen, table.concat(chosen, ', ')) }
      vim.list_extend(items, candidates)
      vim.ui.select(items, { prompt = 'boo: arena contestants', kind = 'boo.arena' }, function(choice, idx)
        if not choice then return end
        if idx == 1 then
          if #chosen == 0 then return util.notify('pick at least one contestant', vim.log.levels.WARN) end
          return M.start(prompt, chosen)
        end
        chosen[#chosen + 1] = choice
        vim.schedule(pick)
      end)
    end
    pick()
  end)
end

--- The contestant (1-based) of the cursor's line, or nil with a hint.
function H.here(buf)
  local rows = vim.b[buf].boo_rows or {}
  local i = rows[vim.api.nvim_win_get_cursor(0)[1]]
  if not i or i == 0 then
    util.notify('put the cursor on a contestant', vim.log.levels.WARN)
    return nil
  end
  return i
end

function H.keys(buf)
  local function map(lhs, desc, action)
    vim.keymap.set('n', lhs, function()
      local i = action == 'refresh' and 0 or H.here(buf)
      if i then require('boo')._action('arena_action', { arena = vim.b[buf].boo_arena, index = i, action = action }) end
    end, { buffer = buf, desc = 'boo: ' .. desc, nowait = true })
  end
  map('<CR>', "open the contestant's transcript", 'open')
  map('d', "review the contestant's diff", 'diff')
  map('c', 'run the check in its worktree', 'check')
  map('o', "the check's whole output", 'output')
  map('w', 'pick the winner', 'win')
  map('r', 'refresh', 'refresh')
  vim.keymap.set('n', 'q', '<cmd>close<cr>', { buffer = buf, desc = 'boo: close', nowait = true })
end

H.check_hl = { pass = 'DiagnosticOk', fail = 'DiagnosticError', running = 'DiagnosticWarn' }
H.status_hl = { queued = 'BooQueued', running = 'BooBlockRunning', done = 'BooBlockDone', failed = 'BooBlockFailed' }

--- `op`: {arena, header, rows = {line, status, check?, tail}, open}. One buffer per arena;
--- shown when `open`, else redrawn only while it is shown.
function M.show(op)
  local name = ('boo://arena/%d'):format(op.arena)
  local buf = vim.fn.bufnr('^' .. name .. '$') -- exact: arena 1 is not arena 12
  if buf == -1 or not vim.api.nvim_buf_is_valid(buf) then
    buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, name)
    vim.bo[buf].filetype = 'boo-arena'
    vim.bo[buf].bufhidden = 'hide'
    H.keys(buf)
  end
  local lines, rows, marks = {}, {}, {}
  for _, h in ipairs(op.header or {}) do
    lines[#lines + 1], rows[#rows + 1] = h, 0
  end
  for i, r in ipairs(op.rows or {}) do
    lines[#lines + 1], rows[#rows + 1] = r.line, i
    marks[#marks + 1] = { #lines - 1, r }
    for _, t in ipairs(r.tail or {}) do
      lines[#lines + 1], rows[#rows + 1] = t, i
    end
  end
  vim.b[buf].boo_arena, vim.b[buf].boo_rows = op.arena, rows
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable, vim.bo[buf].modified = false, false
  vim.api.nvim_buf_clear_namespace(buf, H.ns, 0, -1)
  for i = 0, #(op.header or {}) - 1 do
    vim.api.nvim_buf_set_extmark(buf, H.ns, i, 0, { end_row = i + 1, hl_group = 'BooInfo', hl_eol = true })
  end
  for _, m in ipairs(marks) do
    local row, r = m[1], m[2]
    local line = lines[row + 1]
    local s, e = line:find(r.status, 1, true)
    if s and H.status_hl[r.status] then
      vim.api.nvim_buf_set_extmark(buf, H.ns, row, s - 1, { end_col = e, hl_group = H.status_hl[r.status] })
    end
    local cs = line:find('check ', 1, true)
    if cs and r.check and H.check_hl[r.check] then
      vim.api.nvim_buf_set_extmark(buf, H.ns, row, cs - 1, { end_col = #line, hl_group = H.check_hl[r.check] })
    end
  end
  if op.open then util.show_in_split(buf) end
end

return M
