--- Configuration: defaults, validation, and the merged result.
--- Sources, later wins: defaults < `vim.g.boo` < `require('boo').setup(opts)`.
local M = {}
local H = {}

--- The schema: every key with its default, accepted types and a one-line description (the
--- configuration keys of `doc/boo.txt` are generated from it: `make docs`). Keys absent here are
--- errors. A table value without `types` is a nested group.
H.schema = {
  backend = {
    cmd = {
      default = nil,
      types = { 'string', 'table', 'nil' },
      desc = 'Command to run instead of the built binary: a path or a list (program + args).',
    },
    extra_args = {
      default = true,
      types = { 'boolean' },
      desc = 'Append `--log FILE` to the command; false runs `cmd` exactly as given.',
    },
    log_file = {
      default = nil,
      types = { 'string', 'nil' },
      path = true,
      desc = "Log file of the backend; nil = stdpath('log')/boo.log.",
    },
    log_level = {
      default = 'info',
      types = { 'string' },
      desc = 'Log level of the backend: error, warn, info, debug or trace.',
    },
  },
  store = {
    path = {
      default = nil,
      types = { 'string', 'nil' },
      path = true,
      desc = "SQLite database of sessions, chats and transcripts; nil = stdpath('data')/boo/boo.db.",
    },
  },
  opencode = {
    cmd = { default = 'opencode', types = { 'string' }, desc = 'The opencode executable (found on PATH).' },
    url = {
      default = nil,
      types = { 'string', 'nil' },
      desc = 'Attach to a running server (e.g. on a bigger machine) instead of starting one.',
    },
    password = { default = nil, types = { 'string', 'nil' }, desc = 'Password of the server at `url`.' },
    model = {
      default = nil,
      types = { 'string', 'nil' },
      desc = 'Default model as "provider/model"; nil = opencode\'s own default.',
    },
    watchdog_seconds = {
      default = 180,
      types = { 'number' },
      check = 'positive_int',
      desc = 'Seconds without any event before a running turn is re-synced, then failed.',
    },
  },
  router = {
    url = {
      default = nil,
      types = { 'string', 'nil' },
      desc = 'Base URL of an OpenAI-compatible model router (llama-swap, vLLM, Ollama), e.g. "http://127.0.0.1:8080/v1"; nil = none.',
    },
    name = {
      default = 'llama-swap',
      types = { 'string' },
      desc = 'Provider name of the router in opencode: its models are "<name>/<model>".',
    },
    api_key = { default = nil, types = { 'string', 'nil' }, desc = 'API key of the router.' },
  },
  agents = {
    default = {},
    types = { 'table' },
    desc = "Agents run as processes: { qwen = { cmd = 'qwen', args = {...}, env = {...}, protocol = 'acp' } }; `args` replaces the default arguments, `env` is added; `protocol` is 'acp' (Agent Client Protocol) or 'stream-json' (qwen's and claude's own JSON output). ACP by default: qwen, goose (ACP only), opencode-acp, gemini, codex-acp (claude with protocol = 'acp'; qwen's CLI with protocol = 'stream-json'); any other name with protocol = 'acp' and a cmd is an ACP agent too. `watchdog_seconds` (default 600; 0 = off) stops a turn after that long with nothing from the agent. For ACP agents `args` are added after the built-in ones (|boo-acp|).",
  },
  mcp = {
    enabled = {
      default = true,
      types = { 'boolean' },
      desc = "Offer opencode boo's MCP server (127.0.0.1, a random token): its agents can start tasks in new chats (`boo_new_task`) and follow them (`boo_task_status`).",
    },
    max_depth = {
      default = 2,
      types = { 'number' },
      check = 'positive_int',
      desc = 'How deep tasks may start tasks: a chat of yours is depth 0, its task 1... a task beyond this is refused.',
    },
    max_tasks = {
      default = 4,
      types = { 'number' },
      check = 'positive_int',
      desc = 'Tasks started by agents that may be running or queued at once; more are refused.',
    },
  },
  arena = {
    contestants = {
      default = {},
      types = { 'table' },
      check = 'contestants',
      desc = "Saved contestants of `:Boo arena`: { 'opencode:provider/model', 'qwen', ... } (an agent, or an agent and a model after ':'); with a saved set, `:Boo arena {prompt}` starts at once.",
    },
    limit = {
      default = 3,
      types = { 'number' },
      check = 'positive_int',
      desc = 'Contestants of an arena running at once; the others wait their turn.',
    },
    check = {
      default = nil,
      types = { 'table', 'nil' },
      check = 'argv',
      desc = "The arena's check command as a list of words, e.g. { 'make', 'test' } (no shell; use { 'sh', '-c', '...' } for one), run in each contestant's worktree when its turn ends. nil = no check.",
    },
    check_timeout = {
      default = 300,
      types = { 'number' },
      check = 'positive_int',
      desc = 'Seconds before a check is stopped (and counted as failed).',
    },
  },
  budget = {
    cost = {
      default = nil,
      types = { 'number', 'nil' },
      check = 'positive',
      desc = 'Per-session cap in dollars: a turn past it is not run (or, between steps, aborted); the winbar warns at 80%. nil = none.',
    },
    tokens = {
      default = nil,
      types = { 'number', 'nil' },
      check = 'positive_int',
      desc = 'Per-session cap in tokens (in + out), like `cost`. nil = none.',
    },
  },
  worktree = {
    dir = {
      default = nil,
      types = { 'string', 'nil' },
      path = true,
      desc = "Where session worktrees live; nil = stdpath('data')/boo/worktrees.",
    },
    copy_ignored = {
      default = { '.env' },
      types = { 'table' },
      check = 'string_list',
      desc = 'Ignored files copied into a new worktree (e.g. secrets the build needs).',
    },
    spare = {
      default = true,
      types = { 'boolean' },
      desc = 'Keep one spare worktree (branch boo/spare-*) checked out ahead and loaded in opencode, so the next session starts, and answers its first prompt, without waiting for the checkout or for opencode to load the directory. The session adopts it in place: its worktree directory keeps the spare-* name.',
    },
  },
  ui = {
    fps = {
      default = 20,
      types = { 'number' },
      check = 'positive',
      desc = 'Most times a second a streaming chat is redrawn (1-120). Each redraw costs Neovim about the same whatever it carries: 20 halves the CPU of 30 on a long stream; 30 or 60 look smoother.',
    },
    welcome = {
      default = true,
      types = { 'boolean' },
      desc = 'Show a welcome (keys, example prompts) in an empty chat until its first prompt.',
    },
    markdown = {
      default = 'boo',
      types = { 'string' },
      desc = "'boo': highlights computed by the backend per changed line (cheap at any length); render-markdown.nvim and markview.nvim draw on top of it when `boo` is among their file types. 'treesitter': Neovim's markdown highlighter instead (costs O(buffer) per change).",
    },
    pause_renderers = {
      default = true,
      types = { 'boolean' },
      desc = 'Pause render-markdown.nvim / markview.nvim on a chat while its answer streams (boo keeps highlighting it) and let them draw it when the turn ends: live, they cost Neovim about five times the CPU of the whole stream.',
    },
    renderers_max_lines = {
      default = 5000,
      types = { 'number' },
      check = 'whole',
      desc = "A transcript longer than this many lines is left to boo's own highlighting: render-markdown.nvim / markview.nvim are turned off on it, since their parse of the whole buffer blocks Neovim (measured: 0.9 s to open a 50,000-line chat with render-markdown, 0.09 s without). 0: never.",
    },
    conceal = {
      default = true,
      types = { 'boolean' },
      desc = "Hide markdown markup (`**`, backticks, a heading's `#`s) in transcripts, except on the cursor line (with `ui.markdown = 'boo'`).",
    },
    float = {
      width = {
        default = 0.8,
        types = { 'number' },
        check = 'positive',
        desc = "Width of the chat float, as a fraction of the editor's columns.",
      },
      height = {
        default = 0.8,
        types = { 'number' },
        check = 'positive',
        desc = "Height of the chat float, as a fraction of the editor's lines.",
      },
      border = {
        default = 'rounded',
        types = { 'string', 'table' },
        desc = 'Border of the chat float (see |nvim_open_win()|).',
      },
    },
  },
  compose = {
    auto_complete = {
      default = true,
      types = { 'boolean' },
      desc = 'Open completion in the chat input on typing `@` (files), `#` (context) or `/` (commands, at the start).',
    },
    max_context_lines = {
      default = 2000,
      types = { 'number' },
      check = 'positive_int',
      desc = 'Lines of one buffer or selection attached by `#buffer`, `#buffers`, `#selection`; more are cut (and the text says so).',
    },
  },
  keys = {
    hide = { default = 'q', types = { 'string', 'boolean' }, desc = 'Chat key: hide the float; false disables it.' },
    next_tab = { default = ']t', types = { 'string', 'boolean' }, desc = 'Chat key: next tab.' },
    prev_tab = { default = '[t', types = { 'string', 'boolean' }, desc = 'Chat key: previous tab.' },
    new_tab = { default = 'gn', types = { 'string', 'boolean' }, desc = 'Chat key: new tab.' },
    review = { default = 'gd', types = { 'string', 'boolean' }, desc = "Chat key: review the session's changes." },
    toggle_block = {
      default = '<Tab>',
      types = { 'string', 'boolean' },
      desc = 'Chat key: fold or unfold the block under the cursor.',
    },
    send = { default = '<CR>', types = { 'string', 'boolean' }, desc = 'Input key (normal mode): send the prompt.' },
    send_insert = {
      default = '<C-s>',
      types = { 'string', 'boolean' },
      desc = 'Input key (insert mode): send the prompt.',
    },
    paste_image = {
      default = '<M-v>',
      types = { 'string', 'boolean' },
      desc = 'Input key (normal and insert mode): paste the image in the clipboard (wl-paste or xclip) as an attachment.',
    },
    history_prev = {
      default = '<Up>',
      types = { 'string', 'boolean' },
      desc = "Input key (normal mode, on the input's first line): the previous prompt of the chat's history.",
    },
    history_next = {
      default = '<Down>',
      types = { 'string', 'boolean' },
      desc = "Input key (normal mode, on the input's last line): the next prompt of the history.",
    },
    history_prev_insert = {
      default = '<C-p>',
      types = { 'string', 'boolean' },
      desc = 'Input key (insert mode, no completion menu open): the previous prompt of the history.',
    },
    history_next_insert = {
      default = '<C-n>',
      types = { 'string', 'boolean' },
      desc = 'Input key (insert mode, no completion menu open): the next prompt of the history.',
    },
    abort = { default = '<C-c>', types = { 'string', 'boolean' }, desc = 'Chat key: abort the running turn.' },
  },
}

