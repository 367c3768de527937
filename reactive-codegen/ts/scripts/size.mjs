// Prints the size of the client runtime + React binding, bundled, minified and gzipped
// (react external), as shipped to a browser. Target: under 8 KB gzipped.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const limit = Number(process.env.SIZE_LIMIT ?? 8192);
const r = await build({
  stdin: {
    contents: "export * from './src/index'; export * from './src/react';",
    resolveDir: root,
    loader: 'ts',
  },
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2020',
  platform: 'browser',
  external: ['react'],
  write: false,
  logLevel: 'warning',
});
const code = r.outputFiles[0].contents;
const gz = gzipSync(code, { level: 9 }).length;
console.log(`client runtime + React binding: ${code.length} bytes minified, ${gz} bytes gzipped (limit ${limit})`);
if (gz > limit) {
  console.error(`size ${gz} exceeds the limit of ${limit} bytes`);
  process.exit(1);
}
