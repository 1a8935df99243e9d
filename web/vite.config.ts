import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Built to static files that the gateway serves at `/` (same origin as /api/v1: no CORS).
// `npm run dev` proxies the API to a running `make run` stack on the default gateway port.
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", sourcemap: false, assetsInlineLimit: 0 },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
});
