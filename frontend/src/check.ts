/**
 * "Check numerically": asks the server for a finite-difference check of the selected
 * node's gradient (a leaf's, or each input of a step) and draws the comparison.
 */
import type { GradCheck } from "./wire";
import { fmtNum } from "./tensor";

/** The check, or the server's reason why it could not be made. */
export async function requestCheck(runId: string, node: string, pass: number): Promise<GradCheck | string> {
  const r = await fetch(`/api/v1/runs/${encodeURIComponent(runId)}/check`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ node, pass, elements: 8 }),
  });
  const body = await r.json();
  return r.ok ? (body as GradCheck) : String(body?.error?.message ?? `HTTP ${r.status}`);
}

export function renderCheck(result: GradCheck | string): HTMLElement {
  const box = document.createElement("div");
  box.className = "check";
  box.setAttribute("role", "region");
  box.setAttribute("aria-label", "Gradient check");
  const head = document.createElement("p");
  if (typeof result === "string") {
    head.className = "badge warn";
    head.textContent = `not checked: ${result}`;
    box.append(head);
    return box;
  }
  const notThisRun = result.checked.some((t) => t.matches_run === false);
  head.className = `badge ${result.ok ? "ok" : "warn"}`;
  head.textContent = notThisRun ? "not checked: autograd gave other numbers than this run when the program ran again"
    : `${result.ok ? "✓ matches" : "✗ differs from"} finite differences (${result.dtype}, eps ${result.eps})`;
  box.append(head);
  for (const t of result.checked) {
    const table = document.createElement("table");
    table.className = "checktable";
    const caption = document.createElement("caption");
    caption.textContent = `${t.name} [${t.shape.join("×")}]: max error ${fmtNum(t.max_error)}`
      + (t.matches_run ? " · the autograd column is this run's gradient" : "");
    table.append(caption);
    const header = table.insertRow();
    for (const h of ["index", "autograd", "finite diff.", ""]) {
      const th = document.createElement("th");
      th.textContent = h;
      header.append(th);
    }
    for (const e of t.elements) {
      const row = table.insertRow();
      const mark = t.matches_run === false ? "—" : e.kink ? "kink" : e.ok ? "✓" : "✗";
      for (const v of [`[${e.index.join(", ")}]`, fmtNum(e.analytic), fmtNum(e.numeric), mark]) {
        row.insertCell().textContent = v;
      }
    }
    box.append(table);
  }
  const note = document.createElement("p");
  note.className = "muted";
  note.textContent = result.note;
  box.append(note);
  return box;
}
