--- The backend process: find the binary, start it lazily, check it, restart it after a crash,
--- stop it on exit. Everything else talks to Rust through `request` and `notify` here.
local util = require('boo.util')

local M = {}
local H = {}

--- Must equal boocoder's PROTOCOL_VERSION.
M.PROTOCOL = 1

H.chan = nil ---@type integer|nil
H.info = nil ---@type table|nil the `hello` reply of the running binary
H.crashes = {} ---@type number[] times (seconds) of recent crashes
H.stopping = false
H.MAX_CRASHES = 5 -- within H.CRASH_WINDOW seconds, then stop restarting
H.CRASH_WINDOW = 60

--- Every place the binary may be, in order, as {path, how}.
function M.candidates()
  local cfg = require('boo.config').get().backend
  local root = util.root()
  local out = {}
  if cfg.cmd then
    local cmd = type(cfg.cmd) == 'table' and cfg.cmd[1] or cfg.cmd
    table.insert(out, { path = vim.fn.exepath(cmd) ~= '' and vim.fn.exepath(cmd) or cmd, how = 'backend.cmd' })
    return out
  end
  local target = vim.env.CARGO_TARGET_DIR
  if target and target ~= '' then
    table.insert(out, { path = util.join(target, 'release', 'boocoder'), how = 'CARGO_TARGET_DIR' })
    table.insert(out, { path = util.join(target, 'debug', 'boocoder'), how = 'CARGO_TARGET_DIR' })
  end
  table.insert(out, { path = util.join(root, 'target', 'release', 'boocoder'), how = 'plugin' })
  table.insert(out, { path = util.join(root, 'target', 'debug', 'boocoder'), how = 'plugin' })
  return out
end

--- The binary to run, or nil and a message listing every path tried and how to build.
---@return string[]|nil cmd, string|nil err
function M.find()
  local tried = {}
  for _, c in ipairs(M.candidates()) do
    if vim.fn.executable(c.path) == 1 then
      local cmd = { c.path }
      local cfg_cmd = require('boo.config').get().backend.cmd
      if type(cfg_cmd) == 'table' then cmd = vim.list_extend(cmd, vim.list_slice(cfg_cmd, 2)) end
      return cmd, nil
    end
    table.insert(tried, c.path)
  end
  return nil,
    ('boocoder binary not found (tried: %s); build it with: cargo build --release (in %s)'):format(
      table.concat(tried, ', '),
      util.root()
    )
end

function M.log_file()
  local cfg = require('boo.config').get().backend
  return cfg.log_file or util.join(vim.fn.stdpath('log'), 'boo.log')
end

--- The git revision of the plugin's checkout, read from .git without running git (cheap).
function M.plugin_revision()
  local root = util.root()
  local gitdir = util.join(root, '.git')
  local dotgit = util.read_file(gitdir)
  if dotgit and dotgit:match('^gitdir: ') then gitdir = vim.trim(dotgit:sub(9)) end
  local head = util.read_file(util.join(gitdir, 'HEAD'))
  if not head then return nil end
  head = vim.trim(head)
  local ref = head:match('^ref: (.+)$')
  if not ref then return head end
  -- A linked worktree keeps refs in the common dir.
  local common = util.read_file(util.join(gitdir, 'commondir'))
  local refdir = common and vim.fs.normalize(util.join(gitdir, vim.trim(common))) or gitdir
  local sha = util.read_file(util.join(refdir, ref))
  if sha then return vim.trim(sha) end
  local packed = util.read_file(util.join(refdir, 'packed-refs')) or ''
  for line in packed:gmatch('[^\n]+') do
    local s, r = line:match('^(%x+) (.+)$')
    if r == ref then return s end
  end
  return nil
end

