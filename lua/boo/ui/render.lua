--- Applies Rust's render batches: one call per frame, a list of typed ops, applied in order.
--- Rust decides what is shown; the modules here decide how.
local M = {}
local H = {}

--- The last status Rust pushed, for `require('boo').status()` (no RPC on the hot path).
M.status = {
  session = nil,
  chat = nil,
  agent = nil,
  model = nil,
  busy = false,
  pending_changes = 0,
  permissions = 0,
}

--- Counters for tests and benchmarks; `failures`, the first messages of ops that failed (the
--- test kit fails a test that leaves any).
M.stats = { batches = 0, ops = 0, apply_ms_total = 0, apply_ms_max = 0, op_ms = {}, failures = {} }

H.handlers = {
  chat = function(op) require('boo.ui.chat').ensure(op) end,
  lines = function(op) require('boo.ui.chat').lines(op) end,
  decor = function(op) require('boo.ui.chat').decor(op) end,
  hl = function(op) require('boo.ui.chat').hl(op) end,
  pane = function(op) require('boo.ui.pane').show(op) end,
  tabs = function(op) require('boo.ui.pane').tabs(op) end,
  pane_close = function(op) require('boo.ui.pane').close(op) end,
  input_clear = function(op) require('boo.ui.chat').clear_input(op.chat) end,
  notify = function(op)
    -- Rust's messages already start with "boo: ".
    local raw = type(op.msg) == 'string' and vim.startswith(op.msg, 'boo: ')
    require('boo.util').notify(op.msg, op.level or vim.log.levels.INFO, { raw = raw })
  end,
  autocmd = function(op) vim.api.nvim_exec_autocmds('User', { pattern = op.pattern, data = op.data, modeline = false }) end,
  status = function(op)
    M.status = op.status
    require('boo.statusline').changed()
  end,
  permission = function(op) require('boo.ui.permission').prompt(op) end,
  review = function(op) require('boo.ui.review').show(op) end,
  review_close = function(op) require('boo.ui.review').close(op) end,
  reload = function(op) require('boo.ui.review').reload(op) end,
  select = function(op) require('boo.ui.review').select(op) end,
  report = function(op) require('boo.ui.usage').show(op) end,
  timeline = function(op) require('boo.ui.timeline').show(op) end,
  arena = function(op) require('boo.ui.arena').show(op) end,
}

function H.failed(msg)
  local failures = M.stats.failures
  if #failures < 20 then failures[#failures + 1] = msg end
  require('boo.log').error(msg)
end

--- Entry point called by Rust with `exec_lua`. Each op is guarded: a bad op is logged and
--- skipped, the rest of the batch still applies.
function M.apply(batch)
  local t0 = vim.uv.hrtime()
  M.stats.batches = M.stats.batches + 1
  for _, op in ipairs(batch.ops or {}) do
    M.stats.ops = M.stats.ops + 1
    local handler = H.handlers[op.op]
    if handler then
      local t1 = vim.uv.hrtime()
      local ok, err = pcall(handler, op)
      M.stats.op_ms[op.op] = (M.stats.op_ms[op.op] or 0) + (vim.uv.hrtime() - t1) / 1e6
      if not ok then H.failed(('render op %s failed: %s'):format(op.op, err)) end
    else
      H.failed('unknown render op ' .. tostring(op.op))
    end
  end
  local ms = (vim.uv.hrtime() - t0) / 1e6
  M.stats.apply_ms_total = M.stats.apply_ms_total + ms
  if ms > M.stats.apply_ms_max then M.stats.apply_ms_max = ms end
end

return M
