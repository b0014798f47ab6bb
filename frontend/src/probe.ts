/**
 * What the tests and bench/ui.py read from the page (`window.chainlens`): when each
 * stage of a run happened, what the last paint drew, and a way to load a program.
 */
import type { GraphView } from "./view";
import type { Run } from "./wire";

export interface Probe {
  runClickedAt: number;
  /** When the first node event arrived, and the `done` event: the rest is the page's work. */
  firstNodeAt: number | null;
  /** When the first pass began: the forward graph was whole then. */
  passAt: number | null;
  doneAt: number | null;
  firstPaintAt: number | null;
  paintedAt: number | null;
  painted: string | null;
  layoutEngine: string | null;
  layoutMs: number | null;
  items: number;
  /** Each paint of a (re)laid-out graph: when, and how many nodes it showed. */
  paints: { t: number; nodes: number }[];
  view: GraphView;
  load(source: string): void;
  /** The nodes the last paint drew as mistakes (red, with a "!"). */
  flagged(): string[];
  /** What the last paint wrote on a node: label, value, gradient. */
  text(id: string): string[] | null;
  /** When the inspector last drew a node's tensors as images, and which node. */
  imagesAt: number | null;
  imagesOf: string | null;
  /** The gradients written on edges by the last paint, "src->dst" to text. */
  edgeText(): Record<string, string>;
  /** Module groups on screen: where to click to expand or collapse each. */
  groups(): { id: string; label: string; collapsed: boolean; x: number; y: number }[];
  /** The finished Run the page holds (streamed, then completed by `done`), or null. */
  run(): Run | null;
}

/** The probe, blank until a run starts; `hooks` read the page's own state. */
export function makeProbe(view: GraphView, hooks: Pick<Probe, "load" | "flagged" | "text" | "edgeText" | "groups" | "run">): Probe {
  const probe: Probe = {
    runClickedAt: 0, firstNodeAt: null, passAt: null, doneAt: null, firstPaintAt: null, paintedAt: null,
    painted: null, layoutEngine: null, layoutMs: null, items: 0, imagesAt: null, imagesOf: null, paints: [],
    view, ...hooks,
  };
  (window as unknown as { chainlens: Probe }).chainlens = probe;
  return probe;
}

/** A run starts: its stages' times start over. */
export function startRun(probe: Probe): void {
  Object.assign(probe, {
    runClickedAt: performance.now(), firstNodeAt: null, passAt: null, doneAt: null, firstPaintAt: null,
    paintedAt: null, painted: null, paints: [],
  });
}
