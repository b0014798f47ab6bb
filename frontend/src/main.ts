/**
 * The page: wires the editor, the stream, the graph, the stepper, the chain-rule
 * card, the inspector, the output panel and the Nodes table around one RunModel.
 */
import "katex/dist/katex.min.css";
import "./style.css";
import { renderCheck, requestCheck } from "./check";
import { canvasPng, importRun, runFile, save } from "./downloads";
import { manualFilename, requestManual, showManual } from "./manual";
import { renderCard } from "./card";
import { getRun } from "./compact";
import { Editor } from "./editor";
import type { Mark } from "./editor";
import { fetchable, fetchTensors, type FullTensor, type NodeTensors, renderImages } from "./images";
import { allGroupIds, buildDisplay, defaultOptions, foldOf, shapeText, type Failure } from "./graph";
import type { DisplayGraph, DisplayOptions, Item } from "./graph";
import { LayoutClient } from "./layout";
import { RunModel } from "./model";
import { decodeRunLink, decodeView, encodeView } from "./share";
import { renderLossCurve } from "./losses";
import { makeProbe, type Probe, startRun } from "./probe";
import { PassIndex, StepCursor } from "./steps";
import type { GradState } from "./steps";
import { getJSON, streamRun } from "./stream";
import { NodesTable } from "./table";
import { fmtNum, nodeText, renderTensor, shapeOf, UNSEEN_VALUE } from "./tensor";
import { GraphView } from "./view";
import type { Status } from "./view";
import type { Example, GraphNode, Health, Run, TensorView, Variable } from "./wire";

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

const STARTER = `import torch

x = torch.ones(3, requires_grad=True)
y = x + 2
z = (y * y * 3).mean()
z.backward()
print(x.grad)
`;

/** Nodes table rows added as nodes stream in, up to this many. */
const STREAMED_ROWS = 500;

class App {
  model = new RunModel();
  cursor = new StepCursor(() => this.model.passes.map((p) => p.steps.length));
  index: PassIndex | null = null;
  options: DisplayOptions = { collapsed: new Set(), splitShared: false, showConstants: true, calls: new Map(), foldRepeats: true };
  display: DisplayGraph | null = null;
  selected: string | null = null;
  editor: Editor;
  view: GraphView;
  table: NodesTable;
  layouts = new LayoutClient();
  cancel: (() => void) | null = null;
  playing: number | null = null;
  layoutBusy = false;
  layoutDirty = false;
  lastLayoutMs = 0;
  pendingStep: { pass: number; step: number } | null = null;
  /** The pass whose values the Nodes table shows. */
  tablePass = -1;
  /** Nodes a diagnostic (error or warning) is about: drawn red, with its message. */
  flags = new Map<string, string>();
  /** The program as it was when run (the editor may have changed since). */
  runSource = "";
  probe: Probe;
  /** A Run saved with this page (a standalone file, a notebook's output): no server. */
  saved = embeddedRun();

  constructor() {
    const shared = this.saved ? null : decodeView(location.hash);
    this.editor = new Editor($("editor"), shared?.source ?? STARTER, () => this.run(), () => this.editor.mark([]),
      (line) => this.selectLine(line));
    this.view = new GraphView($("graph") as HTMLCanvasElement, {
      statusOf: (n) => this.statusOf(n),
      flagOf: (n) => this.flags.get(n) ?? null,
      gradOf: (n) => {
        const g = this.gradAt(n);
        return g.kind === "known" && g.grad ? nodeText(g.grad) : null;
      },
      edgeGrad: (src, dst) => this.edgeGrad(src, dst),
      active: () => this.activeNode(),
      selected: () => this.walked ?? this.selected,
      onSelect: (it) => this.select(it.node, true),
      onHover: (n) => this.prefetch(n),
      onToggleGroup: (g) => void this.toggleGroup(g),
      onPaint: (drawn) => this.painted(drawn),
    });
    this.view.describe = (it) => this.describe(it);
    this.table = new NodesTable($("nodes") as HTMLTableElement, (id) => this.select(id, true), (id) => this.prefetch(id));
    this.probe = makeProbe(this.view, {
      load: (s) => { this.editor.text = s; },
      groups: () => this.groupsOnScreen(),
      flagged: () => [...this.view.flaggedDrawn],
      text: (id: string) => this.view.drawnText.get(id) ?? null,
      edgeText: () => Object.fromEntries(this.view.drawnEdgeText),
      run: () => this.model.run,
    });
    this.bind();
    this.layouts.warm();
    this.renderStep();
    if (this.saved) {
      document.body.classList.add("standalone");
      const { run, source, file } = this.saved;
      void this.show(run, source ?? `# Run ${run.id}${file ? `, recorded from ${file}` : ""}: its program is not saved with it.\n`, source ?? "");
      return;
    }
    void this.loadMenus(shared?.device ?? null);
    const kept = decodeRunLink(location.hash);
    if (kept) void this.open(kept);
    else if (shared) {
      this.pendingStep = { pass: shared.pass, step: shared.step };
      this.run();
    }
  }

