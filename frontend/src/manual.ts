/**
 * "Numpy code": the current backward pass as manual-backprop code, fetched from
 * GET /api/v1/runs/{id}/manual.py and shown in a dialog to read, copy or download.
 */

export type ManualResult = { code: string } | { error: string };

/** The file, or the server's reason why this pass cannot be written out. */
export async function requestManual(runId: string, pass: number): Promise<ManualResult> {
  const r = await fetch(`/api/v1/runs/${encodeURIComponent(runId)}/manual.py?pass=${pass}`);
  if (r.ok) return { code: await r.text() };
  const body = await r.json().catch(() => null);
  return { error: String(body?.error?.message ?? `HTTP ${r.status}`) };
}

/** `pass`: the pass's number as the page shows it (the first is 1). */
export function manualFilename(runId: string, pass: number): string {
  return `chainlens-${runId.slice(0, 16)}-pass${pass}.py`;
}

/** Fill the dialog with the code (or the reason there is none) and open it. */
export function showManual(dialog: HTMLDialogElement, result: ManualResult, filename: string): void {
  const body = dialog.querySelector(".manual-body") as HTMLElement;
  const download = dialog.querySelector("a.download") as HTMLAnchorElement;
  const copy = dialog.querySelector("button.copy") as HTMLButtonElement;
  if (download.href.startsWith("blob:")) URL.revokeObjectURL(download.href);
  if ("error" in result) {
    const p = document.createElement("p");
    p.className = "badge warn";
    p.textContent = `no numpy code for this pass: ${result.error}`;
    body.replaceChildren(p);
    download.hidden = true;
    copy.hidden = true;
  } else {
    const pre = document.createElement("pre");
    pre.className = "manual-code";
    pre.textContent = result.code;
    body.replaceChildren(pre);
    download.href = URL.createObjectURL(new Blob([result.code], { type: "text/x-python" }));
    download.download = filename;
    download.hidden = false;
    copy.hidden = false;
    copy.onclick = () => void navigator.clipboard.writeText(result.code)
      .then(() => { copy.textContent = "Copied"; })
      .catch(() => { copy.textContent = "Select the text to copy"; });
    copy.textContent = "Copy";
  }
  if (!dialog.open) dialog.showModal();
}
