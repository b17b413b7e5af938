--- Highlight groups, linked with `default = true` so colorschemes and users can override them.
local M = {}

M.groups = {
  BooUser = 'Title',
  BooError = 'DiagnosticError',
  BooInfo = 'Comment',
  BooWelcome = 'Comment',
  BooQueued = 'DiagnosticHint',
  BooBlockHeader = 'Special',
  BooBlockRunning = 'DiagnosticWarn',
  BooBlockDone = 'DiagnosticOk',
  BooBlockFailed = 'DiagnosticError',
  BooPermission = 'DiagnosticWarn',
  BooReasoning = 'Comment',
  -- Items of a turn taken back with :Boo undo.
  BooUndone = 'NonText',
  -- Transcript markdown (computed by the backend per changed line).
  BooMdHeading = '@markup.heading',
  BooMdStrong = '@markup.strong',
  BooMdEmphasis = '@markup.italic',
  BooMdCodeSpan = '@markup.raw',
  BooMdCode = '@markup.raw.block',
  BooMdFence = '@punctuation.delimiter',
  BooMdList = '@markup.list',
  BooMdQuote = '@markup.quote',
  BooTab = 'TabLine',
  BooTabActive = 'TabLineSel',
  BooTabBusy = 'DiagnosticWarn',
  BooTabFill = 'TabLineFill',
  BooTabInfo = 'TabLineFill',
  BooTabWarn = 'DiagnosticWarn',
}

function M.apply()
  for name, link in pairs(M.groups) do
    vim.api.nvim_set_hl(0, name, { link = link, default = true })
  end
end

function M.setup()
  M.apply()
  vim.api.nvim_create_autocmd('ColorScheme', {
    group = vim.api.nvim_create_augroup('boo.highlight', { clear = true }),
    callback = M.apply,
  })
end

return M
