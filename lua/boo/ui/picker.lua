--- Pickers of the active chat's agent and model (`vim.ui.select`, so any picker UI works).
--- The lists come from the backend's cached probe; while the first probe runs, this waits for
--- it without blocking the editor (a deferred poll), then opens the picker.
local util = require('boo.util')

local M = {}
local H = {}

H.poll_ms = 250
H.give_up_ms = 120000

--- The cached probe: {state = 'ready'|'running'|'none', agents, models, report} or nil, err.
function M.probe(refresh) return require('boo.rpc').request('probe', { refresh = refresh or false }) end

--- Calls `cb(probe)` once a probe is ready (at once when it is), polling without blocking.
function M.when_ready(cb)
  local p, err = M.probe(false)
  if not p then return util.notify(err, vim.log.levels.WARN) end
  if p.state == 'ready' then return cb(p) end
  util.notify('finding agents and models…')
  local waited = 0
  local function tick()
    waited = waited + H.poll_ms
    local q, e = M.probe(false)
    if not q then return util.notify(e, vim.log.levels.WARN) end
    if q.state == 'ready' then return cb(q) end
    if waited >= H.give_up_ms then
      return util.notify('the probe of agents and models did not finish; see :Boo log', vim.log.levels.WARN)
    end
    vim.defer_fn(tick, H.poll_ms)
  end
  vim.defer_fn(tick, H.poll_ms)
end

--- Whether the active chat runs opencode (else a CLI agent, whose models are its own).
function H.opencode_chat()
  local agent = (require('boo.ui.render').status or {}).agent
  return type(agent) ~= 'string' or agent == 'opencode' or vim.startswith(agent, 'opencode:')
end

--- What the active chat's ACP agent session offers (modes, models), once it told them.
function H.options()
  local o = (require('boo.ui.render').status or {}).options
  return type(o) == 'table' and o or {}
end

--- The models offered for the active chat: opencode's (`provider/model`) for opencode chats,
--- an ACP agent's own, else the router's names for CLI agents.
function H.models(p)
  local own = H.options().models
  if type(own) == 'table' and #own > 0 then return vim.deepcopy(own) end
  return vim.deepcopy((H.opencode_chat() and p.models or p.cli_models) or {})
end

--- The agents, each followed by the modes (`qwen:plan`) the chat's session offers for it.
function H.agents(p)
  local items = {}
  local modes = H.options().modes
  modes = type(modes) == 'table' and modes or {}
  local agents = vim.deepcopy(p.agents or { 'opencode' })
  -- The chat's own agent, even when the probe has not found it (yet).
  local own = modes[1] and modes[1]:match('^(.-):')
  if own and not vim.tbl_contains(agents, own) then table.insert(agents, own) end
  for _, a in ipairs(agents) do
    table.insert(items, a)
    for _, m in ipairs(modes) do
      if vim.startswith(m, a .. ':') then table.insert(items, m) end
    end
  end
  return items
end

--- Opens the picker of `kind` ('agent' or 'model') for the chat of `pane`.
function M.pick(kind, pane)
  M.when_ready(function(p)
    local status = require('boo.ui.render').status or {}
    local items = kind == 'agent' and H.agents(p) or H.models(p)
    if kind == 'model' then table.insert(items, 1, 'default') end
    if #items == 0 then return util.notify(('no %ss found; see :checkhealth boo'):format(kind), vim.log.levels.WARN) end
    local current = kind == 'agent' and status.agent or (status.model or 'default')
    vim.ui.select(items, {
      prompt = ('boo: %s of this chat'):format(kind),
      format_item = function(it) return it == current and (it .. ' (current)') or it end,
      kind = 'boo.' .. kind,
    }, function(choice)
      if choice then require('boo')._action('set_' .. kind, { name = choice, pane = pane }) end
    end)
  end)
end

--- Completion candidates from the cached probe (never waits; starts a probe if none).
function M.complete(kind)
  local ok, p = pcall(M.probe, false)
  if not ok or type(p) ~= 'table' then return {} end
  if kind == 'agent' then return H.agents(p) end
  local models = H.models(p)
  table.insert(models, 1, 'default')
  return models
end

return M