function H.is_leaf(node) return node.types ~= nil end

--- The help text of every key (sorted), from the schema: what `make docs` writes into
--- doc/boo.txt between its markers.
function M.doc_lines()
  local out = {}
  local function default_of(v)
    if v == nil then return 'nil' end
    return vim.inspect(v, { newline = ' ', indent = '' })
  end
  local function walk(node, prefix)
    local keys = vim.tbl_keys(node)
    table.sort(keys)
    for _, k in ipairs(keys) do
      local child, name = node[k], prefix == '' and k or (prefix .. '.' .. k)
      if H.is_leaf(child) then
        table.insert(
          out,
          ('`%s` (%s) default: `%s`'):format(name, table.concat(child.types, '|'), default_of(child.default))
        )
        -- Wrapped at 78 columns with a tab-width indent, as help text is.
        local line = ''
        for word in child.desc:gmatch('%S+') do
          if #line + #word + 1 > 70 and line ~= '' then
            table.insert(out, '\t' .. line)
            line = word
          else
            line = line == '' and word or (line .. ' ' .. word)
          end
        end
        if line ~= '' then table.insert(out, '\t' .. line) end
      else
        walk(child, name)
      end
    end
  end
  walk(H.schema, '')
  return out
end

function H.defaults(schema)
  local out = {}
  for k, node in pairs(schema) do
    if H.is_leaf(node) then
      out[k] = vim.deepcopy(node.default)
    else
      out[k] = H.defaults(node)
    end
  end
  return out
