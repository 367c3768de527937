// Bundles test/*.test.ts with esbuild (TypeScript → ESM, react external) and runs them with
// node's test runner. Type checking is `npm run typecheck` (tsc), run first by `npm test`.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, '.test-build');
rmSync(out, { recursive: true, force: true });
const entries = readdirSync(join(root, 'test'))
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => join(root, 'test', f));
await build({
  entryPoints: entries,
  outdir: out,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Packages stay external, but Vue is bundled: it reads `document` when it loads, so it must
  // load after test/dom.ts (external imports are evaluated before any bundled code).
  external: Object.keys(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).devDependencies).filter((p) => p != 'vue'),
  outExtension: { '.js': '.mjs' },
  logLevel: 'warning',
});
const files = readdirSync(out).filter((f) => f.endsWith('.mjs')).map((f) => join(out, f));
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
