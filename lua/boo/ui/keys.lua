--- Buffer-local keys of chat and input buffers (configurable; `false` disables one).
local M = {}

local function map(buf, mode, lhs, rhs, desc)
  if not lhs or lhs == false or lhs == '' then return end
  vim.keymap.set(mode, lhs, rhs, { buffer = buf, nowait = true, silent = true, desc = 'boo: ' .. desc })
end

local function pane() return require('boo.ui.pane').current() end
local function act(method, extra)
  return function()
    local ok, err = require('boo.rpc').notify(method, vim.tbl_extend('force', { pane = pane() }, extra or {}))
    if not ok then require('boo.util').notify(err, vim.log.levels.ERROR) end
  end
end

local function hide()
  local p = pane()
  if p then require('boo.ui.pane').user_close(p) end
end

local function toggle_block()
  local lnum = vim.fn.line('.')
  if vim.fn.foldlevel(lnum) > 0 then vim.cmd('normal! za') end
end

local function common(buf, chat)
  local k = require('boo.config').get().keys
  map(buf, 'n', k.hide, hide, 'hide')
  map(buf, 'n', k.next_tab, act('tab_next'), 'next tab')
  map(buf, 'n', k.prev_tab, act('tab_prev'), 'previous tab')
  map(buf, 'n', k.new_tab, act('new_chat'), 'new tab')
  map(buf, 'n', k.review, function() require('boo').diff() end, 'review changes')
  map(buf, { 'n', 'i' }, k.abort, function() require('boo').abort({ chat = chat }) end, 'abort turn')
end

function M.chat(buf, chat)
  common(buf, chat)
  map(buf, 'n', require('boo.config').get().keys.toggle_block, toggle_block, 'toggle block')
end

function M.input(buf, chat)
  common(buf, chat)
  local k = require('boo.config').get().keys
  local send = function() require('boo').send_input(chat) end
  map(buf, 'n', k.send, send, 'send')
  map(buf, 'i', k.send_insert, function()
    vim.cmd.stopinsert()
    send()
  end, 'send')
  require('boo.compose.complete').attach(buf, chat)
  map(buf, { 'n', 'i' }, k.paste_image, function() require('boo.compose.paste').image(chat) end, 'paste image')
  require('boo.compose.history').attach(buf, chat)
  require('boo.compose.history').keys(buf, chat)
end

return M