  private bind(): void {
    $("run").addEventListener("click", () => this.run());
    $("share").addEventListener("click", () => void this.share());
    $("manual").addEventListener("click", () => void this.openManual());
    $("save-png").addEventListener("click", () => void this.saveFile("png"));
    $("save-svg").addEventListener("click", () => void this.saveFile("svg"));
    $("save-html").addEventListener("click", () => void this.saveFile("html"));
    $("save-json").addEventListener("click", () => void this.saveFile("json"));
    $("open-json").addEventListener("change", () => void this.openFile());
    $("manual-close").addEventListener("click", () => ($("manual-dialog") as HTMLDialogElement).close());
    $("first").addEventListener("click", () => this.move(() => this.cursor.first()));
    $("prev").addEventListener("click", () => this.move(() => this.cursor.prev()));
    $("next").addEventListener("click", () => this.move(() => this.cursor.next()));
    $("last").addEventListener("click", () => this.move(() => this.cursor.last()));
    $("play").addEventListener("click", () => this.togglePlay());
    $("slider").addEventListener("input", (e) => {
      const v = Number((e.target as HTMLInputElement).value);
      this.move(() => this.cursor.goto(this.cursor.pass, v));
    });
    $("pass").addEventListener("change", (e) => {
      this.openPass(Number((e.target as HTMLSelectElement).value));
    });
    $("speed").addEventListener("change", () => { if (this.playing !== null) { this.stopPlay(); this.togglePlay(); } });
    $("fit").addEventListener("click", () => this.view.fit());
    $("loss-log").addEventListener("change", (e) => {
      this.logLosses = (e.target as HTMLInputElement).checked;
      this.renderLosses();
    });
    $("search").addEventListener("keydown", (e) => {
      if ((e as KeyboardEvent).key !== "Enter") return;
      e.preventDefault();
      this.find(($("search") as HTMLInputElement).value);
    });
    $("present").addEventListener("click", () => this.present());
    document.addEventListener("keydown", (e) => {  // P, except where it is typed
      const t = e.target as HTMLElement;
      if ((e.key === "p" || e.key === "P") && !e.ctrlKey && !e.metaKey && !e.altKey
          && !t.closest("input, select, textarea, .cm-editor")) this.present();
    });
    $("zoom-in").addEventListener("click", () => this.view.zoom(1.25));
    $("zoom-out").addEventListener("click", () => this.view.zoom(0.8));
    $("calls").addEventListener("change", (e) => {
      const value = (e.target as HTMLSelectElement).value;
      if (value === "*") {
        this.options = { ...this.options, foldRepeats: !this.options.foldRepeats };
        void this.relayout(false);
        return;
      }
      const at = value.lastIndexOf("#");
      void this.openCall(value.slice(0, at), Number(value.slice(at + 1)));
    });
    $("expand-all").addEventListener("click", () => { this.options.collapsed = new Set(); void this.relayout(false); });
    $("collapse-all").addEventListener("click", () => {
      this.options.collapsed = allGroupIds(this.model.nodes);
      void this.relayout(false);
    });
    $("examples").addEventListener("change", (e) => {
      const sel = e.target as HTMLSelectElement;
      const ex = this.examples.find((x) => x.id === sel.value);
      if (ex) this.editor.text = ex.source;
    });
    document.addEventListener("keydown", (e) => this.key(e));
  }

  examples: Example[] = [];

  private async loadMenus(device: string | null): Promise<void> {
    try {
      const [health, examples] = await Promise.all([
        getJSON<Health>("/api/v1/health"), getJSON<Example[]>("/api/v1/examples"),
      ]);
      const dev = $("device") as HTMLSelectElement;
      for (const d of [...health.devices, ...(health.devices.length > 1 ? ["auto"] : [])]) dev.add(new Option(d, d));
      if (device && health.devices.includes(device)) dev.value = device;
      this.examples = examples;
      const menu = $("examples") as HTMLSelectElement;
      for (const ex of examples) {
        const o = new Option(ex.title, ex.id);
        o.title = ex.description;
        menu.add(o);
      }
    } catch (err) {
      this.status(`could not reach the server: ${String(err)}`);
    }
  }

  private key(e: KeyboardEvent): void {
    const t = e.target as HTMLElement;
    if (e.defaultPrevented || t.closest(".cm-editor") || ["INPUT", "SELECT", "TEXTAREA"].includes(t.tagName)) return;
    if (e.ctrlKey || e.metaKey || e.altKey || e.shiftKey) return;
    const onGraph = t.id === "graph";
    const actions: Record<string, () => void> = {
      ...(onGraph ? { ArrowDown: () => this.walk(1), ArrowUp: () => this.walk(-1), Enter: () => this.enter() } : {}),
      ArrowRight: () => this.move(() => this.cursor.next()),
      ArrowLeft: () => this.move(() => this.cursor.prev()),
      Home: () => this.move(() => this.cursor.first()),
      End: () => this.move(() => this.cursor.last()),
      " ": () => this.togglePlay(),
    };
    const act = actions[e.key];
    if (!act || (e.key === " " && t.tagName === "BUTTON")) return;
    e.preventDefault();
    act();
  }

  /** The item the keyboard walked to on the graph (a node, a module, a fold). */
  private walked: string | null = null;

