--- Completion in the chat input (its 'omnifunc', so <C-x><C-o>, nvim-cmp's and blink.cmp's
--- omni sources work): `@` files of the session's worktree (listed by the backend), `#`
--- editor context, `/` commands at the start of the prompt.
local M = {}
local H = {}

--- The chat of the input buffer.
function H.chat(buf) return require('boo.ui.chat').by_buf[buf or vim.api.nvim_get_current_buf()] end

--- Files of the chat's worktree, as the backend last listed them (an in-memory answer).
function M.files(chat)
  local list = require('boo.rpc').request('files', { chat = chat })
  return type(list) == 'table' and list or {}
end

H.IMAGE = { png = true, jpg = true, jpeg = true, gif = true, webp = true }

--- The candidates for one word (sigil included): completion items.
function M.items(word, chat)
  local sigil, query = word:sub(1, 1), word:sub(2)
  local items = {}
  if sigil == '@' then
    local files = M.files(chat)
    local path, range = query:match('^(.-)(:[%d%-]*)$')
    if range then
      -- A range is being typed: the path is done.
      return { { word = word, menu = 'lines', abbr = word } }
    end
    local matched = query == '' and vim.list_slice(files, 1, 200) or vim.fn.matchfuzzy(files, query, { limit = 200 })
    for _, f in ipairs(matched) do
      local ext = (f:match('%.(%w+)$') or ''):lower()
      table.insert(items, { word = '@' .. f, abbr = f, menu = H.IMAGE[ext] and '[image]' or '[file]' })
    end
  elseif sigil == '#' then
    local names = vim.tbl_keys(require('boo.compose.context').sources)
    table.sort(names)
    local matched = query == '' and names or vim.fn.matchfuzzy(names, query)
    for _, n in ipairs(matched) do
      table.insert(items, { word = '#' .. n, menu = require('boo.compose.context').sources[n] })
    end
  elseif sigil == '/' then
    local cmds = require('boo.compose.commands').list(chat)
    local names = vim.tbl_keys(cmds)
    table.sort(names)
    local matched = query == '' and names or vim.fn.matchfuzzy(names, query)
    for _, n in ipairs(matched) do
      table.insert(items, { word = '/' .. n, menu = cmds[n] })
    end
  end
  return items
end

--- The word before the cursor that completion works on: its start column (0-based) and text,
--- or nil. `/` counts only at the very start of the prompt.
function M.word_before(line, col, lnum)
  local before = line:sub(1, col)
  local start = before:find('%S*$')
  local word = before:sub(start)
  local sigil = word:sub(1, 1)
  if sigil == '@' or sigil == '#' then return start - 1, word end
  if sigil == '/' and lnum == 1 and start == 1 then return 0, word end
  return nil
end

--- 'omnifunc' of the input buffer.
function M.omnifunc(findstart, base)
  if findstart == 1 then
    local col = vim.api.nvim_win_get_cursor(0)[2]
    local start = M.word_before(vim.api.nvim_get_current_line(), col, vim.fn.line('.'))
    return start or -3
  end
  return M.items(base, H.chat())
end

--- Sets up an input buffer: the omnifunc, completion on typing a sigil, a fresh file list when
--- it gains focus.
function M.attach(buf, chat)
  if not H.cmp then
    -- nvim-cmp's source, when nvim-cmp is installed (blink.cmp loads its module itself).
    H.cmp = true
    require('boo.compose.cmp').register()
  end
  vim.bo[buf].omnifunc = "v:lua.require'boo.compose.complete'.omnifunc"
  local group = vim.api.nvim_create_augroup('boo.complete.' .. buf, { clear = true })
  vim.api.nvim_create_autocmd('InsertEnter', {
    group = group,
    buffer = buf,
    callback = function() require('boo.rpc').notify('files_refresh', { chat = chat }) end,
  })
  if not require('boo.config').get().compose.auto_complete then return end
  vim.api.nvim_create_autocmd('InsertCharPre', {
    group = group,
    buffer = buf,
    callback = function()
      local c = vim.v.char
      if c ~= '@' and c ~= '#' and c ~= '/' then return end
      local col = vim.api.nvim_win_get_cursor(0)[2]
      local before = vim.api.nvim_get_current_line():sub(1, col)
      local at_word = before == '' or before:match('%s$') ~= nil
      if c == '/' then at_word = before == '' and vim.fn.line('.') == 1 end
      if not at_word then return end
      vim.schedule(function()
        if vim.api.nvim_get_current_buf() == buf and vim.fn.mode() == 'i' and vim.fn.pumvisible() == 0 then
          vim.api.nvim_feedkeys(vim.keycode('<C-x><C-o>'), 'n', false)
        end
      end)
    end,
  })
end

return M
