// Prints the size of the client runtime + React binding, bundled, minified and gzipped
// (react and vue external), as shipped to a browser. Target: under 8 KB gzipped, read as 8,000 bytes.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const limit = Number(process.env.SIZE_LIMIT ?? 8000);
async function gzipped(contents) {
  const r = await build({
    stdin: { contents, resolveDir: root, loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2020',
    platform: 'browser',
    external: ['react', 'vue'],
    write: false,
    logLevel: 'warning',
  });
  const code = r.outputFiles[0].contents;
  return [code.length, gzipSync(code, { level: 9 }).length];
}

const [min, gz] = await gzipped("export * from './src/index'; export * from './src/react';");
console.log(`client runtime + React binding: ${min} bytes minified, ${gz} bytes gzipped (limit ${limit})`);
const [, withSse] = await gzipped(
  "export * from './src/index'; export * from './src/react'; export * from './src/fetch-sse';",
);
console.log(`optional fetch-based EventSource (token auth): +${withSse - gz} bytes gzipped`);
const [, withQuery] = await gzipped(
  "export * from './src/index'; export * from './src/react'; export * from './src/query';",
);
console.log(`optional TanStack-style API (query.ts: QueryClient, useQuery, useMutation): +${withQuery - gz} bytes gzipped`);
const [, withTabs] = await gzipped(
  "export * from './src/index'; export * from './src/react'; export * from './src/tabs';",
);
console.log(
  `one stream per browser (tabs.ts: SharedStream, passed by the generated createClient): +${withTabs - gz} bytes gzipped (${withTabs} with core + React)`,
);
const [, withSuspense] = await gzipped(
  "export * from './src/index'; export * from './src/react'; export * from './src/suspense';",
);
console.log(`optional Suspense hook (suspense.ts: useReactiveSuspense): +${withSuspense - gz} bytes gzipped`);
const [, withSsr] = await gzipped(
  "export * from './src/index'; export * from './src/react'; export * from './src/ssr';",
);
console.log(`optional server rendering (ssr.ts: dehydrate, hydrate, prefetch): +${withSsr - gz} bytes gzipped`);
const [, fetchOnly] = await gzipped("export * from './src/fetch';");
console.log(`plain fetch client alone (fetch.ts: createFetchClient): ${fetchOnly} bytes gzipped`);
const [, withBridge] = await gzipped("export * from './src/index'; export * from './src/tanstack';");
const [core] = await gzipped("export * from './src/index';").then((r) => [r[1]]);
console.log(`TanStack Query bridge (tanstack.ts: createTanstackBridge): +${withBridge - core} bytes gzipped over the core alone (${core})`);
const [, withVue] = await gzipped("export * from './src/index'; export * from './src/vue';");
console.log(`Vue 3 binding (vue.ts): +${withVue - core} bytes gzipped over the core alone (vue external)`);
const [, withSvelte] = await gzipped("export * from './src/index'; export * from './src/svelte';");
console.log(`Svelte stores (svelte.ts): +${withSvelte - core} bytes gzipped over the core alone`);
const [, withDevtools] = await gzipped("export * from './src/index'; export * from './src/devtools';");
console.log(`devtools entry (devtools.ts: inspect, renderPanel; development only): +${withDevtools - core} bytes gzipped over the core alone`);
if (gz > limit) {
  console.error(`size ${gz} exceeds the limit of ${limit} bytes`);
  process.exit(1);
}
