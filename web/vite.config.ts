// The browser apps, built into dist/ and embedded in the gateway binary
// (services/gateway/build.rs). Nothing is loaded from outside: no CDN, no
// fonts, no inline scripts (the gateway's Content-Security-Policy forbids them).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/assets/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "",
    // No inlined data: URLs for scripts; small images may be inlined.
    modulePreload: { polyfill: false },
    target: "es2020",
    rollupOptions: {
      input: { guest: "guest.html", studio: "studio.html" },
    },
  },
});
