// Compiles the package and generated code the way apps with strict settings do:
// the sources under every strict flag, then an app (test/strict/app.ts) using TeamHub's generated
// client (the generator's real output, kept current by `cargo test -p teamhub`) and the built
// package (`dist/`, `npm run build` first), through `exports`, with `moduleResolution` Bundler
// and NodeNext, declarations checked (`skipLibCheck: false`).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const generated = join(root, '../../examples/teamhub/web/src/generated');
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const STRICT = {
  strict: true,
  noUnusedLocals: true,
  noUnusedParameters: true,
  exactOptionalPropertyTypes: true,
  noPropertyAccessFromIndexSignature: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  noImplicitReturns: true,
};
let failed = 0;
let passed = 0;
function run(label, args) {
  const r = spawnSync(process.execPath, [tsc, ...args], { stdio: 'inherit', cwd: root });
  if (r.status === 0) passed++, console.log(`ok: ${label}`);
  else failed++, console.log(`FAILED: ${label}`);
}

run('package sources under strict app settings', ['-p', 'tsconfig.strict.json']);
if (!existsSync(join(root, 'dist/index.d.ts'))) throw new Error('dist/ is missing: npm run build');
if (!existsSync(join(generated, 'procedures.ts'))) throw new Error(`no generated client at ${generated}`);
for (const [resolution, module] of [
  ['Bundler', 'ESNext'],
  ['NodeNext', 'NodeNext'],
]) {
  const app = join(root, '.tmp/strict-' + resolution);
  rmSync(app, { recursive: true, force: true });
  mkdirSync(join(app, 'node_modules/@reactive'), { recursive: true });
  mkdirSync(join(app, 'node_modules/@types'), { recursive: true });
  symlinkSync(root, join(app, 'node_modules/@reactive/client'));
  for (const dep of ['react', '@types/react', 'vue', '@vue', 'csstype']) symlinkSync(join(root, 'node_modules', dep), join(app, 'node_modules', dep));
  cpSync(generated, join(app, 'generated'), { recursive: true, filter: (f) => !f.includes('/runtime') });
  cpSync(join(root, 'test/strict/app.ts'), join(app, 'app.ts'));
  writeFileSync(join(app, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  const compilerOptions = {
    ...STRICT,
    target: 'ES2020',
    lib: ['ES2020', 'DOM'],
    module,
    moduleResolution: resolution,
    noEmit: true,
    types: [],
    skipLibCheck: false,
  };
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['app.ts', 'generated'] }, null, 2));
  run(`generated client + package, moduleResolution ${resolution}`, ['-p', join(app, 'tsconfig.json')]);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