  /** ↓ and ↑ on the graph: the next or previous item, left to right and top to bottom,
   * brought into view, outlined and read out (the node is inspected as it is reached). */
  private walk(delta: number): void {
    const d = this.display;
    if (!d || d.items.length === 0) return;
    const at = (id: string): [number, number] => this.view.screenOf(id) ?? [0, 0];
    const order = [...d.items].sort((a, b) => at(a.id)[0] - at(b.id)[0] || at(a.id)[1] - at(b.id)[1]);
    const current = this.walked ?? (this.selected ? d.itemOf.get(this.selected) ?? null : null);
    const k = order.findIndex((it) => it.id === current);
    const next = order[k < 0 ? (delta > 0 ? 0 : order.length - 1) : Math.min(order.length - 1, Math.max(0, k + delta))];
    this.walked = next.id;
    if (next.node && this.model.byId.has(next.node)) {
      this.selected = next.node;
      this.renderInspector();
    }
    this.view.reveal(next.id);
    this.view.invalidate();
    $("graph-said").textContent = this.describe(next);
  }

  /** Enter on the graph: a module or a fold opens; a node is selected and backward
   * steps to it. */
  private enter(): void {
    const it = this.walked ? this.display?.items.find((i) => i.id === this.walked) : undefined;
    if (!it) return;
    if (it.kind === "group") void this.toggleGroup(it.id);
    else if (it.node) this.select(it.node, true);
    this.walked = it.id;
  }

  private status(text: string): void {
    $("status").textContent = text;
  }

  // ------------------------------------------------------------------ running

  run(): void {
    if (this.saved) {
      this.status("a saved run: run the program with chainlens to run it again");
      return;
    }
    this.reset();
    $("progress").hidden = false;
    this.status("running…");
    const device = ($("device") as HTMLSelectElement).value || undefined;
    const model = this.model;
    this.runSource = this.editor.text;
    this.stream(model, device);
  }

  /** Opens a Run kept on the server by its id (`#r=<id>`, `/r/<id>`), drawn as a
   * finished run, with its program in the editor (an imported one has none: the editor
   * says so). */
  private async open(runId: string): Promise<void> {
    this.reset();
    this.status("opening…");
    try {
      const path = `/api/v1/runs/${encodeURIComponent(runId)}`;
      const [run, program] = await Promise.all([getRun(path), fetchProgram(path)]);
      if (program !== null) await this.show(run, program, program);
      else await this.show(run, `# Run ${runId}, recorded elsewhere: its program is not on this server.\n`, "");
    } catch (e) {
      this.status(`could not open run ${runId}: ${(e as Error).message}`);
    }
  }

  /** A finished Run drawn as it is: `text` in the editor, `source` the program its
   * lines are in (empty when it is not known). */
  private async show(run: Run, text: string, source: string): Promise<void> {
    this.editor.text = text;
    this.runSource = source;
    this.model.load(run);
    await this.finish();
  }

  /** The run's id on the server, for what only the server can do (check, numpy code,
   * full tensors); null on a saved page, which has no server. */
  private get served(): string | null {
    return this.saved ? null : this.model.run?.id ?? null;
  }

  /** Everything the last run drew, forgotten. */
  private reset(): void {
    this.cancel?.();
    this.stopPlay();
    this.model = new RunModel();
    this.index = null;
    this.selected = null;
    this.walked = null;
    this.flags = new Map();
    this.cursor.goto(0, 0);
    this.options = { collapsed: new Set(), splitShared: false, showConstants: true, calls: new Map(), foldRepeats: true };
    this.display = null;
    this.view.clear();
    void this.table.fill([], () => ({ kind: "unreached" }));
    this.renderOutput();
    this.renderStep();
    this.editor.mark([]);
    this.saving(false);
    startRun(this.probe);
  }

  /** The download buttons work once a run is finished. */
  private saving(on: boolean): void {
    for (const id of ["save-png", "save-svg", "save-html", "save-json"]) ($(id) as HTMLButtonElement).disabled = !on;
  }

  private stream(model: RunModel, device: string | undefined): void {
    this.cancel = streamRun({ source: this.runSource, device }, (events) => {
      if (model !== this.model) return;
      let graph = false, output = false, done = false, backward = false;
      for (const event of events) {
        backward ||= event.type === "pass";
        const change = model.apply(event);
        if (change === "graph" && event.type === "node") {
          this.probe.firstNodeAt ??= performance.now();
          // Rows stream in for small graphs; a large table is built once, after the paint.
          if (model.nodes.length <= STREAMED_ROWS) this.table.append(event.node, { kind: "unreached" });
          graph = true;
        }
        output ||= change === "output";
        done ||= change === "done";
      }
      if (done) {
        void this.finish();
        return;
      }
      // Backward starting means the forward graph is whole: draw it now, not on the timer.
      if (backward) this.probe.passAt ??= performance.now();
      if (backward && model.passes.length === 1) void this.relayout(true);
      else if (graph) this.scheduleLayout();
      if (output) this.renderOutput();
      this.status(model.stepCount ? `backward: ${model.stepCount} steps` : `forward: ${model.nodes.length} nodes`);
    }, (clean) => {
      if (model !== this.model || clean) return;
      $("progress").hidden = true;
      this.status("the connection closed before the run finished");
    });
  }

  private scheduleLayout(): void {
    if (this.layoutBusy) {
      this.layoutDirty = true;
      return;
    }
    this.layoutBusy = true;
    const wait = Math.max(150, 4 * this.lastLayoutMs);
    setTimeout(async () => {
      const model = this.model;
      if (!model.finished) {
        this.options = defaultOptions(model.nodes);
        await this.relayout(true, true);
      }
      this.layoutBusy = false;
      if (this.layoutDirty && model === this.model && !model.finished) {
        this.layoutDirty = false;
        this.scheduleLayout();
      }
    }, this.probe.firstPaintAt === null ? 0 : wait);
  }

