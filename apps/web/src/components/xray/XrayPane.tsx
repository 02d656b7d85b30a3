"use client";
// The X-ray tab: one of the learner's containers seen through what the engine recorded while it
// made it (the recipe, built from the shim's own reports) and what its cgroup counts right now.
// Namespaces against the sandbox's own, the cgroup's limits with live graphs, the layer stack with
// the upper dir's changes, mounts, volumes, ports, networks, the process; every item links to the
// engine's lines that did it (shown here, read-only) and to the chapter that teaches it.
//
// Data: xray:watch on the page's shared socket while the tab shows (and again on every reconnect);
// the server pushes xray:view when a container appears, starts or stops, and xray:live figures
// about every second. Unwatched when hidden or unmounted, so a closed tab costs the sandbox nothing.
import "./xray.css";
import { useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { openLabSocket } from "@/lib/terminal-link";
import type { ChapterLink, Excerpt, LiveMsg, SourceLink, SourceRef, StatusMsg, ViewMsg, XContainer, XView } from "./types";
import { sourceKey } from "./types";
import { Sparkline } from "./Sparkline";

/** How many samples the graphs keep (about a minute). */
const HISTORY = 60;

interface Sample {
  at: number;
  memory: number | null;
  cpuPercent: number | null;
  pids: number | null;
  cpuNs: number | null;
}

/** The loose shape of the shared socket for events outside the typed contract. */
interface LooseSocket {
  connected: boolean;
  active: boolean;
  connect(): void;
  on(event: string, fn: (msg: never) => void): void;
  off(event: string, fn: (msg: never) => void): void;
  emit(event: string, msg: unknown, ack?: (reply: never) => void): void;
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${n} B`;
}

function useXrayFeed(labId: string, active: boolean) {
  const [view, setView] = useState<XView | null>(null);
  const [links, setLinks] = useState<Record<string, SourceLink>>({});
  const [chapters, setChapters] = useState<Record<string, ChapterLink>>({});
  const [status, setStatus] = useState<string>("Connecting…");
  const [history, setHistory] = useState<Record<string, Sample[]>>({});
  const socketRef = useRef<LooseSocket | null>(null);

  useEffect(() => {
    if (!active) return;
    let stop: (() => void) | undefined;
    let cancelled = false;
    void openLabSocket().then((shared) => {
      if (cancelled) return shared.release();
      stop = follow(shared.socket as unknown as LooseSocket, shared.release);
    });
    return () => {
      cancelled = true;
      stop?.();
    };
  }, [labId, active]);

  /** Listens on the shared socket and watches this lab; returns what undoes it. */
  function follow(socket: LooseSocket, release: () => void): () => void {
    socketRef.current = socket;
    const record = (containers: Record<string, { live: XContainer["live"] }>) =>
      setHistory((prev) => {
        const next: Record<string, Sample[]> = {};
        for (const [id, { live }] of Object.entries(containers)) {
          const old = prev[id] ?? [];
          const last = old[old.length - 1];
          if (!live || (last && last.at === live.at)) {
            next[id] = old;
            continue;
          }
          const cpuNs = live.cpu?.usageNs ?? null;
          const cpuPercent = last && last.cpuNs !== null && cpuNs !== null && live.at > last.at ? Math.max(0, ((cpuNs - last.cpuNs) / ((live.at - last.at) * 1e6)) * 100) : null;
          next[id] = [...old, { at: live.at, memory: live.memory?.usage ?? null, cpuPercent, pids: live.pids?.current ?? null, cpuNs }].slice(-HISTORY);
        }
        return next;
      });
    const onView = (msg: ViewMsg) => {
      if (msg.labId !== labId) return;
      setView(msg.view);
      setLinks(msg.links);
      setStatus("");
      record(Object.fromEntries(msg.view.containers.map((c) => [c.id, { live: c.live }])));
    };
    const onLive = (msg: LiveMsg) => {
      if (msg.labId !== labId) return;
      setView((v) => (v ? { ...v, containers: v.containers.map((c) => (msg.containers[c.id] ? { ...c, ...msg.containers[c.id] } : c)) } : v));
      setStatus("");
      record(msg.containers);
    };
    const onStatus = (msg: StatusMsg) => {
      if (msg.labId === labId) setStatus(msg.message);
    };
    const watch = () =>
      socket.emit("xray:watch", { labId }, (reply: { ok: boolean; chapters?: Record<string, ChapterLink>; error?: string }) => {
        if (reply.ok) setChapters(reply.chapters ?? {});
        else setStatus(reply.error ?? "The X-ray is not available.");
      });
    socket.on("xray:view", onView);
    socket.on("xray:live", onLive);
    socket.on("xray:status", onStatus);
    socket.on("connect", watch);
    if (socket.connected) watch();
    else if (!socket.active) socket.connect();
    return () => {
      socket.emit("xray:unwatch", { labId });
      socket.off("xray:view", onView);
      socket.off("xray:live", onLive);
      socket.off("xray:status", onStatus);
      socket.off("connect", watch);
      socketRef.current = null;
      release();
    };
  }

  return { view, links, chapters, status, history, socketRef };
}

export function XrayPane({ labId, active }: { labId: string; active: boolean }) {
  const { view, links, chapters, status, history, socketRef } = useXrayFeed(labId, active);
  const [selected, setSelected] = useState<string | null>(null);
  const [source, setSource] = useState<{ link: SourceLink; excerpt: Excerpt | null; error?: string } | null>(null);
  const containers = view?.containers ?? [];
  // The chosen one, else the newest running one, else the newest.
  const current = containers.find((c) => c.id === selected) ?? containers.find((c) => c.state.running) ?? containers[0] ?? null;

  const openSource = (link: SourceLink) => {
    setSource({ link, excerpt: null });
    socketRef.current?.emit("xray:source", { path: link.path, from: link.from, to: link.to }, (reply: { ok: boolean; excerpt?: Excerpt; error?: string }) =>
      setSource({ link, excerpt: reply.ok ? (reply.excerpt ?? null) : null, error: reply.ok ? undefined : reply.error }),
    );
  };
  /** A link to the engine's lines: for a reported step (its ref), or for a section ("section:layers"). */
  const src = (ref: SourceRef | string | undefined): ReactNode => {
    const link = ref && links[typeof ref === "string" ? ref : sourceKey(ref)];
    if (!link) return null;
    const name = link.path.split("/").pop();
    return (
      <button type="button" className="xray-src" title={`${link.path}#L${link.from}-L${link.to}`} onClick={() => openSource(link)} data-testid="xray-source-link">
        {name}:{link.from}
        {link.to > link.from ? `–${link.to}` : ""}
      </button>
    );
  };
  const chapter = (key: string): ReactNode => {
    const c = chapters[key];
    if (!c) return null;
    return (
      <a className="xray-chapter" href={`/labs/${encodeURIComponent(c.labId)}${c.step ? `/${encodeURIComponent(c.step)}` : ""}`} target="_blank" rel="noopener" title={c.title}>
        {c.title}
      </a>
    );
  };

  return (
    <div className="xray" data-testid="xray">
      <div className="xray-bar">
        <label className="xray-pick">
          Container{" "}
          <select value={current?.id ?? ""} onChange={(e) => setSelected(e.target.value)} data-testid="xray-select" disabled={containers.length === 0}>
            {containers.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name} ({c.image}, {c.state.status})
              </option>
            ))}
          </select>
        </label>
        {status ? <span className="xray-status" role="status">{status}</span> : null}
      </div>
      {!current ? (
        <p className="xray-empty" data-testid="xray-empty">
          {view ? "No containers yet: run one in the terminal, for example " : "Waiting for the engine… "}
          <code>docker run -d --memory 64m busybox sleep 600</code>
        </p>
      ) : (
        <ContainerXray c={current} engine={view!.engine} samples={history[current.id] ?? []} src={src} chapter={chapter} />
      )}
      {source ? <SourceViewer source={source} onClose={() => setSource(null)} /> : null}
    </div>
  );
}

