/**
 * The scale workload of the agent benches (issue "The agent", item 10): N VirtualServices `vs-i`
 * (10.x.y.1:80), each backed by a headless Service `svc-i` and one EndpointSlice `svc-i-x` of 10 ready
 * endpoints (172.16.e.*:8080), created through the API with 32 requests in flight.
 */
import type { ControlPlaneClient } from "../e2e/control-plane/control-plane.ts";

/** The address of VirtualService i. */
export const scaleVip = (i: number) => `10.${(i >> 8) & 255}.${i & 255}.1`;

export async function createScaleWorkload(
  cp: Pick<ControlPlaneClient, "api">,
  ns: string,
  n: number,
): Promise<{ objects: number; seconds: number }> {
  const t0 = performance.now();
  const jobs: (() => Promise<unknown>)[] = [];
  for (let i = 0; i < n; i++) {
    jobs.push(() =>
      cp.api("POST", `/apis/ipvs.dev/v1alpha1/namespaces/${ns}/virtualservices`, {
        apiVersion: "ipvs.dev/v1alpha1",
        kind: "VirtualService",
        metadata: { name: `vs-${i}`, namespace: ns },
        spec: {
          address: scaleVip(i),
          port: 80,
          backends: { serviceRef: { name: `svc-${i}`, port: "http" } },
        },
      }),
    );
    jobs.push(() =>
      cp.api("POST", `/api/v1/namespaces/${ns}/services`, {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: `svc-${i}`, namespace: ns },
        spec: { clusterIP: "None", ports: [{ name: "http", port: 80, targetPort: 8080 }] },
      }),
    );
    jobs.push(() =>
      cp.api("POST", `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, {
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: { name: `svc-${i}-x`, namespace: ns, labels: { "kubernetes.io/service-name": `svc-${i}` } },
        addressType: "IPv4",
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
        endpoints: Array.from({ length: 10 }, (_, e) => ({
          addresses: [`172.16.${e}.${(i % 250) + 1}`],
          conditions: { ready: true },
        })),
      }),
    );
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < jobs.length) {
        const r = (await jobs[next++]!()) as { status: number };
        if (r.status >= 300) throw new Error(`create failed: HTTP ${r.status}`);
      }
    }),
  );
  return { objects: jobs.length, seconds: (performance.now() - t0) / 1000 };
}
