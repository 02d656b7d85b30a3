// How the player's terminals are made (xterm.js with its fit, web-links and WebGL addons, Berth's
// theme), and the spare terminal the catalog makes while it is idle so that opening a lab does not
// pay for it.
//
// Making a terminal is the costliest step between the click on a lab and its prompt: opening it
// measures the font and builds its DOM, and the WebGL renderer creates a context and compiles its
// shaders (60-100 ms together on this project's machines, which draw WebGL in software). The
// catalog knows a lab is probably about to be opened, so while nothing else happens it makes
// terminal 1 for it here, off screen, at the size the player gave terminal 1 last time in a window
// like this one (terminal-link.ts remembers it), and the player's terminal 1 takes that terminal
// (TerminalPane.tsx) and moves its element into its own place instead of making one.
//
// This module imports xterm statically: the catalog loads it on demand (lab-warmup.ts), the
// player with its own scripts.
import { FitAddon } from "@xterm/addon-fit";
import { WebglAddon } from "@xterm/addon-webgl";
import { WebLinksAddon } from "@xterm/addon-web-links";
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import { rememberedTerminalSize } from "./terminal-link";

const THEME = {
  background: "#0f1419",
  foreground: "#d7dde4",
  cursor: "#e6b450",
  cursorAccent: "#0f1419",
  selectionBackground: "#33415588",
  black: "#1c2430",
  red: "#f07178",
  green: "#aad94c",
  yellow: "#e6b450",
  blue: "#59c2ff",
  magenta: "#d2a6ff",
  cyan: "#95e6cb",
  white: "#c7ccd1",
  brightBlack: "#5c6773",
  brightRed: "#ff8f8f",
  brightGreen: "#c2f07a",
  brightYellow: "#ffd173",
  brightBlue: "#73d0ff",
  brightMagenta: "#dfbfff",
  brightCyan: "#b8f5e0",
  brightWhite: "#f3f4f5",
};

/** A player's terminal and the addons the player drives. */
export interface MadeTerminal {
  term: Terminal;
  fit: FitAddon;
  /** The WebGL renderer, or null when the browser has none (xterm's DOM renderer draws then). */
  webgl: WebglAddon | null;
}

/** A new terminal with the player's options and addons, not yet opened. */
export function makeTerminal(opts: { screenReader: boolean }): Pick<MadeTerminal, "term" | "fit"> {
  const term = new Terminal({
    theme: THEME,
    fontFamily: 'ui-monospace, "SFMono-Regular", "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace',
    fontSize: 14,
    lineHeight: 1.15,
    cursorBlink: true,
    scrollback: 5000,
    convertEol: false,
    screenReaderMode: opts.screenReader,
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.loadAddon(new WebLinksAddon());
  return { term, fit };
}

/**
 * The WebGL renderer for an opened terminal, or null without WebGL. It decides the cell size (it
 * rounds cells to device pixels, the DOM renderer does not), so it is loaded before the first fit.
 */
export function loadWebgl(term: Terminal): WebglAddon | null {
  try {
    const webgl = new WebglAddon();
    term.loadAddon(webgl);
    return webgl;
  } catch {
    return null;
  }
}

interface Spare {
  made: MadeTerminal;
  host: HTMLDivElement;
  /** Drops the spare's own listeners (and its glyph sample, if still there) when it is taken or disposed. */
  stopWatching: () => void;
}

let spare: Spare | null = null;
let disposeTimer: ReturnType<typeof setTimeout> | null = null;

/**
 * Where the spare waits: in the viewport, so xterm draws it (it stops drawing a terminal that is
 * off screen), but invisible, behind the page, out of the keyboard's and screen readers' way.
 */
function hiddenHost(): HTMLDivElement {
  const host = document.createElement("div");
  host.setAttribute("aria-hidden", "true");
  host.inert = true;
  host.style.cssText = "position:fixed;left:0;top:0;width:1000px;height:600px;opacity:0;z-index:-1;pointer-events:none;overflow:hidden;contain:strict";
  document.body.appendChild(host);
  return host;
}

/**
 * The characters of the sandbox's prompt in its colours (bold green user@host, bold blue path:
 * the PS1 of the sandbox's base image, packages/sandbox/src/rootfs/build.ts). The spare draws them
 * once, so the WebGL renderer's glyph atlas has them before the lab's first prompt arrives: drawing
 * them for the first time cost that prompt 30-60 ms here.
 */
const ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const PROMPT_GLYPHS = `\x1b[1;32m${ALNUM}@-._\x1b[0m:\x1b[1;34m~/${ALNUM}-._\x1b[0m$# `;

/**
 * Gets terminal 1 ready for the lab the catalog's learner is about to open: the spare terminal, made
 * once (a spare already there is kept), at the size the player gave terminal 1 last time in a window
 * like this one, or xterm's default when there is none (the first lab opened in this browser, or a
 * window of another size): the player's fit then resizes it, which costs far less than making it.
 */
export function warmTerminal(): void {
  if (spare) {
    // The catalog is shown again before the grace of releaseSpareTerminal ran out.
    if (disposeTimer) clearTimeout(disposeTimer);
    disposeTimer = null;
    return;
  }
  const size = rememberedTerminalSize();
  const host = hiddenHost();
  const { term, fit } = makeTerminal({ screenReader: false });
  term.open(host);
  if (size) term.resize(size.cols, size.rows);
  const webgl = loadWebgl(term);
  const lost = webgl?.onContextLoss(() => disposeSpareTerminal());
  // The prompt's glyphs, drawn once and cleared; a player taking the spare before that draw
  // clears it itself (clearGlyphs).
  let parsed = false;
  term.write(PROMPT_GLYPHS, () => (parsed = true));
  const drawn = term.onRender(() => clearGlyphs());
  let cleared = false;
  const clearGlyphs = () => {
    if (cleared) return;
    cleared = true;
    drawn.dispose();
    // Not parsed yet (writes are parsed on a later task): a reset queued behind it, so that
    // nothing of the sample is left when what the player writes is parsed.
    if (parsed) term.reset();
    else term.write("\x1bc");
  };
  spare = {
    made: { term, fit, webgl },
    host,
    stopWatching: () => {
      lost?.dispose();
      clearGlyphs();
    },
  };
  performance.mark("berth:spare-terminal");
}

/**
 * The spare terminal, moved into `host` (the player's terminal 1), or null when there is none.
 * From here the taker owns it and disposes it.
 */
export function takeSpareTerminal(host: HTMLElement): MadeTerminal | null {
  const s = spare;
  if (!s || !s.made.term.element) return null;
  spare = null;
  if (disposeTimer) clearTimeout(disposeTimer);
  disposeTimer = null;
  s.stopWatching();
  host.appendChild(s.made.term.element);
  s.host.remove();
  return s.made;
}

/**
 * The catalog is going away: the spare is kept a few seconds for the player it is opening (its
 * effects run after the catalog's cleanup), then disposed if nobody took it.
 */
export function releaseSpareTerminal(graceMs = 5000): void {
  if (!spare || disposeTimer) return;
  disposeTimer = setTimeout(disposeSpareTerminal, graceMs);
}

function disposeSpareTerminal(): void {
  if (disposeTimer) clearTimeout(disposeTimer);
  disposeTimer = null;
  const s = spare;
  spare = null;
  if (!s) return;
  s.stopWatching();
  s.made.term.dispose();
  s.host.remove();
}