  private async finish(): Promise<void> {
    this.probe.doneAt = performance.now();
    const model = this.model;
    $("progress").hidden = true;
    this.options = defaultOptions(model.nodes);
    const run = model.run;
    this.saving(run !== null);
    if (run) {
      const t = run.timings_ms.total;
      this.status(`${run.status === "ok" ? "done" : "stopped"}: ${model.nodes.length} nodes, ${model.stepCount} steps${t ? ` in ${fmtNum(t)} ms` : ""}`);
    } else if (model.rejected) {
      this.status(`not run: ${model.rejected.code}`);
    }
    this.flags = new Map(model.diagnostics.filter((d) => d.node && d.severity !== "info")
      .map((d) => [d.node!, d.message]));
    for (const n of model.nodes) {  // a second backward found these without their saved tensors
      if (n.freed_by != null && !this.flags.has(n.id)) this.flags.set(n.id, freedText(n.freed_by));
    }
    const shared = this.pendingStep;
    this.pendingStep = null;
    this.cursor.goto(shared?.pass ?? 0, shared?.step ?? 0);
    this.index = this.makeIndex();
    if (shared) this.selected = this.activeNode(); // a link opens on its step, inspected
    if (!(await this.relayout(true)) || model !== this.model) return;
    this.probe.paintedAt = performance.now();
    this.probe.painted = model.id;
    document.body.dataset.painted = model.id ?? "";
    this.renderOutput();
    this.markEditor();
    this.renderPasses();
    this.renderStep();
    const names = [...new Set(model.nodes.flatMap((n) => n.names))].slice(0, 500);
    $("search-names").replaceChildren(...names.map((n) => new Option(n)));
    this.tablePass = this.cursor.pass;
    await this.table.fill(model.nodes, (id) => this.gradAt(id), (n) => this.valueOf(n));
    if (model === this.model) this.table.update((id) => this.gradAt(id), this.activeNode());
  }

  /** The statements an error diagnostic is about that made no node (their node ids are
   * "!k", flagged with the diagnostic's message): the line as written, crossed out. */
  private failures(): Failure[] {
    const lines = this.runSource.split("\n");
    return this.model.diagnostics.flatMap((d, k) => {
      if (d.node || d.severity !== "error" || !d.line) return [];
      const id = `!${k}`;
      this.flags.set(id, d.message);
      const text = (lines[d.line - 1] ?? "").trim();
      return [{ id, label: text.length > 48 ? `${text.slice(0, 47)}…` : text, sub: `✗ line ${d.line}: not created` }];
    });
  }

  /**
   * Lays out and draws the current graph; false when a newer layout superseded it. A
   * preview (while the run streams in) is laid out on the main thread, at once.
   */
  private async relayout(fit: boolean, preview = false): Promise<boolean> {
    const t0 = performance.now();
    const model = this.model;
    const roots = new Set(model.passes.map((p) => p.root).filter((r): r is string => r !== null));
    const display = buildDisplay(model.nodes, model.cutEdges, roots, this.options, this.failures());
    const result = preview ? this.layouts.preview(display) : await this.layouts.layout(display);
    if (!result || model !== this.model) return false;
    this.lastLayoutMs = performance.now() - t0;
    this.display = display;
    this.renderCalls(display);
    this.probe.layoutEngine = result.engine;
    this.probe.layoutMs = result.ms;
    this.probe.items = display.items.length;
    const active = this.activeNode();
    const focus = active ? display.itemOf.get(active) ?? null : this.lastItem(display);
    this.view.show(display, result, fit || !this.view.hasGraph, focus);
    this.view.drawNow();
    this.probe.paints.push({ t: performance.now(), nodes: model.nodes.length });
    if (active && !fit) this.view.reveal(display.itemOf.get(active) ?? active);
    return true;
  }

  /** While streaming: the newest node, so the view follows the graph as it grows. */
  private lastItem(display: DisplayGraph): string | null {
    const last = this.model.nodes[this.model.nodes.length - 1];
    return last ? display.itemOf.get(last.id) ?? null : null;
  }

  private painted(drawn: number): void {
    if (drawn > 0 && this.probe.firstPaintAt === null) this.probe.firstPaintAt = performance.now();
  }

  /** Folds or unfolds one module call, keeping it where the user clicked. */
  private async toggleGroup(group: string): Promise<void> {
    const fold = this.display ? foldOf(group, this.display.repeats, this.options.calls) : null;
    if (fold) {  // a fold opens the call nearest the one shown (from all folded: the last)
      const shown = this.options.calls.get(fold.path);
      await this.openCall(fold.path, shown === undefined ? fold.last : group.endsWith(":before") ? fold.last : fold.first);
      return;
    }
    if (this.options.collapsed.has(group)) this.options.collapsed.delete(group);
    else this.options.collapsed.add(group);
    const before = this.view.screenOf(group);
    await this.relayout(false);
    const after = this.view.screenOf(group);
    if (before && after) this.view.pan(before[0] - after[0], before[1] - after[1]);
  }

