// What the test does in the VS Code window, step by step, as a user would: keys, the command
// palette, the status bar and notifications. Selectors are VS Code's own DOM classes.
'use strict';

const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const GHOST = '.monaco-editor .ghost-text-decoration';
const SERVER_READY_MS = 180_000;
const GHOST_MS = 20_000; // the model answers in 1-3 s; longer means no suggestion

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function poll(what, timeoutMs, probe, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s: ${what}`);
    await sleep(everyMs);
  }
}

async function shot(page, ctx, name) {
  await page.screenshot({ path: path.join(ctx.out, `${name}.png`) });
}

async function statusBarText(page) {
  return page.evaluate(() => [...document.querySelectorAll('.statusbar-item')]
    .map((e) => e.getAttribute('aria-label') || e.textContent || '').filter((t) => /repolsp|gemma|smol/i.test(t)).join(' | '));
}

/** The status bar shows the model with the ready icon (no spinner): the server answers completions. */
async function waitReady(page, ctx, timeoutMs = SERVER_READY_MS) {
  const state = await poll(`the status bar shows "${ctx.model}" ready`, timeoutMs, () => page.evaluate((model) => {
    const items = [...document.querySelectorAll('.statusbar-item')];
    const ready = items.find((e) => (e.textContent || '').includes(model) && e.querySelector('.codicon-sparkle'));
    if (ready) return { ready: ready.textContent };
    // The extension gave up (no server, or it exited): no point waiting out the timeout.
    const failed = items.find((e) => /repolsp/.test(e.textContent || '') && e.querySelector('.codicon-warning, .codicon-error'));
    return failed ? { failed: `${failed.textContent} (${failed.getAttribute('aria-label') || ''})` } : null;
  }, ctx.model), 500);
  if (state.failed) throw new Error(`the server did not start: the status bar says ${state.failed}`);
  return state.ready;
}

async function palette(page, title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 10_000 });
  await page.keyboard.press('Enter');
}

async function goToLine(page, line) {
  await page.keyboard.press('Control+g');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(`:${line}`);
  await page.keyboard.press('Enter');
  await sleep(150);
}

async function save(page, ctx) {
  const before = fs.statSync(ctx.file).mtimeMs;
  await page.keyboard.press('Control+s');
  await poll('the file is saved', 10_000, () => fs.statSync(ctx.file).mtimeMs !== before || !isDirty(page), 100)
    .catch(() => {});
  await sleep(200);
  return fs.readFileSync(ctx.file, 'utf8');
}

function isDirty(page) {
  return page.locator('.tab.active.dirty').count().then((n) => n > 0);
}

/** 1-based number of the first line of the saved file that contains `text`. */
function lineOf(ctx, text) {
  const index = fs.readFileSync(ctx.file, 'utf8').split('\n').findIndex((l) => l.includes(text));
  if (index < 0) throw new Error(`"${text}" is not in ${ctx.file}`);
  return index + 1;
}

function parses(ctx) {
  const run = childProcess.spawnSync(ctx.python, ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read())', ctx.file],
    { encoding: 'utf8' });
  return { ok: run.status === 0, detail: run.stderr.trim().split('\n').pop() || '' };
}

/** Records in the page when the last Enter went down and when ghost text first appeared after it. */
async function installTimers(page) {
  await page.evaluate(() => {
    window.__e2e = { key: 0, ghost: 0 };
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') window.__e2e = { key: performance.now(), ghost: 0 };
    }, true);
    new MutationObserver(() => {
      const t = window.__e2e;
      if (t.key && !t.ghost && document.querySelector('.monaco-editor .ghost-text-decoration')) t.ghost = performance.now();
    }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  });
}

async function ghostText(page) {
  return page.evaluate(() => {
    const first = [...document.querySelectorAll('.monaco-editor .ghost-text-decoration')].map((e) => e.textContent).join('');
    // The other lines of a multi-line suggestion: token spans (.ghost-text) in a view zone, one parent per line.
    const lines = [];
    for (const span of document.querySelectorAll('.monaco-editor span.ghost-text')) {
      if (!lines.includes(span.parentElement)) lines.push(span.parentElement);
    }
    const rest = lines.map((line) => line.textContent);
    return [first, ...rest].join('\n').replace(/\u00a0/g, ' ');
  });
}

/** At the start of the body of the function whose docstring is `docstring`: Enter, then ghost text. */
async function ghostAfterEnter(page, ctx, docstring) {
  await page.keyboard.press('Escape');
  await goToLine(page, lineOf(ctx, docstring));
  await page.keyboard.press('End');
  await sleep(300);
  await page.keyboard.press('Enter');
  try {
    await page.waitForSelector(GHOST, { timeout: GHOST_MS });
  } catch (error) {
    if (error && error.name === 'TimeoutError') return null; // the server offered nothing here
    throw error;
  }
  const timing = await page.evaluate(() => window.__e2e);
  await sleep(300); // the rest of a multi-line suggestion renders in the next frames
  return { ms: timing.ghost - timing.key, text: await ghostText(page) };
}

/**
 * Labels of the suggest widget's rows after Ctrl+Space, once every provider has answered (rows
 * shown, or "No suggestions."), or once `want` matches one of them.
 */
async function suggestLabels(page, want = null, timeoutMs = 30_000) {
  await page.keyboard.press('Control+Space');
  const widget = page.locator('.editor-widget.suggest-widget');
  await widget.waitFor({ state: 'visible', timeout: 15_000 });
  const read = () => widget.evaluate((w) => ({
    message: (w.querySelector('.message') || {}).textContent || '',
    labels: [...w.querySelectorAll('.monaco-list-row')].map((r) => r.getAttribute('aria-label') || r.textContent || ''),
  }));
  let last = { labels: [] };
  await poll('the suggest widget finished loading', timeoutMs, async () => {
    last = await read();
    if (want) return last.labels.some((l) => want.test(l));
    return last.labels.length > 0 || /no suggestions/i.test(last.message);
  }).catch((error) => { if (!want) throw error; });
  return last.labels;
}

async function toast(page, pattern, timeoutMs) {
  return poll(`a notification matching ${pattern}`, timeoutMs, () => page.evaluate((source) => {
    const re = new RegExp(source, 'i');
    return [...document.querySelectorAll('.notifications-toasts .notification-toast, .notifications-center .notification-list-item')]
      .map((e) => e.textContent || '').find((t) => re.test(t)) || '';
  }, pattern.source), 300);
}

async function clearToasts(page) {
  await page.evaluate(() => document.querySelectorAll('.notification-toast .codicon-notifications-clear, .notification-toast .clear-notification-action')
    .forEach((b) => b.click()));
  await palette(page, 'Notifications: Clear All Notifications').catch(() => {});
  await sleep(300);
}

// ---------------------------------------------------------------------------------------------

async function openFile(page, ctx) {
  await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 120_000 });
  await sleep(2000);
  await page.keyboard.press('Control+p');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(path.basename(ctx.file));
  await page.locator('.quick-input-list .monaco-list-row', { hasText: path.basename(ctx.file) }).first()
    .waitFor({ state: 'visible', timeout: 10_000 });
  await page.keyboard.press('Enter');
  await page.locator('.monaco-editor .view-lines').first().waitFor({ state: 'visible', timeout: 20_000 });
  await page.locator('.monaco-editor textarea').first().focus();
}

async function checkCompletions(page, ctx) {
  // More function bodies than samples: the server rightly offers nothing where the model's text
  // cannot be kept (say, cut by the token limit inside a string), so such a body is skipped.
  const docstrings = ['Area of a circle', 'Area of a square', 'Area of a triangle', 'Volume of a cube',
    'Volume of a sphere', 'Volume of a cylinder', 'Volume of a cone', 'Perimeter of a circle',
    'Perimeter of a square'];
  ctx.result.declined = [];
  let got = 0;
  for (const docstring of docstrings) {
    if (got === ctx.samples) break;
    const ghost = await ghostAfterEnter(page, ctx, docstring);
    if (ghost === null) {
      ctx.result.declined.push(docstring);
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+z'); // the Enter
      await sleep(200);
      continue;
    }
    got += 1;
    ctx.result.latenciesMs.push(ghost.ms);
    ctx.result.ghosts = [...(ctx.result.ghosts || []), ghost.text];
    if (got === 1) {
      await shot(page, ctx, '02-ghost-text');
      ctx.result.ghostDom = await page.evaluate(() => [...document.querySelectorAll('.monaco-editor [class*="ghost"]')]
        .map((e) => `${e.className}: ${(e.textContent || '').slice(0, 120)}`));
      ctx.check('ghost text appears after typing at the start of a function body', ghost.text.trim(),
        `${Math.round(ghost.ms)} ms: ${JSON.stringify(ghost.text)}`);
      await page.keyboard.press('Tab');
      await sleep(300);
      const saved = await save(page, ctx);
      await shot(page, ctx, '03-accepted');
      const line = lineOf(ctx, docstring);
      const shown = ghost.text.split('\n').map((l) => l.trim());
      const body = saved.split('\n').slice(line, line + shown.length).map((l) => l.trim()); // after the docstring
      ctx.check('Tab accepts it: the buffer holds the suggestion', shown[0] && body.join('\n') === shown.join('\n'),
        `lines ${line + 1}-${line + shown.length} are ${JSON.stringify(body)}, ghost text was ${JSON.stringify(shown)}`);
      const accepted = parses(ctx);
      ctx.result.acceptedParses = accepted.ok;
      ctx.check('the file still parses after accepting the suggestion', accepted.ok, accepted.detail);
      await page.keyboard.press('Control+z'); // the acceptance
      await page.keyboard.press('Control+z'); // the Enter
      await save(page, ctx);
      continue;
    }
    if (got === 2) {
      const labels = await suggestLabels(page);
      await shot(page, ctx, '04-suggest-widget');
      const first = ghost.text.split('\n')[0].trim();
      const dupes = labels.filter((l) => /repolsp/i.test(l) || (first && l.includes(first)));
      ctx.check('no completion-list item repeats the ghost text', dupes.length === 0,
        `ghost ${JSON.stringify(first)}; items: ${JSON.stringify(labels)}`);
    }
    // Dismiss, and undo the Enter, so the next sample starts from the same kind of place.
    await page.keyboard.press('Escape');
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+z');
    await sleep(200);
  }
  ctx.check(`ghost text at ${ctx.samples} function bodies`, got === ctx.samples,
    `${got} shown; no suggestion at ${JSON.stringify(ctx.result.declined)}`);
  await save(page, ctx);
}

async function checkDocstring(page, ctx) {
  await page.keyboard.press('Escape');
  await goToLine(page, lineOf(ctx, 'total = 2 * (width + height)'));
  await page.keyboard.press('End');
  const before = fs.readFileSync(ctx.file, 'utf8');
  await palette(page, 'repolsp: Generate docstring');
  const after = await poll('a docstring under def rectangle_perimeter', 120_000, async () => {
    const text = await save(page, ctx);
    const lines = text.split('\n');
    const def = lines.findIndex((l) => l.startsWith('def rectangle_perimeter'));
    return text !== before && /^\s+(r|u)?("""|''')/.test(lines[def + 1] || '') ? text : '';
  }, 1000);
  await shot(page, ctx, '06-docstring');
  const def = after.split('\n').findIndex((l) => l.startsWith('def rectangle_perimeter'));
  ctx.check('Generate docstring (command palette) puts a docstring in the buffer', true,
    after.split('\n').slice(def, def + 6).join('\n'));
  const parsed = parses(ctx);
  ctx.check('the file still parses after the docstring', parsed.ok, parsed.detail);
}

async function checkShowStatus(page, ctx) {
  await clearToasts(page);
  await palette(page, 'repolsp: Show status');
  const report = await toast(page, new RegExp(ctx.model.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 30_000);
  await shot(page, ctx, '07-show-status');
  ctx.check('Show status reports the model', report.includes(ctx.model), report);
  const bar = await statusBarText(page);
  ctx.check('the status bar shows the model name', bar.includes(ctx.model), bar);
  await clearToasts(page);
}

async function checkShowReport(page, ctx) {
  await clearToasts(page);
  await palette(page, 'repolsp: Show training report');
  // The markdown preview: an editor tab named after the file, the report rendered in its webview
  // (nested frames), the chart's image loaded.
  const tab = await poll('a "Preview report.md" tab', 30_000, () => page.evaluate(() => [...document.querySelectorAll('.tabs-container .tab')]
    .map((t) => t.getAttribute('aria-label') || t.textContent || '').find((t) => /Preview report\.md/.test(t)) || ''));
  const rendered = await poll('the report rendered in the preview', 30_000, async () => {
    for (const frame of page.frames()) {
      const found = await frame.evaluate(() => {
        const text = document.body ? document.body.innerText || '' : '';
        if (!/before \/ after/.test(text)) return null;
        const chart = [...document.images].find((img) => /\.png/.test(img.src));
        return { heading: text.split('\n')[0], chart: chart ? chart.naturalWidth : -1 };
      }).catch(() => null);
      if (found && found.chart > 0) return found;
    }
    return null;
  }, 500);
  await shot(page, ctx, '07b-training-report');
  ctx.check('Show training report opens the report in the markdown preview', tab && rendered,
    `${tab}: "${rendered.heading}", chart ${rendered.chart} px wide`);
  await page.keyboard.press('Control+w');  // back to the file under test
  await clearToasts(page);
}

async function checkSwitchModel(page, ctx) {
  await palette(page, 'repolsp: Switch model');
  // A pick list when the server lists its models, else an input box holding the current one.
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: ctx.model }).first();
  const input = page.locator('.quick-input-widget input');
  const shown = await poll('the model picker', 20_000, async () => {
    if (await row.isVisible().catch(() => false)) return 'list';
    return (await input.isVisible().catch(() => false)) && (await input.inputValue()) === ctx.model ? 'input' : '';
  });
  await shot(page, ctx, '08-switch-model');
  if (shown === 'list') await row.click();
  else await page.keyboard.press('Enter');
  const message = await toast(page, /now serving/, 60_000);
  ctx.check('Switch model lists the models and switches', message.includes(ctx.model), message);
  await waitReady(page, ctx);
  await clearToasts(page);
}

async function checkRestart(page, ctx) {
  const before = ctx.servers();
  ctx.check('the extension started lsp-serve with --stdio', before.length === 1 && before[0][1].includes('--stdio'),
    JSON.stringify(before));
  await palette(page, 'repolsp: Restart server');
  const after = await poll('a new lsp-serve process', 60_000, () => {
    const now = ctx.servers();
    return now.length === 1 && before.length && now[0][0] !== before[0][0] ? now : null;
  }, 500);
  await waitReady(page, ctx);
  await shot(page, ctx, '09-restarted');
  ctx.check('Restart server replaces the server process and it is ready again', true,
    `pid ${before[0] && before[0][0]} -> ${after[0][0]}`);
}

async function checkTrain(page, ctx) {
  await clearToasts(page);
  await palette(page, 'repolsp: Train on this repository');
  const shown = await toast(page, /training on this repository/, 60_000);
  const bar = await poll('the status bar says training', 30_000, async () => {
    const text = await statusBarText(page);
    return /training/.test(text) ? text : '';
  });
  await shot(page, ctx, '10-training');
  ctx.check('Train on this repository: a training notification and the status bar says training', shown && bar, `${shown} | ${bar}`);
  // Cancel it from the notification: training a real model takes far longer than a test run.
  const cancel = page.locator('.notification-toast .monaco-button', { hasText: /cancel/i }).first();
  await cancel.waitFor({ state: 'visible', timeout: 10_000 });
  await poll('lsp-train is running', 60_000, () => ctx.trainers().length > 0, 500);
  await cancel.click();
  const ended = await poll('lsp-train has exited', 60_000, () => (ctx.trainers().length === 0 ? 'ended' : ''), 500)
    .catch(() => JSON.stringify(ctx.trainers()));
  await waitReady(page, ctx, 60_000);
  await shot(page, ctx, '11-training-cancelled');
  ctx.check('Cancel on the notification stops lsp-train and the server is ready again', ended === 'ended', ended);
  await clearToasts(page);
}

async function checkShowLog(page, ctx) {
  await palette(page, 'repolsp: Show log');
  // The output view's editor shows the server's log lines (its stderr), e.g. "... INFO repolsp: model ... ready".
  const text = await poll('the output panel shows the server log', 15_000, () => page.evaluate(() => {
    const lines = document.querySelector('.part.panel .monaco-editor .view-lines');
    const shown = lines ? lines.textContent || '' : '';
    return /repolsp[.:]/.test(shown) ? shown : '';
  }));
  await shot(page, ctx, '12-show-log');
  ctx.check('Show log opens the repolsp output channel', text, text.slice(0, 300));
}

async function closeWidgets(page) {
  for (let i = 0; i < 3; i += 1) await page.keyboard.press('Escape');
  await page.locator('.monaco-editor textarea').first().focus().catch(() => {});
}

async function ui(page, ctx) {
  await openFile(page, ctx);
  await installTimers(page);
  const ready = await waitReady(page, ctx);
  await shot(page, ctx, '01-ready');
  ctx.check('the server starts and the status bar shows the model ready', ready, ready);
  const steps = [checkCompletions, checkDocstring, checkShowStatus, checkShowReport, checkSwitchModel, checkRestart, checkTrain,
    checkShowLog].filter((step) => !ctx.steps || ctx.steps.includes(step.name));
  for (const step of steps) {
    try {
      await closeWidgets(page);
      await step(page, ctx);
    } catch (error) {
      await shot(page, ctx, `fail-${step.name}`).catch(() => {});
      ctx.check(step.name, false, error && error.message ? error.message : error);
    }
  }
}

module.exports = { ui };
