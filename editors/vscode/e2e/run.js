#!/usr/bin/env node
// The extension in the real VS Code: code-server (VS Code in a browser) with the .vsix installed,
// driven through Debian's chromium by playwright-core, the way a user drives it.
//
//   node run.js --vsix repolsp.vsix --server .venv/bin/lsp-serve --home STORE --out DIR [--python PY]
//               [--steps checkCompletions,checkDocstring,...]   (default: every step in ui.js)
//
// Writes DIR/result.json (checks, latencies), screenshots, the extension's and the server's logs.
// Exit code 0 when every check passed. Every process it starts is ended before it exits.
'use strict';

const childProcess = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { ui } = require('./ui');

const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const LATENCY_SAMPLES = 5;

function parseArgs(argv) {
  const args = { chromium: '/usr/bin/chromium', python: 'python3' };
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const need of ['vsix', 'server', 'home', 'out']) {
    if (!args[need]) throw new Error(`missing --${need} (see the header of ${__filename})`);
  }
  return args;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** The folder a user opens: a small git repository with the Python file under test. */
function makeWorkspace(dir) {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(__dirname, 'fixture', 'shapes.py'), path.join(dir, 'shapes.py'));
  const git = (...a) => childProcess.execFileSync('git', a, { cwd: dir, stdio: 'ignore' });
  git('init', '-q');
  git('-c', 'user.name=e2e', '-c', 'user.email=e2e@localhost', 'add', '.');
  git('-c', 'user.name=e2e', '-c', 'user.email=e2e@localhost', 'commit', '-q', '-m', 'shapes');
  return path.join(dir, 'shapes.py');
}

/**
 * An earlier incremental training run's report where lsp-train leaves it for this workspace
 * (its data folder, which the server names): a real `lsp-train` report and chart of the repo's
 * bench/eval. "Show training report" must open it.
 */
function placeTrainingReport(python, home, workspace) {
  const dataDir = childProcess.execFileSync(python, ['-c',
    'import sys; from repolsp.server.workspace_data import data_dir_for; print(data_dir_for(sys.argv[1]))',
    workspace], { env: { ...process.env, REPOLSP_HOME: home }, encoding: 'utf8' }).trim();
  const runDir = path.join(dataDir, 'train-incremental');
  const source = path.join(__dirname, '..', '..', '..', 'bench', 'eval', 'lsp-train-attrs-history-copyfirst');
  fs.mkdirSync(runDir, { recursive: true });
  fs.copyFileSync(`${source}.md`, path.join(runDir, 'report.md'));
  fs.copyFileSync(`${source}.png`, path.join(runDir, `${path.basename(source)}.png`));
  return path.join(runDir, 'report.md');
}

/**
 * A model store for this run: the real store's models linked in, so training or switching in
 * the test can never change the shared store's default model.
 */
function makeStore(realHome, dir) {
  fs.mkdirSync(path.join(dir, 'models'), { recursive: true });
  for (const name of fs.readdirSync(path.join(realHome, 'models'))) {
    fs.symlinkSync(path.join(realHome, 'models', name), path.join(dir, 'models', name));
  }
  fs.copyFileSync(path.join(realHome, 'default'), path.join(dir, 'default'));
  return fs.readFileSync(path.join(dir, 'default'), 'utf8').trim();
}

function writeSettings(userDir, settings) {
  // Machine-scoped settings (repolsp.server.*) count only in code-server's Machine settings: from
  // User settings the extension sees them at startup but not after, so "Restart server" lost them.
  for (const scope of ['User', 'Machine']) {
    fs.mkdirSync(path.join(userDir, scope), { recursive: true });
    const chosen = scope === 'User' ? settings
      : Object.fromEntries(Object.entries(settings).filter(([k]) => k.startsWith('repolsp.server.')));
    fs.writeFileSync(path.join(userDir, scope, 'settings.json'), JSON.stringify(chosen, null, 2));
  }
}

function codeServer(args, env, logFile) {
  const bin = require.resolve('code-server/out/node/entry.js');
  const out = fs.openSync(logFile, 'a');
  // Not detached: if this driver is killed as a group (a test timeout), code-server goes with it.
  return childProcess.spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', out, out] });
}

async function waitForHttp(port, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`code-server exited with code ${child.exitCode} (see code-server.log)`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (response.ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`code-server did not answer on 127.0.0.1:${port} within ${timeoutMs / 1000} s`);
}

/** Every descendant of `pid` (from /proc), so cleanup can check that none outlives the run. */
function descendants(pid) {
  const children = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch { /* gone */ }
  }
  const found = [];
  const walk = (p) => (children.get(p) || []).forEach((c) => { found.push(c); walk(c); });
  walk(pid);
  return found;
}

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** The processes below code-server whose argv names `names`: [pid, argv]. */
function processesNamed(rootPid, names) {
  return descendants(rootPid).map((pid) => [pid, cmdline(pid)])
    .filter(([, argv]) => argv.some((a) => names.some((n) => a === n || a.endsWith(`/${n}`))));
}

