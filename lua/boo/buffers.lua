--- Buffer text for the backend: what an ACP agent reads of a file open in the editor
--- (unsaved edits included). Called by boocoder with `nvim_exec_lua`; answers from memory.
local M = {}

--- The text of the loaded buffer showing `path` (absolute), or nil.
---@param path string
---@return string|nil
function M.text(path)
  local want = vim.uv.fs_realpath(path) or path
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.bo[b].buftype == '' then
      local name = vim.api.nvim_buf_get_name(b)
      if name ~= '' and (name == path or (vim.uv.fs_realpath(name) or name) == want) then
        local lines = vim.api.nvim_buf_get_lines(b, 0, -1, false)
        local text = table.concat(lines, '\n')
        if vim.bo[b].eol and #lines > 0 then text = text .. '\n' end
        return text
      end
    end
  end
  return nil
end

return M
