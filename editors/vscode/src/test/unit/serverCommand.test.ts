import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ResolveEnv, ServerLaunchSettings, describeCommand, findOnPath, resolveServerCommand } from '../../serverCommand';

function env(files: string[], extra: Partial<ResolveEnv> = {}): ResolveEnv {
  const set = new Set(files);
  return {
    platform: 'linux',
    pathEnv: '/usr/local/bin:/usr/bin',
    workspaceFolders: ['/ws'],
    isFile: (f) => set.has(f),
    ...extra,
  };
}

describe('resolveServerCommand', () => {
  const cases: {
    id: string;
    settings: ServerLaunchSettings;
    files: string[];
    env?: Partial<ResolveEnv>;
    command?: string;
    args?: string[];
    source?: string;
    error?: RegExp;
  }[] = [
    {
      id: 'explicit path wins over everything',
      settings: { path: '/opt/lsp-serve', pythonPath: '/py/bin/python' },
      files: ['/opt/lsp-serve', '/ws/.venv/bin/lsp-serve', '/usr/bin/lsp-serve'],
      command: '/opt/lsp-serve', args: [], source: 'setting',
    },
    {
      id: 'explicit bare name is looked up on PATH',
      settings: { path: 'lsp-serve' },
      files: ['/usr/bin/lsp-serve'],
      command: '/usr/bin/lsp-serve', source: 'setting',
    },
    {
      id: 'explicit path that does not exist is an error, not a fall-through',
      settings: { path: '/nope/lsp-serve' },
      files: ['/usr/bin/lsp-serve'],
      error: /repolsp\.server\.path.*\/nope\/lsp-serve/,
    },
    {
      id: 'interpreter with lsp-serve next to it',
      settings: { pythonPath: '/py/bin/python' },
      files: ['/py/bin/python', '/py/bin/lsp-serve', '/ws/.venv/bin/lsp-serve'],
      command: '/py/bin/lsp-serve', source: 'interpreter',
    },
    {
      id: 'interpreter without the script runs the module',
      settings: { pythonPath: '/py/bin/python3', extraArgs: ['--log-level', 'debug'] },
      files: ['/py/bin/python3'],
      command: '/py/bin/python3', args: ['-m', 'repolsp.server', '--log-level', 'debug'], source: 'interpreter',
    },
    {
      id: 'missing interpreter is an error',
      settings: { pythonPath: '/gone/python' },
      files: [],
      error: /repolsp\.server\.pythonPath.*\/gone\/python/,
    },
    {
      id: 'workspace .venv',
      settings: {},
      files: ['/ws/.venv/bin/lsp-serve', '/usr/bin/lsp-serve'],
      command: '/ws/.venv/bin/lsp-serve', source: 'workspace-venv',
    },
    {
      id: 'workspace venv/ when there is no .venv',
      settings: {},
      files: ['/ws/venv/bin/lsp-serve'],
      command: '/ws/venv/bin/lsp-serve', source: 'workspace-venv',
    },
    {
      id: 'Python extension interpreter only with lsp-serve beside it',
      settings: { pythonExtensionInterpreter: '/conda/bin/python' },
      files: ['/conda/bin/python', '/conda/bin/lsp-serve', '/usr/bin/lsp-serve'],
      command: '/conda/bin/lsp-serve', source: 'python-extension',
    },
    {
      id: 'Python extension interpreter without lsp-serve falls back to PATH',
      settings: { pythonExtensionInterpreter: '/conda/bin/python' },
      files: ['/conda/bin/python', '/usr/bin/lsp-serve'],
      command: '/usr/bin/lsp-serve', source: 'path',
    },
    {
      id: 'PATH, first directory wins',
      settings: {},
      files: ['/usr/local/bin/lsp-serve', '/usr/bin/lsp-serve'],
      command: '/usr/local/bin/lsp-serve', source: 'path',
    },
    {
      id: 'Windows: Scripts\\lsp-serve.exe in the workspace .venv',
      settings: {},
      files: ['C:\\ws\\.venv\\Scripts\\lsp-serve.exe'],
      env: { platform: 'win32', workspaceFolders: ['C:\\ws'], pathEnv: 'C:\\Windows' },
      command: 'C:\\ws\\.venv\\Scripts\\lsp-serve.exe', source: 'workspace-venv',
    },
    {
      id: 'nothing found: install instructions and where we looked',
      settings: {},
      files: [],
      error: /lsp-serve` was not found.*pip install/,
    },
  ];
  for (const c of cases) {
    test(c.id, () => {
      const result = resolveServerCommand(c.settings, env(c.files, c.env));
      if (c.error) {
        assert.equal(result.ok, false);
        if (!result.ok) assert.match(result.message, c.error);
        return;
      }
      assert.ok(result.ok, result.ok ? '' : result.message);
      if (!result.ok) return;
      assert.equal(result.server.command, c.command);
      assert.equal(result.server.source, c.source);
      if (c.args) assert.deepEqual(result.server.args, c.args);
    });
  }

  test('the failure lists the places it tried', () => {
    const result = resolveServerCommand({}, env([]));
    assert.equal(result.ok, false);
    if (!result.ok) {
      assert.ok(result.tried.includes('/ws/.venv/bin/lsp-serve'));
      assert.ok(result.tried.includes('lsp-serve on PATH'));
    }
  });
});

test('findOnPath skips empty PATH entries', () => {
  assert.equal(findOnPath('lsp-serve', env(['/b/lsp-serve'], { pathEnv: '::/a::/b' })), '/b/lsp-serve');
  assert.equal(findOnPath('lsp-serve', env([], { pathEnv: '' })), undefined);
});

test('describeCommand quotes arguments with spaces', () => {
  assert.equal(
    describeCommand({ command: '/a b/python', args: ['-m', 'repolsp.server'], source: 'interpreter' }),
    '"/a b/python" -m repolsp.server',
  );
});
