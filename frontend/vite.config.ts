/**
 * Builds the page into the Python package (backend/chainlens/web/static/app), with a
 * manifest the server reads to link the hashed files, and Swagger UI's own files so
 * /docs needs no CDN either. Two builds of the same sources give the same bytes;
 * `make test` checks that the committed output is what the sources build to.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import type { Plugin } from "vite";

/** Files shipped as they are: Swagger UI for /docs, and the licences of what we bundle. */
const copied: Record<string, string> = {
  "swagger/swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
  "swagger/swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
  "licenses/swagger-ui-dist.txt": "swagger-ui-dist/LICENSE",
  "licenses/elkjs.txt": "elkjs/LICENSE.md",
  "licenses/katex.txt": "katex/LICENSE",
  "licenses/codemirror.txt": "@codemirror/view/LICENSE",
};

function copyFiles(): Plugin {
  return {
    name: "chainlens-copy-files",
    generateBundle() {
      for (const [fileName, from] of Object.entries(copied)) {
        const path = fileURLToPath(new URL(`./node_modules/${from}`, import.meta.url));
        this.emitFile({ type: "asset", fileName, source: readFileSync(path) });
      }
    },
  };
}

export default defineConfig({
  base: "/static/app/",
  plugins: [copyFiles()],
  build: {
    outDir: "../backend/chainlens/web/static/app",
    emptyOutDir: true,
    manifest: "manifest.json",
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 2500,
    rollupOptions: { input: "src/main.ts" },
  },
  worker: { format: "es" },
  test: { environment: "node", include: ["tests/**/*.test.ts"] },
});