end

--- Checks by meaning, after the type: each returns what the value must be, or nil when fine.
H.checks = {
  positive = function(v) return not (v > 0) and 'a positive number' or nil end,
  positive_int = function(v)
    return not (v > 0 and v == math.floor(v) and v < 2 ^ 53) and 'a positive whole number' or nil
  end,
  whole = function(v) return not (v >= 0 and v == math.floor(v) and v < 2 ^ 53) and 'a whole number (0 or more)' or nil end,
  string_list = function(v)
    if not vim.islist(v) then return 'a list of strings' end
    for _, x in ipairs(v) do
      if type(x) ~= 'string' then return 'a list of strings' end
    end
  end,
  argv = function(v)
    if not vim.islist(v) or #v == 0 then return 'a non-empty list of strings' end
    for _, x in ipairs(v) do
      if type(x) ~= 'string' then return 'a non-empty list of strings' end
    end
  end,
  contestants = function(v)
    local shape = "a list of 'agent' or 'agent:provider/model' strings"
    if not vim.islist(v) then return shape end
    for _, x in ipairs(v) do
      if type(x) ~= 'string' or not x:match('^[%w][%w_%-%.]*') then return shape end
    end
  end,
  string_map = function(v)
    for k, x in pairs(v) do
      if type(k) ~= 'string' or type(x) ~= 'string' then return 'a table of string = string' end
    end
  end,
}

