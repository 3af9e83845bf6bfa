// Smoke test: drive the real `lsp-serve --engine fake` over stdio with vscode-jsonrpc, the way
// the extension's LanguageClient does: initialize -> didOpen -> inlineCompletion -> commands ->
// didChangeConfiguration -> shutdown. The server command is found with the extension's own
// resolution (REPOLSP_SERVER_PYTHON / REPOLSP_SERVER_PATH override it).

import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  MessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  createMessageConnection,
} from 'vscode-jsonrpc/node';

import { toServerSettings } from '../../config';
import { describeCommand, resolveServerCommand } from '../../serverCommand';
import { formatStatusBar, parseStatus } from '../../status';

const repoRoot = path.resolve(__dirname, '..', '..', '..', '..', '..');
const TIMEOUT_MS = 60_000;

function serverCommand() {
  const resolution = resolveServerCommand(
    { path: process.env.REPOLSP_SERVER_PATH ?? '', pythonPath: process.env.REPOLSP_SERVER_PYTHON ?? '', extraArgs: ['--engine', 'fake'] },
    {
      platform: process.platform,
      pathEnv: process.env.PATH ?? '',
      workspaceFolders: [repoRoot],
      isFile: (f) => fs.existsSync(f) && fs.statSync(f).isFile(),
    },
  );
  return resolution.ok ? resolution.server : undefined;
}

const server = serverCommand();

