/** The layout worker as the served page starts it: its own file beside the page's. */
export function spawnLayoutWorker(): Worker {
  return new Worker(new URL("./layout.worker.ts", import.meta.url), { type: "module" });
}
