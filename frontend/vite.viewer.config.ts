/**
 * The standalone viewer: the same page, built as one script and one stylesheet with
 * everything inside (the layout worker, KaTeX's fonts), into
 * backend/chainlens/web/static/viewer. `Run.save("run.html")`, a notebook's inline
 * display and the page's "HTML" download put both into a single file with the Run,
 * which opens from `file://` with no network. Built reproducibly like the page.
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import type { Plugin } from "vite";

/** KaTeX lists each font as woff2, woff and ttf; every browser that runs the viewer
 * reads woff2, so the other two are not inlined (they would triple the file). */
function woff2Only(): Plugin {
  return {
    name: "chainlens-woff2-only",
    enforce: "pre",
    transform(code, id) {
      if (!id.includes("katex") || !id.endsWith(".css")) return null;
      return code.replace(/,url\(fonts\/[^)]+\.(?:woff|ttf)\) format\("(?:woff|truetype)"\)/g, "");
    },
  };
}

export default defineConfig({
  base: "./",
  plugins: [woff2Only()],
  resolve: {
    alias: [{ find: /^\.\/spawn$/, replacement: fileURLToPath(new URL("./src/spawn.inline.ts", import.meta.url)) }],
  },
  build: {
    outDir: "../backend/chainlens/web/static/viewer",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    cssCodeSplit: false,
    assetsInlineLimit: () => true,
    chunkSizeWarningLimit: 5000,
    rollupOptions: {
      input: "src/main.ts",
      output: { format: "iife", entryFileNames: "viewer.js", assetFileNames: "viewer[extname]" },
    },
  },
  worker: { format: "iife" },
});
