--- Panes: windows showing one chat at a time (the floating chat, or splits), with the pane's
--- tabs in the winbar and the chat's input below. Rust decides which chat a pane shows; this
--- module makes the windows and reports what the user closed.
local chat_ui = require('boo.ui.chat')

local M = {}
local H = {}

---@class boo.PaneView
---@field kind string float|chat|term|code
---@field win integer main window (transcript, terminal or file view)
---@field input_win integer|nil
---@field chat integer|nil
---@field tabs table[]

---@type table<integer, boo.PaneView>
M.panes = {}
H.closing = {} -- panes being closed by us: their WinClosed is not a user action
H.INPUT_HEIGHT = 3

function H.valid(win) return win ~= nil and vim.api.nvim_win_is_valid(win) end

function H.float_geometry()
  local cfg = require('boo.config').get().ui.float
  local cols, lines = vim.o.columns, vim.o.lines - vim.o.cmdheight - 1
  local width = math.max(20, math.floor(cols * cfg.width))
  local height = math.max(8, math.floor(lines * cfg.height))
  local row = math.floor((lines - height) / 2)
  local col = math.floor((cols - width) / 2)
  -- Both floats have borders: 2 rows each.
  local main_h = math.max(3, height - H.INPUT_HEIGHT - 4)
  return {
    main = { relative = 'editor', row = row, col = col, width = width, height = main_h },
    input = { relative = 'editor', row = row + main_h + 2, col = col, width = width, height = H.INPUT_HEIGHT },
  }
end

function H.open_float(view, p)
  local g = H.float_geometry()
  local border = require('boo.config').get().ui.float.border
  local main_cfg = vim.tbl_extend('force', g.main, { border = border, style = 'minimal', zindex = 50 })
  local input_cfg = vim.tbl_extend('force', g.input, {
    border = border,
    style = 'minimal',
    zindex = 50,
    title = ' prompt ',
    title_pos = 'left',
  })
  p.win = vim.api.nvim_open_win(view.buf, false, main_cfg)
  p.input_win = vim.api.nvim_open_win(view.input, true, input_cfg)
end

function H.open_split(view, p, mods)
  vim.cmd((mods or '') .. ' split')
  p.win = vim.api.nvim_get_current_win()
  vim.api.nvim_win_set_buf(p.win, view.buf)
  vim.cmd('belowright ' .. H.INPUT_HEIGHT .. 'split')
  p.input_win = vim.api.nvim_get_current_win()
  vim.api.nvim_win_set_buf(p.input_win, view.input)
  vim.wo[p.input_win].winfixheight = true
end

function H.setup_windows(p)
  chat_ui.setup_window(p.win)
  if H.valid(p.input_win) then
    local wo = vim.wo[p.input_win]
    wo.number, wo.relativenumber, wo.signcolumn, wo.wrap = false, false, 'no', true
    H.plain_highlights(p.input_win)
  end
  H.plain_highlights(p.win)
end

--- A float's `style = 'minimal'` hides the end of the buffer with 'winhighlight' entries (its
--- 'fillchars' blank it too). A window with highlights of its own makes Neovim recompute every
--- window's highlights on each redraw, about 5% of its time while a chat streams.
function H.plain_highlights(win)
  local old = vim.wo[win].winhighlight
  local kept = vim.tbl_filter(function(e) return e ~= 'EndOfBuffer:' end, vim.split(old, ',', { trimempty = true }))
  local new = table.concat(kept, ',')
  if new ~= old then vim.wo[win].winhighlight = new end
end

function H.winbar(p)
  local parts = {}
  for _, t in ipairs(p.tabs or {}) do
    if t.chat then chat_ui.retitle(t.chat, t.title) end
  end
  for i, t in ipairs(p.tabs or {}) do
    local hl = t.active and '%#BooTabActive#' or '%#BooTab#'
    local busy = t.busy and '%#BooTabBusy# ● ' .. hl or ' '
    local title = (t.title or ('chat ' .. i)):gsub('%%', '%%%%')
    table.insert(parts, ('%s%s%d %s '):format(hl, busy, i, title))
  end
  table.insert(parts, "%#BooTabFill# %@v:lua.require'boo.ui.pane'.click_new@[+]%X")
  -- The active chat's agent, model and usage, on the right.
  for _, t in ipairs(p.tabs or {}) do
    if t.active and t.info and t.info ~= '' then
      local hl = t.info:find('⚠', 1, true) and '%#BooTabWarn#' or '%#BooTabInfo#'
      table.insert(parts, '%=' .. hl .. ' ' .. t.info:gsub('%%', '%%%%') .. ' ')
    end
  end
  return table.concat(parts, '%*')
end

--- Mouse click on the winbar's [+]: a new tab in that pane.
function M.click_new() require('boo.rpc').notify('new_chat', { pane = M.current() }) end

