/**
 * npm run engine -- --root <state dir> --socket <socket path>
 * Serves the Docker Engine API; then: DOCKER_HOST=unix://<socket path> docker run busybox echo hi
 */
import { parseArgs } from "node:util";
import { startEngine } from "./engine";
import { startProfiling } from "./profile";

// A listener keeps Node's inspector closed on SIGUSR1: in a sandbox, root may signal this process.
process.on("SIGUSR1", () => console.error("berth engine: ignored SIGUSR1 (no inspector)"));

const { values } = parseArgs({
  options: {
    root: { type: "string", default: "/var/lib/berth" },
    socket: { type: "string", default: "/var/run/berth.sock" },
    // debian:bookworm is built from Debian's archive at first start unless told not to.
    "no-debian": { type: "boolean", default: false },
    // A read-only image store to import from (repeatable), e.g. a sandbox's /opt/berth-images.
    "shared-images": { type: "string", multiple: true, default: [] },
    // Where docker.io images are pulled from (Berth's registry); default: $BERTH_REGISTRY_MIRROR.
    "registry-mirror": { type: "string" },
    // A host path no bind mount may use (repeatable); the state dir (--root) is always refused.
    "bind-deny": { type: "string", multiple: true, default: [] },
    // The default bridge (docker0's counterpart) and its subnet; --no-network: loopback only.
    bridge: { type: "string", default: "berth0" },
    "bridge-subnet": { type: "string", default: "172.17.0.0/16" },
    "no-network": { type: "boolean", default: false },
    "live-restore": { type: "boolean", default: false },
  },
});

if (process.env.BERTH_PROFILE) startProfiling(); // where a docker run's time goes (profile.ts)
const engine = await startEngine({ root: values.root!, socket: values.socket!, log: (m) => console.error(m), prebuild: values["no-debian"] ? [] : ["debian:bookworm"], sharedImages: values["shared-images"], registryMirror: values["registry-mirror"] ?? (process.env.BERTH_REGISTRY_MIRROR || undefined), bindDeny: values["bind-deny"], liveRestore: values["live-restore"], shim: process.env.BERTH_SHIM || undefined, cc: process.env.CC || undefined, cgroupParent: process.env.BERTH_CGROUP_PARENT || undefined, network: { enabled: !values["no-network"], bridge: values.bridge, subnet: values["bridge-subnet"] } });
console.error(`berth engine: serving the Docker API on unix://${engine.socket} (state in ${values.root})`);
let closing = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (closing) return;
    closing = true;
    void engine.close().then(() => process.exit(0));
  });
}
