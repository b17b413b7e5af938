--- Small shared helpers: user messages and paths.
local M = {}

--- One line to the user, prefixed with "boo: ". Never a stack trace: callers pass messages.
function M.notify(msg, level, opts)
  msg = tostring(msg)
  if not (opts and opts.raw) then msg = 'boo: ' .. msg end
  -- One line: the first line of anything multi-line, so no hit-enter prompt.
  msg = msg:gsub('\n.*$', '')
  vim.notify(msg, level or vim.log.levels.INFO, { title = 'boo' })
end

--- The plugin's root directory (the folder holding lua/ and plugin/).
function M.root()
  local src = debug.getinfo(1, 'S').source:sub(2)
  return vim.fn.fnamemodify(src, ':p:h:h:h')
end

--- Shows `buf` in its window, or in a new split at the bottom; focuses it (report buffers).
function M.show_in_split(buf)
  local win = vim.fn.bufwinid(buf)
  if win == -1 then
    vim.cmd('botright split')
    win = vim.api.nvim_get_current_win()
    vim.api.nvim_win_set_buf(win, buf)
  end
  vim.api.nvim_set_current_win(win)
  vim.wo[win].wrap, vim.wo[win].number = false, false
  return win
end

function M.join(...) return table.concat({ ... }, '/') end

function M.is_file(path)
  local st = path and vim.uv.fs_stat(path)
  return st ~= nil and st.type == 'file'
end

function M.read_file(path)
  local fd = vim.uv.fs_open(path, 'r', 438)
  if not fd then return nil end
  local st = vim.uv.fs_fstat(fd)
  local data = st and vim.uv.fs_read(fd, st.size, 0)
  vim.uv.fs_close(fd)
  return data
end

return M