--- `~` and `$VARS` expanded, made absolute (against the cwd of the moment).
function H.expand_path(p) return vim.fn.fnamemodify(vim.fs.normalize(p), ':p') end

--- Checks one value against a leaf's types and meaning; returns an error message or nil, and
--- the value to keep (a path expanded).
function H.check_leaf(path, value, node)
  local ok, err = pcall(vim.validate, { [path] = { value, node.types } })
  -- vim.validate's message names the key and the expected types; drop any source position.
  if not ok then return (tostring(err):gsub('^.-:%d+: ', '')) end
  if value == nil or value == vim.NIL then return nil, value end
  local must = node.check and H.checks[node.check](value)
  if must then
    return ('%s must be %s, got %s'):format(path, must, vim.inspect(value, { newline = ' ', indent = '' }))
  end
  if node.path then
    if vim.trim(value) == '' then return ('%s must be a non-empty path'):format(path) end
    value = H.expand_path(value)
  end
  return nil, value
end

--- Merges `user` into `base` following the schema; collects one message per bad key.
function H.merge(base, user, schema, prefix, errors)
  if type(user) ~= 'table' then
    table.insert(errors, ('%s must be a table, got %s'):format(prefix == '' and 'config' or prefix, type(user)))
    return
  end
  for k, v in pairs(user) do
    local path = prefix == '' and tostring(k) or (prefix .. '.' .. tostring(k))
    local node = schema[k]
    if node == nil then
      local known = vim.tbl_keys(schema)
      table.sort(known)
      table.insert(errors, ("unknown key '%s' (known: %s)"):format(path, table.concat(known, ', ')))
    elseif H.is_leaf(node) then
      local err, val = H.check_leaf(path, v, node)
      if err then
        table.insert(errors, err)
      else
        base[k] = val
      end
    else
      H.merge(base[k], v, node, path, errors)
    end
  end
end

--- `agents`: known CLI agents with known keys; a bad entry is reported and dropped.
H.agent_keys = {
  cmd = { types = { 'string', 'nil' } },
  args = { types = { 'table', 'nil' }, check = 'string_list' },
  env = { types = { 'table', 'nil' }, check = 'string_map' },
  watchdog_seconds = { types = { 'number', 'nil' }, check = 'whole' },
  protocol = { types = { 'string', 'nil' } },
}
H.cli_agents = { qwen = true, claude = true }
H.acp_agents = { ['opencode-acp'] = true, gemini = true, ['codex-acp'] = true, goose = true }
function H.check_agents(cfg, errors)
  cfg.agents = vim.deepcopy(cfg.agents or {}) -- never edit the caller's table
  for name, a in pairs(cfg.agents) do
    local path = 'agents.' .. tostring(name)
    local own_acp = type(a) == 'table' and a.protocol == 'acp' and type(a.cmd) == 'string'
    if not (H.cli_agents[name] or H.acp_agents[name] or own_acp) then
      table.insert(
        errors,
        ("unknown agent '%s' (known: claude, codex-acp, gemini, goose, opencode-acp, qwen; or give it protocol = 'acp' and a cmd)"):format(
          path
        )
      )
      cfg.agents[name] = nil
    elseif type(a) ~= 'table' then
      table.insert(errors, ('%s must be a table, got %s'):format(path, type(a)))
      cfg.agents[name] = nil
    else
      for k, v in pairs(a) do
        local node = H.agent_keys[k]
        if not node then
          table.insert(
            errors,
            ("unknown key '%s.%s' (known: args, cmd, env, protocol, watchdog_seconds)"):format(path, tostring(k))
          )
          a[k] = nil
        elseif k == 'protocol' and v ~= 'acp' and v ~= 'stream-json' then
          table.insert(errors, ("%s.protocol must be 'acp' or 'stream-json', got %s"):format(path, vim.inspect(v)))
          a[k] = nil
        elseif k == 'protocol' and v == 'stream-json' and not H.cli_agents[name] then
          table.insert(errors, ('%s.protocol: %s speaks ACP only (no stream-json)'):format(path, tostring(name)))
          a[k] = nil
        else
          local err = H.check_leaf(path .. '.' .. k, v, node)
          if err then
            table.insert(errors, err)
            a[k] = nil
          end
        end
      end
    end
  end
