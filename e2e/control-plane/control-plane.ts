/**
 * A real Kubernetes control plane for tests, started the way controller-runtime's envtest starts one
 * (pkg/internal/testing/controlplane): etcd and kube-apiserver (and kube-controller-manager, for
 * EndpointSlices, garbage collection, namespace deletion and default ServiceAccounts) from the binaries
 * that build.sh made, on loopback only, on free ports, with a throwaway data folder, readiness polled,
 * and every process in its own process group so that stop() (SIGTERM, then SIGKILL) ends it whole.
 *
 * `startControlPlane()` owns the processes; `connectControlPlane(info)` gives any test file (running in
 * a vitest worker) the same kubectl / newNamespace helpers for a control plane started elsewhere, by
 * the suite's globalSetup (global-setup.ts).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** What a test needs to reach a running control plane; plain data, so vitest can hand it to workers. */
export interface ControlPlaneInfo {
  /** https://127.0.0.1:<port> */
  server: string;
  /** Path of a kubeconfig: token authentication as the admin user (group system:masters). */
  kubeconfig: string;
  /** The apiserver's self-signed serving certificate (with its CA), the kubeconfig's CA. */
  caFile: string;
  token: string;
  /** Folder with etcd, kube-apiserver, kube-controller-manager and kubectl. */
  binDir: string;
  /** True when kube-controller-manager runs (EndpointSlices, GC, namespace deletion). */
  controllerManager: boolean;
  /** Seconds from the first spawn until every component was ready. */
  startupSeconds: number;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  /** Written to kubectl's standard input (for `-f -`). */
  input?: string;
  /** Milliseconds before kubectl is killed; default 60 s. */
  timeoutMs?: number;
}

export interface ControlPlaneClient extends ControlPlaneInfo {
  /** Runs the built kubectl against this control plane. Never throws on a non-zero exit: see `code`. */
  kubectl(args: readonly string[], options?: KubectlOptions): Promise<KubectlResult>;
  /** Like kubectl(), but throws (with stderr) unless it exits 0; returns stdout. */
  kubectlOk(args: readonly string[], options?: KubectlOptions): Promise<string>;
  /** Runs the built helm (e2e/control-plane/build.sh) against this control plane, like kubectl(). */
  helm(args: readonly string[], options?: KubectlOptions): Promise<KubectlResult>;
  /** Like helm(), but throws (with stderr) unless it exits 0; returns stdout. */
  helmOk(args: readonly string[], options?: KubectlOptions): Promise<string>;
  /** Creates a namespace with a fresh name (`<prefix>-<random>`) and returns the name. */
  newNamespace(prefix?: string): Promise<string>;
  /** Applies crds/ (server-side) and waits until every CRD is Established. */
  installCrds(): Promise<void>;
  /**
   * One request to the API server as admin; `path` includes any query. The body is sent and parsed as
   * JSON. Never throws on an HTTP error status: see `status` (the body is then a metav1.Status).
   */
  api(method: string, path: string, body?: unknown): Promise<ApiResponse>;
}

export interface ApiResponse {
  status: number;
  body: unknown;
}

export interface ControlPlane extends ControlPlaneClient {
  /** The plain-data description, for handing to other processes (connectControlPlane). */
  info: ControlPlaneInfo;
  /** Stops kube-controller-manager, kube-apiserver, then etcd, and removes the data folder. */
  stop(): Promise<void>;
  /**
   * Stops kube-apiserver (SIGTERM, as a rolling upgrade does), waits `downMs`, starts it again on the
   * same port with the same certificates and etcd, and resolves once /readyz answers again.
   */
  restartApiServer(downMs?: number): Promise<void>;
  /**
   * Stops etcd (SIGTERM), waits `downMs`, starts it again on the same ports with the same data folder,
   * waits for its /health, then until kube-apiserver's /readyz is ok again (kube-apiserver keeps running
   * throughout and reconnects on its own).
   */
  restartEtcd(downMs?: number): Promise<void>;
}

export interface StartOptions {
  /** Folder with the binaries; default: the one build.sh prints (build.sh runs, a no-op when cached). */
  binDir?: string;
  /** Start kube-controller-manager too; default true. */
  controllerManager?: boolean;
  /** Give up on readiness after this many milliseconds; default 120 s. */
  readyTimeoutMs?: number;
  /** Keep the data folder (logs, certificates) after stop(); default: env KEEP_CONTROL_PLANE=1. */
  keepData?: boolean;
}

