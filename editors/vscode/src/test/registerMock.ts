// Makes `require('vscode')` (and `vscode-languageclient/node`) return the mocks. Import this before anything that imports `vscode`.

import Module = require('node:module');

const moduleWithResolver = Module as unknown as {
  _resolveFilename(request: string, ...rest: unknown[]): string;
};
const original = moduleWithResolver._resolveFilename;
moduleWithResolver._resolveFilename = function (request: string, ...rest: unknown[]) {
  if (request === 'vscode') return require.resolve('./vscodeMock');
  if (request === 'vscode-languageclient/node') return require.resolve('./languageclientMock');
  return original.call(this, request, ...rest);
};