function Section({ title, children, aside, testId }: { title: string; children: ReactNode; aside?: ReactNode; testId?: string }) {
  return (
    <section className="xray-section" data-testid={testId}>
      <h3>
        {title} {aside ? <span className="xray-aside">{aside}</span> : null}
      </h3>
      {children}
    </section>
  );
}

function ContainerXray({
  c,
  engine,
  samples,
  src,
  chapter,
}: {
  c: XContainer;
  engine: XView["engine"];
  samples: Sample[];
  src: (ref: SourceRef | string | undefined) => ReactNode;
  chapter: (key: string) => ReactNode;
}) {
  const r = c.recipe;
  const live = c.live;
  const memLimit = live?.memory?.limit ?? null;
  const last = samples[samples.length - 1];
  const writeFor = (pattern: RegExp) => r?.cgroup.writes.find((w) => pattern.test(w.file));
  const traceFor = (kind: string) => r?.trace.find((t) => t.kind === kind)?.source;
  const cgroupRef = (pattern: RegExp) => {
    const w = writeFor(pattern);
    return w ? r?.trace.find((t) => t.kind === "cgroup" && t.text.endsWith(w.file))?.source : undefined;
  };
  const sandboxNs = useMemo(() => new Map(engine.namespaces.map((n) => [n.type, n.inode])), [engine]);

  return (
    <div className="xray-body" data-testid="xray-container" data-name={c.name} data-started-at={c.state.startedAt}>
      <p className="xray-summary">
        <strong>{c.name}</strong> · {c.image} · {c.state.status}
        {c.state.running ? ` · host pid ${c.state.pid}` : ` · exit ${c.state.exitCode}`}
        {c.state.oomKilled ? " · OOM-killed" : ""}
      </p>
      {!r ? <p className="xray-empty">This container has not started since the engine began recording, so there is no recipe yet: start it again.</p> : null}

      {r ? (
        <Section title="Namespaces" aside={chapter("namespaces")} testId="xray-namespaces">
          {/* Drawn as two columns, the sandbox and the container: a shared namespace is one box across
              both, a new one is a box on each side with its own inode. */}
          <div className="xray-ns" role="table" aria-label="The container's namespaces against the sandbox's">
            <div className="xray-ns-row xray-ns-head" role="row">
              <span role="columnheader">type</span>
              <span role="columnheader">sandbox</span>
              <span role="columnheader">container</span>
              <span role="columnheader"></span>
            </div>
            {r.namespaces.map((n) => (
              <div key={n.type} role="row" className={`xray-ns-row ${n.shared ? "xray-shared" : "xray-new"}`} data-testid={`xray-ns-${n.type}`}>
                <span role="cell" className="xray-ns-type">
                  {n.type}
                </span>
                {n.shared ? (
                  <span role="cell" className="xray-ns-box shared wide">
                    <code>{n.inode}</code> <span className="xray-badge shared">shared</span>
                  </span>
                ) : (
                  <>
                    <span role="cell" className="xray-ns-box outer">
                      <code>{sandboxNs.get(n.type) ?? n.outer}</code>
                    </span>
                    <span role="cell" className="xray-ns-box new">
                      <code>{n.inode}</code> <span className="xray-badge new">new</span>
                    </span>
                  </>
                )}
                <span role="cell" className="xray-ns-links">
                  {src(n.source)} {chapter(`namespace:${n.type}`)}
                </span>
              </div>
            ))}
          </div>
        </Section>
      ) : null}

      <Section title={`Control group${r ? ` (v${r.cgroup.version})` : ""}`} aside={<>{src("section:live")} {chapter("cgroup")}</>} testId="xray-cgroup">
        <div className="xray-graphs">
          <figure className="xray-graph" data-testid="xray-memory">
            <figcaption>
              memory <span data-testid="xray-memory-usage">{live?.memory ? formatBytes(live.memory.usage) : "–"}</span> of{" "}
              <span data-testid="xray-memory-limit">{memLimit !== null ? formatBytes(memLimit) : "no limit"}</span> {src(cgroupRef(/memory\.(limit_in_bytes|max)$/))}{" "}
              {chapter("cgroup:memory")}
            </figcaption>
            <Sparkline values={samples.map((s) => s.memory)} max={memLimit ?? undefined} label="memory use over the last minute" />
          </figure>
          <figure className="xray-graph" data-testid="xray-cpu">
            <figcaption>
              CPU <span data-testid="xray-cpu-usage">{last?.cpuPercent != null ? `${last.cpuPercent.toFixed(1)} %` : "–"}</span>
              {live?.cpu?.quota ? ` · quota ${live.cpu.quota}` : ""} {src(cgroupRef(/cpu\.(cfs_quota_us|max)$/))} {chapter("cgroup:cpu")}
            </figcaption>
            <Sparkline values={samples.map((s) => s.cpuPercent)} max={100} label="CPU use over the last minute" />
          </figure>
          <figure className="xray-graph" data-testid="xray-pids">
            <figcaption>
              pids <span data-testid="xray-pids-usage">{live?.pids ? live.pids.current : "–"}</span>
              {live?.pids?.limit != null ? ` of ${live.pids.limit}` : ""} {src(cgroupRef(/pids\.max$/))} {chapter("cgroup:pids")}
            </figcaption>
            <Sparkline values={samples.map((s) => s.pids)} max={live?.pids?.limit ?? undefined} label="processes over the last minute" />
          </figure>
        </div>
        {r ? (
          <details>
            <summary>
              {r.cgroup.writes.length} files written, {r.cgroup.paths.length} directories
            </summary>
            <ul className="xray-list">
              {r.cgroup.writes.map((w, i) => (
                <li key={i}>
                  <code>
                    echo {w.value} &gt; {w.file}
                  </code>{" "}
                  {src(r.trace.find((t) => t.kind === "cgroup" && t.text === `echo ${w.value} > ${w.file}`)?.source)}
                </li>
              ))}
              {r.cgroup.notes.map((n, i) => (
                <li key={`n${i}`}>{n}</li>
              ))}
            </ul>
            <p>
              The process itself says (<code>/proc/self/cgroup</code>): <code>{r.cgroup.membership.join(" · ")}</code>
            </p>
          </details>
        ) : null}
      </Section>

      <Section title="Layers" aside={<>{src("section:layers")} {chapter("layers")}</>} testId="xray-layers">
        <ol className="xray-layers">
          {c.upper ? (
            <li className="xray-upper">
              <strong>upper</strong> (this container's own, writable) <code>{c.upper.dir}</code> {src("section:upper")} {chapter("upper")}
              <ul className="xray-list" data-testid="xray-changes">
                {c.upper.changes.map((ch) => (
                  <li key={ch.path} className={`xray-change ${ch.kind}`}>
                    <span className="xray-kind">{ch.kind === "added" ? "A" : ch.kind === "deleted" ? "D" : "C"}</span> <code>/{ch.path.replace(/^\//, "")}</code>
                  </li>
                ))}
                {c.upper.total > c.upper.changes.length ? <li>… and {c.upper.total - c.upper.changes.length} more</li> : null}
                {c.upper.total === 0 ? <li>nothing changed yet</li> : null}
              </ul>
            </li>
          ) : null}
          {c.layers.map((l, i) => (
            <li key={l.dir}>
              <strong>{l.diffId ? `image layer ${l.diffId.slice(7, 19)}` : i === 0 ? "init (hostname, hosts, resolv.conf)" : "layer"}</strong> (read-only) <code>{l.dir}</code>
            </li>
          ))}
        </ol>
        {r ? (
          <p>
            <code>{r.rootfs.command}</code> {src(traceFor("rootfs"))}
          </p>
        ) : null}
      </Section>

      {r ? (
        <Section title="Mounts" aside={chapter("mounts")} testId="xray-mounts">
          <table className="xray-table">
            <thead>
              <tr>
                <th>where</th>
                <th>type</th>
                <th>from</th>
                <th>options</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {r.mounts.map((m) => (
                <tr key={`${m.destination}-${m.mountId}`}>
                  <td>
                    <code>{m.destination}</code>
                  </td>
                  <td>{m.type}</td>
                  <td>
                    <code>{m.source}</code>
                  </td>
                  <td>
                    <code>{m.options}</code>
                    {m.fallback ? <div className="xray-fallback">fallback: {m.fallback}</div> : null}
                    {!m.call ? <div className="xray-fallback">came along with a recursive bind</div> : null}
                  </td>
                  <td>{src(m.sourceRef)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      ) : null}

      <Section title="Volumes, ports, networks" aside={<>{src("section:volumes")} {chapter("volumes")}</>} testId="xray-io">
        <ul className="xray-list">
          {c.volumes.map((v) => (
            <li key={v.destination}>
              {v.type} {v.name ? <strong>{v.name}</strong> : null} <code>{v.source}</code> → <code>{v.destination}</code> {v.rw ? "" : "(read-only)"}
            </li>
          ))}
          {c.volumes.length === 0 ? <li>no volumes</li> : null}
          {c.ports.map((p) => (
            <li key={`${p.container}-${p.hostIp}-${p.hostPort}`}>
              port {p.hostIp || "0.0.0.0"}:{p.hostPort} → {p.container} {src("section:ports")} {chapter("ports")}
            </li>
          ))}
          {c.networks.map((n) => (
            <li key={n.name}>
              network <strong>{n.name}</strong> {n.ip ? <code>{n.ip}</code> : null} {n.gateway ? `via ${n.gateway}` : ""} {n.mac ? <code>{n.mac}</code> : null} {src("section:networks")} {chapter("networks")}
            </li>
          ))}
        </ul>
      </Section>

      {r ? (
        <Section title="Process" aside={chapter("capabilities")} testId="xray-process">
          <p>
            {r.exec ? (
              <>
                <code>{r.exec.path}</code> <code>{JSON.stringify(r.exec.argv)}</code> {src(traceFor("exec"))}
              </>
            ) : null}
          </p>
          <p>
            uid {r.user.uid}, gid {r.user.gid}, groups [{r.user.groups.join(", ")}] in <code>{r.cwd}</code>, hostname <code>{r.hostname}</code> {src("section:user")} {chapter("user")}
          </p>
          <p>
            {r.capabilitySets.bounding.length} capabilities kept ({r.capabilitySets.effective.length} effective){r.capabilitySets.noNewPrivileges ? ", no_new_privs" : ""}:{" "}
            <code>{r.capabilitySets.bounding.map((x) => x.replace(/^CAP_/, "")).join(" ")}</code> {src("section:capabilities")}
          </p>
          <details>
            <summary>berth-shim's command line</summary>
            <code className="xray-argv">{r.shim.join(" ")}</code>
          </details>
        </Section>
      ) : null}

      {r ? (
        <Section title="Every step, in order" aside={chapter("recipe")} testId="xray-steps">
          <ol className="xray-steps">
            {r.trace.map((s, i) => (
              <li key={i} className={`xray-step ${s.kind}`}>
                <code>{s.text}</code> {src(s.source)}
              </li>
            ))}
          </ol>
        </Section>
      ) : null}
    </div>
  );
}

function SourceViewer({ source, onClose }: { source: { link: SourceLink; excerpt: Excerpt | null; error?: string }; onClose: () => void }) {
  const { link, excerpt, error } = source;
  return (
    <aside className="xray-source" aria-label="Engine source" data-testid="xray-source">
      <header>
        <code>
          {link.path}#L{link.from}-L{link.to}
        </code>
        <button type="button" onClick={onClose} aria-label="Close the source">
          ×
        </button>
      </header>
      {error ? <p>{error}</p> : null}
      {excerpt ? (
        <pre>
          {excerpt.lines.map((l, i) => {
            const n = excerpt.first + i;
            return (
              <div key={n} className={n >= excerpt.from && n <= excerpt.to ? "hit" : undefined}>
                <span className="ln">{n}</span>
                {l}
              </div>
            );
          })}
        </pre>
      ) : error ? null : (
        <p>Loading…</p>
      )}
    </aside>
  );
}
