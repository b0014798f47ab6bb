/// <reference types="vite/client" />
/**
 * The layout worker as the standalone viewer starts it (a saved .html file, a notebook
 * output): its code is inside the viewer's one script, since a page opened from
 * `file://` or an iframe's `srcdoc` may load no file of its own. The viewer build
 * (vite.viewer.config.ts) puts this module where `./spawn` is imported.
 */
import LayoutWorker from "./layout.worker?worker&inline";

export function spawnLayoutWorker(): Worker {
  return new LayoutWorker();
}
