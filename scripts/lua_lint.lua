-- A small Lua lint run by Neovim's LuaJIT (`scripts/lua-lint`): every file must load without a
-- syntax error, set no global variable, and read only globals that exist in Neovim (a typo such
-- as `vim.notfiy` is not caught, but `vmi.notify` or a forgotten `local` is).
local vmdef = require('jit.vmdef')
local jutil = require('jit.util')

-- Globals the plugin may read that plain `nvim -l` does not define.
local allowed = { _G = true, vim = true, jit = true, bit = true }

local function opname(ins)
  local op = bit.band(ins, 0xff)
  return vmdef.bcnames:sub(op * 6 + 1, op * 6 + 6):gsub(' +$', '')
end

local problems = 0
local function report(file, line, msg)
  problems = problems + 1
  io.stderr:write(('%s:%d: %s\n'):format(file, line, msg))
end

local function walk(fn, file)
  local info = jutil.funcinfo(fn)
  local pc = 1
  while true do
    local ins = jutil.funcbc(fn, pc)
    if not ins then break end
    local name = opname(ins)
    if name == 'GSET' or name == 'GGET' then
      local d = bit.rshift(ins, 16)
      local key = jutil.funck(fn, -d - 1)
      local line = jutil.funcinfo(fn, pc).currentline or info.linedefined
      if name == 'GSET' then
        report(file, line, ("sets the global '%s' (a missing 'local'?)"):format(tostring(key)))
      elseif not allowed[key] and _G[key] == nil then
        report(file, line, ("reads the undefined global '%s'"):format(tostring(key)))
      end
    end
    pc = pc + 1
  end
  -- Nested functions are the negative constants that are functions.
  local i = -1
  while true do
    local k = jutil.funck(fn, i)
    if k == nil then break end
    if type(k) == 'proto' or type(k) == 'function' then walk(k, file) end
    i = i - 1
  end
end

for _, file in ipairs(arg) do
  local chunk, err = loadfile(file)
  if not chunk then
    problems = problems + 1
    io.stderr:write(err .. '\n')
  else
    walk(chunk, file)
  end
end
if problems > 0 then
  io.stderr:write(('lua-lint: %d problem(s)\n'):format(problems))
  vim.cmd('cquit 1')
end
