--- The `:Boo` command: subcommands, their completion, and dispatch.
local util = require('boo.util')

local M = {}
local H = {}

--- Subcommands that a later part of the plugin implements say so instead of failing oddly.
function H.pending(name)
  return function() util.notify((':Boo %s is not available yet'):format(name), vim.log.levels.WARN) end
end

--- `:Boo session [new {title}|rename {title}|delete]`; no argument picks a session.
function H.session(args)
  local sub, title = args[1], vim.trim(table.concat(vim.list_slice(args, 2), ' '))
  if sub == nil then return require('boo')._action('session_pick') end
  if sub == 'new' then return require('boo')._action('session_new', { title = title ~= '' and title or nil }) end
  if sub == 'rename' then
    if title == '' then return util.notify('give the new title: :Boo session rename {title}', vim.log.levels.WARN) end
    return require('boo')._action('session_rename', { title = title })
  end
  if sub == 'delete' then return require('boo')._action('session_delete') end
  util.notify(("unknown :Boo session subcommand '%s' (new, rename or delete)"):format(sub), vim.log.levels.ERROR)
end

--- The path argument of accept/reject (paths with spaces arrive as several words).
function H.path_arg(args)
  local p = vim.trim(table.concat(args, ' '))
  return p ~= '' and p or nil
end

--- Pending paths of the current session for completion; asks only a running backend.
function H.pending_paths()
  local rpc = require('boo.rpc')
  if not rpc.running() then return {} end
  local info = rpc.request('review_info', { cwd = vim.fn.getcwd() })
  return type(info) == 'table' and type(info.files) == 'table' and info.files or {}
end

--- name -> { run = function(args: string[], cmd_opts), complete = function(lead): string[] }
local function boo() return require('boo') end
local function act(method, extra)
  return function(_, opts)
    local args = vim.tbl_extend('force', { pane = require('boo.ui.pane').current() }, extra or {})
    boo()._action(method, args)
  end
end

M.subcommands = {
  toggle = { run = function() boo().toggle() end },
  send = { run = function(args) boo().send(table.concat(args, ' '), { creator = 'user' }) end },
  ask = {
    run = function(args, opts)
      local l1, l2 = opts.line1, opts.line2
      if opts.range == 0 then
        l1, l2 = vim.fn.line('.'), vim.fn.line('.')
      end
      boo().ask({ text = table.concat(args, ' '), line1 = l1, line2 = l2 })
    end,
  },
  abort = { run = function() boo().abort() end },
  new = { run = act('new_chat') },
  tabclose = { run = act('tab_close') },
  next = { run = act('tab_next') },
  prev = { run = act('tab_prev') },
  split = {
    run = function(args, opts)
      boo()._action('split', { kind = args[1] or 'chat', mods = opts.mods, pane = require('boo.ui.pane').current() })
    end,
    complete = function() return { 'chat', 'term', 'code' } end,
  },
  close = { run = act('close_pane') },
  reopen = { run = act('reopen') },
  chats = { run = function() boo().chats() end },
  session = {
    run = function(args) H.session(args) end,
    complete = function(_, words)
      if #words <= 2 then return { 'new', 'rename', 'delete' } end
      return {}
    end,
  },
  diff = { run = function() boo().diff() end },
  usage = { run = function() boo().usage() end },
  accept = {
    run = function(args) boo().accept(H.path_arg(args)) end,
    complete = function() return H.pending_paths() end,
  },
  reject = {
    run = function(args) boo().reject(H.path_arg(args)) end,
    complete = function() return H.pending_paths() end,
  },
  agent = {
    run = function(args) boo().agent(args[1]) end,
    complete = function() return require('boo.ui.picker').complete('agent') end,
  },
  model = {
    run = function(args) boo().model(args[1]) end,
    complete = function() return require('boo.ui.picker').complete('model') end,
  },
  permissions = { run = function() boo().permissions() end },
  undo = { run = act('undo') },
  timeline = { run = act('timeline') },
  redo = { run = act('redo') },
  fork = {
    run = function(args)
      -- In a transcript, the turn under the cursor; elsewhere the chat's last turn.
      local chat, seq = require('boo.ui.chat').cursor_item()
      boo()._action(
        'fork',
        { pane = require('boo.ui.pane').current(), chat = chat, seq = seq, session = args[1] == 'session' }
      )
    end,
    complete = function() return { 'session' } end,
  },
  log = { run = function() boo().log() end },
  arena = { run = function(args) require('boo.ui.arena').command(table.concat(args, ' ')) end },
}

function M.names()
  local names = vim.tbl_keys(M.subcommands)
  table.sort(names)
  return names
end

--- Entry point of `:Boo` (see plugin/boo.lua).
function M.run(opts)
  local args = opts.fargs
  local name = args[1] or 'toggle'
  local sub = M.subcommands[name]
  if not sub then
    util.notify(
      ("unknown subcommand '%s'; use one of: %s"):format(name, table.concat(M.names(), ', ')),
      vim.log.levels.ERROR
    )
    return
  end
  -- A failure inside a subcommand reaches the user as one line, never as a stack trace.
  local ok, err = xpcall(sub.run, debug.traceback, vim.list_slice(args, 2), opts)
  if not ok then
    local log = require('boo.log')
    log.error(('`:Boo %s` failed: %s'):format(name, err))
    util.notify(
      ('`:Boo %s` failed: %s (details in :Boo log)'):format(name, tostring(err):match('^[^\n]*')),
      vim.log.levels.ERROR
    )
  end
end

--- Completion of `:Boo`: subcommand names, then the subcommand's own arguments.
function M.complete(arglead, cmdline, _)
  local words = vim.split(cmdline:gsub('^%s*%S*Boo!?%s*', ''), '%s+', { trimempty = false })
  local candidates
  if #words <= 1 then
    candidates = M.names()
  else
    local sub = M.subcommands[words[1]]
    candidates = sub and sub.complete and sub.complete(arglead, words) or {}
  end
  return vim.tbl_filter(function(c) return vim.startswith(c, arglead) end, candidates)
end

return M
