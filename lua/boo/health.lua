--- `:checkhealth boo`
local M = {}

local function version_of(cmd)
  local ok, res = pcall(vim.system, { cmd, '--version' }, { text = true })
  if not ok then return nil, tostring(res) end
  local out = res:wait(5000)
  if out.code ~= 0 then return nil, vim.trim((out.stderr or '') .. (out.stdout or '')) end
  return vim.trim(out.stdout or ''):match('^[^\n]*')
end

function M.check()
  local health = vim.health
  local rpc = require('boo.rpc')
  local cfg = require('boo.config').get()

  health.start('boo: Neovim')
  local v = vim.version()
  local vs = ('%d.%d.%d'):format(v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.10') == 1 then
    health.ok('Neovim ' .. vs)
  else
    health.error('Neovim ' .. vs .. ' is too old; boo.nvim needs 0.10 or newer')
  end
  local _, cfg_err = require('boo.config').build(nil)
  if cfg_err then
    health.error(cfg_err)
  else
    health.ok('configuration is valid')
  end

  health.start('boo: backend (boocoder)')
  local cmd, err = rpc.find()
  if not cmd then
    health.error(err)
  else
    health.ok('binary: ' .. cmd[1])
    local _, start_err = rpc.ensure()
    local info = rpc.info()
    if start_err or not info then
      health.error('binary does not start: ' .. tostring(start_err))
    else
      health.ok(('version %s, revision %s, protocol %d'):format(info.version, info.revision, info.protocol))
      local stale = rpc.staleness(info)
      if stale then
        health.warn(stale)
      else
        health.ok('binary matches the plugin revision')
      end
    end
  end
  health.info('log file: ' .. rpc.log_file())

  health.start('boo: tools')
  if vim.fn.executable('git') == 1 then
    health.ok('git: ' .. (version_of('git') or '?'))
  else
    health.error('git not found on PATH; worktrees need it installed')
  end
  local oc = cfg.opencode.url and nil or cfg.opencode.cmd
  if cfg.opencode.url then
    health.info('opencode: attaching to ' .. cfg.opencode.url)
  elseif vim.fn.executable(oc) == 1 then
    local ver, verr = version_of(vim.fn.exepath(oc))
    if ver then
      health.ok(('opencode: %s (%s)'):format(ver, vim.fn.exepath(oc)))
    else
      health.error(('opencode at %s does not run: %s'):format(vim.fn.exepath(oc), verr))
    end
  else
    health.error(("opencode not found ('%s'); install it (npm i -g opencode-ai) or set opencode.cmd"):format(oc))
  end

  M.check_safety(health, cfg)
  M.check_probe(health, rpc)
end

--- What keeps the agent inside its worktree, and what does not (issue: containment).
function M.check_safety(health, cfg)
  health.start('boo: containment')
  local url = cfg.opencode.url
  if url then
    health.warn('opencode.url: an attached server runs with its own permissions; boo cannot add containment')
    local warn = require('boo.config').warning(cfg)
    if warn then health.warn(warn) end
  else
    health.ok(
      'opencode: file tools and bash commands naming a directory outside the worktree are denied (permission.external_directory = deny, unless your opencode config sets it)'
    )
  end
  health.info(
    'not contained: paths a command computes at run time (cd $(...), scripts), network access, and CLI agents (qwen, claude, goose) beyond their own approval modes'
  )
  local info = require('boo.rpc').info()
  local guard = info and info.guard
  if type(guard) ~= 'string' then
    health.warn('processes: the backend is not running, so its process guard is unknown')
  elseif guard:match('^guard') then
    health.ok('processes: agents die with boocoder (own process groups, PR_SET_PDEATHSIG); ' .. guard)
  else
    health.warn('processes: ' .. guard)
  end
end

--- The backend's probe of agents and models (a fresh one; waits for it up to a minute).
function M.check_probe(health, rpc)
  health.start('boo: agents and models')
  if not rpc.running() then return health.warn('the backend is not running; agents and models were not probed') end
  local p, err = rpc.request('probe', { refresh = true })
  local deadline = vim.uv.now() + 60000
  while p and p.state ~= 'ready' and vim.uv.now() < deadline do
    vim.wait(200)
    p, err = rpc.request('probe', { refresh = false })
  end
  if not p then return health.error('probe failed: ' .. tostring(err)) end
  if p.state ~= 'ready' or type(p.report) ~= 'table' then
    return health.warn('the probe did not finish within 60 s; see :Boo log')
  end
  local r = p.report
  local oc = r.opencode or {}
  if oc.error and oc.error ~= vim.NIL then
    health.error(('opencode (%s): %s'):format(oc.source or '?', oc.error))
  else
    health.ok(('opencode %s: server starts and answers'):format(oc.version or '?'))
  end
  local agents = {}
  for _, a in ipairs(oc.agents or {}) do
    if a.mode ~= 'subagent' then table.insert(agents, a.name) end
  end
  if #agents > 0 then health.info('opencode agents: ' .. table.concat(agents, ', ')) end
  for _, pr in ipairs(oc.providers or {}) do
    health.info(('provider %s: %s'):format(pr.id, table.concat(pr.models or {}, ', ')))
  end
  if oc.default_model and oc.default_model ~= vim.NIL then
    health.info('opencode default model: ' .. oc.default_model)
  end
  local router = r.router
  if router and router ~= vim.NIL then
    if router.error and router.error ~= vim.NIL then
      health.warn(('model router %s (%s): %s'):format(router.name, router.url, router.error))
    else
      health.ok(('model router %s (%s): %s'):format(router.name, router.url, table.concat(router.models or {}, ', ')))
    end
  end
  for _, c in ipairs(r.cli or {}) do
    if c.error and c.error ~= vim.NIL then
      if c.path and c.path ~= vim.NIL then
        health.warn(('%s at %s: %s'):format(c.name, c.path, c.error))
      else
        health.info(('%s: %s'):format(c.name, c.error))
      end
    else
      health.ok(('%s %s (%s)'):format(c.name, c.version or '?', c.path))
    end
  end
  health.info(
    ('agents: %s; %d models (probe took %d ms)'):format(
      table.concat(p.agents or {}, ', '),
      #(p.models or {}),
      r.took_ms or 0
    )
  )
end

return M