  /** Opens call ``call`` (from 1) of a module folded ×N: drawn node by node, its calls
   * before and after it folded on either side; 0 folds them all again. */
  private async openCall(path: string, call: number): Promise<void> {
    const calls = new Map(this.options.calls);
    if (call > 0) {
      calls.set(path, call);
      const group = this.display?.repeats.get(path)?.[call - 1];
      if (group) this.options.collapsed.delete(group);
    } else {
      calls.delete(path);
    }
    this.options = { ...this.options, calls };
    if (!(await this.relayout(false))) return;
    const shown = this.display?.repeats.get(path)?.[call - 1];
    if (shown) this.view.focusOn(shown);
  }

  /** The call selector: one entry per call of each module folded ×N. */
  private renderCalls(d: DisplayGraph): void {
    const select = $("calls") as HTMLSelectElement;
    $("calls-wrap").hidden = d.repeats.size === 0 && this.options.foldRepeats;
    const groups = [...d.repeats].map(([path, list]) => {
      const og = document.createElement("optgroup");
      og.label = path;
      og.append(new Option(`${path}: all ${list.length} calls folded`, `${path}#0`));
      list.forEach((_, k) => og.append(new Option(`${path}: call ${k + 1} of ${list.length}`, `${path}#${k + 1}`)));
      return og;
    });
    select.replaceChildren(...groups, new Option(this.options.foldRepeats ? "every call as its own box" : "fold repeated calls", "*"));
    const [path] = [...d.repeats.keys()];
    select.value = path === undefined ? "*" : `${path}#${this.options.calls.get(path) ?? 0}`;
  }

  // ----------------------------------------------------------------- stepping

  private makeIndex(): PassIndex | null {
    const pass = this.model.passes[this.cursor.pass];
    if (!pass) return null;
    return new PassIndex(pass, (id) => this.model.byId.get(id)?.inputs ?? []);
  }

  /** A node's value in the open pass (a leaf's as that pass's forward used it). */
  valueOf(node: GraphNode): TensorView | null {
    return this.index ? this.index.valueOf(node) : node.value;
  }

  private valueById(id: string): TensorView | null {
    const node = this.model.byId.get(id);
    return node ? this.valueOf(node) : null;
  }

  gradAt(id: string): GradState {
    return this.index ? this.index.gradAt(id, this.cursor.step) : { kind: "unreached" };
  }

  private statusOf(node: string): Status {
    return this.index ? this.index.status(node, this.cursor.step) : "none";
  }

  /** What the step shown sends back to its input ``src``: the sum over each place
   * ``src`` is an input (x * x), as PyTorch adds them. */
  private edgeGrad(src: string, dst: string): string | null {
    const step = this.index?.step(this.cursor.step);
    const node = this.model.byId.get(dst);
    if (!step || step.node !== dst || !node) return null;
    const views = node.inputs.flatMap((id, i) => (id === src && step.grad_inputs[i] ? [step.grad_inputs[i]!] : []));
    return views.length === 1 ? nodeText(views[0]) : views.length ? views.map(nodeText).join(" + ") : null;
  }

  activeNode(): string | null {
    return this.index?.step(this.cursor.step)?.node ?? null;
  }

  private move(change: () => void): void {
    if (!this.model.finished) return;
    change();
    this.selected = this.activeNode();
    this.walked = null;
    this.renderStep();
    const passChanged = this.tablePass !== this.cursor.pass;
    this.tablePass = this.cursor.pass;
    this.table.update((id) => this.gradAt(id), this.activeNode(), passChanged ? (id) => this.valueById(id) : undefined);
    const active = this.activeNode();
    const line = active ? this.model.byId.get(active)?.line ?? null : null;
    this.editor.showStep(line);
    if (active && this.display) this.view.reveal(this.display.itemOf.get(active) ?? active);
    if (active) this.table.scrollTo(active);
    this.view.invalidate();
    this.writeHash();
  }

  private openPass(pass: number): void {
    this.cursor.goto(pass, 0);
    this.index = this.makeIndex();
    ($("pass") as HTMLSelectElement).value = String(this.cursor.pass);
    this.move(() => undefined);
  }

  private togglePlay(): void {
    if (this.playing !== null) {
      this.stopPlay();
      return;
    }
    if (!this.index) return;
    if (this.cursor.atEnd) this.move(() => this.cursor.first());
    const speed = Number(($("speed") as HTMLSelectElement).value) || 1;
    $("play").textContent = "Pause";
    this.playing = window.setInterval(() => {
      if (this.cursor.atEnd) this.stopPlay();
      else this.move(() => this.cursor.next());
    }, 700 / speed);
  }

  private stopPlay(): void {
    if (this.playing !== null) window.clearInterval(this.playing);
    this.playing = null;
    $("play").textContent = "Play";
  }

  /** The search box: the first node whose id, a name, its op or its grad_fn matches
   * (exactly, else as a part), selected and brought into view (the node, or the folded
   * module that holds it). */
  private find(query: string): void {
    const q = query.trim().toLowerCase();
    if (!q || !this.model.finished) return;
    const fields = (n: GraphNode): string[] =>
      [n.id, ...n.names, n.op ?? "", n.grad_fn, n.label].map((f) => f.toLowerCase());
    const hit = this.model.nodes.find((n) => fields(n).includes(q))
      ?? this.model.nodes.find((n) => fields(n).some((f) => f.includes(q)));
    if (!hit) {
      this.status(`no node matches "${query.trim()}"`);
      return;
    }
    this.select(hit.id, true);
    const item = this.display?.itemOf.get(hit.id);
    if (item) this.view.reveal(item);
    this.table.scrollTo(hit.id);
    this.status(`found ${hit.id} (${hit.grad_fn})`);
  }

