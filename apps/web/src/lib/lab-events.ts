// Events the server pushes about a lab over socket.io: the verdicts of automatic checks
// ("check:result", with the learner's whole progress). They come on the page's one socket, the one
// the terminals attach on (the server sends them to the sockets that have the lab's terminal open).
import type { CheckResultView, ProgressView } from "@berth/protocol";
import { useEffect, useRef } from "react";
import { openLabSocket } from "./terminal-link";

interface CheckResultEvent {
  labId: string;
  result: CheckResultView;
  progress: ProgressView;
}

export function useLabEvents(labId: string, onProgress: (p: ProgressView) => void): void {
  const cb = useRef(onProgress);
  cb.current = onProgress;
  useEffect(() => {
    let disposed = false;
    let close: (() => void) | undefined;
    void openLabSocket().then(({ socket, release }) => {
      const onResult = (ev: CheckResultEvent) => {
        if (ev && ev.labId === labId && ev.progress) cb.current(ev.progress);
      };
      // ("check:result" is in the contract; cast until ServerToClientEvents lists it.)
      const s = socket as unknown as { on(ev: string, fn: (ev: CheckResultEvent) => void): void; off(ev: string, fn: (ev: CheckResultEvent) => void): void };
      s.on("check:result", onResult);
      close = () => {
        s.off("check:result", onResult);
        release();
      };
      if (disposed) close();
    });
    return () => {
      disposed = true;
      close?.();
    };
  }, [labId]);
}
