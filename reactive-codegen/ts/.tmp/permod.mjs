import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
const base = "export * from './src/index'; export * from './src/react';";
async function sz(contents, external=[]) {
  const r = await build({ stdin: { contents, resolveDir: process.cwd(), loader: 'ts' }, bundle: true, minify: true, format: 'esm', target: 'es2020', platform: 'browser', external: ['react', ...external], write: false });
  return gzipSync(r.outputFiles[0].contents, { level: 9 }).length;
}
const total = await sz(base);
console.log('total', total);
for (const m of ['util','client','registry','realtime','scheduler','core','react']) {
  // size without module m (marked external)
  const without = await sz(base, ['./'+m]);
  console.log(m, total - without);
}
