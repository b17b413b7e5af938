--- The review view `boo://review/{session}`: a file list and the hunks of the session's pending
--- changes, diff-highlighted, with keys to accept/reject a hunk or a file. Rust sends the data
--- (`review` op) and decides what changed; this module builds the text model and the keys.
local util = require('boo.util')

local M = {}
local H = {}

M.ns = vim.api.nvim_create_namespace('boo.review')

--- Highlight groups (`default = true`: colorschemes and users can override them).
M.groups = {
  BooDiffAdd = 'DiffAdd',
  BooDiffDelete = 'DiffDelete',
  BooDiffHunk = 'Special',
  BooDiffFile = 'Title',
  BooDiffStatus = 'Identifier',
  BooDiffAdded = 'Added',
  BooDiffRemoved = 'Removed',
  BooReviewHint = 'Comment',
  BooReviewConflict = 'DiagnosticWarn',
}

---@class boo.ReviewView
---@field buf integer
---@field data table the last `review` op
---@field model table the text model of `H.build` (lines, highlights, targets per line)
---@field hunk_lines integer[] first line of every hunk, ascending

---@type table<integer, boo.ReviewView> session -> view
M.views = {}

function H.hl_apply()
  for name, link in pairs(M.groups) do
    vim.api.nvim_set_hl(0, name, { link = link, default = true })
  end
end

function H.setup()
  if H.did_setup then return end
  H.did_setup = true
  H.hl_apply()
  H.provider()
  vim.api.nvim_create_autocmd('ColorScheme', {
    group = vim.api.nvim_create_augroup('boo.review.hl', { clear = true }),
    callback = H.hl_apply,
  })
end

local STATUS = { added = 'A', modified = 'M', deleted = 'D', renamed = 'R', typechange = 'T' }

--- Absolute, resolved paths of buffers with unsaved edits (an accept never clobbers them).
function M.modified_paths()
  local out = {}
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.bo[b].modified and vim.bo[b].buftype == '' then
      local name = vim.api.nvim_buf_get_name(b)
      if name ~= '' then table.insert(out, vim.fn.resolve(vim.fn.fnamemodify(name, ':p'))) end
    end
  end
  return out
end

--- How a control character is shown in the review view.
function H.escape_char(c)
  if c == '\n' then return '\\n' end
  return ('\\x%02x'):format(c:byte())
end

