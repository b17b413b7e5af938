--- nvim-cmp source of the chat input (`@` files, `#` context, `/` commands). Registered by
--- `setup()` when nvim-cmp is installed; add `{ name = 'boo' }` to the sources of filetype
--- `boo_input`.
local M = {}

function M.new() return setmetatable({}, { __index = M }) end

function M:is_available() return vim.bo.filetype == 'boo_input' end

function M:get_trigger_characters() return { '@', '#', '/' } end

function M:get_keyword_pattern() return [[\%([@#/]\S*\)]] end

--- The items as LSP completion items replacing the word being typed.
function M.lsp_items(line, col, lnum, chat)
  local complete = require('boo.compose.complete')
  local start, word = complete.word_before(line, col, lnum)
  if not start then return {} end
  local out = {}
  for _, it in ipairs(complete.items(word, chat)) do
    table.insert(out, {
      label = it.word,
      filterText = it.word,
      detail = it.menu,
      textEdit = {
        newText = it.word,
        range = {
          start = { line = lnum - 1, character = start },
          ['end'] = { line = lnum - 1, character = col },
        },
      },
    })
  end
  return out
end

function M:complete(params, callback)
  local buf = vim.api.nvim_get_current_buf()
  local chat = require('boo.ui.chat').by_buf[buf]
  local cur = params.context.cursor
  callback(M.lsp_items(params.context.cursor_before_line, cur.col - 1, cur.row, chat))
end

--- Registers the source with nvim-cmp when it is installed; true when it was.
function M.register()
  local ok, cmp = pcall(require, 'cmp')
  if not ok or type(cmp.register_source) ~= 'function' then return false end
  cmp.register_source('boo', M.new())
  return true
end

return M
