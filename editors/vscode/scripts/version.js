#!/usr/bin/env node
// The extension is versioned with the Python package: pyproject.toml's [project] version.
//   node scripts/version.js --check   fail (exit 1) when package.json differs
//   node scripts/version.js --write   copy the Python version into package.json
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const extensionDir = path.resolve(__dirname, '..');
const pyprojectPath = path.resolve(extensionDir, '..', '..', 'pyproject.toml');
const packagePath = path.join(extensionDir, 'package.json');

/** The `version = "..."` of pyproject.toml's [project] table. */
function pythonVersion(text) {
  const project = text.split(/^\[/m).find((section) => section.startsWith('project]'));
  const match = project && project.match(/^version\s*=\s*"([^"]+)"/m);
  if (!match) throw new Error(`no [project] version in ${pyprojectPath}`);
  // PEP 440 pre-releases (0.2.0rc1) -> semver (0.2.0-rc1), which vsce requires.
  return match[1].replace(/^(\d+\.\d+\.\d+)(a|b|rc|\.dev)(\d+)$/, '$1-$2$3');
}

function main(mode) {
  const wanted = pythonVersion(fs.readFileSync(pyprojectPath, 'utf8'));
  const pkg = JSON.parse(fs.readFileSync(packagePath, 'utf8'));
  if (pkg.version === wanted) return 0;
  if (mode === '--write') {
    pkg.version = wanted;
    fs.writeFileSync(packagePath, JSON.stringify(pkg, null, 2) + '\n');
    console.log(`package.json version set to ${wanted}`);
    return 0;
  }
  console.error(
    `package.json version ${pkg.version} differs from pyproject.toml's ${wanted}; run \`npm run sync-version\`.`,
  );
  return 1;
}

if (require.main === module) process.exit(main(process.argv[2] || '--check'));
module.exports = { pythonVersion };
