--- Markdown renderers users run on transcripts (render-markdown.nvim, markview.nvim; add `boo`
--- to their file types). They redraw their marks on every change and scroll, so a streamed
--- answer would cost Neovim time in proportion to the stream (measured: 4.5 s of CPU above an
--- idle Neovim for 9,000 chunks, against 0.8 s without). While a chat's answer streams they are
--- paused on its buffer, boo's own highlighting goes on, and they draw the answer once the turn
--- ends.
local M = {}

--- Buffers paused by us (so a renderer the user turned off stays off).
M.paused = {} ---@type table<integer, boolean>
--- Transcripts over `ui.renderers_max_lines`: paused for good.
M.long = {} ---@type table<integer, boolean>

local function render_markdown(buf, on)
  if not package.loaded['render-markdown'] then return false end
  local ok = pcall(vim.api.nvim_buf_call, buf, function()
    local api = require('render-markdown')
    if on then
      api.buf_enable()
    else
      api.buf_disable()
    end
  end)
  return ok
end

local function markview(buf, on)
  if not package.loaded['markview'] then return false end
  local ok, actions = pcall(require, 'markview.actions')
  if not ok then return false end
  return pcall(on and actions.enable or actions.disable, buf)
end

--- Pauses the renderers of a transcript buffer (a turn started).
function M.pause(buf)
  if M.paused[buf] or not vim.api.nvim_buf_is_valid(buf) then return end
  local a, b = render_markdown(buf, false), markview(buf, false)
  if a or b then M.paused[buf] = true end
end

--- Lets them draw again (the turn ended), unless the transcript is too long for them.
function M.resume(buf)
  if not M.paused[buf] or M.long[buf] then return end
  M.paused[buf] = nil
  if not vim.api.nvim_buf_is_valid(buf) then return end
  render_markdown(buf, true)
  markview(buf, true)
end

--- A transcript about to hold `count` lines: past `ui.renderers_max_lines`, the renderers are
--- turned off on it before the lines arrive (their parse of the whole buffer would block).
function M.check_length(buf, count)
  if M.long[buf] then return end
  local max = require('boo.config').get().ui.renderers_max_lines
  if max == 0 or count <= max then return end
  M.long[buf] = true
  M.pause(buf)
end

local function chat_buf(ev)
  local chat = type(ev.data) == 'table' and ev.data.chat
  local view = chat and require('boo.ui.chat').chats[chat]
  return view and view.buf
end

function M.setup()
  local group = vim.api.nvim_create_augroup('boo.renderers', { clear = true })
  vim.api.nvim_create_autocmd('User', {
    group = group,
    pattern = 'BooTurnStart',
    callback = function(ev)
      if not require('boo.config').get().ui.pause_renderers then return end
      local buf = chat_buf(ev)
      if buf then M.pause(buf) end
    end,
  })
  vim.api.nvim_create_autocmd('User', {
    group = group,
    pattern = 'BooTurnDone',
    callback = function(ev)
      local buf = chat_buf(ev)
      if buf then M.resume(buf) end
    end,
  })
end

return M