--- Shows a pane (creating its windows when needed). `op`: {pane, kind, chat, tabs, mods, focus,
--- cwd (term/code)}.
function M.show(op)
  local p = M.panes[op.pane] or { kind = op.kind }
  M.panes[op.pane] = p
  p.tabs = op.tabs or p.tabs
  p.mods = op.mods or p.mods
  if op.kind == 'term' or op.kind == 'code' then
    if not H.valid(p.win) then H.open_other(p, op) end
    return
  end
  local view = chat_ui.chats[op.chat]
  if not view then return end
  if not (H.valid(p.win) and H.valid(p.input_win)) then
    H.close_windows(op.pane)
    if op.kind == 'float' then
      H.open_float(view, p)
    else
      H.open_split(view, p, op.mods)
    end
    vim.w[p.win].boo_pane = op.pane
    vim.w[p.input_win].boo_pane = op.pane
  else
    vim.api.nvim_win_set_buf(p.win, view.buf)
    vim.api.nvim_win_set_buf(p.input_win, view.input)
  end
  p.chat = op.chat
  H.setup_windows(p)
  vim.wo[p.win].winbar = H.winbar(p)
  -- Start at the end of the transcript, so the stream is followed.
  local count = vim.api.nvim_buf_line_count(view.buf)
  pcall(vim.api.nvim_win_set_cursor, p.win, { count, 0 })
  if op.focus then vim.api.nvim_set_current_win(p.input_win) end
end

function H.open_other(p, op)
  vim.cmd((op.mods or '') .. ' split')
  p.win = vim.api.nvim_get_current_win()
  if op.kind == 'term' then
    local buf = vim.api.nvim_create_buf(true, false)
    vim.api.nvim_win_set_buf(p.win, buf)
    local shell = vim.o.shell
    if vim.fn.has('nvim-0.11') == 1 then
      vim.fn.jobstart({ shell }, { term = true, cwd = op.cwd })
    else
      vim.fn.termopen({ shell }, { cwd = op.cwd })
    end
  else
    vim.cmd.lcd(vim.fn.fnameescape(op.cwd))
    vim.cmd.edit(vim.fn.fnameescape(op.cwd))
  end
  vim.w[p.win].boo_pane = op.pane
end

--- Updates the winbar of a pane without touching its windows.
function M.tabs(op)
  local p = M.panes[op.pane]
  if not p then return end
  p.tabs = op.tabs
  if H.valid(p.win) and p.kind ~= 'term' and p.kind ~= 'code' then vim.wo[p.win].winbar = H.winbar(p) end
end

function H.close_windows(pane)
  local p = M.panes[pane]
  if not p then return end
  H.closing[pane] = true
  for _, win in ipairs({ p.input_win, p.win }) do
    if H.valid(win) then
      -- The last window of the editor cannot close; leave it to the user then.
      if
        #vim.api.nvim_tabpage_list_wins(vim.api.nvim_win_get_tabpage(win)) > 1
        or vim.api.nvim_win_get_config(win).relative ~= ''
      then
        pcall(vim.api.nvim_win_close, win, true)
      end
    end
  end
  H.closing[pane] = nil
end

--- Closes a pane's windows on Rust's request (no report back).
function M.close(op)
  H.close_windows(op.pane)
  M.panes[op.pane] = nil
end

--- Closes a pane's windows on the user's request and tells Rust.
function M.user_close(pane)
  local p = M.panes[pane]
  if not p then return end
  H.close_windows(pane)
  M.panes[pane] = nil
  require('boo.rpc').notify('pane_closed', { pane = pane })
end

--- The pane of the current window (or of the visible float, or any visible pane).
function M.current()
  local pane = vim.w.boo_pane
  if pane and M.panes[pane] then return pane end
  for id, p in pairs(M.panes) do
    if p.kind == 'float' and H.valid(p.win) then return id end
  end
  for id, p in pairs(M.panes) do
    if H.valid(p.win) then return id end
  end
  return nil
end

--- The chat panes on screen, as `restore` takes them: {pane, kind, tabs, active, mods}.
function M.snapshot()
  local out = {}
  for id, p in pairs(M.panes) do
    if (p.kind == 'float' or p.kind == 'chat') and H.valid(p.win) and H.valid(p.input_win) then
      local tabs = {}
      for _, t in ipairs(p.tabs or {}) do
        table.insert(tabs, t.chat)
      end
      if #tabs == 0 and p.chat then tabs = { p.chat } end
      if #tabs > 0 then table.insert(out, { pane = id, kind = p.kind, tabs = tabs, active = p.chat, mods = p.mods }) end
    end
  end
  table.sort(out, function(a, b) return a.pane < b.pane end)
  return out
end

--- The visible float's pane id, if any.
function M.visible_float()
  for id, p in pairs(M.panes) do
    if p.kind == 'float' and H.valid(p.win) then return id end
  end
  return nil
end

function M.chat_of(pane)
  local p = pane and M.panes[pane]
  return p and p.chat
end

function H.on_win_closed(win)
  for id, p in pairs(M.panes) do
    if (p.win == win or p.input_win == win) and not H.closing[id] then
      -- Defer: closing other windows inside WinClosed is not allowed.
      vim.schedule(function() M.user_close(id) end)
      return
    end
  end
end

function H.on_resized()
  for _, p in pairs(M.panes) do
    if p.kind == 'float' and H.valid(p.win) and H.valid(p.input_win) then
      local g = H.float_geometry()
      vim.api.nvim_win_set_config(p.win, g.main)
      vim.api.nvim_win_set_config(p.input_win, g.input)
    end
  end
end

function M.setup()
  local group = vim.api.nvim_create_augroup('boo.pane', { clear = true })
  vim.api.nvim_create_autocmd('WinClosed', {
    group = group,
    callback = function(ev) H.on_win_closed(tonumber(ev.match)) end,
  })
  vim.api.nvim_create_autocmd('VimResized', { group = group, callback = H.on_resized })
end

return M