describe('lsp-serve over stdio', { skip: server ? false : 'lsp-serve not found (set REPOLSP_SERVER_PYTHON)', timeout: TIMEOUT_MS }, () => {
  let proc: ChildProcess;
  let connection: MessageConnection;
  let home: string;
  let stderr = '';
  const shown: string[] = [];
  const appliedEdits: any[] = [];
  const uri = `file://${repoRoot}/smoke_example.py`;

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'repolsp-smoke-'));
    proc = spawn(server!.command, server!.args, {
      cwd: repoRoot,
      env: { ...process.env, REPOLSP_HOME: home, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    proc.stderr!.on('data', (chunk) => {
      stderr += chunk;
    });
    connection = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    connection.onRequest('window/workDoneProgress/create', () => null);
    connection.onRequest('client/registerCapability', () => null);
    connection.onRequest('workspace/applyEdit', (params: { edit: unknown }) => {
      appliedEdits.push(params.edit);
      return { applied: true };
    });
    connection.onRequest('workspace/configuration', (params: { items: unknown[] }) => params.items.map(() => null));
    connection.onNotification('window/showMessage', (p: { message: string }) => {
      shown.push(p.message);
    });
    connection.listen();
  });

  after(async () => {
    connection?.dispose();
    if (proc && proc.exitCode === null) proc.kill();
    fs.rmSync(home, { recursive: true, force: true });
  });

  test('initialize -> didOpen -> inlineCompletion -> accept -> status -> configuration -> shutdown', async () => {
    const settings = toServerSettings((key) => ({ engine: 'fake', debounceMs: 0, 'maxNewTokens.singleLine': 16 } as Record<string, unknown>)[key]);
    assert.deepEqual(settings.problems, []);
    const init = await connection.sendRequest('initialize', {
      processId: process.pid,
      rootUri: `file://${repoRoot}`,
      workspaceFolders: [{ uri: `file://${repoRoot}`, name: 'repo' }],
      capabilities: {
        textDocument: {
          inlineCompletion: { dynamicRegistration: false },
          synchronization: { didSave: true },
          codeAction: {
            codeActionLiteralSupport: { codeActionKind: { valueSet: ['', 'quickfix', 'refactor', 'refactor.rewrite', 'source'] } },
            resolveSupport: { properties: ['edit'] },
            dataSupport: true,
          },
        },
        workspace: {
          configuration: true,
          workspaceFolders: true,
          didChangeConfiguration: { dynamicRegistration: false },
          applyEdit: true,
          workspaceEdit: { documentChanges: true, resourceOperations: ['create'] },
        },
        window: { workDoneProgress: true },
      },
      initializationOptions: settings.settings,
    }) as { capabilities: Record<string, any> };
    assert.ok(init.capabilities.inlineCompletionProvider, `no inlineCompletionProvider in ${JSON.stringify(init.capabilities)}`);
    const commands: string[] = init.capabilities.executeCommandProvider?.commands ?? [];
    for (const command of ['repolsp.status', 'repolsp.useModel', 'repolsp.train', 'repolsp.acceptCompletion']) {
      assert.ok(commands.includes(command), `server does not advertise ${command}: ${commands}`);
    }
    await connection.sendNotification('initialized', {});
    await connection.sendNotification('textDocument/didOpen', {
      textDocument: { uri, languageId: 'python', version: 1, text: 'def add(a, b):\n    ' },
    });

    // The fake engine answers at once, but the model state may still be settling: poll briefly.
    let items: any[] = [];
    const deadline = Date.now() + 20_000;
    while (items.length === 0 && Date.now() < deadline) {
      const result = await connection.sendRequest('textDocument/inlineCompletion', {
        textDocument: { uri },
        position: { line: 1, character: 4 },
        context: { triggerKind: 1 },
      }) as { items: any[] } | any[] | null;
      items = Array.isArray(result) ? result : result?.items ?? [];
      if (items.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(items.length > 0, `no inline completion; server stderr:\n${stderr}`);
    const item = items[0];
    const text = typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
    assert.match(text, /return/);
    assert.equal(item.command?.command, 'repolsp.acceptCompletion');

    const accepted = await connection.sendRequest('workspace/executeCommand', {
      command: item.command.command,
      arguments: item.command.arguments,
    }) as { recorded?: boolean };
    assert.equal(accepted?.recorded, true);

    // Generate docstring as VS Code does it: a lazily resolved code action...
    const actions = await connection.sendRequest('textDocument/codeAction', {
      textDocument: { uri },
      range: { start: { line: 0, character: 4 }, end: { line: 0, character: 4 } },
      context: { diagnostics: [], triggerKind: 1 },
    }) as any[];
    const docstringAction = (actions ?? []).find((a) => /docstring/i.test(a.title));
    assert.ok(docstringAction, `no docstring action in ${JSON.stringify(actions)}`);
    const resolved = docstringAction.edit ? docstringAction
      : await connection.sendRequest('codeAction/resolve', docstringAction) as any;
    assert.match(JSON.stringify(resolved.edit), /\\"\\"\\"/, 'the edit inserts a docstring');
    // ...and as the extension's "Generate docstring" command: the server applies the edit itself.
    const generated = await connection.sendRequest('workspace/executeCommand', {
      command: 'repolsp.generateDocstring',
      arguments: [uri, { line: 0, character: 4 }],
    }) as { applied?: boolean };
    assert.equal(generated?.applied, true);
    assert.match(JSON.stringify(appliedEdits[0]), /\\"\\"\\"/);

    const status = parseStatus(await connection.sendRequest('workspace/executeCommand', { command: 'repolsp.status', arguments: [] }));
    assert.ok(status, 'repolsp.status is not a status object');
    assert.equal(status!.engine, 'fake');
    assert.equal(status!.state, 'ready');
    assert.ok(status!.latencyMs.count >= 1);
    assert.match(formatStatusBar(status, 'running').text, /^\$\(sparkle\) /);

    // A settings change reaches the running server (the extension sends exactly this).
    await connection.sendNotification('workspace/didChangeConfiguration', {
      settings: { repolsp: { ...settings.settings, debounceMs: 40 } },
    });
    const after = await connection.sendRequest('workspace/executeCommand', { command: 'repolsp.status', arguments: [] }) as any;
    assert.equal(after.config?.debounceMs, 40, JSON.stringify(after.config));
    assert.deepEqual(shown.filter((m) => /setting/i.test(m)), [], 'the server complained about settings');

    await connection.sendRequest('shutdown');
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    await connection.sendNotification('exit');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<string>((r) => { timer = setTimeout(() => r('timeout'), 10_000); })]);
    clearTimeout(timer);
    assert.equal(code, 0, `server did not exit cleanly (${describeCommand(server!)}); stderr:\n${stderr}`);
  });
});