end

M.current = nil ---@type table|nil built on first use, so `vim.g.boo` alone is enough

--- Builds the config from defaults, `vim.g.boo` and `opts`. Bad keys are reported in one
--- message and ignored (their defaults stay), so a typo never breaks the plugin.
---@return table config, string|nil error
function M.build(opts)
  local cfg = H.defaults(H.schema)
  local errors = {}
  if vim.g.boo ~= nil then H.merge(cfg, vim.g.boo, H.schema, '', errors) end
  if opts ~= nil then H.merge(cfg, opts, H.schema, '', errors) end
  H.check_agents(cfg, errors)
  local err = #errors > 0 and ('boo: config: ' .. table.concat(errors, '; ')) or nil
  return cfg, err
end

--- A warning when `opencode.password` would cross the network unencrypted: plain http to a
--- host that is not this machine.
function M.warning(cfg)
  local oc = cfg.opencode
  if not (oc.url and oc.password) then return nil end
  local authority = oc.url:match('^http://([^/?#]*)') -- https is fine
  if not authority then return nil end
  authority = authority:gsub('^.*@', '')
  local host = authority:match('^%[([^%]]*)%]') or authority:gsub(':%d*$', '')
  if host == 'localhost' or host == '::1' or host:match('^127%.') then return nil end
  return ('boo: opencode.password would be sent over plain http to %s; use https or an SSH tunnel'):format(host)
end

--- Applies a new config; returns the error message (already reported) or nil.
function M.set(opts)
  local cfg, err = M.build(opts)
  M.current = cfg
  -- A running backend gets the new settings at once.
  local ok, rpc = pcall(require, 'boo.rpc')
  if ok and rpc.running() then rpc.configure() end
  if err then require('boo.util').notify(err, vim.log.levels.ERROR, { raw = true }) end
  local warn = M.warning(cfg)
  if warn then require('boo.util').notify(warn, vim.log.levels.WARN, { raw = true }) end
  return err
end

function M.get()
  if M.current == nil then M.set(nil) end
  return M.current
end

M.defaults = function() return H.defaults(H.schema) end

--- What the backend needs, with defaults resolved against stdpath() (sent after `hello`).
function M.resolved()
  local c = M.get()
  local data = vim.fn.stdpath('data')
  local oc = c.opencode
  local oc_cmd = vim.fn.exepath(oc.cmd)
  local agents = {}
  for name, a in pairs(c.agents or {}) do
    if type(a) == 'table' then
      local cmd = a.cmd and vim.fn.exepath(a.cmd) or ''
      agents[name] = {
        cmd = cmd ~= '' and cmd or a.cmd,
        args = a.args,
        env = a.env and not vim.tbl_isempty(a.env) and a.env or vim.empty_dict(),
        watchdog_seconds = a.watchdog_seconds,
        protocol = a.protocol,
      }
    end
  end
  return {
    router = { url = c.router.url, name = c.router.name, api_key = c.router.api_key },
    agents = vim.tbl_isempty(agents) and vim.empty_dict() or agents,
    store_path = c.store.path or (data .. '/boo/boo.db'),
    worktree_dir = c.worktree.dir or (data .. '/boo/worktrees'),
    copy_ignored = c.worktree.copy_ignored,
    worktree_spare = c.worktree.spare,
    ui_fps = c.ui.fps,
    budget = { cost = c.budget.cost, tokens = c.budget.tokens },
    mcp = { enabled = c.mcp.enabled, max_depth = c.mcp.max_depth, max_tasks = c.mcp.max_tasks },
    arena = {
      contestants = c.arena.contestants,
      limit = c.arena.limit,
      check = c.arena.check,
      check_timeout = c.arena.check_timeout,
    },
    opencode = {
      cmd = oc_cmd ~= '' and oc_cmd or oc.cmd,
      url = oc.url,
      password = oc.password,
      model = oc.model,
      watchdog_seconds = oc.watchdog_seconds,
    },
  }
end

return M
