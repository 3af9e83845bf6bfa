-- Differences between Neovim 0.10, 0.11 and 0.12 in one place.
local M = {}

M.has_011 = vim.fn.has('nvim-0.11') == 1
--- Native inline completion (vim.lsp.inline_completion) arrived in 0.12.
M.has_native_inline = vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.get ~= nil

-- 0.11 made client methods colon-called; the dot form is deprecated there and gone later.

function M.request(client, method, params, handler, bufnr)
  if M.has_011 then return client:request(method, params, handler, bufnr) end
  return client.request(method, params, handler, bufnr)
end

function M.request_sync(client, method, params, timeout_ms, bufnr)
  if M.has_011 then return client:request_sync(method, params, timeout_ms, bufnr) end
  return client.request_sync(method, params, timeout_ms, bufnr)
end

function M.notify(client, method, params)
  if M.has_011 then return client:notify(method, params) end
  return client.notify(method, params)
end

function M.cancel_request(client, id)
  if M.has_011 then return client:cancel_request(id) end
  return client.cancel_request(id)
end

--- Byte column of an LSP `character` in `line`, for the negotiated position encoding.
function M.byte_col(line, character, encoding)
  if encoding == 'utf-8' then return math.min(character, #line) end
  local ok, col
  if M.has_011 then
    ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  else
    ok, col = pcall(vim.str_byteindex, line, character, encoding == 'utf-16')
  end
  return ok and col or #line
end

--- The repolsp client attached to `bufnr` (or any repolsp client when bufnr is nil).
function M.get_client(bufnr)
  return vim.lsp.get_clients({ name = 'repolsp', bufnr = bufnr })[1]
end

return M
