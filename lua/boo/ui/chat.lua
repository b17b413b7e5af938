--- Chat buffers: the transcript (filetype=boo) and its input (filetype=boo_input), their
--- decorations (highlights, folds of reasoning/tool blocks) and following the stream.
local M = {}
local H = {}

M.ns = vim.api.nvim_create_namespace('boo.chat')
M.spin_ns = vim.api.nvim_create_namespace('boo.spinner')
M.md_ns = vim.api.nvim_create_namespace('boo.markdown')

---@class boo.ChatView
---@field buf integer transcript buffer
---@field input integer input buffer
---@field items table<integer, table> seq -> {first, last, kind, status} as last decorated
---@field marks table<integer, integer[]> seq -> extmark ids of its decorations
---@field title string

---@type table<integer, boo.ChatView> chat id -> view
M.chats = {}
---@type table<integer, integer> transcript or input buffer -> chat id
M.by_buf = {}

--- The buffer with this id (`b:boo_id`, the backend's `boo://{session}/{chat}`).
function H.find(id)
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.b[b].boo_id == id then return b end
  end
  return -1
end

--- What tablines and `:ls` show: the chat's title and id (`boo://Fake title #3`, and
--- `... #3 prompt` for its input), not the backend's `boo://1/3/input`. The scheme keeps
--- Neovim from taking the name for a file in the cwd.
function H.display(title, chat, input)
  local t = (title and title ~= '') and title:gsub('/', '∕') or ('chat ' .. chat)
  return ('boo://%s #%d%s'):format(t, chat, input and ' prompt' or '')
end

function H.set_name(buf, name)
  if vim.api.nvim_buf_get_name(buf) ~= name then pcall(vim.api.nvim_buf_set_name, buf, name) end
end

function H.scratch(id, ft, display)
  local buf = H.find(id)
  if buf == -1 or not vim.api.nvim_buf_is_valid(buf) then
    buf = vim.api.nvim_create_buf(false, true)
    vim.b[buf].boo_id = id
  end
  H.set_name(buf, display)
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
    M.retitle(op.chat, op.title or view.title)
    return view
  end
  local buf = H.scratch(op.name, 'boo', H.display(op.title, op.chat, false))
  vim.bo[buf].modifiable = false
  -- Nobody undoes a transcript; undo entries would be saved for every streamed frame.
  vim.bo[buf].undolevels = -1
  local input = H.scratch(op.name .. '/input', 'boo_input', H.display(op.title, op.chat, true))
  local boo_md = require('boo.config').get().ui.markdown == 'boo'
  view = {
    buf = buf,
    input = input,
    items = {},
    n = 0,
    marks = {},
    md = {},
    running = {},
    boo_md = boo_md,
    title = op.title or '',
    named = op.title,
  }
  M.chats[op.chat] = view
  M.by_buf[buf], M.by_buf[input] = op.chat, op.chat
  -- Markdown comes from the backend per changed line (`hl` ops). The treesitter highlighter
  -- re-parses the whole buffer on every change; it is only for users of markdown renderers.
  if not boo_md then
    vim.treesitter.language.register('markdown', 'boo')
    pcall(vim.treesitter.start, buf, 'markdown')
  end
  require('boo.ui.keys').chat(buf, op.chat)
  require('boo.ui.keys').input(input, op.chat)
  require('boo.ui.welcome').update(buf)
  return view
end

