--- Pasting an image from the clipboard into the input: read with `wl-paste` (Wayland) or
--- `xclip` (X11) in the background, saved next to the store (`pastes/`), and mentioned as
--- `@paste:{name}` (sent as an image attachment).
local M = {}
local H = {}

function M.tool()
  if vim.env.WAYLAND_DISPLAY and vim.fn.executable('wl-paste') == 1 then
    return { 'wl-paste', '--no-newline', '--type', 'image/png' }
  end
  if vim.fn.executable('xclip') == 1 then return { 'xclip', '-selection', 'clipboard', '-t', 'image/png', '-o' } end
  return nil
end

--- Where pasted images are kept: beside the database the backend uses.
function M.dir() return vim.fs.dirname(require('boo.config').resolved().store_path) .. '/pastes' end

function H.notify(msg, level) require('boo.util').notify(msg, level or vim.log.levels.WARN) end

--- Writes `data` to `path` without blocking the editor, then calls `done(err)` on the loop.
function H.write(path, data, done)
  local uv = vim.uv
  uv.fs_mkdir(vim.fs.dirname(path), 448, function()
    uv.fs_open(path, 'w', 384, function(err, fd)
      if not fd then
        return vim.schedule(function() done(err) end)
      end
      uv.fs_write(fd, data, 0, function(werr)
        uv.fs_close(fd, function()
          vim.schedule(function() done(werr) end)
        end)
      end)
    end)
  end)
end

--- Pastes the clipboard's image into the input of `chat` (at the cursor).
function M.image(chat)
  local cmd = M.tool()
  if not cmd then return H.notify('no clipboard tool found: install wl-paste (Wayland) or xclip (X11)') end
  vim.system(cmd, { text = false }, function(r)
    vim.schedule(function()
      if r.code ~= 0 or not r.stdout or #r.stdout == 0 then
        return H.notify('the clipboard holds no image (' .. cmd[1] .. ' found none)')
      end
      local name = ('paste-%s-%d.png'):format(os.date('%Y%m%d-%H%M%S'), vim.uv.hrtime() % 1000)
      H.write(M.dir() .. '/' .. name, r.stdout, function(err)
        if err then return H.notify('pasted image not saved: ' .. tostring(err), vim.log.levels.ERROR) end
        M.insert(chat, '@paste:' .. name .. ' ')
      end)
    end)
  end)
end

--- Inserts `text` at the cursor of the chat's input (at its end when it is not shown).
function M.insert(chat, text)
  local view = require('boo.ui.chat').chats[chat]
  if not view or not vim.api.nvim_buf_is_valid(view.input) then return end
  local win = vim.fn.bufwinid(view.input)
  if win ~= -1 then
    local pos = vim.api.nvim_win_get_cursor(win)
    vim.api.nvim_buf_set_text(view.input, pos[1] - 1, pos[2], pos[1] - 1, pos[2], { text })
    vim.api.nvim_win_set_cursor(win, { pos[1], pos[2] + #text })
  else
    local last = vim.api.nvim_buf_line_count(view.input)
    local line = vim.api.nvim_buf_get_lines(view.input, last - 1, last, false)[1]
    vim.api.nvim_buf_set_text(view.input, last - 1, #line, last - 1, #line, { text })
  end
end

return M
