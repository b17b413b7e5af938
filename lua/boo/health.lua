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
  if cfg_err then health.error(cfg_err) else health.ok('configuration is valid') end

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
      if stale then health.warn(stale) else health.ok('binary matches the plugin revision') end
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
end

return M