const BUILD_SCRIPT = fileURLToPath(new URL("./build.sh", import.meta.url));
const KCM_CONTROLLERS = "endpointslice,garbagecollector,namespace,serviceaccount,serviceaccount-token";
const STOP_GRACE_MS = 20_000;

/** Runs build.sh (a no-op when its cache is stamped) and returns the folder with the binaries. */
export function buildControlPlane(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [BUILD_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const dir = out.trim().split("\n").at(-1) ?? "";
      if (code === 0 && dir !== "" && existsSync(join(dir, "kube-apiserver"))) resolve(dir);
      else reject(new Error(`e2e/control-plane/build.sh failed (exit ${code}); see its output above`));
    });
  });
}

/** A free TCP port on 127.0.0.1 (the kernel's pick; closed again before the component binds it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Component {
  name: string;
  child: ChildProcess;
  logFile: string;
  exited: Promise<void>;
  exitCode: number | null | undefined;
}

function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "<no log>";
  }
}

/**
 * Every component and data folder of every control plane of this process: killed and removed if the
 * process exits without stop().
 */
const running = new Set<Component>();
const dataDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const c of running) killGroup(c, "SIGKILL");
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
  });
}

function killGroup(c: Component, signal: NodeJS.Signals): void {
  if (c.child.pid === undefined || c.exitCode !== undefined) return;
  try {
    process.kill(-c.child.pid, signal);
  } catch {
    // already gone
  }
}

function launch(name: string, binary: string, args: string[], dataDir: string): Component {
  const logFile = join(dataDir, `${name}.log`);
  const fd = openSync(logFile, "a");
  // detached: its own process group, so stop() reaches anything it forks.
  const child = spawn(binary, args, { cwd: dataDir, detached: true, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const c: Component = { name, child, logFile, exitCode: undefined, exited: Promise.resolve() };
  c.exited = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      c.exitCode = code ?? (signal ? 128 : null);
      running.delete(c);
      resolve();
    });
    child.on("error", (err) => {
      writeFileSync(logFile, `spawn failed: ${err.message}\n`, { flag: "a" });
      c.exitCode = 127;
      running.delete(c);
      resolve();
    });
  });
  running.add(c);
  return c;
}

async function stopComponent(c: Component): Promise<void> {
  if (c.exitCode !== undefined) return;
  killGroup(c, "SIGTERM");
  const timer = setTimeout(() => killGroup(c, "SIGKILL"), STOP_GRACE_MS);
  await c.exited;
  clearTimeout(timer);
  // The leader is gone; make sure nothing else of its group stayed behind.
  killGroup(c, "SIGKILL");
}

