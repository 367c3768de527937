// Builds the client runtime package (`@reactive/client`, reactive-codegen/ts) that the generated
// client imports, when its `dist/` is missing or older than its sources. The page depends on it
// by path (`file:`), so a fresh clone builds it here, before the page's own build.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '../../../../reactive-codegen/ts');
const newest = (dir) => Math.max(...readdirSync(dir).map((f) => statSync(join(dir, f)).mtimeMs));
const built = existsSync(join(pkg, 'dist/index.js')) ? newest(join(pkg, 'dist')) : 0;
if (built >= Math.max(newest(join(pkg, 'src')), statSync(join(pkg, 'package.json')).mtimeMs)) process.exit(0);
const npm = (...args) => {
  const r = spawnSync('npm', args, { cwd: pkg, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
console.log(`building @reactive/client in ${pkg}`);
if (!existsSync(join(pkg, 'node_modules/typescript'))) npm('ci', '--no-audit', '--no-fund', '--loglevel=error');
npm('run', '-s', 'build');
