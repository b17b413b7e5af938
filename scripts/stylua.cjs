// Formats or checks the plugin's Lua files with StyLua (the pinned npm build, installed into
// .deps by scripts/bootstrap). Usage: node scripts/stylua.cjs [--check] FILE...
// The settings are .stylua.toml's, kept here too because the library takes no config file.
'use strict';
const fs = require('fs');
const path = require('path');

const lib = path.join(__dirname, '..', '.deps', 'stylua', 'node_modules', '@johnnymorganz', 'stylua');
const { Config, formatCode, IndentType, QuoteStyle, CollapseSimpleStatement, CallParenType, OutputVerification } =
  require(lib);

const args = process.argv.slice(2);
const check = args[0] === '--check';
const files = check ? args.slice(1) : args;
// A fresh config per file: formatCode takes ownership of it.
function config() {
  const cfg = Config.new();
  cfg.column_width = 120;
  cfg.indent_type = IndentType.Spaces;
  cfg.indent_width = 2;
  cfg.quote_style = QuoteStyle.AutoPreferSingle;
  cfg.call_parentheses = CallParenType.Always;
  cfg.collapse_simple_statement = CollapseSimpleStatement.Always;
  return cfg;
}

let bad = 0;
for (const f of files) {
  const src = fs.readFileSync(f, 'utf8');
  let out;
  try {
    out = formatCode(src, config(), undefined, OutputVerification.None);
  } catch (e) {
    console.error(`${f}: ${String(e).split('\n')[0]}`);
    bad++;
    continue;
  }
  if (out === src) continue;
  if (check) {
    console.error(`${f}: not formatted (run: make fmt)`);
    bad++;
  } else {
    fs.writeFileSync(f, out);
  }
}
process.exit(bad ? 1 : 0);
