// Flow control for terminal output, after the xterm.js flow-control guide: the browser acknowledges
// bytes it has written; when too many are unacknowledged the pty is paused, and resumed once the
// browser catches up. Watermarks in bytes.
export const FLOW_HIGH_WATERMARK = 128 * 1024;
export const FLOW_LOW_WATERMARK = 16 * 1024;
/** The browser acknowledges after writing at least this many bytes (and on every flush). */
export const FLOW_ACK_EVERY = 8 * 1024;