async function stopGroup(child) {
  if (!child || child.exitCode !== null) return;
  const pids = [child.pid, ...descendants(child.pid)];
  for (const pid of pids) {
    try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
  }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && pids.some(alive)) await new Promise((r) => setTimeout(r, 100));
  // Stragglers: by pid (lsp-serve's own children included).
  for (const pid of pids.filter(alive)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

function copyLogs(userDir, out) {
  // The "repolsp" output channel, as code-server writes it to its window logs.
  const found = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/repolsp/i.test(entry.name) || entry.name === 'exthost.log') found.push(full);
    }
  };
  if (fs.existsSync(path.join(userDir, 'logs'))) walk(path.join(userDir, 'logs'));
  for (const file of found) {
    const name = /repolsp/i.test(path.basename(file)) ? 'extension-output.log' : 'exthost.log';
    fs.appendFileSync(path.join(out, name), fs.readFileSync(file));
  }
  return found.length;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const out = path.resolve(args.out);
  fs.mkdirSync(out, { recursive: true });
  const result = { checks: [], latenciesMs: [], out };
  const check = (name, ok, detail = '') => {
    result.checks.push({ name, ok: Boolean(ok), detail: String(detail).slice(0, 2000) });
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? `: ${String(detail).slice(0, 300)}` : ''}`);
    return ok;
  };
  let server;
  let browser;
  try {
    const userDir = path.join(out, 'user-data');
    const extensionsDir = path.join(out, 'extensions');
    const home = path.join(out, 'repolsp-home');
    const model = makeStore(path.resolve(args.home), home);
    const file = makeWorkspace(path.join(out, 'workspace'));
    const report = placeTrainingReport(args.python, home, path.dirname(file));
    result.model = model;
    const env = {
      ...process.env, REPOLSP_HOME: home, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1',
      // code-server's own data (and its default config.yaml) stay under the run's folder.
      XDG_CONFIG_HOME: path.join(out, 'config'), XDG_DATA_HOME: path.join(out, 'data'),
    };
    writeSettings(userDir, {
      'repolsp.server.path': path.resolve(args.server),
      'repolsp.logLevel': 'debug',
      'workbench.startupEditor': 'none',
      'workbench.tips.enabled': false,
      'security.workspace.trust.enabled': false,
      'telemetry.telemetryLevel': 'off',
      'update.mode': 'none',
      'extensions.autoCheckUpdates': false,
      'extensions.autoUpdate': false,
      'editor.inlineSuggest.enabled': true,
      'editor.quickSuggestions': { other: false, comments: false, strings: false },
      'editor.wordBasedSuggestions': 'off',
      'files.autoSave': 'off',
      'git.enabled': false,
      'chat.disableAIFeatures': true,
      'workbench.secondarySideBar.defaultVisibility': 'hidden',
    });
    const install = childProcess.spawnSync(process.execPath, [
      require.resolve('code-server/out/node/entry.js'), '--install-extension', path.resolve(args.vsix),
      '--extensions-dir', extensionsDir, '--user-data-dir', userDir,
    ], { env, encoding: 'utf8', timeout: 120_000 });
    if (!check('code-server --install-extension repolsp.vsix', install.status === 0, install.stdout + install.stderr)) {
      throw new Error('the extension did not install');
    }
    const port = await freePort();
    server = codeServer([
      '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check',
      '--disable-workspace-trust', '--extensions-dir', extensionsDir, '--user-data-dir', userDir,
      path.dirname(file),
    ], env, path.join(out, 'code-server.log'));
    await waitForHttp(port, server, 60_000);
    browser = await chromium.launch({ executablePath: args.chromium, args: CHROMIUM_FLAGS, headless: true });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(path.dirname(file))}`);
    await ui(page, { out, file, model, userDir, check, result, python: args.python, report,
      steps: args.steps ? args.steps.split(',') : null,
      samples: LATENCY_SAMPLES, servers: () => processesNamed(server.pid, ['lsp-serve', 'repolsp.server']),
      trainers: () => processesNamed(server.pid, ['lsp-train', 'repolsp.trainer.cli']) });
  } catch (error) {
    check('run completed', false, error && error.stack ? error.stack : error);
  } finally {
    if (browser) {
      const pages = browser.contexts().flatMap((c) => c.pages());
      if (pages[0]) await pages[0].screenshot({ path: path.join(out, '99-last.png') }).catch(() => {});
      await browser.close().catch(() => {});
    }
    const before = server ? [server.pid, ...descendants(server.pid)] : [];
    await stopGroup(server);
    const left = before.filter(alive);
    check('every started process ended', left.length === 0, left.map((p) => `${p} ${cmdline(p).join(' ')}`).join('; '));
    try {
      result.logsCopied = copyLogs(path.join(out, 'user-data'), out);
    } catch (error) {
      check('logs copied', false, error);
    }
    const sorted = [...result.latenciesMs].sort((a, b) => a - b);
    result.medianLatencyMs = sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
    result.ok = result.checks.length > 0 && result.checks.every((c) => c.ok);
    fs.writeFileSync(path.join(out, 'result.json'), JSON.stringify(result, null, 2));
    console.log(`keystroke -> ghost text, ms: ${result.latenciesMs.map(Math.round).join(', ')} (median ${Math.round(result.medianLatencyMs)})`);
    console.log(`screenshots and logs: ${out}`);
    process.exitCode = result.ok ? 0 : 1;
  }
}

main();