  /** A click on a program line selects the node it made (the first the open pass steps
   * through, else the first made there). */
  private selectLine(line: number): void {
    if (!this.model.finished) return;
    const made = this.model.nodes.filter((n) => n.line === line);
    if (!made.length) return;
    const stepOf = (id: string): number => this.index?.stepOf.get(id) ?? Number.MAX_SAFE_INTEGER;
    const pick = made.reduce((a, b) => (stepOf(b.id) < stepOf(a.id) ? b : a));
    this.select(pick.id, true);
  }

  private select(node: string | null, jump: boolean): void {
    this.selected = node;
    this.walked = null;
    if (node && jump && this.index?.stepOf.has(node)) {
      const step = this.index.stepOf.get(node)!;
      this.move(() => this.cursor.goto(this.cursor.pass, step));
      this.selected = node;
    }
    this.renderInspector();
    this.view.invalidate();
  }

  // ---------------------------------------------------------------- rendering

  private renderStep(): void {
    const index = this.index;
    const n = index?.length ?? 0;
    const slider = $("slider") as HTMLInputElement;
    slider.max = String(Math.max(0, n - 1));
    slider.value = String(this.cursor.step);
    slider.disabled = n === 0;
    for (const id of ["first", "prev", "next", "last", "play"]) ($(id) as HTMLButtonElement).disabled = n === 0;
    ($("manual") as HTMLButtonElement).disabled = !this.served || !index?.pass;
    const step = index?.step(this.cursor.step);
    const node = step ? this.model.byId.get(step.node) : undefined;
    $("step-label").textContent = n === 0 ? "no backward yet"
      : `step ${this.cursor.step + 1} / ${n}${node ? `: ${node.grad_fn}` : ""}`;
    const error = this.model.run?.error ?? null;
    const last = this.model.passes[this.model.passes.length - 1] ?? null;
    renderCard($("card"), step && node && index ? {
      node, step, stepIndex: this.cursor.step, stepCount: n, index, byId: this.model.byId,
      pass: index.pass, passCount: this.model.passes.length,
      constName: (n, i) => constName(n, i, this.model.run?.variables ?? {}),
      tensors: this.served && this.playing === null ? () => fetchTensors(this.served!, step.node, index.pass.index) : null,
    } : null, error && !step ? { error, pass: last && last.steps.length === 0 ? last : null } : null);
    this.renderInspector();
  }

