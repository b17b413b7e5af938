--- A statusline string from the state the backend last pushed: no RPC, and the string is
--- rebuilt only when that state (or the spinner frame) changed.
local M = {}
local H = { frames = { '⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏' }, used = false }

--- `$0.0018`, `$0.004`, `$0.12`, `$3.40` (as the winbar writes costs).
function H.cost(c)
  if c >= 1 then return ('$%.2f'):format(c) end
  if c >= 0.01 then return ('$%.3f'):format(c) end
  local s = ('%.4f'):format(c):gsub('0+$', ''):gsub('%.$', '')
  return '$' .. s
end

function H.build(s, frame)
  if not s.session then return '' end
  local parts = { 'boo' }
  if s.busy then table.insert(parts, H.frames[frame]) end
  if (s.pending_changes or 0) > 0 then table.insert(parts, '±' .. s.pending_changes) end
  if (s.permissions or 0) > 0 then table.insert(parts, '⚠' .. s.permissions) end
  if (s.cost or 0) > 0 then table.insert(parts, H.cost(s.cost)) end
  return table.concat(parts, ' ')
end

--- While a turn runs the spinner turns: statuslines are redrawn ten times a second, only
--- once someone asked for the string and only while busy.
function H.tick()
  local busy = require('boo.ui.render').status.busy
  if busy and H.used and not H.timer then
    H.timer = vim.uv.new_timer()
    H.timer:start(
      100,
      100,
      vim.schedule_wrap(function()
        if not require('boo.ui.render').status.busy then
          if H.timer then
            H.timer:stop()
            H.timer:close()
            H.timer = nil
          end
        end
        vim.cmd.redrawstatus({ bang = true })
      end)
    )
  end
end

--- The string: `boo ⠋ ±2 ⚠1 $0.0036` (spinner while busy, pending changes, permissions
--- waiting, the session's cost); '' before any session.
function M.get()
  H.used = true
  local s = require('boo.ui.render').status
  local frame = s.busy and (math.floor(vim.uv.now() / 100) % #H.frames + 1) or 1
  if s ~= H.status or frame ~= H.frame then
    H.status, H.frame, H.str = s, frame, H.build(s, frame)
    H.tick()
  end
  return H.str
end

--- Called when the backend pushes a new state.
function M.changed()
  if H.used then
    H.tick()
    vim.cmd.redrawstatus({ bang = true })
  end
end

return M
