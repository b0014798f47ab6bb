/**
 * The loss curve: every pass's loss (log scale on request, when every loss is positive),
 * its range on the left axis and the passes under it; each recorded pass is a point that
 * opens its pass (click, or Enter).
 */
import { fmtNum } from "./tensor";

export interface LossCurve {
  svg: SVGSVGElement;
  toggle: HTMLInputElement;
  /** The log-scale toggle's label: hidden unless every loss is positive. */
  toggleWrap: HTMLElement;
  /** Each pass's loss (null: not a number the pass had). */
  losses: (number | null)[];
  /** The passes the Run recorded, by index into ``losses``. */
  recorded: number[];
  log: boolean;
  /** Opens the k-th recorded pass. */
  open(k: number): void;
}

const NS = "http://www.w3.org/2000/svg";

export function renderLossCurve(c: LossCurve): void {
  const { svg, losses } = c;
  const finite = losses.filter((v): v is number => v !== null && Number.isFinite(v));
  svg.replaceChildren();
  const hidden = losses.length < 3 || finite.length < 2;
  svg.toggleAttribute("hidden", hidden);
  const positive = finite.every((v) => v > 0);
  c.toggleWrap.hidden = hidden || !positive;
  if (hidden) return;
  const log = c.log && positive;
  c.toggle.checked = log;
  // axes: the loss on the left (its range, log or linear), the pass under the curve
  const W = 600, H = 92, left = 52, right = 8, top = 6, bottom = 20;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const f = (v: number): number => (log ? Math.log10(v) : v);
  const lo = Math.min(...finite.map(f)), hi = Math.max(...finite.map(f));
  const x = (i: number): number => left + (i / Math.max(1, losses.length - 1)) * (W - left - right);
  const y = (v: number): number => H - bottom - ((f(v) - lo) / (hi - lo || 1)) * (H - top - bottom);
  const text = (content: string, tx: number, ty: number, anchor: string, cls: string): void => {
    const t = document.createElementNS(NS, "text");
    t.setAttribute("x", String(tx));
    t.setAttribute("y", String(ty));
    t.setAttribute("text-anchor", anchor);
    t.setAttribute("class", cls);
    t.textContent = content;
    svg.append(t);
  };
  const axis = document.createElementNS(NS, "polyline");
  axis.setAttribute("points", `${left},${top} ${left},${H - bottom} ${W - right},${H - bottom}`);
  axis.setAttribute("class", "loss-axis");
  svg.append(axis);
  const vmax = Math.max(...finite), vmin = Math.min(...finite);
  text(fmtNum(vmax), left - 4, top + 8, "end", "loss-tick");
  text(fmtNum(vmin), left - 4, H - bottom, "end", "loss-tick");
  text(log ? "loss (log)" : "loss", left - 4, (H - bottom + top) / 2 + 4, "end", "loss-tick muted");
  text("pass 1", left, H - 5, "start", "loss-tick");
  text(`pass ${losses.length}`, W - right, H - 5, "end", "loss-tick");
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", losses.map((v, i) => (v !== null && Number.isFinite(v) ? `${x(i)},${y(v)}` : "")).filter(Boolean).join(" "));
  line.setAttribute("class", "loss-line");
  svg.append(line);
  c.recorded.forEach((index, k) => {
    const v = losses[index];
    if (v === null || v === undefined || !Number.isFinite(v)) return;
    const point = document.createElementNS(NS, "circle");
    point.setAttribute("cx", String(x(index)));
    point.setAttribute("cy", String(y(v)));
    point.setAttribute("r", "4");
    point.setAttribute("class", "loss-point");
    point.setAttribute("tabindex", "0");
    point.setAttribute("role", "button");
    point.setAttribute("aria-label", `open pass ${index + 1}, loss ${fmtNum(v)}`);
    const title = document.createElementNS(NS, "title");
    title.textContent = `pass ${index + 1}: loss ${fmtNum(v)}`;
    point.append(title);
    const open = (): void => c.open(k);
    point.addEventListener("click", open);
    point.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
    svg.append(point);
  });
}