--- A chat got a new title: its buffers' names follow.
function M.retitle(chat, title)
  local view = M.chats[chat]
  if not view or not title or view.named == title then return end
  view.title, view.named = title, title
  if vim.api.nvim_buf_is_valid(view.buf) then H.set_name(view.buf, H.display(title, chat, false)) end
  if vim.api.nvim_buf_is_valid(view.input) then H.set_name(view.input, H.display(title, chat, true)) end
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
  local last = op.last < 0 and old_count + op.last + 1 or op.last
  require('boo.ui.renderers').check_length(buf, old_count - (last - op.first) + #op.lines)
  local set_opt, o = vim.api.nvim_set_option_value, { buf = buf }
  set_opt('modifiable', true, o)
  if op.keep then
    -- Line `first` keeps its first `keep` bytes: only the new text of a growing line is set,
    -- in one call (each costs Neovim a botline update of the windows that follow).
    vim.api.nvim_buf_set_text(buf, op.first, op.keep, math.max(last - 1, op.first), -1, op.lines)
  else
    vim.api.nvim_buf_set_lines(buf, op.first, op.last, false, op.lines)
  end
  set_opt('modifiable', false, o)
  -- What this batch changed from (see `M.hl`).
  local batch = H.batch()
  if view.changed_batch ~= batch or op.first < view.changed_from then
    view.changed_batch, view.changed_from = batch, op.first
  end
  local count = vim.api.nvim_buf_line_count(buf)
  -- The welcome shows only in an empty chat: nothing to check on a streaming frame.
  if count <= 1 or old_count <= 1 then require('boo.ui.welcome').update(buf) end
  -- A cursor on the last line usually moved down with the new lines already; setting it again
  -- would cost Neovim another pass over the window's wrapped lines.
  for _, win in ipairs(followers) do
    if vim.api.nvim_win_get_cursor(win)[1] ~= count then vim.api.nvim_win_set_cursor(win, { count, 0 }) end
  end
end

--- Markdown of one item from its row `from` on: `op` {seq, from, spans = {{row, col, end_col,
--- group}}, code = {{first, last, lang}}}, rows relative to the item. Kept, not drawn: the
--- decoration provider draws what is on screen, so a long transcript costs nothing off screen.
function M.hl(op)
  local view = M.chats[op.chat]
  if not view or not view.boo_md then return end
  local md = view.md[op.seq]
  if not md then
    md = { rows = {}, code = {}, n = 0 }
    view.md[op.seq] = md
  end
  -- Only the rows from `from` on are replaced: a growing answer costs its tail, not its length.
  local rows, from = md.rows, op.from
  for r = from, md.n do
    rows[r] = nil
  end
  md.n = from - 1
  -- A block is sent again when its closing fence is rescanned.
  for first, c in pairs(md.code) do
    if c.last + 1 >= from then md.code[first] = nil end
  end
  for _, s in ipairs(op.spans) do
    local row = rows[s[1]]
    if not row then
      row = {}
      rows[s[1]] = row
      if s[1] > md.n then md.n = s[1] end
    end
    row[#row + 1] = s
  end
  for _, c in ipairs(op.code) do
    md.code[c[1]] = { last = c[2], lang = c[3] }
  end
  -- Markdown sent after its lines (a long transcript's, frames later): mark those rows for the
  -- next redraw. Rows at or below a change of this batch are redrawn anyway.
  local it = view.items[op.seq]
  if it and vim.api.nvim_buf_is_valid(view.buf) then
    local first = it.first + from
    local last = math.min(it.last + 1, vim.api.nvim_buf_line_count(view.buf))
    if view.changed_batch == H.batch() then last = math.min(last, view.changed_from) end
    if first < last then vim.api.nvim__redraw({ buf = view.buf, range = { first, last }, flush = false }) end
  end
end

--- The number of the render batch being applied.
function H.batch() return require('boo.ui.render').stats.batches end

--- The item of a buffer row (binary search over item starts; empty items share the start of
--- the next one, which wins).
function H.item_at(view, row)
  local items, lo, hi = view.items, 0, view.n - 1
  local found
  while lo <= hi do
    local mid = math.floor((lo + hi) / 2)
    local it = items[mid]
    if not it then return nil end
    if it.first <= row then
      found, lo = mid, mid + 1
    else
      hi = mid - 1
    end
  end
  return found
end

--- The chat shown in the current window and the transcript item under its cursor, if any.
function M.cursor_item()
  local buf = vim.api.nvim_get_current_buf()
  local chat = M.by_buf[buf]
  local view = chat and M.chats[chat]
  if not view then return nil, nil end
  if view.buf ~= buf then return chat, nil end
  return chat, H.item_at(view, vim.api.nvim_win_get_cursor(0)[1] - 1)
end

--- The marks drawn on a buffer row: `{col, end_col, group, priority}`, end_col -1 for the end of
--- the line. Fenced blocks are parsed by their language's parser the first time they are drawn.
function M.row_marks(view, buf, row)
  local seq = H.item_at(view, row)
  local md = seq and view.md[seq]
  if not md then return {} end
  local rel = row - view.items[seq].first
  local out = {}
  local text
  for _, s in ipairs(md.rows[rel] or {}) do
    out[#out + 1] = { s[2], s[3], s[4], 120 }
    -- Markup to conceal, derived from the span (the backend sends no more for it).
    local w = H.markup_width[s[4]]
    if s[4] == 'BooMdCodeSpan' or s[4] == 'BooMdHeading' then
      text = text or vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''
      if s[4] == 'BooMdCodeSpan' then
        w = #(text:match('^`+', s[2] + 1) or '')
      else
        local lead, hashes = text:match('^( *)(#+)')
        if hashes then out[#out + 1] = { #lead, math.min(#lead + #hashes + 1, #text), 'conceal', 130 } end
      end
    end
    if w and w > 0 and s[3] - s[2] > 2 * w then
      out[#out + 1] = { s[2], s[2] + w, 'conceal', 130 }
      out[#out + 1] = { s[3] - w, s[3], 'conceal', 130 }
    end
  end
  for first, c in pairs(md.code) do
    if rel >= first and rel <= c.last then
      if not c.rows then c.rows = H.code(buf, view.items[seq].first + first, view.items[seq].first + c.last, c.lang) end
      for _, m in ipairs(c.rows[rel - first] or {}) do
        out[#out + 1] = m
      end
    end
  end
  return out
end

--- Delimiter widths of the emphasis spans (code spans and headings are measured on the text).
H.markup_width = { BooMdStrong = 2, BooMdEmphasis = 1 }

--- Highlights of a closed fenced block by its language's parser on the block's own text, per
--- row of the block (multi-line captures are cut at line ends).
function H.code(buf, first, last, lang)
  local rows = {}
  local ts = vim.treesitter
  lang = ts.language.get_lang(lang) or lang
  if not pcall(ts.language.add, lang) then return rows end
  local text = table.concat(vim.api.nvim_buf_get_lines(buf, first, last + 1, false), '\n')
  local ok, parser = pcall(ts.get_string_parser, text, lang)
  local query = ok and ts.query.get(lang, 'highlights')
  if not query then return rows end
  local tree = parser:parse()[1]
  for id, node in query:iter_captures(tree:root(), text) do
    local name = query.captures[id]
    if name ~= 'spell' and name ~= 'nospell' and name:sub(1, 1) ~= '_' then
      local sr, sc, er, ec = node:range()
      local group = '@' .. name .. '.' .. lang
      for r = sr, er do
        local row = rows[r] or {}
        rows[r] = row
        row[#row + 1] = { r == sr and sc or 0, r == er and ec or -1, group, 110 }
      end
    end
  end
  return rows
end

--- Draws markdown on the rows Neovim redraws (ephemeral marks: nothing is stored in the buffer).
H.draw_view = nil
vim.api.nvim_set_decoration_provider(M.md_ns, {
  on_win = function(_, _, buf)
    local chat = M.by_buf[buf]
    local view = chat and M.chats[chat]
    if not view or view.buf ~= buf or not view.boo_md then return false end
    H.draw_view = view
  end,
  on_line = function(_, _, buf, row)
    local view = H.draw_view
    if not view then return end
    for _, m in ipairs(M.row_marks(view, buf, row)) do
      local opts = { priority = m[4], ephemeral = true, end_col = m[2] }
      if m[3] == 'conceal' then
        opts.conceal = ''
      else
        opts.hl_group = m[3]
      end
      if m[2] < 0 then
        opts.end_col, opts.end_row = 0, row + 1
      end
      pcall(vim.api.nvim_buf_set_extmark, buf, M.md_ns, row, m[1], opts)
    end
  end,
})

H.foldable = { reasoning = true, tool = true, permission = true }

--- Decorations of the items that changed: `op.items` {seq, first, last, kind, status, undone}.
--- Each item's own marks and fold are replaced; nothing else is touched. An item of an undone
--- turn is dimmed and folded shut; redone, it opens again.
function M.decor(op)
  local view = M.chats[op.chat]
  if not view then return end
  local buf = view.buf
  local count = vim.api.nvim_buf_line_count(buf)
  local wins = vim.fn.win_findbuf(buf)
  for _, it in ipairs(op.items) do
    for _, id in ipairs(view.marks[it.seq] or {}) do
      vim.api.nvim_buf_del_extmark(buf, M.ns, id)
    end
    view.marks[it.seq] = H.highlight(buf, it, count)
    local old = view.items[it.seq]
    view.items[it.seq] = it
    if it.seq >= view.n then view.n = it.seq + 1 end
    local st = it.status
    view.running[it.seq] = H.foldable[it.kind] and (st == 'running' or st == 'pending' or st == 'asked') and it.first
      or nil
    local moved = not (old and old.first == it.first and old.last == it.last)
    local undo_changed = (old and old.undone or false) ~= (it.undone or false)
    if (H.foldable[it.kind] or it.undone) and (moved or undo_changed) then
      for _, win in ipairs(wins) do
        H.fold(win, it, undo_changed)
      end
    elseif undo_changed then
      for _, win in ipairs(wins) do
        H.unfold(win, it)
      end
    end
  end
  local running = {}
  for _, first in pairs(view.running) do
    running[#running + 1] = first
  end
  H.spinners[buf] = #running > 0 and running or nil
  H.spin()
end

--- (Re)creates the manual fold of one block in a window, keeping it open if the user opened it.
--- When the block's undone state just changed, an undone block is closed and a redone one opened.
function H.fold(win, it, undo_changed)
  if vim.wo[win].foldmethod ~= 'manual' then return end
  vim.api.nvim_win_call(win, function()
    local view = vim.fn.winsaveview()
    local row = it.first + 1
    local was_open = vim.fn.foldlevel(row) > 0 and vim.fn.foldclosed(row) == -1
    if undo_changed then was_open = not it.undone end
    if vim.fn.foldlevel(row) > 0 then
      vim.api.nvim_win_set_cursor(win, { row, 0 })
      pcall(vim.cmd, 'normal! zD')
    end
    if it.last > it.first and it.last < vim.api.nvim_buf_line_count(0) then
      vim.cmd(('%d,%dfold'):format(row, it.last + 1))
      if was_open then vim.cmd(('%dfoldopen'):format(row)) end
    end
    vim.fn.winrestview(view)
  end)
end

--- Removes the fold an undone item had (items that are not blocks have none otherwise).
function H.unfold(win, it)
  if vim.wo[win].foldmethod ~= 'manual' then return end
  vim.api.nvim_win_call(win, function()
    local view = vim.fn.winsaveview()
    local row = it.first + 1
    if row <= vim.api.nvim_buf_line_count(0) and vim.fn.foldlevel(row) > 0 then
      vim.api.nvim_win_set_cursor(win, { row, 0 })
      pcall(vim.cmd, 'normal! zD')
    end
    vim.fn.winrestview(view)
  end)
end

--- A spinner after the header of every running block, driven by one timer while any runs.
H.spinners = {} ---@type table<integer, integer[]> buf -> header rows
H.spun = {} ---@type table<integer, table<integer, integer>> buf -> row -> spinner mark id
H.FRAMES = { '⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏' }
H.frame = 1

function H.draw_spinners()
  H.frame = H.frame % #H.FRAMES + 1
  local any = false
  for buf, rows in pairs(H.spinners) do
    if vim.api.nvim_buf_is_valid(buf) then
      -- Each spinner's mark is moved in place (a clear would walk every mark of the buffer).
      local ids = H.spun[buf] or {}
      H.spun[buf] = ids
      for row, id in pairs(ids) do
        if not vim.tbl_contains(rows, row) then
          vim.api.nvim_buf_del_extmark(buf, M.spin_ns, id)
          ids[row] = nil
        end
      end
      local count = vim.api.nvim_buf_line_count(buf)
      for _, row in ipairs(rows) do
        if row < count then
          any = true
          ids[row] = vim.api.nvim_buf_set_extmark(buf, M.spin_ns, row, 0, {
            id = ids[row],
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
  -- Clear spinners of buffers whose blocks finished (clearing walks every mark of the buffer,
  -- so only buffers that have spinners drawn).
  for buf in pairs(H.spun) do
    if not H.spinners[buf] then
      if vim.api.nvim_buf_is_valid(buf) then vim.api.nvim_buf_clear_namespace(buf, M.spin_ns, 0, -1) end
      H.spun[buf] = nil
    end
  end
  if next(H.spinners) == nil then
    if H.timer then H.timer:stop() end
    return
  end
  if not H.timer then H.timer = vim.uv.new_timer() end
  if H.timer:is_active() then return end
  H.timer:start(
    0,
    100,
    vim.schedule_wrap(function()
      if not H.draw_spinners() and H.timer then H.timer:stop() end
    end)
  )
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

--- An item's own marks; returns their ids.
function H.highlight(buf, it, count)
  local ids = {}
  local function mark(row, opts) table.insert(ids, vim.api.nvim_buf_set_extmark(buf, M.ns, row, 0, opts)) end
  if it.first >= count then return ids end
  local last = math.min(it.last, count - 1)
  local header = it.kind == 'tool' or it.kind == 'permission' or it.kind == 'reasoning'
  if header then
    local hl = H.status_hl[it.status or ''] or 'BooBlockHeader'
    mark(it.first, { line_hl_group = hl, priority = 200 })
  end
  if it.kind == 'user' and it.status and it.status ~= '' then
    mark(it.first, {
      virt_text = { { '  ' .. it.status, it.status == 'queued' and 'BooQueued' or 'BooInfo' } },
      virt_text_pos = 'eol',
    })
  end
  if it.undone then
    -- Dimmed whole, above every other highlight of the item.
    mark(
      it.first,
      { end_row = last, end_col = 0, hl_group = 'BooUndone', hl_eol = true, priority = 250, strict = false }
    )
    mark(it.first, { virt_text = { { '  (undone)', 'BooUndone' } }, virt_text_pos = 'eol' })
    return ids
  end
  local hl = (it.status == 'queued' and 'BooQueued') or H.item_hl[it.kind]
  if hl then
    local from = header and it.first + 1 or it.first
    if from <= last then
      mark(from, { end_row = last, end_col = 0, hl_group = hl, hl_eol = true, priority = 150, strict = false })
    end
  end
  return ids
end

--- Window options of a window showing a transcript.
function M.setup_window(win)
  local wo = vim.wo[win]
  wo.wrap, wo.linebreak = true, true
  wo.number, wo.relativenumber, wo.signcolumn = false, false, 'no'
  -- Manual folds, one per block, made when a block appears or grows (no foldexpr per line).
  wo.foldmethod = 'manual'
  wo.foldlevel = 0
  wo.foldtext = ''
  wo.fillchars = 'fold: ,eob: '
  wo.cursorline = false
  local chat = M.by_buf[vim.api.nvim_win_get_buf(win)]
  local view = chat and M.chats[chat]
  -- boo's own marks conceal markup on the rows drawn only. Not with the treesitter highlighter:
  -- there concealing makes every change cost time in proportion to the buffer (0.6 s for 2,000
  -- lines on 0.11); render-markdown.nvim and markview.nvim set it themselves.
  local conceal = view and view.boo_md and require('boo.config').get().ui.conceal
  wo.conceallevel = conceal and 2 or 0
  wo.concealcursor = ''
  if view then
    vim.api.nvim_win_call(win, function() vim.cmd('normal! zE') end)
    for _, it in pairs(view.items) do
      if H.foldable[it.kind] or it.undone then H.fold(win, it, it.undone) end
    end
  end
end

function M.clear_input(chat)
  local view = M.chats[chat]
  if view and vim.api.nvim_buf_is_valid(view.input) then vim.api.nvim_buf_set_lines(view.input, 0, -1, false, {}) end
end

function M.input_text(chat)
  local view = M.chats[chat]
  if not view then return '' end
  return vim.trim(table.concat(vim.api.nvim_buf_get_lines(view.input, 0, -1, false), '\n'))
end

return M
