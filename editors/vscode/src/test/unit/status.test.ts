import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { formatMs, formatStatusBar, formatStatusReport, parseStatus, shortModelName } from '../../status';

const ready = {
  model: '/home/u/.local/share/repolsp/models/gemma-3-270m-ct2/',
  engine: 'ct2',
  state: 'ready',
  latencyMs: { p50: 84.4, p95: 1234, count: 17 },
  cacheHitRate: 0.625,
};

describe('parseStatus', () => {
  test('a full status', () => {
    const s = parseStatus(ready);
    assert.deepEqual(s, { ...ready, state: 'ready' });
  });
  test('missing latency and cache rate degrade to nulls', () => {
    assert.deepEqual(parseStatus({ model: 'm', engine: 'fake', state: 'loading' }), {
      model: 'm',
      engine: 'fake',
      state: 'loading',
      latencyMs: { p50: null, p95: null, count: 0 },
      cacheHitRate: null,
    });
  });
  for (const [id, raw] of [
    ['null', null],
    ['a string', 'ready'],
    ['unknown state', { state: 'sleeping' }],
    ['no state', { model: 'm' }],
  ] as const) {
    test(`rejects ${id}`, () => assert.equal(parseStatus(raw), undefined));
  }
  test('keeps a model list when offered', () => {
    assert.deepEqual(parseStatus({ ...ready, models: ['a', 3, 'b'] })?.models, ['a', 'b']);
  });
});

describe('status bar', () => {
  const s = parseStatus(ready)!;
  const cases: { id: string; status?: object; phase: Parameters<typeof formatStatusBar>[1]; text: RegExp; alert: boolean }[] = [
    { id: 'ready shows model and p50', status: s, phase: 'running', text: /^\$\(sparkle\) gemma-3-270m-ct2 84 ms$/, alert: false },
    { id: 'ready without completions shows no latency', status: { ...s, latencyMs: { p50: null, p95: null, count: 0 } }, phase: 'running', text: /^\$\(sparkle\) gemma-3-270m-ct2$/, alert: false },
    { id: 'loading spins', status: { ...s, state: 'loading' }, phase: 'running', text: /loading~spin.*gemma-3-270m-ct2: loading/, alert: false },
    { id: 'training', status: { ...s, state: 'training' }, phase: 'running', text: /sync~spin.*: training/, alert: false },
    { id: 'error alerts', status: { ...s, state: 'error' }, phase: 'running', text: /\$\(error\).*: error/, alert: true },
    { id: 'starting', phase: 'starting', text: /loading~spin\) repolsp$/, alert: false },
    { id: 'server missing', phase: 'missing', text: /no server/, alert: true },
    { id: 'server failed', phase: 'failed', text: /\$\(error\) repolsp/, alert: true },
    { id: 'a stale status is not shown once stopped', status: s, phase: 'stopped', text: /circle-slash/, alert: false },
  ];
  for (const c of cases) {
    test(c.id, () => {
      const view = formatStatusBar(c.status as never, c.phase);
      assert.match(view.text, c.text);
      assert.equal(view.alert, c.alert);
      assert.ok(view.tooltip.length > 0);
    });
  }
});

test('report has latency percentiles and cache rate', () => {
  const report = formatStatusReport(parseStatus(ready)!);
  assert.match(report, /^repolsp: ready$/m);
  assert.match(report, /model: \/home\/u/);
  assert.match(report, /p50 84 ms, p95 1\.2 s over 17 completions/);
  assert.match(report, /hit rate: 63%/);
});

test('report before any completion', () => {
  const report = formatStatusReport(parseStatus({ model: 'm', engine: 'fake', state: 'ready' })!);
  assert.match(report, /no completions yet/);
  assert.doesNotMatch(report, /hit rate/);
});

test('shortModelName', () => {
  assert.equal(shortModelName('a/b/c/'), 'c');
  assert.equal(shortModelName('C:\\models\\smollm2'), 'smollm2');
  assert.equal(shortModelName(''), 'no model');
  assert.equal(shortModelName('x'.repeat(40), 10), `${'x'.repeat(9)}…`);
});

test('formatMs', () => {
  assert.equal(formatMs(null), '–');
  assert.equal(formatMs(999.6), '1000 ms');
  assert.equal(formatMs(1500), '1.5 s');
});
