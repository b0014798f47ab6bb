/**
 * The graph as SVG: the view draws it once more through `SvgContext`, which writes
 * each shape, line and label the canvas would have painted as an SVG element. One
 * drawing routine, so the saved picture is the graph as the page shows it, and it
 * scales without blur (slides, papers).
 *
 * Only what the view uses of the canvas API is here: paths (move, line, Bézier,
 * rounded rectangle, ellipse, arc), fill and stroke with dashes and opacity, filled
 * rectangles and text.
 */

const esc = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const n = (v: number): string => (Math.round(v * 100) / 100).toString();

/** A path's outline as SVG path data; stands in for `Path2D` while drawing as SVG. */
export class SvgPath {
  d = "";

  moveTo(x: number, y: number): void { this.d += `M${n(x)} ${n(y)}`; }
  lineTo(x: number, y: number): void { this.d += `L${n(x)} ${n(y)}`; }
  closePath(): void { this.d += "Z"; }
  bezierCurveTo(a: number, b: number, c: number, d: number, x: number, y: number): void {
    this.d += `C${n(a)} ${n(b)} ${n(c)} ${n(d)} ${n(x)} ${n(y)}`;
  }
  roundRect(x: number, y: number, w: number, h: number, r: number): void {
    const q = Math.max(0, Math.min(r, w / 2, h / 2));
    this.d += `M${n(x + q)} ${n(y)}H${n(x + w - q)}A${n(q)} ${n(q)} 0 0 1 ${n(x + w)} ${n(y + q)}`
      + `V${n(y + h - q)}A${n(q)} ${n(q)} 0 0 1 ${n(x + w - q)} ${n(y + h)}H${n(x + q)}`
      + `A${n(q)} ${n(q)} 0 0 1 ${n(x)} ${n(y + h - q)}V${n(y + q)}A${n(q)} ${n(q)} 0 0 1 ${n(x + q)} ${n(y)}Z`;
  }
  ellipse(cx: number, cy: number, rx: number, ry: number): void {
    this.d += `M${n(cx - rx)} ${n(cy)}A${n(rx)} ${n(ry)} 0 1 0 ${n(cx + rx)} ${n(cy)}`
      + `A${n(rx)} ${n(ry)} 0 1 0 ${n(cx - rx)} ${n(cy)}Z`;
  }
  arc(cx: number, cy: number, r: number): void { this.ellipse(cx, cy, r, r); }
}

/** Enough of `CanvasRenderingContext2D` for the view's drawing, writing SVG. */
export class SvgContext {
  fillStyle = "#000";
  strokeStyle = "#000";
  lineWidth = 1;
  globalAlpha = 1;
  font = "12px monospace";
  textAlign: CanvasTextAlign = "start";
  textBaseline: CanvasTextBaseline = "alphabetic";
  private dash: number[] = [];
  private matrix = "";
  private path = new SvgPath();
  private parts: string[] = [];

  /** `measure`: how wide a text is in a font (a canvas's own measureText). */
  constructor(private measure: (text: string, font: string) => number) {}

  setTransform(a: number, b: number, c: number, d: number, e: number, f: number): void {
    this.matrix = ` transform="matrix(${[a, b, c, d, e, f].map(n).join(" ")})"`;
  }
  setLineDash(d: number[]): void { this.dash = d; }
  beginPath(): void { this.path = new SvgPath(); }
  moveTo(x: number, y: number): void { this.path.moveTo(x, y); }
  lineTo(x: number, y: number): void { this.path.lineTo(x, y); }
  closePath(): void { this.path.closePath(); }
  roundRect(x: number, y: number, w: number, h: number, r: number): void { this.path.roundRect(x, y, w, h, r); }
  ellipse(cx: number, cy: number, rx: number, ry: number): void { this.path.ellipse(cx, cy, rx, ry); }
  arc(cx: number, cy: number, r: number): void { this.path.arc(cx, cy, r); }
  measureText(text: string): { width: number } { return { width: this.measure(text, this.font) }; }

  /** What every element carries: the transform it is drawn under, and its opacity. */
  private alpha(): string {
    return this.matrix + (this.globalAlpha < 1 ? ` opacity="${n(this.globalAlpha)}"` : "");
  }

  fill(): void {
    if (this.path.d) this.parts.push(`<path d="${this.path.d}" fill="${esc(this.fillStyle)}"${this.alpha()}/>`);
  }

  stroke(path?: SvgPath): void {
    const d = (path ?? this.path).d;
    if (!d) return;
    const dash = this.dash.length ? ` stroke-dasharray="${this.dash.join(" ")}"` : "";
    this.parts.push(`<path d="${d}" fill="none" stroke="${esc(this.strokeStyle)}" stroke-width="${n(this.lineWidth)}"${dash}${this.alpha()}/>`);
  }

  fillRect(x: number, y: number, w: number, h: number): void {
    this.parts.push(`<rect x="${n(x)}" y="${n(y)}" width="${n(w)}" height="${n(h)}" fill="${esc(this.fillStyle)}"${this.alpha()}/>`);
  }

  fillText(text: string, x: number, y: number): void {
    const anchor = this.textAlign === "center" ? "middle" : this.textAlign === "right" || this.textAlign === "end" ? "end" : "start";
    const baseline = this.textBaseline === "middle" ? "central" : this.textBaseline === "top" ? "hanging" : "auto";
    const [size, ...family] = this.font.split(" ");
    this.parts.push(`<text x="${n(x)}" y="${n(y)}" font-size="${esc(size)}" font-family="${esc(family.join(" "))}" `
      + `text-anchor="${anchor}" dominant-baseline="${baseline}" fill="${esc(this.fillStyle)}"${this.alpha()}>${esc(text)}</text>`);
  }

  /** The drawing so far, as an SVG document `w` by `h`. */
  document(w: number, h: number): string {
    return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${n(w)} ${n(h)}" width="${n(w)}" height="${n(h)}">\n`
      + `${this.parts.join("\n")}\n</svg>\n`;
  }
}
