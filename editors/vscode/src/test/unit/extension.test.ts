import '../registerMock';

import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';

import { createLanguageClient } from '../../extension';
import { LanguageClient } from '../languageclientMock';
import * as mock from '../vscodeMock';

let exits = 0;

function make() {
  return createLanguageClient({
    server: { command: '/v/bin/lsp-serve', args: ['--log-level', 'debug'], source: 'workspace-venv' },
    initializationOptions: { debounceMs: 20 },
    documentLanguages: ['python', 'go'],
    configurationFor: (section) => (section === 'repolsp' ? { debounceMs: 20 } : null),
    onUnexpectedExit: () => {
      exits += 1;
    },
  });
}

beforeEach(() => {
  mock.reset();
  LanguageClient.created = [];
  exits = 0;
});

test('the language client starts the resolved command over stdio, offline', () => {
  make();
  const client = LanguageClient.created[0];
  assert.equal(client.id, 'repolsp');
  assert.equal(client.serverOptions.command, '/v/bin/lsp-serve');
  assert.deepEqual(client.serverOptions.args, ['--log-level', 'debug']);
  assert.equal(client.serverOptions.transport, 0);
  assert.equal(client.serverOptions.options.env.HF_HUB_OFFLINE, '1');
  assert.deepEqual(client.clientOptions.initializationOptions, { debounceMs: 20 });
  assert.deepEqual(client.clientOptions.documentSelector, [
    { scheme: 'file', language: 'python' },
    { scheme: 'untitled', language: 'python' },
    { scheme: 'file', language: 'go' },
    { scheme: 'untitled', language: 'go' },
  ]);
});

test('workspace/configuration is answered with the mapped settings', () => {
  make();
  const configuration = LanguageClient.created[0].clientOptions.middleware.workspace.configuration;
  assert.deepEqual(configuration({ items: [{ section: 'repolsp' }, { section: 'editor' }] }), [{ debounceMs: 20 }, null]);
});

test('a crashing server is restarted twice, then reported', async () => {
  make();
  const handler = LanguageClient.created[0].clientOptions.errorHandler;
  assert.equal((await handler.closed()).action, 2);
  assert.equal((await handler.closed()).action, 2);
  assert.equal(exits, 0);
  assert.equal((await handler.closed()).action, 1);
  assert.equal(exits, 1);
  assert.equal((await handler.error()).action, 1);
  assert.equal(LanguageClient.created[0].clientOptions.initializationFailedHandler(), false);
});

test('the wrapper forwards requests, edits and the log', async () => {
  const client = make();
  await client.start();
  assert.equal(client.isRunning(), true);
  assert.deepEqual(await client.sendRequest('workspace/executeCommand', { command: 'x' }), {
    method: 'workspace/executeCommand',
    params: { command: 'x' },
  });
  assert.equal(await client.applyWorkspaceEdit!({ changes: {} }), true);
  assert.deepEqual(mock.state.appliedEdits, [{ converted: { changes: {} } }]);
  client.showLog!();
  assert.equal(LanguageClient.created[0].outputChannel.shown, true);
  await client.stop();
  assert.equal(client.isRunning(), false);
});
