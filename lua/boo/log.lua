--- Lua-side log lines go to the backend's log file, so `:Boo log` shows one story.
local M = {}

local function write(level, msg)
  local path = require('boo.rpc').log_file()
  vim.fn.mkdir(vim.fn.fnamemodify(path, ':h'), 'p')
  local fd = io.open(path, 'a')
  if not fd then return end
  fd:write(('%s %s lua: %s\n'):format(os.date('!%Y-%m-%dT%H:%M:%SZ'), level, msg))
  fd:close()
end

function M.error(msg) write('ERROR', msg) end
function M.warn(msg) write('WARN', msg) end
function M.info(msg) write('INFO', msg) end

return M
