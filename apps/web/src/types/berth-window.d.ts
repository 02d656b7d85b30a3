// The test hook the player publishes (see docs/web.md): the live xterm Terminal per terminal key.
import type { Terminal } from "@xterm/xterm";

declare global {
  interface Window {
    __berth?: { terminals: Record<string, Terminal> };
  }
}

export {};
