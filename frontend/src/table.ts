/**
 * The Nodes table: every node with its id, label, names, shape, value and gradient
 * at the current step — the screen-reader view of the graph. Rows are built in
 * chunks after the graph is painted, and stepping rewrites only the cells that change.
 */
import type { GradState } from "./steps";
import { fmtTensor, shapeOf, UNSEEN_VALUE } from "./tensor";
import type { GraphNode, TensorView } from "./wire";

const CHUNK = 400;

export function gradText(state: GradState): string {
  switch (state.kind) {
    case "known":
      return fmtTensor(state.grad);
    case "pending":
      return "not computed yet";
    case "unreached":
      return "—";
  }
}

type ValueOf = (node: GraphNode) => TensorView | null;

function valueText(view: TensorView | null): string {
  return view ? fmtTensor(view) : UNSEEN_VALUE;
}

export class NodesTable {
  private body: HTMLTableSectionElement;
  private rows = new Map<string, { row: HTMLTableRowElement; value: HTMLTableCellElement; grad: HTMLTableCellElement }>();
  private marked: HTMLTableRowElement | null = null;
  private building = 0;

  constructor(readonly table: HTMLTableElement, private onPick: (node: string) => void,
    onHover: (node: string) => void = () => undefined) {
    this.body = table.tBodies[0] ?? table.createTBody();
    this.body.addEventListener("pointerover", (e) => {
      const row = (e.target as HTMLElement).closest("tr");
      if (row?.dataset.node) onHover(row.dataset.node);
    });
    this.body.addEventListener("click", (e) => {
      const row = (e.target as HTMLElement).closest("tr");
      if (row?.dataset.node) this.onPick(row.dataset.node);
    });
    // Each row is reachable with Tab and selected with Enter or Space; arrows move
    // between rows (the table is the keyboard's and screen reader's view of the graph).
    this.body.addEventListener("keydown", (e) => {
      const row = (e.target as HTMLElement).closest("tr");
      if (!row?.dataset.node) return;
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        this.onPick(row.dataset.node);
      } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const next = (e.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling) as HTMLElement | null;
        next?.focus();
      }
    });
  }

  /** Rebuilds the rows; large tables in chunks so the page paints first. */
  fill(nodes: GraphNode[], grad: (id: string) => GradState, value: ValueOf = (n) => n.value): Promise<void> {
    const token = ++this.building;
    this.body.replaceChildren();
    this.rows.clear();
    this.marked = null;
    return new Promise((resolve) => {
      const add = (start: number): void => {
        if (token !== this.building) return resolve();
        const frag = document.createDocumentFragment();
        for (const n of nodes.slice(start, start + CHUNK)) frag.append(this.row(n, grad(n.id), value(n)));
        this.body.append(frag);
        if (start + CHUNK < nodes.length) setTimeout(() => add(start + CHUNK), 0);
        else resolve();
      };
      add(0);
    });
  }

  /** Appends one streamed node. */
  append(node: GraphNode, grad: GradState): void {
    if (!this.rows.has(node.id)) this.body.append(this.row(node, grad, node.value));
  }

  private row(n: GraphNode, grad: GradState, value: TensorView | null): HTMLTableRowElement {
    const tr = document.createElement("tr");
    tr.dataset.node = n.id;
    const cells = [n.id, n.label, n.names.join(", "), shapeOf(value) || "—", valueText(value), gradText(grad)];
    const tds = cells.map((text, i) => {
      const td = document.createElement(i === 0 ? "th" : "td") as HTMLTableCellElement;
      if (i === 0) td.scope = "row";
      td.textContent = text;
      tr.append(td);
      return td;
    });
    tr.title = n.grad_fn;
    tr.tabIndex = 0;
    tr.setAttribute("aria-label", `${n.id} ${n.grad_fn}${n.names.length ? ` (${n.names.join(", ")})` : ""}`);
    this.rows.set(n.id, { row: tr, value: tds[4], grad: tds[5] });
    return tr;
  }

  /** Updates value cells for the open pass (a stepped parameter's value changes between
   * passes) and gradient cells for the new step, and marks the active node's row. */
  update(grad: (id: string) => GradState, active: string | null, value?: (id: string) => TensorView | null): void {
    for (const [id, { value: valueCell, grad: cell }] of this.rows) {
      const text = gradText(grad(id));
      if (cell.textContent !== text) cell.textContent = text;
      if (value) {
        const v = valueText(value(id));
        if (valueCell.textContent !== v) valueCell.textContent = v;
      }
    }
    if (this.marked) {
      this.marked.removeAttribute("aria-current");
      this.marked.classList.remove("active");
    }
    this.marked = active ? this.rows.get(active)?.row ?? null : null;
    if (this.marked) {
      this.marked.setAttribute("aria-current", "step");
      this.marked.classList.add("active");
    }
  }

  scrollTo(node: string): void {
    this.rows.get(node)?.row.scrollIntoView({ block: "nearest" });
  }
}
