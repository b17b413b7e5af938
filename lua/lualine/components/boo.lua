--- lualine component: `sections = { lualine_x = { 'boo' } }`. Shows `require('boo').statusline()`.
local ok, component = pcall(require, 'lualine.component')
if not ok then
  return function() return require('boo').statusline() end
end

local M = component:extend()

function M:update_status() return require('boo').statusline() end

return M
