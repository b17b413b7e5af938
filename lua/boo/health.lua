--- `:checkhealth boo`
local M = {}

local function version_of(cmd)
  local ok, res = pcall(vim.system, { cmd, '--version' }, { text = true })
  if not ok then return nil, tostring(res) end
  -- A busy machine can take seconds to start a large binary (opencode is a bundled runtime).
  local out = res:wait(15000)
  if out.code == 124 and out.signal ~= 0 then return nil, 'no answer to --version within 15 s' end
  if out.code ~= 0 then
    local msg = vim.trim((out.stderr or '') .. (out.stdout or ''))
    return nil, msg ~= '' and msg or ('exit code ' .. out.code)
  end
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
  M.check_storage(health, rpc)
end

--- `1.2 MB`
local function size(bytes)
  if bytes >= 1024 * 1024 * 1024 then return ('%.1f GB'):format(bytes / 1024 ^ 3) end
  if bytes >= 1024 * 1024 then return ('%.1f MB'):format(bytes / 1024 ^ 2) end
  return ('%d KB'):format(math.ceil(bytes / 1024))
end

--- Disk use of the folders, in bytes (`du -sk`, all at once).
local function disk_use(paths)
  local jobs, total = {}, 0
  for _, p in ipairs(paths) do
    local ok, job = pcall(vim.system, { 'du', '-sk', p }, { text = true })
    if ok then table.insert(jobs, job) end
  end
  for _, job in ipairs(jobs) do
    local out = job:wait(20000)
    local kb = out.code == 0 and tonumber((out.stdout or ''):match('^(%d+)')) or 0
    total = total + kb * 1024
  end
  return total
end

--- The database file and the session worktrees (from the store, through the backend).
function M.check_storage(health, rpc)
  health.start('boo: storage')
  local db = require('boo.config').resolved().store_path
  local bytes = 0
  for _, suffix in ipairs({ '', '-wal', '-shm' }) do
    local st = vim.uv.fs_stat(db .. suffix)
    if st then bytes = bytes + st.size end
  end
  if bytes > 0 then
    health.ok(('database: %s (%s)'):format(db, size(bytes)))
  else
    health.info(('database: %s (not created yet)'):format(db))
  end
  if not rpc.running() then return health.warn('the backend is not running; worktrees were not counted') end
  local got
  local id = vim.api.nvim_create_autocmd('User', {
    pattern = 'BooHealth',
    once = true,
    callback = function(ev) got = ev.data or {} end,
  })
  rpc.notify('health', {})
  vim.wait(5000, function() return got ~= nil end, 20)
  pcall(vim.api.nvim_del_autocmd, id)
  if not got then return health.warn('the backend did not answer within 5 s; see :Boo log') end
  M.report_drift(health, got.opencode_drift)
  health.start('boo: worktrees')
  if got.error and got.error ~= vim.NIL then return health.error('store: ' .. tostring(got.error)) end
  local paths, gone = {}, {}
  for _, w in ipairs(got.worktrees or {}) do
    if vim.uv.fs_stat(w.path) then table.insert(paths, w.path) end
    if w.session == nil or w.session == vim.NIL then table.insert(gone, w.path) end
  end
  health.ok(('worktrees: %d, %s on disk'):format(#paths, size(disk_use(paths))))
  if #gone > 0 then
    health.warn(
      ('%d worktree(s) whose session is gone (their files stay): %s'):format(#gone, table.concat(gone, ', ')),
      { 'Look for work to keep, then remove them with `git worktree remove PATH`' }
    )
  else
    health.ok('no worktrees left behind by deleted sessions')
  end
end

--- `name (n), ...` of a `{name = n}` table, sorted by name.
local function counted(t)
  local names = vim.tbl_keys(type(t) == 'table' and t or {})
  table.sort(names)
  return vim.tbl_map(function(n) return ('%s (%d)'):format(n, t[n]) end, names)
end

--- Event types and fields opencode sent this run that the pinned schema does not define.
function M.report_drift(health, drift)
  health.start('boo: opencode events')
  if type(drift) ~= 'table' then return health.info('no opencode events seen in this run') end
  local types, fields = counted(drift.types), counted(drift.fields)
  if #types == 0 then
    health.ok('every event type seen in this run is one boo knows')
  else
    health.warn(
      ('unknown event types seen in this run (ignored): %s'):format(table.concat(types, ', ')),
      { 'opencode changed its events: an answer may show incompletely; see `make contract`' }
    )
  end
  if #fields > 0 then health.info(('unknown event fields (ignored): %s'):format(table.concat(fields, ', '))) end
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
    'not contained: paths a command computes at run time (cd $(...), scripts), network access, and other agents (qwen, claude, goose, ACP agents) beyond their own approval modes'
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
  -- ACP agents (Agent Client Protocol): found ones with their version, the rest with how to
  -- install them.
  local found = {}
  for _, a in ipairs(r.acp or {}) do
    local path = a.path ~= vim.NIL and a.path or nil
    local err = a.error ~= vim.NIL and a.error or nil
    local how = a.active and 'ACP' or "ACP with protocol = 'acp'"
    if path and not err then
      table.insert(found, ('%s %s'):format(a.name, a.version ~= vim.NIL and a.version or '?'))
      health.ok(('ACP agent %s %s (%s; %s)'):format(a.name, a.version ~= vim.NIL and a.version or '?', path, how))
    elseif path then
      health.warn(('ACP agent %s at %s: %s'):format(a.name, path, err))
    else
      health.info(('ACP agent %s: not installed; %s'):format(a.name, a.install or ''))
    end
  end
  health.info('ACP agents found: ' .. (#found > 0 and table.concat(found, ', ') or 'none'))
  health.info(
    ('agents: %s; %d models (probe took %d ms)'):format(
      table.concat(p.agents or {}, ', '),
      #(p.models or {}),
      r.took_ms or 0
    )
  )
end

return M
