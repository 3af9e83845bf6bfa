import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { expandHome, needsRestart, toServerSettings, withResetDefaults } from '../../config';

const getter = (values: Record<string, unknown>) => (key: string) => values[key];

describe('toServerSettings', () => {
  const cases: { id: string; values: Record<string, unknown>; settings: unknown; problems?: RegExp[] }[] = [
    { id: 'nothing set -> server defaults', values: {}, settings: {} },
    {
      id: 'every setting, camelCase nesting',
      values: {
        model: ' gemma-3-270m ',
        engine: 'fake',
        'maxNewTokens.singleLine': 32,
        'maxNewTokens.multiLine': 96,
        temperature: 0.2,
        debounceMs: 75,
        contextBudgetTokens: 512,
        enabledLanguages: ['python', ' go ', ''],
        logLevel: 'DEBUG',
        logFile: '/tmp/repolsp.log',
        completionItems: 'always',
      },
      settings: {
        model: 'gemma-3-270m',
        engine: 'fake',
        maxNewTokens: { singleLine: 32, multiLine: 96 },
        temperature: 0.2,
        debounceMs: 75,
        contextBudgetTokens: 512,
        enabledLanguages: ['python', 'go'],
        logLevel: 'debug',
        logFile: '/tmp/repolsp.log',
        completionItems: 'always',
      },
    },
    { id: 'empty strings mean default', values: { model: '', logFile: '  ', engine: '' }, settings: {} },
    {
      id: 'a team server',
      values: {
        engine: 'openai', endpoint: ' http://gpu-box:8000/v1 ', remoteModel: 'Qwen/Qwen2.5-Coder-7B',
        fimTemplate: '', apiKeyEnv: 'TEAM_KEY', fallbackToLocal: true,
      },
      settings: {
        engine: 'openai', endpoint: 'http://gpu-box:8000/v1', remoteModel: 'Qwen/Qwen2.5-Coder-7B',
        apiKeyEnv: 'TEAM_KEY', fallbackToLocal: true,
      },
    },
    {
      id: 'bad team-server settings are named',
      values: { endpoint: 8000, fallbackToLocal: 'yes' },
      settings: {},
      problems: [/repolsp\.endpoint: expected a string/, /repolsp\.fallbackToLocal: expected true or false/],
    },
    {
      id: 'bad types are dropped and named',
      values: { debounceMs: 'fast', 'maxNewTokens.singleLine': 1.5, engine: 'gpt', temperature: -1, completionItems: 'twice' },
      settings: {},
      problems: [/repolsp\.engine/, /repolsp\.completionItems: expected one of auto, always, never/, /repolsp\.maxNewTokens\.singleLine/, /repolsp\.debounceMs/, /repolsp\.temperature/],
    },
    {
      id: 'out of range is dropped',
      values: { 'maxNewTokens.multiLine': 0, debounceMs: 20_000, contextBudgetTokens: 100, 'maxNewTokens.singleLine': 513 },
      settings: { contextBudgetTokens: 100 },
      problems: [/multiLine: 0 is outside/, /singleLine: 513 is outside/, /debounceMs: 20000 is outside/],
    },
    {
      id: 'history and re-ranking',
      values: { history: false, historyMaxCommits: 50, rerank: true },
      settings: { history: false, historyMaxCommits: 50, rerank: true },
    },
    {
      id: 'bad history settings are named',
      values: { history: 'yes', historyMaxCommits: 0 },
      settings: {},
      problems: [/repolsp\.history: expected true or false/, /repolsp\.historyMaxCommits: 0 is outside 1\.\.100000/],
    },
    {
      id: 'learning when idle',
      values: { trainWhenIdle: true, idleTrainAfterS: 900 },
      settings: { trainWhenIdle: true, idleTrainAfterS: 900 },
    },
    {
      id: 'bad idle-learning settings are named',
      values: { trainWhenIdle: 'on', idleTrainAfterS: 5 },
      settings: {},
      problems: [/repolsp\.trainWhenIdle: expected true or false/, /repolsp\.idleTrainAfterS: 5 is outside 30\.\.86400/],
    },
    { id: 'empty language list disables all', values: { enabledLanguages: [] }, settings: { enabledLanguages: [] } },
    {
      id: 'tilde in the log path',
      values: { logFile: '~/logs/repolsp.log' },
      settings: { logFile: '/home/u/logs/repolsp.log' },
    },
  ];
  for (const c of cases) {
    test(c.id, () => {
      const mapped = toServerSettings(getter(c.values), '/home/u');
      assert.deepEqual(mapped.settings, c.settings);
      assert.equal(mapped.problems.length, c.problems?.length ?? 0, mapped.problems.join('\n'));
      for (const pattern of c.problems ?? []) {
        assert.ok(mapped.problems.some((p) => pattern.test(p)), `${pattern} not in ${mapped.problems}`);
      }
    });
  }
});

test('expandHome', () => {
  assert.equal(expandHome('~', '/h'), '/h');
  assert.equal(expandHome('~/a', '/h/'), '/h/a');
  assert.equal(expandHome('/a/~', '/h'), '/a/~');
});

test('only repolsp.server.* needs a restart', () => {
  assert.equal(needsRestart((s) => s === 'repolsp.server'), true);
  assert.equal(needsRestart((s) => s === 'repolsp.model'), false);
});

test('package.json contributes exactly the settings the mapping reads', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
  const contributed = Object.keys(pkg.contributes.configuration.properties)
    .map((k) => k.replace(/^repolsp\./, ''))
    .filter((k) => !k.startsWith('server.') && !k.startsWith('trace.'));
  const read: string[] = [];
  toServerSettings((key) => {
    read.push(key);
    return undefined;
  });
  assert.deepEqual([...contributed].sort(), [...read].sort());
  // Every contributed default must pass the mapping's own validation.
  const defaults = Object.fromEntries(
    Object.entries(pkg.contributes.configuration.properties).map(([k, v]) => [
      k.replace(/^repolsp\./, ''),
      (v as { default: unknown }).default,
    ]),
  );
  assert.deepEqual(toServerSettings(getter(defaults)).problems, []);
});

test('withResetDefaults sends removed settings at their defaults', () => {
  const defaults: Record<string, unknown> = { 'maxNewTokens.singleLine': 48, model: '' };
  const out = withResetDefaults(
    { debounceMs: 10 },
    new Set(['maxNewTokens.singleLine', 'model', 'debounceMs']),
    new Set(['debounceMs']),
    (key) => defaults[key],
  );
  assert.deepEqual(out, { debounceMs: 10, maxNewTokens: { singleLine: 48 }, model: '' });
});
