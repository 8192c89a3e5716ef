import { fileURLToPath } from 'node:url';
import { defineConfig, loadEnv } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig(({ mode }) => {
  // Every variable of .env (prefix ''), not only VITE_*; one already set in the environment wins,
  // so in a lane PORT and BACKEND_URL are the lane's.
  const env = loadEnv(mode, root, '');
  const server = {
    host: '127.0.0.1', // Vite's default, localhost, may be ::1 only
    port: Number(env['PORT'] ?? 5173), // Vite does not read PORT by itself
    strictPort: true, // fail rather than move to another port
    proxy: { '/api': env['BACKEND_URL'] ?? 'http://127.0.0.1:3001' },
  };
  return { root, server, preview: server };
});
