// Vite config of the TeamHub page. `npm run build` writes `dist/`, which the Rust server serves at `/`.
// `npm run dev` serves the page on :5173 and proxies the API to a running `cargo run -p teamhub`.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const api = process.env.TEAMHUB_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  plugins: [react()],
  // `@reactive/client` is linked from the repository (`file:`): one React for the page and it.
  resolve: { dedupe: ['react', 'react-dom'] },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false },
  server: { proxy: { '/api': { target: api, changeOrigin: false } } },
});
