--- The input's prompt history (kept per chat by the backend, in the store) and its draft:
--- what is typed but not sent is saved as it changes, so it survives a restart.
local M = {}
local H = {}

--- chat -> {idx, stash}: where <Up>/<Down> is in the history, and the text before it started.
H.nav = {}
--- chat -> timer of the pending draft save.
H.timers = {}

function H.input(chat)
  local view = require('boo.ui.chat').chats[chat]
  return view and vim.api.nvim_buf_is_valid(view.input) and view.input or nil
end

function H.text(buf) return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n') end

function H.set(buf, text)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(text, '\n'))
  local win = vim.fn.bufwinid(buf)
  if win ~= -1 then
    local last = vim.api.nvim_buf_line_count(buf)
    vim.api.nvim_win_set_cursor(win, { last, #vim.api.nvim_buf_get_lines(buf, last - 1, last, false)[1] })
  end
end

function H.load(chat)
  local r = require('boo.rpc').request('history', { chat = chat })
  return type(r) == 'table' and r or { history = {}, draft = '' }
end

--- Moves through the chat's history: `step` -1 older, +1 newer (past the newest: the text
--- typed before).
function M.move(chat, step)
  local buf = H.input(chat)
  if not buf then return end
  local list = H.load(chat).history or {}
  local nav = H.nav[chat]
  if not nav then
    if step > 0 or #list == 0 then return end
    nav = { idx = #list + 1, stash = H.text(buf) }
    H.nav[chat] = nav
  end
  nav.idx = math.max(1, nav.idx + step)
  if nav.idx > #list then
    H.nav[chat] = nil
    H.set(buf, nav.stash)
  else
    H.set(buf, list[nav.idx])
  end
  H.recalled = buf
end

--- After a send, navigation starts again from the newest.
function M.sent(chat)
  H.nav[chat] = nil
  if H.timers[chat] then H.timers[chat]:stop() end
end

function H.save(chat)
  local buf = H.input(chat)
  if buf then require('boo.rpc').notify('draft', { chat = chat, text = H.text(buf) }) end
end

--- Sets up an input buffer: its saved draft comes back, and its changes are saved.
function M.attach(buf, chat)
  local group = vim.api.nvim_create_augroup('boo.history.' .. buf, { clear = true })
  vim.api.nvim_create_autocmd({ 'TextChanged', 'TextChangedI' }, {
    group = group,
    buffer = buf,
    callback = function()
      -- Text recalled from the history is not a draft until edited.
      if H.recalled == buf then
        H.recalled = nil
        return
      end
      H.nav[chat] = nil
      local t = H.timers[chat] or vim.uv.new_timer()
      H.timers[chat] = t
      t:start(500, 0, vim.schedule_wrap(function() H.save(chat) end))
    end,
  })
  vim.api.nvim_create_autocmd('VimLeavePre', {
    group = group,
    callback = function()
      local t = H.timers[chat]
      if t and t:is_active() then
        t:stop()
        H.save(chat)
      end
    end,
  })
  -- After the render batch that made the buffer (a request from inside it would nest).
  vim.schedule(function()
    if not vim.api.nvim_buf_is_valid(buf) or H.text(buf) ~= '' then return end
    local draft = H.load(chat).draft or ''
    if draft ~= '' then
      H.recalled = buf
      vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(draft, '\n'))
    end
  end)
end

--- Keys of the input: <Up>/<Down> on its first/last line in normal mode, <C-p>/<C-n> in insert
--- mode (unless the completion menu is open).
function M.keys(buf, chat)
  local k = require('boo.config').get().keys
  local function map(mode, lhs, fn, desc)
    if lhs and lhs ~= false and lhs ~= '' then
      vim.keymap.set(mode, lhs, fn, { buffer = buf, expr = true, desc = 'boo: ' .. desc })
    end
  end
  local function normal(step, key)
    return function()
      local lnum, last = vim.fn.line('.'), vim.fn.line('$')
      if (step < 0 and lnum > 1) or (step > 0 and lnum < last) then return key end
      vim.schedule(function() M.move(chat, step) end)
      return ''
    end
  end
  local function insert(step, key)
    return function()
      if vim.fn.pumvisible() == 1 then return key end
      vim.schedule(function() M.move(chat, step) end)
      return ''
    end
  end
  map('n', k.history_prev, normal(-1, 'k'), 'older prompt')
  map('n', k.history_next, normal(1, 'j'), 'newer prompt')
  map('i', k.history_prev_insert, insert(-1, vim.keycode('<C-p>')), 'older prompt')
  map('i', k.history_next_insert, insert(1, vim.keycode('<C-n>')), 'newer prompt')
end

return M
