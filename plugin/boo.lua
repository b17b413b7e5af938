-- boo.nvim: only wiring here; everything heavy loads on first use.
if vim.g.loaded_boo then return end
vim.g.loaded_boo = true

vim.api.nvim_create_user_command('Boo', function(opts) require('boo.commands').run(opts) end, {
  nargs = '*',
  range = true,
  bang = true,
  desc = 'boo.nvim: coding agents in worktrees',
  complete = function(...) return require('boo.commands').complete(...) end,
})

vim.keymap.set('n', '<Plug>(boo-toggle)', function() require('boo').toggle() end, { desc = 'boo: toggle chat' })
vim.keymap.set('n', '<Plug>(boo-diff)', '<Cmd>Boo diff<CR>', { desc = 'boo: review changes' })
vim.keymap.set('x', '<Plug>(boo-ask)', ':Boo ask<CR>', { desc = 'boo: ask about the selection', silent = true })
