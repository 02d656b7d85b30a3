"use client";
// The player's frame: the split between the instructions (the page, `children`) and the workspace
// (the learner's terminals, the editor, the web preview, the X-ray, the sandbox's lifetime), and the
// view tabs of narrow screens. It is the lab route's layout (app/labs/[labId]/[[...step]]/layout.tsx),
// which needs nothing but the visitor's session and the lab's existence, so it is on screen, its
// terminal made and attached, before the lab's text and progress arrive: a click in the catalog
// renders it at once from the router's prefetch, and a page load streams it before the page.
//
// What the instructions need from the workspace comes through context: RunContext (Run blocks,
// "open in editor", "preview") and LabShellContext (whether terminal 1 is attached, the narrow
// layout, switching views).
import dynamic from "next/dynamic";
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { EditorPane, type OpenFileRequest } from "./EditorPane";
import { RunContext, type RunTarget } from "./LabHtml";
import { PreviewPane, type PreviewRequest } from "./PreviewPane";
import { SandboxLifetime } from "./SandboxLifetime";
import { SplitPane } from "./SplitPane";
import { TerminalPane, type TerminalHandle } from "./TerminalPane";
import { useNarrow, ViewTabs, WorkspacePanels, panelId, type View, type WorkspaceView } from "./Workspace";
// The X-ray's code loads when its tab is first shown, not with the player.
const XrayPane = dynamic(() => import("./xray/XrayPane").then((m) => m.XrayPane), { ssr: false });

export interface LabShellApi {
  /** Terminal 1 is attached: the sandbox is there (step setups, the editor need it). */
  attached: boolean;
  /** At most 900 px wide: one view at a time. */
  narrow: boolean;
  /** Show a view (on narrow screens, instructions included). */
  select(view: View): void;
}

export const LabShellContext = createContext<LabShellApi>({ attached: false, narrow: false, select: () => undefined });

export const useLabShell = (): LabShellApi => useContext(LabShellContext);

export function LabShell({ labId, children }: { labId: string; children: ReactNode }) {
  const handle = useRef<TerminalHandle | null>(null);
  const [attached, setAttached] = useState(false);
  const narrow = useNarrow();
  const [view, setView] = useState<View>("instructions");
  const [workspaceView, setWorkspaceView] = useState<WorkspaceView>("terminal");
  const [openRequest, setOpenRequest] = useState<OpenFileRequest | null>(null);
  const [previewRequest, setPreviewRequest] = useState<PreviewRequest | null>(null);
  const nonce = useRef(0);
  useEffect(() => void performance.mark("berth:frame"), []);

  const select = useCallback((v: View) => {
    setView(v);
    if (v !== "instructions") setWorkspaceView(v);
  }, []);

  const runTarget = useMemo<RunTarget>(
    () => ({
      canRun: attached,
      run: (code, { term, interrupt }) => {
        const h = handle.current;
        if (!h) return false;
        // Into the terminal the block names (Ctrl-C first when it says so: the terminal handles that).
        const ok = h.run(term, code, { interrupt });
        // The output is what the learner should look at next.
        if (ok) select("terminal");
        return ok;
      },
      openFile: (path) => {
        setOpenRequest({ path, nonce: ++nonce.current });
        select("editor");
      },
      preview: (port) => {
        setPreviewRequest({ port, nonce: ++nonce.current });
        select("preview");
      },
    }),
    [attached, select],
  );
  const onHandle = useCallback((h: TerminalHandle | null) => {
    handle.current = h;
  }, []);
  const shellApi = useMemo<LabShellApi>(() => ({ attached, narrow, select }), [attached, narrow, select]);

  const shownWorkspace: WorkspaceView | null = narrow && view === "instructions" ? null : workspaceView;
  const lifetime = <SandboxLifetime labId={labId} />;
  const tabs = (
    <ViewTabs
      label={narrow ? "Lab views" : "Workspace"}
      views={narrow ? ["instructions", "terminal", "editor", "preview", "xray"] : ["terminal", "editor", "preview", "xray"]}
      selected={narrow ? view : workspaceView}
      onSelect={select}
    />
  );

  return (
    <LabShellContext.Provider value={shellApi}>
      <RunContext.Provider value={runTarget}>
        <main className={`player ${narrow ? "player-narrow" : ""}`}>
          {narrow ? (
            <>
              {lifetime}
              {tabs}
            </>
          ) : null}
          <SplitPane
            label="Resize instructions and workspace"
            narrowShow={narrow ? (view === "instructions" ? "left" : "right") : null}
            leftProps={narrow ? { role: "tabpanel", id: panelId("instructions"), "aria-labelledby": "view-tab-instructions" } : {}}
            left={children}
            right={
              <div className="workspace">
                {narrow ? null : (
                  <>
                    {lifetime}
                    {tabs}
                  </>
                )}
                <WorkspacePanels
                  selected={shownWorkspace}
                  terminal={<TerminalPane labId={labId} onHandle={onHandle} onAttachedChange={setAttached} />}
                  editor={<EditorPane labId={labId} active={shownWorkspace === "editor"} request={openRequest} sandboxReady={attached} />}
                  preview={<PreviewPane labId={labId} request={previewRequest} />}
                  xray={<XrayPane labId={labId} active={shownWorkspace === "xray"} />}
                />
              </div>
            }
          />
        </main>
      </RunContext.Provider>
    </LabShellContext.Provider>
  );
}
