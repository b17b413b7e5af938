--- Chat buffers: the transcript (filetype=boo) and its input (filetype=boo_input), their
--- decorations (highlights, folds of reasoning/tool blocks) and following the stream.
local M = {}
local H = {}

M.ns = vim.api.nvim_create_namespace('boo.chat')
M.spin_ns = vim.api.nvim_create_namespace('boo.spinner')

---@class boo.ChatView
---@field buf integer transcript buffer
---@field input integer input buffer
---@field folds {first: integer, last: integer}[] 0-based inclusive, sorted, for foldexpr
---@field title string

---@type table<integer, boo.ChatView> chat id -> view
M.chats = {}
---@type table<integer, integer> transcript or input buffer -> chat id
M.by_buf = {}

--- The buffer with exactly this name (`bufnr()` would also match a longer name).
function H.find(name)
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(b) == name then return b end
  end
  return -1
end

function H.scratch(name, ft)
  local buf = H.find(name)
  if buf == -1 or not vim.api.nvim_buf_is_valid(buf) then
    buf = vim.api.nvim_create_buf(false, true)
    pcall(vim.api.nvim_buf_set_name, buf, name)
  end
  vim.bo[buf].buftype = 'nofile'
  vim.bo[buf].bufhidden = 'hide'
  vim.bo[buf].swapfile = false
  vim.bo[buf].filetype = ft
  return buf
end

--- Ensures the buffers of a chat exist. `op`: {chat, name, title}.
function M.ensure(op)
  local view = M.chats[op.chat]
  if view and vim.api.nvim_buf_is_valid(view.buf) and vim.api.nvim_buf_is_valid(view.input) then
    view.title = op.title or view.title
    return view
  end
  local buf = H.scratch(op.name, 'boo')
  vim.bo[buf].modifiable = false
  local input = H.scratch(op.name .. '/input', 'boo_input')
  view = { buf = buf, input = input, folds = {}, title = op.title or '' }
  M.chats[op.chat] = view
  M.by_buf[buf], M.by_buf[input] = op.chat, op.chat
  -- Markdown highlighting through treesitter where the parser exists (bundled since 0.10).
  pcall(vim.treesitter.start, buf, 'markdown')
  require('boo.ui.keys').chat(buf, op.chat)
  require('boo.ui.keys').input(input, op.chat)
  return view
end

--- Replaces lines [first, last) of a chat's transcript and keeps windows at the end following.
function M.lines(op)
  local view = M.chats[op.chat]
  if not view then return end
  local buf = view.buf
  local old_count = vim.api.nvim_buf_line_count(buf)
  -- Windows whose cursor is on the last line follow the stream; others stay where the user is.
  local followers = {}
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    if vim.api.nvim_win_get_cursor(win)[1] >= old_count then table.insert(followers, win) end
  end
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, op.first, op.last, false, op.lines)
  vim.bo[buf].modifiable = false
  local count = vim.api.nvim_buf_line_count(buf)
  for _, win in ipairs(followers) do
    vim.api.nvim_win_set_cursor(win, { count, 0 })
  end
end

--- Item ranges with kind/status: highlights and folds. `op.items`: {first, last, kind, status}.
--- Sent before the lines they describe, so folds are right when the lines arrive.
function M.decor(op)
  local view = M.chats[op.chat]
  if not view then return end
  local buf = view.buf
  local folds = {}
  vim.api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  local count = vim.api.nvim_buf_line_count(buf)
  local running = {}
  for _, it in ipairs(op.items) do
    local foldable = it.kind == 'reasoning' or it.kind == 'tool' or it.kind == 'permission'
    if foldable and it.last > it.first then table.insert(folds, { first = it.first, last = it.last }) end
    H.highlight(buf, it, count)
    if foldable and (it.status == 'running' or it.status == 'pending' or it.status == 'asked') then
      table.insert(running, it.first)
    end
  end
  view.folds = folds
  H.spinners[buf] = #running > 0 and running or nil
  H.spin()
end

--- A spinner after the header of every running block, driven by one timer while any runs.
H.spinners = {} ---@type table<integer, integer[]> buf -> header rows
H.FRAMES = { '⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏' }
H.frame = 1

function H.draw_spinners()
  H.frame = H.frame % #H.FRAMES + 1
  local any = false
  for buf, rows in pairs(H.spinners) do
    if vim.api.nvim_buf_is_valid(buf) then
      vim.api.nvim_buf_clear_namespace(buf, M.spin_ns, 0, -1)
      local count = vim.api.nvim_buf_line_count(buf)
      for _, row in ipairs(rows) do
        if row < count then
          any = true
          vim.api.nvim_buf_set_extmark(buf, M.spin_ns, row, 0, {
            virt_text = { { ' ' .. H.FRAMES[H.frame], 'BooBlockRunning' } },
            virt_text_pos = 'eol',
          })
        end
      end
    else
      H.spinners[buf] = nil
    end
  end
  return any
