import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
const r = await build({ stdin: { contents: "export * from './src/index'; export * from './src/react';", resolveDir: process.cwd(), loader: 'ts' }, bundle: true, minify: true, format: 'esm', target: 'es2020', platform: 'browser', external: ['react'], write: false, metafile: true });
const code = r.outputFiles[0].contents;
console.log(code.length, gzipSync(code, { level: 9 }).length);
const a = await build({ stdin: { contents: "export * from './src/index'; export * from './src/react';", resolveDir: process.cwd(), loader: 'ts' }, bundle: true, minify: true, format: 'esm', target: 'es2020', platform: 'browser', external: ['react'], write: false, metafile: true });
for (const [k,v] of Object.entries(Object.values(a.metafile.outputs)[0].inputs)) console.log(k, v.bytesInOutput);
import { writeFileSync } from 'node:fs'; writeFileSync('/tmp/out.min.js', code);
