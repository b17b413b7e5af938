--- blink.cmp source of the chat input (`@` files, `#` context, `/` commands). Loaded by
--- blink.cmp only when configured:
---   sources.providers.boo = { name = 'boo', module = 'boo.compose.blink' }
--- and `boo` added to the sources of filetype `boo_input`.
local M = {}

function M.new() return setmetatable({}, { __index = M }) end

function M:enabled() return vim.bo.filetype == 'boo_input' end

function M:get_trigger_characters() return { '@', '#', '/' } end

function M:get_completions(ctx, callback)
  local chat = require('boo.ui.chat').by_buf[ctx.bufnr or vim.api.nvim_get_current_buf()]
  local row, col = ctx.cursor[1], ctx.cursor[2]
  local items = require('boo.compose.cmp').lsp_items(ctx.line, col, row, chat)
  for _, it in ipairs(items) do
    it.kind = 1 -- Text
  end
  callback({ items = items, is_incomplete_forward = false, is_incomplete_backward = false })
end

return M