end

function H.spin()
  -- Clear spinners of buffers whose blocks finished.
  for _, view in pairs(M.chats) do
    if not H.spinners[view.buf] and vim.api.nvim_buf_is_valid(view.buf) then
      vim.api.nvim_buf_clear_namespace(view.buf, M.spin_ns, 0, -1)
    end
  end
  if next(H.spinners) == nil then
    if H.timer then H.timer:stop() end
    return
  end
  if not H.timer then H.timer = vim.uv.new_timer() end
  if H.timer:is_active() then return end
  H.timer:start(0, 100, vim.schedule_wrap(function()
    if not H.draw_spinners() and H.timer then H.timer:stop() end
  end))
end

H.item_hl = { user = 'BooUser', error = 'BooError', info = 'BooInfo', reasoning = 'BooReasoning' }
H.status_hl = {
  pending = 'BooBlockRunning',
  running = 'BooBlockRunning',
  asked = 'BooPermission',
  completed = 'BooBlockDone',
  done = 'BooBlockDone',
  once = 'BooBlockDone',
  always = 'BooBlockDone',
  error = 'BooBlockFailed',
  failed = 'BooBlockFailed',
  reject = 'BooBlockFailed',
  queued = 'BooQueued',
}

function H.highlight(buf, it, count)
  -- Ranges may describe lines that arrive in the same batch: clamp to what exists now.
  if it.first >= count then return end
  local last = math.min(it.last, count - 1)
  local header = it.kind == 'tool' or it.kind == 'permission' or it.kind == 'reasoning'
  if header then
    local hl = H.status_hl[it.status or ''] or 'BooBlockHeader'
    vim.api.nvim_buf_set_extmark(buf, M.ns, it.first, 0, { line_hl_group = hl, priority = 200 })
  end
  if it.kind == 'user' and it.status and it.status ~= '' then
    vim.api.nvim_buf_set_extmark(buf, M.ns, it.first, 0, {
      virt_text = { { '  ' .. it.status, it.status == 'queued' and 'BooQueued' or 'BooInfo' } },
      virt_text_pos = 'eol',
    })
  end
  local hl = (it.status == 'queued' and 'BooQueued') or H.item_hl[it.kind]
  if hl then
    local from = header and it.first + 1 or it.first
    if from <= last then
      vim.api.nvim_buf_set_extmark(buf, M.ns, from, 0, { end_row = last, end_col = 0, hl_group = hl, hl_eol = true, priority = 150, strict = false })
    end
  end
end

--- foldexpr of transcript windows: a block's header starts a fold, its body is inside it.
function M.foldexpr(lnum)
  local chat = M.by_buf[vim.api.nvim_get_current_buf()]
  local view = chat and M.chats[chat]
  if not view then return '0' end
  local row = (lnum or vim.v.lnum) - 1
  local folds = view.folds
  local lo, hi = 1, #folds
  while lo <= hi do
    local mid = math.floor((lo + hi) / 2)
    local f = folds[mid]
    if row < f.first then
      hi = mid - 1
    elseif row > f.last then
      lo = mid + 1
    else
      return row == f.first and '>1' or '1'
    end
  end
  return '0'
end

--- Window options of a window showing a transcript.
function M.setup_window(win)
  local wo = vim.wo[win]
  wo.wrap, wo.linebreak = true, true
  wo.number, wo.relativenumber, wo.signcolumn = false, false, 'no'
  wo.foldmethod = 'expr'
  wo.foldexpr = "v:lua.require'boo.ui.chat'.foldexpr()"
  wo.foldlevel = 0
  wo.foldtext = ''
  wo.fillchars = 'fold: ,eob: '
  -- Not 2: with the treesitter markdown highlighter, concealing makes every change of the
  -- buffer cost time in proportion to its size (measured on 0.11: 0.6 s for 2,000 lines).
  wo.conceallevel = 0
  wo.cursorline = false
end

function M.clear_input(chat)
  local view = M.chats[chat]
  if view and vim.api.nvim_buf_is_valid(view.input) then
    vim.api.nvim_buf_set_lines(view.input, 0, -1, false, {})
  end
end

function M.input_text(chat)
  local view = M.chats[chat]
  if not view then return '' end
  return vim.trim(table.concat(vim.api.nvim_buf_get_lines(view.input, 0, -1, false), '\n'))
end

return M