--- Compares the running binary with the plugin; returns a warning or nil.
function M.staleness(info)
  if not info then return nil end
  local rev = M.plugin_revision()
  if not rev or not info.revision or info.revision == 'unknown' then return nil end
  if rev:sub(1, #info.revision) ~= info.revision then
    return ('boocoder was built from %s but the plugin is at %s: rebuild with cargo build --release'):format(
      info.revision,
      rev:sub(1, 12)
    )
  end
  return nil
end

function H.on_exit(chan, code, signal)
  if H.chan ~= chan then return end
  H.chan, H.info = nil, nil
  if H.stopping or (code == 0 and signal == 0) then return end
  local now = vim.uv.now() / 1000
  H.crashes = vim.tbl_filter(function(t) return now - t < H.CRASH_WINDOW end, H.crashes)
  table.insert(H.crashes, now)
  -- Tell the user once per burst of crashes, not once per crash.
  if #H.crashes == 1 then
    util.notify(
      ('backend exited (code %d, signal %d); it restarts on next use, with the open chats. See :Boo log'):format(
        code,
        signal
      ),
      vim.log.levels.WARN
    )
  elseif #H.crashes == H.MAX_CRASHES then
    util.notify(
      ('backend crashed %d times in a minute; not restarting it for now. See :Boo log'):format(H.MAX_CRASHES),
      vim.log.levels.ERROR
    )
  end
  vim.api.nvim_exec_autocmds('User', { pattern = 'BooBackendExit', data = { code = code, signal = signal } })
end

H.HANDSHAKE_MS = 4500 -- the error is shown within 5 s
H.STDERR_LINES = 5

--- The arguments boo adds to the command (`backend.extra_args = false` turns them off).
function H.extra_args()
  if require('boo.config').get().backend.extra_args == false then return {} end
  local log = M.log_file()
  vim.fn.mkdir(vim.fn.fnamemodify(log, ':h'), 'p')
  return { '--log', log }
end

--- Why a start failed: the command, its exit status, the tail of its stderr, and a rebuild hint
--- only when the failing program is the built binary (a custom backend.cmd is the user's own).
function H.start_error(cmd, what, status, stderr)
  local parts = { ('backend %s: `%s`'):format(what, table.concat(cmd, ' ')) }
  if status then table.insert(parts, status) end
  local lines = vim.tbl_filter(function(l) return l ~= '' end, stderr)
  if #lines > 0 then
    table.insert(
      parts,
      'stderr: ' .. table.concat(vim.list_slice(lines, math.max(1, #lines - H.STDERR_LINES + 1)), ' | ')
    )
  end
  if not require('boo.config').get().backend.cmd then
    table.insert(parts, ('rebuild with cargo build --release (in %s)'):format(util.root()))
  end
  return table.concat(parts, '; ')
end

--- Starts `cmd` and says hello with a deadline, so a backend that never answers cannot freeze
--- Neovim: a libuv timer (it runs while rpcrequest waits) kills the process after 4.5 s, which
--- ends the wait. Returns the channel and the hello reply, or nil and a message.
---@return integer|nil chan, table|string info_or_err
function H.start(cmd)
  cmd = vim.list_extend(vim.deepcopy(cmd), H.extra_args())
  local stderr = {}
  local exit_code -- set by on_exit, which may run before jobwait below (the job id is gone then)
  local env = { BOO_LOG = require('boo.config').get().backend.log_level }
  local ok, chan = pcall(vim.fn.jobstart, cmd, {
    rpc = true,
    env = env,
    on_stderr = function(_, data)
      for _, l in ipairs(data or {}) do
        table.insert(stderr, l)
      end
      if #stderr > 50 then stderr = vim.list_slice(stderr, #stderr - 50) end
    end,
    on_exit = function(id, code, _)
      exit_code = code
      H.on_exit(id, code, code >= 128 and code - 128 or 0)
    end,
  })
  if not ok or chan <= 0 then
    return nil, H.start_error(cmd, 'cannot start', nil, { ok and tostring(chan) or tostring(chan) })
  end
  local pid = vim.fn.jobpid(chan)
  local timed_out = false
  local timer = vim.uv.new_timer()
  timer:start(H.HANDSHAKE_MS, 0, function()
    timed_out = true
    vim.uv.kill(pid, 'sigkill')
  end)
  local hok, info = pcall(vim.rpcrequest, chan, 'hello', { protocol = M.PROTOCOL })
  timer:stop()
  timer:close()
  if not hok then
    local code = exit_code or vim.fn.jobwait({ chan }, 1000)[1]
    if code < 0 and exit_code then code = exit_code end
    pcall(vim.fn.jobstop, chan)
    if timed_out then
      return nil,
        H.start_error(cmd, ('did not answer within %.1f s (killed)'):format(H.HANDSHAKE_MS / 1000), nil, stderr)
    end
    local status = code >= 0 and ('exit status %d'):format(code) or 'still running'
    return nil, H.start_error(cmd, 'failed to start', status, stderr)
  end
  if type(info) ~= 'table' or info.protocol ~= M.PROTOCOL then
    pcall(vim.fn.jobstop, chan)
    return nil,
      ('backend `%s` speaks protocol %s, the plugin needs %d (an older binary?): rebuild with cargo build --release (in %s)'):format(
        cmd[1],
        type(info) == 'table' and tostring(info.protocol) or '?',
        M.PROTOCOL,
        util.root()
      )
  end
  return chan, info
end

--- Starts the backend if it is not running. Returns the channel, or nil and a message.
---@return integer|nil chan, string|nil err
function M.ensure()
  if H.chan then return H.chan end
  if #H.crashes >= H.MAX_CRASHES then
    local now = vim.uv.now() / 1000
    if now - H.crashes[#H.crashes] < H.CRASH_WINDOW then
      return nil, 'backend is crashing repeatedly; see :Boo log (retry in a minute)'
    end
    H.crashes = {}
  end
  local cmd, err = M.find()
  if not cmd then return nil, err end
  local chan, info = H.start(cmd)
  if not chan then return nil, info end
  H.chan, H.info = chan, info
  -- Views of a previous (crashed) process: the chat panes still on screen are handed to the
  -- new one before the action that started it, which is sent right after by the caller.
  local current = require('boo.ui.pane').current()
  local keep = require('boo.ui').reset()
  M.configure()
  if #keep > 0 then vim.rpcnotify(chan, 'restore', { cwd = vim.fn.getcwd(), panes = keep, current = current }) end
  local stale = M.staleness(info)
  if stale then util.notify(stale, vim.log.levels.WARN) end
  return chan
end

--- A request the editor waits for (fast queries only). Returns result or nil, message.
function M.request(method, args)
  local chan, err = M.ensure()
  if not chan then return nil, err end
  local ok, res = pcall(vim.rpcrequest, chan, method, args or vim.empty_dict())
  if not ok then
    -- Neovim wraps Rust's message as "Error invoking 'x' on channel N:\n<message>".
    local msg = tostring(res):match('\n([^\n]+)$') or tostring(res)
    return nil, msg
  end
  return res
end

--- An action; its result comes back as an event. Returns true or false, message.
function M.notify(method, args)
  local chan, err = M.ensure()
  if not chan then return false, err end
  vim.rpcnotify(chan, method, args or vim.empty_dict())
  return true
end

--- Sends the resolved configuration to the running backend.
function M.configure()
  if H.chan then vim.rpcnotify(H.chan, 'configure', require('boo.config').resolved()) end
end

--- The `hello` reply of the running backend (nil when not running).
function M.info() return H.info end
function M.running() return H.chan ~= nil end

function M.stop()
  H.stopping = true
  if H.chan then pcall(vim.fn.jobstop, H.chan) end
  H.chan, H.info = nil, nil
  H.stopping = false
end

vim.api.nvim_create_autocmd('VimLeavePre', {
  group = vim.api.nvim_create_augroup('boo.rpc', { clear = true }),
  callback = function()
    H.stopping = true
    if H.chan then pcall(vim.fn.jobstop, H.chan) end
  end,
})

return M
