--- `#` editor context of a prompt, gathered when it is sent: buffers as they are now (unsaved
--- edits included), the last selection, diagnostics, the quickfix list. `#diff` and `#gitdiff`
--- are the backend's (git). Each source becomes one delimited text part: `{label, text}`.
local M = {}
local H = {}

--- The sources, for completion and help: name -> description.
M.sources = {
  buffer = 'the current buffer, unsaved edits included',
  buffers = 'all listed buffers',
  selection = 'the last visual selection',
  diagnostics = "the current buffer's diagnostics",
  ['diagnostics:all'] = 'diagnostics of all buffers',
  quickfix = 'the quickfix list',
  diff = "the session's pending changes",
  gitdiff = 'your uncommitted changes',
}

--- The last window the user worked in on a file (not a boo buffer), tracked as windows change.
H.last = nil
local group = vim.api.nvim_create_augroup('boo.compose', { clear = true })
vim.api.nvim_create_autocmd({ 'BufEnter', 'WinEnter' }, {
  group = group,
  callback = function(ev)
    if H.is_code(ev.buf) then H.last = ev.buf end
  end,
})

function H.is_code(buf)
  return vim.api.nvim_buf_is_valid(buf) and vim.bo[buf].buftype == '' and not vim.bo[buf].filetype:match('^boo')
end

--- The buffer `#buffer` means: the current one when it is a file, else the last file window's.
function M.code_buffer()
  local cur = vim.api.nvim_get_current_buf()
  if H.is_code(cur) then return cur end
  if H.last and H.is_code(H.last) then return H.last end
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    local b = vim.api.nvim_win_get_buf(win)
    if H.is_code(b) then return b end
  end
  return nil
end

function H.name(buf)
  local name = vim.api.nvim_buf_get_name(buf)
  return name == '' and ('[No Name ' .. buf .. ']') or vim.fn.fnamemodify(name, ':.')
end

function H.max() return require('boo.config').get().compose.max_context_lines end

--- Lines of a buffer as a fenced block, cut at the limit (said in the text).
function H.block(buf, first, last)
  local max = H.max()
  local cut = last - first > max
  local lines = vim.api.nvim_buf_get_lines(buf, first, cut and first + max or last, false)
  local out = { '```' .. (vim.bo[buf].filetype or ''), table.concat(lines, '\n'), '```' }
  if cut then table.insert(out, ('(cut: only the first %d of %d lines)'):format(max, last - first)) end
  return table.concat(out, '\n')
end

function H.buffer_text(buf)
  local n = vim.api.nvim_buf_line_count(buf)
  local state = vim.bo[buf].modified and ', unsaved changes included' or ''
  return ('%s (%d lines%s):\n%s'):format(H.name(buf), n, state, H.block(buf, 0, n))
end

H.severity = { 'ERROR', 'WARN', 'INFO', 'HINT' }

function H.diagnostics(bufnr)
  local list = vim.diagnostic.get(bufnr)
  table.sort(list, function(a, b)
    if a.bufnr ~= b.bufnr then return a.bufnr < b.bufnr end
    return a.lnum < b.lnum
  end)
  local lines = {}
  for _, d in ipairs(list) do
    local src = d.source and (' [' .. d.source .. ']') or ''
    table.insert(
      lines,
      ('%s:%d:%d: %s: %s%s'):format(
        H.name(d.bufnr),
        d.lnum + 1,
        d.col + 1,
        H.severity[d.severity] or '?',
        (d.message:gsub('\n', ' ')),
        src
      )
    )
  end
  return lines
end

--- One source -> `{label, text}`, or nil and why.
function M.get(name)
  if name == 'buffer' then
    local buf = M.code_buffer()
    if not buf then return nil, '#buffer: no file buffer open' end
    return { label = '#buffer ' .. H.name(buf), text = H.buffer_text(buf) }
  elseif name == 'buffers' then
    local parts, names = {}, {}
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if vim.bo[b].buflisted and vim.api.nvim_buf_is_loaded(b) and H.is_code(b) then
        table.insert(parts, H.buffer_text(b))
        table.insert(names, H.name(b))
      end
    end
    if #parts == 0 then return nil, '#buffers: no file buffer open' end
    return { label = ('#buffers (%d)'):format(#parts), text = table.concat(parts, '\n\n') }
  elseif name == 'selection' then
    local buf = M.code_buffer()
    local s = buf and vim.api.nvim_buf_get_mark(buf, '<')
    local e = buf and vim.api.nvim_buf_get_mark(buf, '>')
    if not s or s[1] == 0 or e[1] < s[1] then return nil, '#selection: no visual selection yet' end
    return M.selection(buf, s[1], e[1])
  elseif name == 'diagnostics' or name == 'diagnostics:all' then
    local buf = name == 'diagnostics' and M.code_buffer() or nil
    if name == 'diagnostics' and not buf then return nil, '#diagnostics: no file buffer open' end
    local lines = H.diagnostics(buf)
    local where = buf and (' of ' .. H.name(buf)) or ' of all buffers'
    return {
      label = ('#%s (%d)'):format(name, #lines),
      text = #lines == 0 and ('no diagnostics' .. where)
        or ('diagnostics' .. where .. ':\n' .. table.concat(lines, '\n')),
    }
  elseif name == 'quickfix' then
    local lines = {}
    for _, q in ipairs(vim.fn.getqflist()) do
      local file = q.bufnr > 0 and H.name(q.bufnr) or ''
      table.insert(lines, ('%s:%d:%d: %s'):format(file, q.lnum, q.col, vim.trim(q.text)))
    end
    return { label = ('#quickfix (%d)'):format(#lines), text = 'quickfix list:\n' .. table.concat(lines, '\n') }
  end
  return nil
end

--- Lines l1..l2 (1-based) of a buffer as context (also `:'<,'>Boo ask`).
function M.selection(buf, l1, l2)
  return {
    label = ('#selection %s:%d-%d'):format(H.name(buf), l1, l2),
    text = ('%s lines %d-%d:\n%s'):format(H.name(buf), l1, l2, H.block(buf, l1 - 1, l2)),
  }
end

--- The editor context a prompt asks for (`#name` at the start of a word, each once), or nil
--- and the first problem.
function M.gather(text)
  local out, seen = {}, {}
  for word in text:gmatch('%S+') do
    local name = word:match('^#([%w:]+)')
    if name then name = name:gsub(':$', '') end
    if name and M.sources[name] and not seen[name] then
      seen[name] = true
      local item, err = M.get(name)
      if err then return nil, err end
      if item then table.insert(out, item) end
    end
  end
  return out
end

return M
