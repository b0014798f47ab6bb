/**
 * Files to keep: the graph as the page draws it (PNG, or SVG from `view.toSvg`), the
 * run as a standalone HTML file and the Run as the API gives it (JSON, the server's own
 * bytes), saved by the browser under the run's id; and a saved Run opened again
 * (imported: POST /api/v1/runs/import).
 */

/** Hands `blob` to the browser as a download named `name`. */
export function save(name: string, blob: Blob): void {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 0);
}

/** The graph's canvas as a PNG image, at the resolution it is drawn. */
export function canvasPng(canvas: HTMLCanvasElement): Promise<Blob> {
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the graph gave no image"))), "image/png"));
}

/** The Run as GET /api/v1/runs/{id} answers it: its JSON, or (`html`) one standalone
 * file holding the viewer and the run, which opens offline. */
export async function runFile(runId: string, kind: "json" | "html"): Promise<Blob> {
  const query = kind === "html" ? "?format=html" : "";
  const r = await fetch(`/api/v1/runs/${encodeURIComponent(runId)}${query}`);
  if (!r.ok) throw new Error(`the run is not on the server any more (HTTP ${r.status})`);
  return r.blob();
}

/** Sends a saved Run to the server to keep; its id there, or why it was refused. */
export async function importRun(file: Blob): Promise<string> {
  const r = await fetch("/api/v1/runs/import", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: await file.arrayBuffer(),
  });
  const body = (await r.json()) as { id?: string; error?: { message: string } };
  if (!r.ok || !body.id) throw new Error(body.error?.message ?? `HTTP ${r.status}`);
  return body.id;
}
