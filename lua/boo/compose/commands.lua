--- `/` commands at the start of a prompt: boo's own, run in the editor.
local M = {}

--- name -> {desc, run(arg, chat)}
M.boo = {
  new = {
    desc = 'new chat tab',
    run = function() require('boo')._action('new_chat', { pane = require('boo.ui.pane').current() }) end,
  },
  model = {
    desc = 'set or pick the model',
    run = function(arg, chat) require('boo').model(arg, { chat = chat }) end,
  },
  agent = {
    desc = 'set or pick the agent',
    run = function(arg, chat) require('boo').agent(arg, { chat = chat }) end,
  },
  abort = { desc = "stop the chat's turn", run = function(_, chat) require('boo').abort({ chat = chat }) end },
  diff = { desc = 'review pending changes', run = function() require('boo').diff() end },
}

--- The agent's own commands (opencode's, listed by the backend): name -> description.
function M.agent(chat)
  local list = require('boo.rpc').request('commands', { chat = chat })
  return type(list) == 'table' and list or {}
end

--- Every command for completion: name -> description (boo's win a name clash).
function M.list(chat)
  local out = {}
  for name, desc in pairs(M.agent(chat)) do
    out[name] = desc ~= '' and desc or 'agent command'
  end
  for name, c in pairs(M.boo) do
    out[name] = c.desc
  end
  return out
end

--- The agent command `text` starts with, if any (sent to the agent as a command).
function M.agent_command(text, chat)
  local name = text:match('^/(%S+)')
  if name and not M.boo[name] and M.agent(chat)[name] ~= nil then return name end
  return nil
end

--- Runs `text` when it is one of boo's commands; true when it was.
function M.run(text, chat)
  local name, arg = text:match('^/(%S+)%s*(.-)%s*$')
  local c = name and M.boo[name]
  if not c then return false end
  c.run(arg ~= '' and arg or nil, chat)
  return true
end

return M
