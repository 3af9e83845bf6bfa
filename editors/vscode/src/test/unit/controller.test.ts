import '../registerMock';

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeEach, describe, test } from 'node:test';

import * as vscode from 'vscode';

import { CLIENT_COMMANDS, ClientLike, ClientSpec, RepolspController, explicitValue, trainArguments } from '../../controller';
import * as mock from '../vscodeMock';

/** A language client that records traffic and answers from a script. */
class FakeClient implements ClientLike {
  running = false;
  requests: { method: string; params: any }[] = [];
  notifications: { method: string; params: any }[] = [];
  applied: unknown[] = [];
  startError: Error | undefined;
  answers = new Map<string, (params: any) => unknown>();
  status: Record<string, unknown> = { model: 'smollm2', engine: 'fake', state: 'ready', latencyMs: { p50: 40, p95: 90, count: 3 }, cacheHitRate: 0.5 };

  constructor(readonly spec: ClientSpec) {
    this.answers.set('repolsp.status', () => this.status);
  }
  async start() {
    if (this.startError) throw this.startError;
    this.running = true;
  }
  async stop() {
    this.running = false;
  }
  isRunning() {
    return this.running;
  }
  async sendRequest(method: string, params?: any) {
    this.requests.push({ method, params });
    const answer = method === 'workspace/executeCommand' ? this.answers.get(params.command) : undefined;
    return answer ? answer(params) : null;
  }
  async sendNotification(method: string, params?: any) {
    this.notifications.push({ method, params });
  }
  async applyWorkspaceEdit(edit: unknown) {
    this.applied.push(edit);
    return true;
  }
  commands() {
    return this.requests.filter((r) => r.method === 'workspace/executeCommand').map((r) => r.params.command);
  }
}

const files = new Set<string>();
let clients: FakeClient[];
let startError: Error | undefined;

function makeController() {
  return new RepolspController(
    vscode.Uri.file('/ext'),
    (spec) => {
      const client = new FakeClient(spec);
      client.startError = startError;
      clients.push(client);
      return client;
    },
    {
      resolveEnv: () => ({
        platform: 'linux',
        pathEnv: '/usr/bin',
        workspaceFolders: mock.state.workspaceFolders.map((f) => f.uri.fsPath),
        isFile: (f) => files.has(f),
      }),
      statusIntervalMs: 0,
      home: '/home/u',
    },
  );
}

function editorAt(path: string, line: number, character: number) {
  return {
    document: { uri: vscode.Uri.file(path) },
    selection: { active: { line, character } },
  };
}

beforeEach(() => {
  mock.reset();
  files.clear();
  files.add('/usr/bin/lsp-serve');
  clients = [];
  startError = undefined;
  mock.state.workspaceFolders = [{ uri: vscode.Uri.file('/ws'), name: 'ws', index: 0 }];
});

