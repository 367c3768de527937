// Vite config of the Vue and TanStack test pages (`vue.html`, `tanstack.html`), built after the
// React page into the same `dist/`. A build of their own, so the React page's bundle shares no
// chunk with them and stays exactly what `vite.config.ts` makes.
import { defineConfig } from 'vite';

export default defineConfig({
  // `@reactive/client` is linked from the repository (`file:`) and has its own Vue for its tests:
  // one Vue for the page and it, or `inject` finds no client.
  resolve: { dedupe: ['vue'] },
  // Vue's compile-time flags: no Options API, no devtools in production.
  define: {
    __VUE_OPTIONS_API__: 'false',
    __VUE_PROD_DEVTOOLS__: 'false',
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false',
  },
  build: {
    outDir: 'dist',
    emptyOutDir: false,
    sourcemap: false,
    rolldownOptions: { input: { vue: 'vue.html', tanstack: 'tanstack.html' } },
  },
});
