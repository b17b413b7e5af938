-- Writes (or with --check, compares) the configuration keys of doc/boo.txt from the schema in
-- lua/boo/config.lua. Run by `make docs`: nvim -l scripts/config_doc.lua [--check]
vim.opt.rtp:prepend('.')
local BEGIN = 'Keys (generated from lua/boo/config.lua by `make docs`; do not edit):'
local END = '(end of the generated keys)'
local path = 'doc/boo.txt'
local lines = vim.fn.readfile(path)
local first, last
for i, l in ipairs(lines) do
  if l == BEGIN then first = i end
  if l == END and first then
    last = i
    break
  end
end
if not (first and last) then
  io.stderr:write(path .. ': the markers of the generated keys are missing\n')
  vim.cmd('cquit 2')
end
local want = { BEGIN, '' }
vim.list_extend(want, require('boo.config').doc_lines())
vim.list_extend(want, { '', END })
local have = vim.list_slice(lines, first, last)
if vim.deep_equal(have, want) then return end
if arg[1] == '--check' then
  io.stderr:write(path .. ': the configuration keys differ from lua/boo/config.lua; run: make docs\n')
  vim.cmd('cquit 1')
end
local out = vim.list_slice(lines, 1, first - 1)
vim.list_extend(out, want)
vim.list_extend(out, vim.list_slice(lines, last + 1))
vim.fn.writefile(out, path)
