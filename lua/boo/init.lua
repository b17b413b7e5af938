--- boo.nvim: coding agents in Neovim, each session in its own git worktree.
--- Public API. `setup()` is optional and can be called again; see `:h boo`.
local util = require('boo.util')

local M = {}
local H = {}

--- Sends an action to the backend with the cwd (for finding the session); one line on failure.
function H.action(method, args)
  args = args or {}
  args.cwd = args.cwd or vim.fn.getcwd()
  local ok, err = require('boo.rpc').notify(method, args)
  if not ok then util.notify(err, vim.log.levels.ERROR) end
  return ok
end

function H.pane() return require('boo.ui.pane').current() end

--- Applies `opts` over the defaults and `vim.g.boo`. Bad keys are reported in one message.
function M.setup(opts) require('boo.config').set(opts) end

--- Shows/hides the floating chat (creates a session for the cwd's repository on first use).
function M.toggle()
  local pane = require('boo.ui.pane')
  local float = pane.visible_float()
  if float then return pane.user_close(float) end
  H.action('show')
end

--- Sends `text` to the active chat (`opts.chat` to choose one).
function M.send(text, opts)
  opts = opts or {}
  if type(text) ~= 'string' or vim.trim(text) == '' then
    return util.notify('nothing to send (empty prompt)', vim.log.levels.WARN)
  end
  local context, err = require('boo.compose.context').gather(text)
  if not context then return util.notify(err .. '; prompt not sent', vim.log.levels.WARN) end
  return H.action(
    'send',
    { text = text, chat = opts.chat, pane = opts.pane or H.pane(), creator = opts.creator or 'api', context = context }
  )
end

--- Sends what the input buffer of `chat` holds; the backend clears it once accepted.
function M.send_input(chat)
  local text = require('boo.ui.chat').input_text(chat)
  if text == '' then return end
  if require('boo.compose.commands').run(text, chat) then return require('boo.ui.chat').clear_input(chat) end
  local context, err = require('boo.compose.context').gather(text)
  if not context then return util.notify(err .. '; prompt not sent, it stays in the input', vim.log.levels.WARN) end
  require('boo.compose.history').sent(chat)
  H.action('send', {
    text = text,
    chat = chat,
    from_input = true,
    creator = 'user',
    context = context,
    command = require('boo.compose.commands').agent_command(text, chat),
  })
end

--- Runs `opts.prompt` in a new chat of `opts.session` (default: the current session), with
--- `opts.agent`/`opts.model` if given (`opts.chat`: in that chat instead of a new one). Fires
--- `User BooTask` `{chat, session, creator}`.
function M.task(opts)
  opts = opts or {}
  if type(opts.prompt) ~= 'string' or vim.trim(opts.prompt) == '' then
    return util.notify('task needs a prompt', vim.log.levels.WARN)
  end
  H.action(
    'task',
    { prompt = opts.prompt, agent = opts.agent, model = opts.model, session = opts.session, chat = opts.chat }
  )
end

--- Prompts with a selection attached: `opts` = {text?, buf?, line1, line2}.
function M.ask(opts)
  opts = opts or {}
  local buf = opts.buf or vim.api.nvim_get_current_buf()
  local l1, l2 = opts.line1 or vim.fn.line("'<"), opts.line2 or vim.fn.line("'>")
  local question = opts.text and vim.trim(opts.text) ~= '' and opts.text or 'Look at this code.'
  -- The selection is an attachment like `#selection` (folded under the prompt).
  local context = { require('boo.compose.context').selection(buf, l1, l2) }
  return H.action('send', { text = question, pane = H.pane(), creator = 'selection', context = context })
end

function M.abort(opts)
  opts = opts or {}
  H.action('abort', { chat = opts.chat, pane = opts.pane or H.pane() })
end

--- Reviews the session's pending changes (opens `boo://review/{session}`).
function M.diff() H.action('diff') end

--- Accepts all pending changes, or those of `path` (relative to the repository).
function M.accept(path) H.action('accept', { path = path, modified = require('boo.ui.review').modified_paths() }) end

--- Rejects (reverts in the session's worktree) all pending changes, or those of `path`.
function M.reject(path) H.action('reject', { path = path }) end

--- Cheap state for statuslines: what the backend last pushed. Never starts the backend.
function M.status() return vim.deepcopy(require('boo.ui.render').status) end

--- A short statusline string (`boo ⠋ ±2 ⚠1 $0.0036`), cached; see |boo-statusline|.
function M.statusline() return require('boo.statusline').get() end

--- Opens the usage report: tokens and cost by session, agent and model (|:Boo-usage|).
function M.usage() require('boo.ui.usage').request() end

--- Opens the backend log (the Lua side writes its failures there too).
function M.log() vim.cmd.split(vim.fn.fnameescape(require('boo.rpc').log_file())) end

--- Picks a chat of the current session.
function M.chats()
  local list, err = require('boo.rpc').request('chats', { pane = H.pane() })
  if not list then return util.notify(err, vim.log.levels.WARN) end
  vim.ui.select(list, {
    prompt = 'boo: chats',
    format_item = function(c) return c.title .. (c.busy and ' (busy)' or '') end,
  }, function(c)
    if c then H.action('select_chat', { chat = c.id, pane = H.pane() }) end
  end)
end

--- Sets the active chat's agent (`opencode`, `opencode:plan`, `qwen`, `claude`, `goose`, an ACP agent);
--- without a name, picks one from what the probe found.
function M.agent(name, opts)
  opts = opts or {}
  if name == nil or name == '' then return require('boo.ui.picker').pick('agent', opts.pane or H.pane()) end
  H.action('set_agent', { name = name, chat = opts.chat, pane = opts.pane or H.pane() })
end

--- Sets the active chat's model (`provider/model`, or `default`); without one, picks one.
--- It applies from the chat's next turn.
function M.model(name, opts)
  opts = opts or {}
  if name == nil or name == '' then return require('boo.ui.picker').pick('model', opts.pane or H.pane()) end
  H.action('set_model', { name = name, chat = opts.chat, pane = opts.pane or H.pane() })
end

--- Lists pending permission requests of all sessions and answers the chosen one.
function M.permissions()
  local list, err = require('boo.rpc').request('permissions')
  if not list then return util.notify(err, vim.log.levels.WARN) end
  if #list == 0 then return util.notify('no pending permission requests') end
  vim.ui.select(list, {
    prompt = 'boo: permission requests',
    format_item = function(p) return ('%s: %s'):format(p.permission, p.title) end,
  }, function(p)
    if p then require('boo.ui.permission').prompt(p) end
  end)
end

M._action = H.action
return M