  private renderInspector(): void {
    const root = $("inspector");
    root.replaceChildren();
    const h = document.createElement("h2");
    h.textContent = "Inspector";
    root.append(h);
    const node = this.selected ? this.model.byId.get(this.selected) : undefined;
    if (!node) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = "Click a node to see its value, gradient and saved tensors.";
      root.append(p);
      return;
    }
    const dl = document.createElement("dl");
    const add = (k: string, v: string | HTMLElement): HTMLElement => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.append(v);
      dl.append(dt, dd);
      return dd;
    };
    /** Tensors too large for the Run's values, to be drawn as images once fetched. */
    const pictures: [HTMLElement, string, (t: NodeTensors) => FullTensor | null][] = [];
    const picture = (dd: HTMLElement, view: TensorView | null | undefined, name: string,
      pick: (t: NodeTensors) => FullTensor | null): void => {
      if (fetchable(view)) pictures.push([dd, name, pick]);
    };
    add("node", `${node.id} · ${node.kind}`);
    add("grad_fn", node.grad_fn);
    if (node.op) add("op", node.op);
    if (node.names.length) add("names", node.names.join(", "));
    if (node.module) add("module", node.module);
    if (node.line) add("line", String(node.line));
    const value = this.valueOf(node);
    add("shape", shapeOf(value) || "—");
    const passes = this.model.passes.length;
    const label = node.names[node.names.length - 1] ?? node.label;
    picture(add(passes > 1 && this.index ? `value in pass ${this.index.pass.index + 1}` : "value",
      value ? renderTensor(value) : UNSEEN_VALUE), value, label, (t) => t.value);
    const g = this.gradAt(node.id);
    const gdd = add("gradient", g.kind === "known" ? renderTensor(g.grad) : g.kind === "pending" ? "not computed yet" : "not reached in this pass");
    if (g.kind === "known") picture(gdd, g.grad, `∇${label}`, (t) => t.grad);
    for (const [name, view] of Object.entries(node.saved ?? {})) {
      picture(add(`saved ${name}`, renderTensor(view)), view, name, (t) => t.saved[name] ?? null);
    }
    if (node.freed_by != null) add("saved tensors", freedText(node.freed_by));
    root.append(dl);
    const runId = this.served;
    const pass = this.index?.pass;
    if (runId && pass && g.kind !== "unreached") root.append(this.checkButton(runId, node.id, pass.index));
    if (runId && pictures.length) this.drawPictures(runId, node.id, pass?.index ?? 0, pictures);
  }

  /** Presentation mode, for a room: the program, the card, the inspector and the tables
   * in larger type, the graph zoomed to match; pressed again, back as it was. */
  private present(): void {
    const on = document.body.classList.toggle("present");
    $("present").setAttribute("aria-pressed", String(on));
    this.view.zoom(on ? PRESENT_ZOOM : 1 / PRESENT_ZOOM);
    const active = this.activeNode();
    if (active && this.display) this.view.reveal(this.display.itemOf.get(active) ?? active);
  }

  /** A node under the pointer: when it has tensors too large for the Run, their fetch
   * starts now (the program runs again, ~80 ms), so a click draws them at once. */
  private prefetch(id: string): void {
    const node = this.model.byId.get(id);
    const runId = this.served;
    if (!node || !runId || !this.index) return;
    if (fetchable(this.valueOf(node)) || Object.values(node.saved ?? {}).some(fetchable)) {
      void fetchTensors(runId, id, this.index.pass.index).catch(() => undefined);
    }
  }

  /** The inspector's large tensors as images, once the server has given them in full. */
  private drawPictures(runId: string, node: string, pass: number,
    pictures: [HTMLElement, string, (t: NodeTensors) => FullTensor | null][]): void {
    const note = document.createElement("p");
    note.className = "muted loading";
    note.textContent = "drawing as images…";
    pictures[0][0].append(note);
    fetchTensors(runId, node, pass).then((t) => {
      note.remove();
      if (this.selected !== node || !pictures[0][0].isConnected) return;
      for (const [dd, name, pick] of pictures) {
        const full = pick(t);
        if (full) dd.append(renderImages(full, name));
      }
      this.probe.imagesAt = performance.now();
      this.probe.imagesOf = node;
    }, (e: Error) => { note.textContent = `no images: ${e.message}`; });
  }

  /** "Numpy code": the open pass written out as manual backprop (the program runs again). */
  private async openManual(): Promise<void> {
    const runId = this.served;
    const pass = this.index?.pass;
    if (!runId || !pass) return;
    const button = $("manual") as HTMLButtonElement;
    button.disabled = true;
    this.status("writing the pass out as numpy…");
    const result = await requestManual(runId, pass.index).catch((e: unknown) => ({ error: String(e) }));
    button.disabled = false;
    this.status("");
    showManual($("manual-dialog") as HTMLDialogElement, result, manualFilename(runId, pass.index + 1));
  }

  /** "Check numerically": the server runs the program again under a finite-difference check. */
  private checkButton(runId: string, node: string, pass: number): HTMLElement {
    const box = document.createElement("div");
    const button = document.createElement("button");
    button.textContent = "Check numerically";
    button.title = "Compare this gradient with finite differences (the program runs again)";
    button.addEventListener("click", async () => {
      button.disabled = true;
      button.textContent = "Checking…";
      const result = await requestCheck(runId, node, pass).catch((e: unknown) => String(e));
      if (this.selected !== node) return;
      box.replaceChildren(renderCheck(result));
    });
    box.append(button);
    return box;
  }

  private renderOutput(): void {
    const m = this.model;
    $("stdout").textContent = m.stdout;
    const list = $("diagnostics");
    list.replaceChildren();
    for (const d of m.diagnostics) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.className = `diag ${d.severity}`;
      b.dataset.code = d.code;
      b.textContent = `${d.severity}: ${d.message}${d.line ? ` (line ${d.line})` : ""}`;
      b.title = d.hint;
      b.addEventListener("click", () => {
        if (d.line) this.editor.goto(d.line);
        if (d.node) {
          this.select(d.node, true);
          const item = this.display?.itemOf.get(d.node);
          if (item) this.view.reveal(item);
          this.table.scrollTo(d.node);
        }
      });
      const hint = document.createElement("code");
      hint.className = "hint";
      hint.textContent = d.hint;
      li.append(b, hint);
      list.append(li);
    }
    if (m.diagnostics.length === 0) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = m.finished ? "none" : "…";
      list.append(li);
    }
    const err = $("error");
    const e = m.run?.error ?? m.rejected;
    err.hidden = !e;
    if (e) {
      const kind = "type" in e && e.type ? e.type : e.code;
      const more = m.run ? 0 : m.refusals.length - 1;
      err.textContent = `${kind}: ${e.message}${e.line ? ` (line ${e.line})` : ""}`
        + (more > 0 ? ` — and ${more} more, each marked on its line` : "");
    }
  }

  private markEditor(): void {
    const m = this.model;
    const marks: Mark[] = m.diagnostics.filter((d) => d.line).map((d) => ({
      line: d.line!, severity: d.severity, message: `${d.message}\nFix: ${d.hint}`,
    }));
    const errors = m.run?.error ? [m.run.error] : m.refusals;
    for (const e of errors) {
      if (e.line) marks.push({ line: e.line, col: e.col, severity: "error", message: e.message });
    }
    this.editor.mark(marks);
  }

  private renderPasses(): void {
    const passes = this.model.passes;
    const sel = $("pass") as HTMLSelectElement;
    sel.replaceChildren(...passes.map((p) => new Option(
      `${p.index + 1}${p.loss !== undefined && p.loss !== null ? ` · loss ${fmtNum(p.loss)}` : ""}${p.recorded === false ? " (not recorded)" : ""}`,
      String(passes.indexOf(p)))));
    sel.value = String(this.cursor.pass);
    $("pass-wrap").hidden = passes.length < 2;
    this.renderLosses();
  }

  /** Log scale for the loss curve (offered when every loss is positive). */
  logLosses = false;

  private renderLosses(): void {
    renderLossCurve({
      svg: $("losses") as unknown as SVGSVGElement,
      toggle: $("loss-log") as HTMLInputElement,
      toggleWrap: $("loss-log-wrap"),
      losses: this.model.losses(),
      recorded: this.model.passes.map((p) => p.index),
      log: this.logLosses,
      open: (k) => this.openPass(k),
    });
  }

  private groupsOnScreen(): { id: string; label: string; collapsed: boolean; x: number; y: number }[] {
    const d = this.display;
    if (!d) return [];
    const out = [];
    for (const g of d.groups.values()) {
      const at = this.view.screenOf(g.id);
      if (at) out.push({ id: g.id, label: g.label, collapsed: this.options.collapsed.has(g.id), x: at[0], y: at[1] });
    }
    for (const it of d.items) {  // folds of a module called over and over
      const at = it.id.startsWith("f:") ? this.view.screenOf(it.id) : null;
      if (at) out.push({ id: it.id, label: it.label, collapsed: true, x: at[0], y: at[1] });
    }
    return out;
  }

  private describe(it: Item): string {
    if (it.id.startsWith("f:")) return `module ${it.label} — click to open a call`;
    if (it.kind === "group") return `module ${it.label} — click to expand`;
    if (!it.node) return it.label;
    const n = this.model.byId.get(it.node);
    if (!n) return it.label;
    const names = n.names.length ? ` (${n.names.join(", ")})` : "";
    const flag = this.flags.get(n.id);
    return `${n.grad_fn}${names} ${shapeText(n.value?.shape)}${n.line ? ` · line ${n.line}` : ""}`
      + (flag ? ` — ⚠ ${flag}` : "");
  }

  private writeHash(): void {
    if (this.saved) return;  // (its address is a file's, or an output's)
    const hash = encodeView({
      source: this.editor.text, device: ($("device") as HTMLSelectElement).value || null,
      pass: this.cursor.pass, step: this.cursor.step,
    });
    history.replaceState(null, "", `#${hash}`);
  }

  /** The download buttons: the graph as drawn (PNG, SVG), the run as one standalone
   * HTML file (the server writes it), the Run as the server keeps it (JSON). */
  private async saveFile(kind: "png" | "svg" | "html" | "json"): Promise<void> {
    const id = this.model.run?.id;
    if (!id) return;
    try {
      const blob = kind === "png" ? await canvasPng($("graph") as HTMLCanvasElement)
        : kind === "svg" ? new Blob([this.view.toSvg()], { type: "image/svg+xml" })
        : kind === "json" && this.saved ? new Blob([JSON.stringify(this.saved.run)], { type: "application/json" })
        : await runFile(id, kind);
      save(`chainlens-${id}.${kind}`, blob);
    } catch (e) {
      this.status(`could not save: ${(e as Error).message}`);
    }
  }

  /** "Open…": a Run saved as JSON, kept by the server (imported) and opened as `#r=<id>`. */
  private async openFile(): Promise<void> {
    const input = $("open-json") as HTMLInputElement;
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    this.status("opening…");
    try {
      const id = await importRun(file);
      history.replaceState(null, "", `#r=${id}`);
      await this.open(id);
    } catch (e) {
      this.status(`could not open ${file.name}: ${(e as Error).message}`);
    }
  }

  private async share(): Promise<void> {
    this.writeHash();
    try {
      await navigator.clipboard.writeText(location.href);
      this.status("link copied");
    } catch {
      this.status("copy the link from the address bar");
    }
  }
}

