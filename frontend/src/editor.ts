/**
 * The program editor: CodeMirror 6 with Python highlighting, Ctrl/Cmd+Enter to run,
 * and refusals, errors and diagnostics marked on their line (gutter, underline,
 * message on hover) through CodeMirror's lint extension.
 */
import { python } from "@codemirror/lang-python";
import { HighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { tags as t } from "@lezer/highlight";
import { lintGutter, setDiagnostics } from "@codemirror/lint";
import type { Diagnostic as LintDiagnostic } from "@codemirror/lint";
import { EditorState, Prec, StateEffect, StateField } from "@codemirror/state";
import type { Range } from "@codemirror/state";
import { Decoration, EditorView, keymap } from "@codemirror/view";
import type { DecorationSet } from "@codemirror/view";
import { basicSetup } from "codemirror";

export interface Mark {
  line: number;
  col?: number | null;
  severity: "error" | "warning" | "info";
  message: string;
}

/** Token colours from the page's palette (style.css: --code-*), light and dark alike at
 * WCAG AA contrast (4.5:1) on the editor's background; CodeMirror's own style is light-only. */
const tokens = HighlightStyle.define([
  { tag: [t.keyword, t.controlKeyword, t.operatorKeyword, t.definitionKeyword], color: "var(--code-keyword)" },
  { tag: [t.string, t.special(t.string)], color: "var(--code-string)" },
  { tag: [t.number, t.bool, t.null], color: "var(--code-number)" },
  { tag: t.comment, color: "var(--code-comment)", fontStyle: "italic" },
  { tag: [t.function(t.definition(t.variableName)), t.definition(t.className)], color: "var(--code-def)" },
  { tag: [t.className, t.self], color: "var(--code-def)" },
]);

/** The editor's own surfaces in the page's palette, so dark mode has a dark editor. */
const surfaces = EditorView.theme({
  "&": { backgroundColor: "var(--bg)", color: "var(--fg)" },
  ".cm-content": { caretColor: "var(--fg)" },
  ".cm-cursor, .cm-dropCursor": { borderLeftColor: "var(--fg)" },
  ".cm-gutters": { backgroundColor: "var(--panel)", color: "var(--muted)", borderRight: "1px solid var(--border)" },
  ".cm-activeLine": { backgroundColor: "color-mix(in srgb, var(--fg) 5%, transparent)" },
  ".cm-activeLineGutter": { backgroundColor: "color-mix(in srgb, var(--fg) 8%, transparent)" },
  "&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection":
    { backgroundColor: "color-mix(in srgb, var(--down) 30%, transparent)" },
});

/** The line of the backward step being shown: highlighted, the editor following the step. */
const setStepLine = StateEffect.define<number | null>();
const stepLineMark = Decoration.line({ class: "cm-stepLine", attributes: { "aria-current": "step" } });
const stepLine = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(marks, tr) {
    for (const e of tr.effects) {
      if (e.is(setStepLine)) {
        const doc = tr.state.doc;
        const ranges: Range<Decoration>[] = e.value !== null && e.value >= 1 && e.value <= doc.lines
          ? [stepLineMark.range(doc.line(e.value).from)] : [];
        return Decoration.set(ranges);
      }
    }
    return marks.map(tr.changes);
  },
  provide: (f) => EditorView.decorations.from(f),
});

export class Editor {
  readonly view: EditorView;

  constructor(parent: HTMLElement, doc: string, onRun: () => void, onChange: () => void,
              onLineClick: (line: number) => void = () => undefined) {
    this.view = new EditorView({
      parent,
      state: EditorState.create({
        doc,
        extensions: [
          Prec.highest(keymap.of([{ key: "Mod-Enter", run: () => { onRun(); return true; } }])),
          basicSetup,
          python(),
          surfaces,
          Prec.high(syntaxHighlighting(tokens)),
          lintGutter(),
          stepLine,
          EditorView.contentAttributes.of({ "aria-label": "Program" }),
          EditorView.updateListener.of((u) => { if (u.docChanged) onChange(); }),
          EditorView.domEventHandlers({
            click: (e, view) => {
              const pos = view.posAtCoords({ x: e.clientX, y: e.clientY });
              if (pos !== null) onLineClick(view.state.doc.lineAt(pos).number);
              return false;
            },
          }),
        ],
      }),
    });
  }

  get text(): string {
    return this.view.state.doc.toString();
  }

  set text(source: string) {
    this.view.dispatch({ changes: { from: 0, to: this.view.state.doc.length, insert: source } });
  }

  /** Marks lines; a line past the end of the document is marked on the last line. */
  mark(marks: Mark[]): void {
    const doc = this.view.state.doc;
    const diagnostics: LintDiagnostic[] = marks.map((m) => {
      const line = doc.line(Math.min(Math.max(m.line, 1), doc.lines));
      const from = m.col ? Math.min(line.from + m.col - 1, line.to) : line.from + (line.text.length - line.text.trimStart().length);
      return { from, to: Math.max(line.to, from), severity: m.severity, message: m.message };
    });
    this.view.dispatch(setDiagnostics(this.view.state, diagnostics));
  }

  /** Highlights the line of the step being shown (or none), scrolled into view if it is
   * out of it, without moving the cursor or the focus. */
  showStep(line: number | null): void {
    const doc = this.view.state.doc;
    const effects: StateEffect<unknown>[] = [setStepLine.of(line)];
    if (line !== null && line >= 1 && line <= doc.lines) {
      effects.push(EditorView.scrollIntoView(doc.line(line).from, { y: "nearest" }));
    }
    this.view.dispatch({ effects });
  }

  /** Puts the cursor on a line and scrolls it into view (a diagnostic was clicked). */
  goto(line: number): void {
    const doc = this.view.state.doc;
    const l = doc.line(Math.min(Math.max(line, 1), doc.lines));
    this.view.dispatch({ selection: { anchor: l.from }, scrollIntoView: true });
  }
}
