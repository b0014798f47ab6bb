/**
 * The program editor: CodeMirror 6 with Python highlighting, Ctrl/Cmd+Enter to run,
 * and refusals, errors and diagnostics marked on their line (gutter, underline,
 * message on hover) through CodeMirror's lint extension.
 */
import { python } from "@codemirror/lang-python";
import { lintGutter, setDiagnostics } from "@codemirror/lint";
import type { Diagnostic as LintDiagnostic } from "@codemirror/lint";
import { EditorState, Prec } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";
import { basicSetup } from "codemirror";

export interface Mark {
  line: number;
  col?: number | null;
  severity: "error" | "warning" | "info";
  message: string;
}

export class Editor {
  readonly view: EditorView;

  constructor(parent: HTMLElement, doc: string, onRun: () => void, onChange: () => void) {
    this.view = new EditorView({
      parent,
      state: EditorState.create({
        doc,
        extensions: [
          Prec.highest(keymap.of([{ key: "Mod-Enter", run: () => { onRun(); return true; } }])),
          basicSetup,
          python(),
          lintGutter(),
          EditorView.contentAttributes.of({ "aria-label": "Program" }),
          EditorView.updateListener.of((u) => { if (u.docChanged) onChange(); }),
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

  /** Puts the cursor on a line and scrolls it into view (a diagnostic was clicked). */
  goto(line: number): void {
    const doc = this.view.state.doc;
    const l = doc.line(Math.min(Math.max(line, 1), doc.lines));
    this.view.dispatch({ selection: { anchor: l.from }, scrollIntoView: true });
  }
}