new App();

/** What a saved page carries: the Run, and the program it ran when it is known (a
 * script recorded by `chainlens trace`, a program run by chainlens). */
interface SavedRun {
  run: Run;
  source: string | null;
  file: string | null;
}

/** The program a kept run ran (`GET .../program`), or null for one imported. */
async function fetchProgram(runPath: string): Promise<string | null> {
  return (await getJSON<{ source: string | null }>(`${runPath}/program`)).source;
}

function embeddedRun(): SavedRun | null {
  const el = document.getElementById("chainlens-run");
  return el?.textContent ? (JSON.parse(el.textContent) as SavedRun) : null;
}

/** A node whose saved tensors an earlier backward freed (the pass counted from 1). */
function freedText(pass: number): string {
  return `freed by backward() of pass ${pass + 1} (retain_graph=False): a second backward cannot run through this node`;
}

/** How much larger presentation mode draws the graph (its type: 12 px to ~17 px). */
const PRESENT_ZOOM = 1.4;

/** Which saved tensor is which input, for the ops whose constant inputs are named. */
const SAVED_INPUTS: Record<string, (string | null)[]> = {
  MmBackward0: ["self", "mat2"], BmmBackward0: ["self", "mat2"], AddmmBackward0: [null, "mat1", "mat2"],
  ConvolutionBackward0: ["input", "weight"], MulBackward0: ["self", "other"], DivBackward0: ["self", "other"],
};

/** The program's variable a node's constant input is: the one whose tensor is the one the
 * node saved for that input (same shape, type and numbers, or statistics past 64 values). */
function constName(node: GraphNode, input: number, variables: Record<string, Variable>): string | null {
  const key = SAVED_INPUTS[node.grad_fn]?.[input];
  const saved = key ? node.saved?.[key] : undefined;
  if (!saved) return null;
  const same = (v: TensorView | null): boolean => !!v && v.dtype === saved.dtype
    && v.shape.join(",") === saved.shape.join(",")
    && JSON.stringify(v.values ?? v.stats) === JSON.stringify(saved.values ?? saved.stats);
  return Object.entries(variables).find(([, v]) => v.node === null && same(v.value))?.[0] ?? null;
}