--- Builds the text model. Per line, flat arrays instead of a table each (a view can have tens
--- of thousands of lines): `hl[n]`/`line_hl[n]` its groups, `file[n]`/`hunk[n]`/`new_line[n]`
--- what it targets (indexes into data.files and its hunks). `hunk_lines` lists hunk headers.
function H.build(data)
  local lines, hl, line_hl, file_of, hunk_of, new_line_of, hunk_lines = {}, {}, {}, {}, {}, {}, {}
  local n = 0
  local CTRL = '[%z\1-\8\10-\31\127]'
  local function add(text, group, fi, hi, nl, line_group)
    -- A buffer line cannot hold a newline (file names may): control characters are shown escaped.
    if text:find(CTRL) then text = text:gsub(CTRL, H.escape_char) end
    n = n + 1
    lines[n], hl[n], line_hl[n], file_of[n], hunk_of[n], new_line_of[n] = text, group, line_group, fi, hi, nl
    return n
  end
  local files = data.files or {}
  local adds, dels = 0, 0
  for _, f in ipairs(files) do
    adds, dels = adds + (f.additions or 0), dels + (f.deletions or 0)
  end
  add(('Review: %s — %d file(s), +%d -%d'):format(data.title or '', #files, adds, dels), 'BooDiffFile')
  add(
    'ga/gr accept/reject hunk  gA/gR file  ]c/[c next/prev hunk  <CR> side by side  q close'
      .. (data.lazy and '  <Tab> load hunks' or ''),
    'BooReviewHint'
  )
  add('')
  local model = {
    lines = lines,
    hl = hl,
    line_hl = line_hl,
    file = file_of,
    hunk = hunk_of,
    new_line = new_line_of,
    hunk_lines = hunk_lines,
  }
  if #files == 0 then
    add('No pending changes.', 'BooReviewHint')
    return model
  end
  local function name_of(f)
    if f.old_path and f.old_path ~= vim.NIL and f.old_path ~= f.path then return f.old_path .. ' -> ' .. f.path end
    return f.path
  end
  for fi, f in ipairs(files) do
    add(
      ('%s %s  +%d -%d'):format(STATUS[f.status] or '?', name_of(f), f.additions or 0, f.deletions or 0),
      'BooDiffStatus',
      fi
    )
  end
  for fi, f in ipairs(files) do
    add('')
    add(('%s %s'):format(STATUS[f.status] or '?', name_of(f)), 'BooDiffFile', fi)
    if f.lazy then add('  (<Tab> shows its hunks)', 'BooReviewHint', fi) end
    if type(f.submodule) == 'string' then
      add('  (' .. f.submodule .. ')', 'BooReviewHint', fi)
    elseif f.large then
      add('  (large file, not shown: accept or reject the whole file)', 'BooReviewHint', fi)
    elseif f.binary then
      add('  (binary, symlink or mode change: accept or reject the whole file)', 'BooReviewHint', fi)
    end
    for hi, h in ipairs(f.hunks or {}) do
      hunk_lines[#hunk_lines + 1] = add(h.header, 'BooDiffHunk', fi, hi, h.new_start)
      if type(h.also) == 'table' and #h.also > 0 then
        add(
          '  ⚠ also changed by ' .. table.concat(h.also, ', ') .. ' (ga shows the result first)',
          'BooReviewConflict',
          fi,
          hi,
          h.new_start
        )
      end
      local nl = h.new_start
      for _, l in ipairs(h.lines or {}) do
        local c = l:byte(1)
        if c == 43 then -- '+'
          add(l, 'BooDiffAdded', fi, hi, nl, 'BooDiffAdd')
          nl = nl + 1
        elseif c == 45 then -- '-'
          add(l, 'BooDiffRemoved', fi, hi, nl, 'BooDiffDelete')
        elseif c == 32 then -- ' '
          add(l, nil, fi, hi, nl)
          nl = nl + 1
        else
          add(l, 'BooReviewHint', fi, hi, nl)
        end
      end
    end
  end
  return model
end

--- What line `n` of a view targets: {path, old_path, hunk, new_line}, or nil.
function M.target_of(view, n)
  local m = view.model
  local fi = m and m.file[n]
  local f = fi and view.data.files[fi]
  if not f then return nil end
  local old = (f.old_path ~= vim.NIL and f.old_path) or nil
  local hi = m.hunk[n]
  local h = hi and f.hunks and f.hunks[hi]
  local marked = false
  for _, x in ipairs(h and { h } or f.hunks or {}) do
    if type(x.also) == 'table' and #x.also > 0 then marked = true end
  end
  return { path = f.path, old_path = old, hunk = h and h.id or nil, new_line = m.new_line[n], marked = marked }
end

--- Highlights are drawn by a decoration provider for the rows on screen only: opening a view
--- of 10,000 lines costs one set_lines, not 10,000 extmarks.
H.by_buf = {} ---@type table<integer, boo.ReviewView>

function H.provider()
  vim.api.nvim_set_decoration_provider(M.ns, {
    on_win = function(_, _, buf) return H.by_buf[buf] ~= nil end,
    on_line = function(_, _, buf, row)
      local view = H.by_buf[buf]
      local m = view and view.model
      local n = row + 1
      local group = m and m.hl[n]
      if not group then return end
      local line_group = m.line_hl[n]
      if line_group then
        -- The whole screen line, past the end of the text (ephemeral marks have no line_hl).
        pcall(vim.api.nvim_buf_set_extmark, buf, M.ns, row, 0, {
          end_row = row + 1,
          end_col = 0,
          hl_group = line_group,
          hl_eol = true,
          priority = 90,
          ephemeral = true,
        })
      end
      pcall(vim.api.nvim_buf_set_extmark, buf, M.ns, row, 0, {
        end_col = #m.lines[n],
        hl_group = group,
        priority = 100,
        ephemeral = true,
      })
    end,
  })
end

--- The highlight groups of line `n` of a review buffer (what the provider draws), for tests.
function M.highlight_of(buf, n)
  local view = H.by_buf[buf]
  local m = view and view.model
  if not m then return nil end
  return { group = m.hl[n], line_group = m.line_hl[n] }
end

function H.buffer(session)
  local name = ('boo://review/%d'):format(session)
  -- Exact name match (bufnr() would also take a partial match such as boo://review/12).
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(b) == name then return b end
  end
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_name(buf, name)
  vim.bo[buf].buftype = 'nofile'
  vim.bo[buf].bufhidden = 'wipe'
  vim.bo[buf].swapfile = false
  vim.bo[buf].modifiable = false
  vim.bo[buf].filetype = 'boo_review'
  H.keys(buf, session)
  vim.api.nvim_create_autocmd('BufWipeout', {
    buffer = buf,
    once = true,
    callback = function()
      M.views[session] = nil
      H.by_buf[buf] = nil
      if require('boo.rpc').running() then require('boo.rpc').notify('review_closed', { session = session }) end
    end,
  })
  return buf
end

function H.render(view)
  local model = H.build(view.data)
  local buf = view.buf
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, model.lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
  view.model, view.hunk_lines = model, model.hunk_lines
  H.by_buf[buf] = view
  -- Windows showing the view keep their line (clamped): after an action the next hunk is there.
  local count = #model.lines
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    local row = vim.api.nvim_win_get_cursor(win)[1]
    pcall(vim.api.nvim_win_set_cursor, win, { math.min(row, count), 0 })
  end
end

--- Render op `review` with `file`: one file's hunks for a lazy view (replaces its entry).
function H.show_file(op)
  local view = M.views[op.session]
  if not (view and view.data and vim.api.nvim_buf_is_valid(view.buf)) then return end
  for i, f in ipairs(view.data.files or {}) do
    if f.path == op.file.path then
      view.data.files[i] = op.file
      return H.render(view)
    end
  end
end

--- Render op `review`: {session, title, open, lazy, repo_root, worktree, files}.
function M.show(op)
  if op.file then return H.show_file(op) end
  H.setup()
  local view = M.views[op.session]
  if view and not vim.api.nvim_buf_is_valid(view.buf) then view = nil end
  if not view and not op.open then
    -- Rust thinks a view is open but it is gone: say so, it stops sending.
    require('boo.rpc').notify('review_closed', { session = op.session })
    return
  end
  local fresh = not view
  if not view then
    view = { buf = H.buffer(op.session) }
    M.views[op.session] = view
  end
  view.data = op
  if fresh and op.open then
    -- A new view: the window opens now and the text follows on the next loop turn, so that
    -- neither step alone holds Neovim for long on a view of thousands of files.
    H.open(view)
    vim.schedule(function()
      if not vim.api.nvim_buf_is_valid(view.buf) then return end
      H.render(view)
      H.to_first_hunk(view)
    end)
    return
  end
  H.render(view)
  if op.open then
    H.open(view)
    H.to_first_hunk(view)
  end
end

--- Shows the view's buffer: its window, or a tab of its own.
function H.open(view)
  local wins = vim.fn.win_findbuf(view.buf)
  if #wins > 0 then
    vim.api.nvim_set_current_win(wins[1])
  else
    -- From a floating chat, the review opens in a tab of its own (full width for hunks).
    vim.cmd('tab sbuffer ' .. view.buf)
  end
end

function H.to_first_hunk(view)
  local first = view.hunk_lines and view.hunk_lines[1]
  if not first then return end
  for _, win in ipairs(vim.fn.win_findbuf(view.buf)) do
    pcall(vim.api.nvim_win_set_cursor, win, { first, 0 })
  end
end

--- Render op `review_close`: {session}.
function M.close(op)
  local view = M.views[op.session]
  M.views[op.session] = nil
  if view and vim.api.nvim_buf_is_valid(view.buf) then pcall(vim.api.nvim_buf_delete, view.buf, { force = true }) end
end

--- Render op `reload`: {paths}; clean buffers of these files re-read them, modified ones are
--- left alone.
function M.reload(op)
  local wanted = {}
  for _, p in ipairs(op.paths or {}) do
    wanted[vim.fn.resolve(p)] = true
  end
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.bo[b].buftype == '' and not vim.bo[b].modified then
      local name = vim.api.nvim_buf_get_name(b)
      if name ~= '' and wanted[vim.fn.resolve(vim.fn.fnamemodify(name, ':p'))] and vim.fn.filereadable(name) == 1 then
        pcall(vim.api.nvim_buf_call, b, function() vim.cmd('silent! edit') end)
      end
    end
  end
end

--- The target under the cursor of a review buffer.
function H.target(session)
  local view = M.views[session]
  if not view or not view.model then return nil end
  return M.target_of(view, vim.fn.line('.')), view
end

function H.act(session, method, whole_file)
  local t = H.target(session)
  if not t then return util.notify('no file on this line: put the cursor on a file or a hunk', vim.log.levels.WARN) end
  if not whole_file and not t.hunk then
    return util.notify("no hunk under the cursor: gA/gR act on this line's whole file", vim.log.levels.WARN)
  end
  local args = { session = session, path = t.path, hunks = (not whole_file) and { t.hunk } or nil }
  if method == 'accept' then
    args.modified = M.modified_paths()
    -- Lines another session or the user's checkout also changes: the 3-way result first.
    args.preview = t.marked or nil
  end
  local ok, err = require('boo.rpc').notify(method, args)
  if not ok then util.notify(err, vim.log.levels.ERROR) end
end

--- `<Tab>` in a view of many files: asks for the hunks of the file under the cursor.
function H.load_file(session)
  local t = H.target(session)
  if not t then return util.notify('put the cursor on a file of the review', vim.log.levels.WARN) end
  local ok, err = require('boo.rpc').notify('diff', { session = session, path = t.path })
  if not ok then util.notify(err, vim.log.levels.ERROR) end
end

function H.jump(session, dir)
  local view = M.views[session]
  if not view or not view.hunk_lines then return end
  local cur = vim.fn.line('.')
  local list = view.hunk_lines
  if dir > 0 then
    for _, l in ipairs(list) do
      if l > cur then return vim.api.nvim_win_set_cursor(0, { l, 0 }) end
    end
  else
    for i = #list, 1, -1 do
      if list[i] < cur then return vim.api.nvim_win_set_cursor(0, { list[i], 0 }) end
    end
  end
end

--- `<CR>`: the file side by side in diff mode, the session's version (left) against the user's
--- checkout (right), in a new tab.
function H.side_by_side(session)
  local t, view = H.target(session)
  if not t then return util.notify('put the cursor on a file of the review', vim.log.levels.WARN) end
  local data = view.data
  local theirs = data.worktree .. '/' .. t.path
  -- A renamed file still has its old name in the checkout.
  local ours = data.repo_root .. '/' .. (t.old_path or t.path)
  vim.cmd('tabnew')
  if vim.fn.filereadable(theirs) == 1 then
    vim.cmd('edit ' .. vim.fn.fnameescape(theirs))
  else
    vim.bo.buftype = 'nofile'
    vim.bo.bufhidden = 'wipe'
  end
  local left = vim.api.nvim_get_current_win()
  vim.cmd('diffthis')
  vim.cmd('rightbelow vsplit')
  if vim.fn.filereadable(ours) == 1 then
    vim.cmd('edit ' .. vim.fn.fnameescape(ours))
  else
    vim.cmd('enew')
    vim.bo.buftype = 'nofile'
    vim.bo.bufhidden = 'wipe'
  end
  vim.cmd('diffthis')
  vim.w.boo_review_side = 'checkout'
  vim.w[left].boo_review_side = 'session'
  if t.new_line then pcall(vim.api.nvim_win_set_cursor, left, { t.new_line, 0 }) end
  vim.api.nvim_set_current_win(left)
end

function H.close_view()
  if #vim.api.nvim_list_wins() > 1 then
    vim.cmd('close')
  else
    vim.cmd('bwipeout')
  end
end

function H.keys(buf, session)
  local function map(lhs, fn, desc)
    vim.keymap.set('n', lhs, fn, { buffer = buf, nowait = true, silent = true, desc = 'boo review: ' .. desc })
  end
  map('ga', function() H.act(session, 'accept', false) end, 'accept hunk')
  map('gr', function() H.act(session, 'reject', false) end, 'reject hunk')
  map('gA', function() H.act(session, 'accept', true) end, 'accept file')
  map('gR', function() H.act(session, 'reject', true) end, 'reject file')
  map(']c', function() H.jump(session, 1) end, 'next hunk')
  map('[c', function() H.jump(session, -1) end, 'previous hunk')
  map('<CR>', function() H.side_by_side(session) end, 'side by side')
  map('<Tab>', function() H.load_file(session) end, "load the file's hunks")
  map('q', H.close_view, 'close')
end

--- Render op `select`: {prompt, items = {{label, value}}, method, args, field}. The choice goes
--- back as notification `method` with `args[field] = value`. Scheduled: the batch never waits.
function M.select(op)
  vim.schedule(function()
    vim.ui.select(op.items or {}, {
      prompt = op.prompt,
      format_item = function(it) return it.label end,
    }, function(choice)
      if not choice then return end
      local args = type(op.args) == 'table' and op.args or {}
      args[op.field or 'choice'] = choice.value
      -- Unsaved buffers as they are now, not as when the question was asked.
      if op.method == 'accept' then args.modified = M.modified_paths() end
      local ok, err = require('boo.rpc').notify(op.method, args)
      if not ok then util.notify(err, vim.log.levels.ERROR) end
    end)
  end)
end

return M