/** GET over HTTPS with the control plane's CA and token; resolves with the status code and body. */
function httpsGet(
  url: string,
  ca: string,
  token: string,
  timeoutMs = 5_000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { ca, headers: { Authorization: `Bearer ${token}` }, timeout: timeoutMs },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => {
          body += d.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/**
 * Polls `check` every 100 ms until it returns true; fails early when one of `watch` exits, and after
 * `timeoutMs`, with the last error and the tail of the relevant logs.
 */
async function pollUntil(
  what: string,
  timeoutMs: number,
  watch: Component[],
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const dead = watch.find((c) => c.exitCode !== undefined);
    if (dead) {
      throw new Error(
        `${dead.name} exited (code ${dead.exitCode}) while waiting for ${what}; last lines of ${dead.logFile}:\n${tail(dead.logFile)}`,
      );
    }
    try {
      if (await check()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const logs = watch.map((c) => `--- ${c.logFile}\n${tail(c.logFile)}`).join("\n");
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what} (last error: ${last || "none"})\n${logs}`,
      );
    }
    await sleep(100);
  }
}

function writeKubeconfig(path: string, server: string, caFile: string, token: string): void {
  // JSON is YAML: kubectl and @kubernetes/client-node both read it.
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "test", cluster: { server, "certificate-authority": caFile } }],
    users: [{ name: "admin", user: { token } }],
    contexts: [{ name: "test", context: { cluster: "test", user: "admin", namespace: "default" } }],
    "current-context": "test",
  };
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}

/** kubectl / newNamespace for a control plane described by `info` (usable from any process). */
export function connectControlPlane(info: ControlPlaneInfo): ControlPlaneClient {
  /** Runs one of the built tools (kubectl, helm) against this control plane. */
  const tool =
    (name: "kubectl" | "helm") =>
    (args: readonly string[], options: KubectlOptions = {}): Promise<KubectlResult> =>
      new Promise((resolve, reject) => {
        const child = execFile(
          join(info.binDir, name),
          ["--kubeconfig", info.kubeconfig, ...args],
          {
            timeout: options.timeoutMs ?? 60_000,
            maxBuffer: 64 * 1024 * 1024,
            env: { ...process.env, KUBECONFIG: info.kubeconfig, KUBECTL_KUBERC: "false" },
          },
          (err, stdout, stderr) => {
            if (err && typeof err.code !== "number") {
              reject(new Error(`${name} ${args.join(" ")}: ${err.message}\n${stderr}`));
              return;
            }
            resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
          },
        );
        // A command that does not read its input can exit before it is written (EPIPE): not an error.
        child.stdin?.on("error", () => {});
        child.stdin?.end(options.input ?? "");
      });
  const ok =
    (name: "kubectl" | "helm", run: ReturnType<typeof tool>) =>
    async (args: readonly string[], options?: KubectlOptions): Promise<string> => {
      const r = await run(args, options);
      if (r.code !== 0)
        throw new Error(`${name} ${args.join(" ")} exited ${r.code}:\n${r.stderr}${r.stdout}`);
      return r.stdout;
    };
  const kubectl = tool("kubectl");
  const kubectlOk = ok("kubectl", kubectl);
  const helm = tool("helm");
  const helmOk = ok("helm", helm);
  const newNamespace = async (prefix = "t"): Promise<string> => {
    const name = `${prefix}-${randomBytes(4).toString("hex")}`;
    await kubectlOk(["create", "namespace", name]);
    return name;
  };
  const installCrds = async (): Promise<void> => {
    await kubectlOk(["apply", "--server-side", "-f", "crds/"]);
    await kubectlOk(["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
  };
  let agent: Agent | undefined;
  const api = (method: string, path: string, body?: unknown): Promise<ApiResponse> =>
    new Promise((resolve, reject) => {
      agent ??= new Agent({ keepAlive: true, ca: readFileSync(info.caFile, "utf8") });
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        `${info.server}${path}`,
        {
          method,
          agent,
          timeout: 60_000,
          headers: {
            Authorization: `Bearer ${info.token}`,
            Accept: "application/json",
            ...(payload === undefined
              ? {}
              : { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => {
            text += d;
          });
          res.on("end", () => {
            try {
              resolve({ status: res.statusCode ?? 0, body: text === "" ? undefined : JSON.parse(text) });
            } catch {
              resolve({ status: res.statusCode ?? 0, body: text });
            }
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.on("error", reject);
      req.end(payload);
    });
  return { ...info, kubectl, kubectlOk, helm, helmOk, newNamespace, installCrds, api };
}

/** Starts etcd, kube-apiserver and (by default) kube-controller-manager; resolves once all are ready. */
export async function startControlPlane(options: StartOptions = {}): Promise<ControlPlane> {
  const binDir = options.binDir ?? (await buildControlPlane());
  const withKcm = options.controllerManager ?? true;
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  const keepData = options.keepData ?? process.env.KEEP_CONTROL_PLANE === "1";
  installExitHook();

  const dataDir = mkdtempSync(join(tmpdir(), "ipvs-operator-cp-"));
  if (!keepData) dataDirs.add(dataDir);
  const started = performance.now();
  const components: Component[] = [];
  const stop = async (): Promise<void> => {
    // The API server first (it writes to etcd while it shuts down), then etcd.
    for (const c of [...components].reverse()) await stopComponent(c);
    if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    dataDirs.delete(dataDir);
  };

  try {
    const [etcdClient, etcdPeer, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    const launchEtcd = () =>
      launch(
        "etcd",
        join(binDir, "etcd"),
        [
          "--name=default",
          `--data-dir=${join(dataDir, "etcd")}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=default=${peerUrl}`,
          "--initial-cluster-state=new",
          "--unsafe-no-fsync=true",
          "--log-level=warn",
        ],
        dataDir,
      );
    let etcd = launchEtcd();
    components.push(etcd);
    const etcdHealthy = async () => {
      const res = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2_000) });
      return res.ok && ((await res.json()) as { health?: string }).health === "true";
    };
    await pollUntil("etcd /health", readyTimeoutMs, [etcd], etcdHealthy);

    const certDir = join(dataDir, "certs");
    const token = randomBytes(24).toString("hex");
    writeFileSync(join(dataDir, "tokens.csv"), `${token},admin,admin,"system:masters"\n`, { mode: 0o600 });
    const sa = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const saKey = join(dataDir, "sa.key");
    const saPub = join(dataDir, "sa.pub");
    writeFileSync(saKey, sa.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    writeFileSync(saPub, sa.publicKey.export({ type: "spki", format: "pem" }));
    const apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      "--bind-address=127.0.0.1",
      // Without it the apiserver looks for the default route's address (envtest sets it too).
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${certDir}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      "--authorization-mode=RBAC",
      `--token-auth-file=${join(dataDir, "tokens.csv")}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      // Pods in a fresh namespace need no ServiceAccount (envtest does the same).
      "--disable-admission-plugins=ServiceAccount",
      "--allow-privileged=true",
      "--profiling=false",
    ];
    const launchApiserver = () =>
      launch("kube-apiserver", join(binDir, "kube-apiserver"), apiserverArgs, dataDir);
    let apiserver = launchApiserver();
    components.push(apiserver);
    const server = `https://127.0.0.1:${apiPort}`;
    const caFile = join(certDir, "apiserver.crt");
    await pollUntil("kube-apiserver /readyz", readyTimeoutMs, [etcd, apiserver], async () => {
      if (!existsSync(caFile)) return false;
      return (await httpsGet(`${server}/readyz`, readFileSync(caFile, "utf8"), token)).status === 200;
    });
    const ca = readFileSync(caFile, "utf8");
    await pollUntil("the default namespace", readyTimeoutMs, [etcd, apiserver], async () => {
      return (await httpsGet(`${server}/api/v1/namespaces/default`, ca, token)).status === 200;
    });

    const kubeconfig = join(dataDir, "kubeconfig");
    writeKubeconfig(kubeconfig, server, caFile, token);

    if (withKcm) {
      const kcm = launch(
        "kube-controller-manager",
        join(binDir, "kube-controller-manager"),
        [
          `--kubeconfig=${kubeconfig}`,
          `--controllers=${KCM_CONTROLLERS}`,
          "--leader-elect=false",
          "--bind-address=127.0.0.1",
          // No serving endpoint: readiness is what its controllers do (see below).
          "--secure-port=0",
          `--service-account-private-key-file=${saKey}`,
          `--root-ca-file=${caFile}`,
          "--profiling=false",
        ],
        dataDir,
      );
      components.push(kcm);
      // The serviceaccount controller creates "default" in every namespace: once it exists in the
      // default namespace, the controllers have synced their caches and run.
      await pollUntil(
        "kube-controller-manager (default ServiceAccount)",
        readyTimeoutMs,
        [etcd, apiserver, kcm],
        async () => {
          return (
            (await httpsGet(`${server}/api/v1/namespaces/default/serviceaccounts/default`, ca, token))
              .status === 200
          );
        },
      );
    }

    const info: ControlPlaneInfo = {
      server,
      kubeconfig,
      caFile,
      token,
      binDir,
      controllerManager: withKcm,
      startupSeconds: (performance.now() - started) / 1000,
    };
    const apiserverReady = async () => (await httpsGet(`${server}/readyz`, ca, token)).status === 200;
    /** Stops `old` (SIGTERM), waits `downMs`, launches its successor in its place and returns it. */
    const replace = async (old: Component, downMs: number, relaunch: () => Component): Promise<Component> => {
      await stopComponent(old);
      await new Promise((r) => setTimeout(r, downMs));
      const next = relaunch();
      components[components.indexOf(old)] = next;
      return next;
    };
    const restartApiServer = async (downMs = 0): Promise<void> => {
      apiserver = await replace(apiserver, downMs, launchApiserver);
      await pollUntil(
        "kube-apiserver /readyz after a restart",
        readyTimeoutMs,
        [etcd, apiserver],
        apiserverReady,
      );
    };
    const restartEtcd = async (downMs = 0): Promise<void> => {
      // With its data folder in place etcd ignores --initial-cluster-state=new and resumes from it.
      etcd = await replace(etcd, downMs, launchEtcd);
      await pollUntil("etcd /health after a restart", readyTimeoutMs, [etcd], etcdHealthy);
      await pollUntil(
        "kube-apiserver /readyz after etcd restarted",
        readyTimeoutMs,
        [etcd, apiserver],
        apiserverReady,
      );
    };
    return { ...connectControlPlane(info), info, stop, restartApiServer, restartEtcd };
  } catch (err) {
    await stop();
    throw err;
  }
}