describe('start', () => {
  test('starts the resolved server with the mapped settings as initializationOptions', async () => {
    mock.state.settings.set('repolsp.model', 'gemma');
    mock.state.settings.set('repolsp.maxNewTokens.singleLine', 20);
    files.add('/ws/.venv/bin/lsp-serve');
    const c = makeController();
    await c.activate();
    assert.equal(clients.length, 1);
    assert.equal(clients[0].spec.server.command, '/ws/.venv/bin/lsp-serve');
    assert.deepEqual(clients[0].spec.initializationOptions, { model: 'gemma', maxNewTokens: { singleLine: 20 } });
    assert.equal(c.phase, 'running');
    assert.equal(mock.state.statusItems[0].text, '$(sparkle) smollm2 40 ms');
    assert.equal(mock.state.statusItems[0].command, CLIENT_COMMANDS.showStatus);
    c.dispose();
  });

  test('registers every command the package contributes', async () => {
    const pkg = require('../../../package.json');
    const c = makeController();
    await c.activate();
    const contributed = pkg.contributes.commands.map((x: { command: string }) => x.command).sort();
    assert.deepEqual([...mock.state.registered.keys()].sort(), contributed);
    assert.deepEqual(Object.values(CLIENT_COMMANDS).sort(), contributed);
    c.dispose();
  });

  test('missing server: clear error, install link, no client', async () => {
    files.clear();
    mock.state.messageAnswers.push('How to install');
    const c = makeController();
    await c.activate();
    await new Promise((r) => setImmediate(r));
    assert.equal(clients.length, 0);
    assert.equal(c.phase, 'missing');
    const error = mock.state.messages.find((m) => m.level === 'error');
    assert.match(error!.text, /lsp-serve` was not found/);
    assert.deepEqual(error!.items, ['How to install', 'Open settings', 'Show log']);
    const preview = mock.state.executed.find((e) => e.command === 'markdown.showPreview');
    assert.equal(String(preview!.args[0]), 'file:///ext/README.md#installing-the-server');
    assert.match(mock.state.statusItems[0].text, /no server/);
    c.dispose();
  });

  test('a server that fails to start is reported, not thrown', async () => {
    startError = new Error('No module named repolsp');
    const c = makeController();
    await c.activate();
    assert.equal(c.phase, 'failed');
    assert.ok(mock.state.messages.some((m) => m.level === 'error' && /failed to start: No module named repolsp/.test(m.text)));
    c.dispose();
  });

  test('bad settings warn and fall back to defaults', async () => {
    mock.state.settings.set('repolsp.debounceMs', -5);
    const c = makeController();
    await c.activate();
    assert.deepEqual(clients[0].spec.initializationOptions, {});
    assert.ok(mock.state.messages.some((m) => m.level === 'warning' && /repolsp\.debounceMs/.test(m.text)));
    c.dispose();
  });

  test('workspace/configuration pull gets the mapped settings', async () => {
    mock.state.settings.set('repolsp.debounceMs', 90);
    const c = makeController();
    await c.activate();
    assert.deepEqual(clients[0].spec.configurationFor('repolsp'), { debounceMs: 90 });
    assert.deepEqual(clients[0].spec.configurationFor(undefined), { repolsp: { debounceMs: 90 } });
    assert.equal(clients[0].spec.configurationFor('editor'), null);
    c.dispose();
  });
});

describe('settings changes', () => {
  test('reach the running server without a restart', async () => {
    const c = makeController();
    await c.activate();
    await mock.changeSettings({ 'repolsp.debounceMs': 300, 'repolsp.enabledLanguages': ['python'] });
    assert.equal(clients.length, 1, 'no restart');
    assert.deepEqual(clients[0].notifications, [
      { method: 'workspace/didChangeConfiguration', params: { settings: { repolsp: { debounceMs: 300, enabledLanguages: ['python'] } } } },
    ]);
    c.dispose();
  });

  test('a removed setting goes back to its default on the server', async () => {
    mock.state.defaults.set('repolsp.debounceMs', 75);
    mock.state.defaults.set('repolsp.model', '');
    mock.state.settings.set('repolsp.debounceMs', 300);
    mock.state.settings.set('repolsp.model', 'gemma');
    const c = makeController();
    await c.activate();
    assert.deepEqual(clients[0].spec.initializationOptions, { debounceMs: 300, model: 'gemma' });
    await mock.changeSettings({ 'repolsp.debounceMs': undefined, 'repolsp.model': undefined, 'repolsp.temperature': 0.5 });
    assert.deepEqual(clients[0].notifications.at(-1)!.params, {
      settings: { repolsp: { temperature: 0.5, debounceMs: 75, model: '' } },
    });
    await mock.changeSettings({ 'repolsp.temperature': 0.6 });
    assert.deepEqual(clients[0].notifications.at(-1)!.params, { settings: { repolsp: { temperature: 0.6 } } });
    c.dispose();
  });

  test('server launch settings restart the server with the new command', async () => {
    files.add('/opt/serve');
    const c = makeController();
    await c.activate();
    await mock.changeSettings({ 'repolsp.server.path': '/opt/serve' });
    assert.equal(clients.length, 2);
    assert.equal(clients[0].running, false);
    assert.equal(clients[1].spec.server.command, '/opt/serve');
    c.dispose();
  });

  test('other extensions\' settings are ignored', async () => {
    const c = makeController();
    await c.activate();
    await mock.changeSettings({ 'editor.fontSize': 14 });
    assert.equal(clients[0].notifications.length, 0);
    c.dispose();
  });
});

describe('commands', () => {
  test('generate docstring sends uri and cursor, applies a returned edit', async () => {
    const edit = { changes: { 'file:///ws/a.py': [] } };
    const c = makeController();
    await c.activate();
    clients[0].answers.set('repolsp.generateDocstring', () => edit);
    mock.state.activeTextEditor = editorAt('/ws/a.py', 3, 7);
    await vscode.commands.executeCommand(CLIENT_COMMANDS.docstring);
    const request = clients[0].requests.find((r) => r.params?.command === 'repolsp.generateDocstring');
    assert.deepEqual(request!.params.arguments, ['file:///ws/a.py', { line: 3, character: 7 }]);
    assert.deepEqual(clients[0].applied, [edit]);
    c.dispose();
  });

  test('generate tests without an editor explains what to do', async () => {
    const c = makeController();
    await c.activate();
    await vscode.commands.executeCommand(CLIENT_COMMANDS.tests);
    assert.ok(mock.state.messages.some((m) => m.level === 'warning' && /open a file/.test(m.text)));
    assert.ok(!clients[0].commands().includes('repolsp.generateTests'));
    c.dispose();
  });

  test('a server error during generation becomes a message', async () => {
    const c = makeController();
    await c.activate();
    clients[0].answers.set('repolsp.generateTests', () => {
      throw { code: -32603, message: 'no function at the cursor' };
    });
    mock.state.activeTextEditor = editorAt('/ws/a.py', 0, 0);
    await vscode.commands.executeCommand(CLIENT_COMMANDS.tests);
    assert.ok(mock.state.messages.some((m) => m.level === 'error' && /could not generate tests: no function at the cursor/.test(m.text)));
    c.dispose();
  });

  test('train starts server-side training on the active file\'s folder', async () => {
    const c = makeController();
    await c.activate();
    clients[0].answers.set('repolsp.train', () => {
      clients[0].status = { ...clients[0].status, state: 'training' };
      return { started: true };
    });
    mock.state.workspaceFolders.push({ uri: vscode.Uri.file('/other'), name: 'other', index: 1 });
    mock.state.activeTextEditor = editorAt('/other/x.py', 0, 0);
    await vscode.commands.executeCommand(CLIENT_COMMANDS.train);
    const request = clients[0].requests.find((r) => r.params?.command === 'repolsp.train');
    assert.deepEqual(request!.params.arguments, ['file:///other']);
    assert.match(mock.state.statusItems[0].text, /smollm2: training/);
    assert.ok(!mock.state.messages.some((m) => m.level === 'error'));
    c.dispose();
  });

  test('training shows a notification whose Cancel cancels the server\'s progress token', async () => {
    const c = makeController();
    await c.activate();
    clients[0].answers.set('repolsp.train', () => {
      clients[0].status = { ...clients[0].status, state: 'training' };
      return { started: true, token: 'repolsp-train-1' };
    });
    await vscode.commands.executeCommand(CLIENT_COMMANDS.train);
    const shown = mock.state.progress.find((p) => p.options.location === vscode.ProgressLocation.Notification);
    assert.ok(shown && shown.options.cancellable, JSON.stringify(mock.state.progress));
    assert.match(shown!.options.title!, /training/);
    shown!.cancel();
    await new Promise((r) => setTimeout(r, 10));
    assert.ok(shown!.done);
    assert.deepEqual(clients[0].notifications.filter((n) => n.method === 'window/workDoneProgress/cancel').map((n) => n.params),
      [{ token: 'repolsp-train-1' }]);
    c.dispose();
  });

  test('train on the only folder sends no arguments (the server trains its workspace root)', async () => {
    const c = makeController();
    await c.activate();
    clients[0].answers.set('repolsp.train', () => ({ started: true }));
    await vscode.commands.executeCommand(CLIENT_COMMANDS.train);
    const request = clients[0].requests.find((r) => r.params?.command === 'repolsp.train');
    assert.deepEqual(request!.params.arguments, []);
    c.dispose();
  });

  test('train without a folder explains why', async () => {
    mock.state.workspaceFolders = [];
    const c = makeController();
    await c.activate();
    await vscode.commands.executeCommand(CLIENT_COMMANDS.train);
    assert.ok(!clients[0].commands().includes('repolsp.train'));
    assert.ok(mock.state.messages.some((m) => m.level === 'warning' && /open a folder/.test(m.text)));
    c.dispose();
  });

  test('cancelled training is not reported as a failure', async () => {
    const c = makeController();
    await c.activate();
    clients[0].answers.set('repolsp.train', () => {
      throw { code: -32800, message: 'Request cancelled' };
    });
    await vscode.commands.executeCommand(CLIENT_COMMANDS.train);
    assert.ok(mock.state.messages.some((m) => m.level === 'info' && /training cancelled/.test(m.text)));
    assert.ok(!mock.state.messages.some((m) => m.level === 'error'));
    c.dispose();
  });

  test('switch model from the server\'s list', async () => {
    const c = makeController();
    await c.activate();
    clients[0].status = { ...clients[0].status, models: ['smollm2', 'gemma-3-270m'] };
    mock.state.quickPickAnswers.push('gemma-3-270m');
    await vscode.commands.executeCommand(CLIENT_COMMANDS.switchModel);
    const request = clients[0].requests.find((r) => r.params?.command === 'repolsp.useModel');
    assert.deepEqual(request!.params.arguments, ['gemma-3-270m']);
    c.dispose();
  });

  test('switch model by typing a name; cancelling sends nothing', async () => {
    const c = makeController();
    await c.activate();
    mock.state.inputBoxAnswers.push('  /models/my-ct2  ', undefined);
    await vscode.commands.executeCommand(CLIENT_COMMANDS.switchModel);
    await vscode.commands.executeCommand(CLIENT_COMMANDS.switchModel);
    const uses = clients[0].requests.filter((r) => r.params?.command === 'repolsp.useModel');
    assert.deepEqual(uses.map((r) => r.params.arguments), [['/models/my-ct2']]);
    c.dispose();
  });

  test('show status reports model, state and latency', async () => {
    const c = makeController();
    await c.activate();
    const report = await vscode.commands.executeCommand(CLIENT_COMMANDS.showStatus);
    assert.match(String(report), /repolsp: ready[\s\S]*model: smollm2[\s\S]*p50 40 ms, p95 90 ms over 3 completions/);
    assert.ok(mock.state.messages.some((m) => m.level === 'info' && m.text === report));
    c.dispose();
  });

  test('show training report opens the newest report in the markdown preview', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'repolsp-report-'));
    const report = path.join(dir, 'report.md');
    fs.writeFileSync(report, '# lsp-train: before / after\n\n![chart](report.png)\n');
    const c = makeController();
    await c.activate();
    clients[0].status = {
      ...clients[0].status,
      model: 'gemma3-270m-attrs',
      servedModel: { name: 'gemma3-270m-attrs', summary: 'exact match 10.5% -> 15.5% (1.48x) on held-out commits' },
      trainingReport: report,
    };
    const shown = await vscode.commands.executeCommand(CLIENT_COMMANDS.showReport);
    assert.equal(shown, report);
    const preview = mock.state.executed.find((e) => e.command === 'markdown.showPreview');
    assert.equal(String(preview!.args[0]), `file://${report}`);
    assert.ok(mock.state.messages.some((m) => m.level === 'info' && /gemma3-270m-attrs: exact match 10.5% -> 15.5% \(1.48x\)/.test(m.text)));
    const status = String(await vscode.commands.executeCommand(CLIENT_COMMANDS.showStatus));
    assert.match(status, /measured gain: exact match 10.5% -> 15.5%/);
    fs.rmSync(dir, { recursive: true });
    c.dispose();
  });

  test('show training report without a report says how to make one', async () => {
    const c = makeController();
    await c.activate();
    clients[0].status = { ...clients[0].status, trainingReport: '/no/such/report.md' };
    assert.equal(await vscode.commands.executeCommand(CLIENT_COMMANDS.showReport), undefined);
    assert.ok(!mock.state.executed.some((e) => e.command === 'markdown.showPreview'));
    assert.ok(mock.state.messages.some((m) => m.level === 'info' && /no training report yet/.test(m.text)));
    c.dispose();
  });

  test('status bar follows the server state', async () => {
    const c = makeController();
    await c.activate();
    clients[0].status = { ...clients[0].status, state: 'loading', model: 'gemma' };
    await c.refreshStatus();
    assert.equal(mock.state.statusItems[0].text, '$(loading~spin) gemma: loading');
    clients[0].answers.set('repolsp.status', () => {
      throw new Error('busy');
    });
    await c.refreshStatus();
    assert.equal(mock.state.statusItems[0].text, '$(loading~spin) gemma: loading', 'keeps the last status');
    c.dispose();
  });

  test('commands while the server is missing point to the install help', async () => {
    files.clear();
    const c = makeController();
    await c.activate();
    mock.state.messages = [];
    mock.state.activeTextEditor = editorAt('/ws/a.py', 0, 0);
    await vscode.commands.executeCommand(CLIENT_COMMANDS.docstring);
    assert.ok(mock.state.messages.some((m) => m.level === 'error' && m.items.includes('How to install')));
    c.dispose();
  });

  test('an unexpected exit marks the server failed', async () => {
    const c = makeController();
    await c.activate();
    clients[0].running = false;
    clients[0].spec.onUnexpectedExit();
    assert.equal(c.phase, 'failed');
    assert.match(mock.state.statusItems[0].text, /\$\(error\)/);
    c.dispose();
  });
});

describe('helpers', () => {
  test('explicitValue: the most specific value the user set', () => {
    assert.equal(explicitValue(undefined), undefined);
    assert.equal(explicitValue({}), undefined, 'a default alone is not sent');
    assert.equal(explicitValue({ globalValue: 1 }), 1);
    assert.equal(explicitValue({ globalValue: 1, workspaceValue: 2 }), 2);
    assert.equal(explicitValue({ globalValue: 1, workspaceValue: 2, workspaceFolderValue: 3 }), 3);
    assert.equal(explicitValue({ globalValue: 0, workspaceValue: undefined }), 0);
  });

  test('trainArguments: no argument for the server\'s own root', () => {
    assert.deepEqual(trainArguments('file:///a', 'file:///a'), []);
    assert.deepEqual(trainArguments('file:///b', 'file:///a'), ['file:///b']);
  });
});
