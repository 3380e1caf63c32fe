import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkRealServerAgainstService,
  validateRealServer,
  validateVirtualService,
} from "../../src/api/v1alpha1/index.ts";
import {
  importKeepalived,
  type KeepalivedImport,
  type KeepalivedImportOptions,
} from "../../src/import/keepalived.ts";

const FILE = "/etc/keepalived/keepalived.conf";

function run(text: string, files: Record<string, string> = {}, opts: Partial<KeepalivedImportOptions> = {}) {
  const result = importKeepalived(text, {
    file: FILE,
    readFile: (path) => files[path],
    glob: (pattern) => {
      const re = new RegExp(
        `^${pattern
          .replace(/[.+^$()|\\]/g, "\\$&")
          .replace(/\*/g, "[^/]*")
          .replace(/\?/g, "[^/]")}$`,
      );
      return Object.keys(files).filter((f) => re.test(f));
    },
    ...opts,
  });
  expectValid(result.objects);
  return result;
}

/**
 * The API's own verdict on every object, as text: each VirtualService and RealServer on its own, and each
 * RealServer against its VirtualService (which must come before it). Empty when all pass.
 */
function validationIssues(objects: Record<string, unknown>[]): string[] {
  const issues: string[] = [];
  const specs = new Map<string, Parameters<typeof checkRealServerAgainstService>[0]>();
  for (const o of objects) {
    const label = `${o.kind}/${(o.metadata as { name?: string } | undefined)?.name}`;
    const r = o.kind === "VirtualService" ? validateVirtualService(o) : validateRealServer(o);
    if (!r.ok) {
      issues.push(...r.issues.map((i) => `${label}: ${i.path}: ${i.message}`));
      continue;
    }
    if (r.value.kind === "VirtualService") {
      specs.set(r.value.metadata.name, r.value.spec);
      continue;
    }
    const vs = specs.get(r.value.spec.virtualServiceRef.name);
    if (!vs) issues.push(`${label}: its VirtualService does not come before it`);
    else
      issues.push(
        ...checkRealServerAgainstService(vs, r.value.spec).map((i) => `${label}: ${i.path}: ${i.message}`),
      );
  }
  return issues;
}

function expectValid(objects: Record<string, unknown>[]) {
  expect(validationIssues(objects)).toEqual([]);
}

/** The object names, errors and report of an import, each as one list of text. */
function expectImport(
  r: KeepalivedImport,
  want: { objects?: string[]; errors?: string[]; report?: string[] },
) {
  if (want.objects) expect(names(r)).toEqual(want.objects);
  if (want.errors) expect(notes(r.errors)).toEqual(want.errors);
  if (want.report) expect(notes(r.report)).toEqual(want.report);
}

function byName(result: KeepalivedImport, name: string) {
  const o = result.objects.find((x) => (x.metadata as { name: string }).name === name);
  if (!o)
    throw new Error(
      `no object ${name} in ${result.objects.map((x) => (x.metadata as { name: string }).name)}`,
    );
  return o.spec as Record<string, unknown>;
}

function names(result: KeepalivedImport) {
  return result.objects.map((o) => `${o.kind}/${(o.metadata as { name: string }).name}`);
}

function notes(list: { file: string; line: number; message: string }[]) {
  return list.map((n) => `${n.file.replace(/^.*\//, "")}:${n.line}: ${n.message}`);
}

const WEB = `! Configuration File for keepalived
global_defs {
   notification_email {
     admin@example.com
   }
   router_id LVS_DEVEL
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.10
    }
}

virtual_server 192.0.2.10 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind NAT
    persistence_timeout 50
    protocol TCP
    quorum 2
    quorum_up "/usr/local/bin/up.sh"
    sorry_server 198.51.100.99 8080

    real_server 198.51.100.1 8080 {
        weight 3
        inhibit_on_failure
        HTTP_GET {
            url {
              path /healthz
              digest 9b3a0c85a887a256d6939da88aabd8cd
              status_code 200
            }
            connect_timeout 3
            nb_get_retry 3
            delay_before_retry 3
        }
    }
    real_server 198.51.100.2 8080 {
        weight 1
        inhibit_on_failure
        notify_down "/usr/local/bin/down.sh 198.51.100.2"
        HTTP_GET {
            connect_timeout 3
            retry 3
            delay_before_retry 3
            url { path /healthz
                  status_code 200 }
        }
    }
}
`;

describe("importKeepalived: virtual servers", () => {
  it("imports a NAT service with a shared HTTP check, a sorry server, and reports the rest with file:line", () => {
    const r = run(WEB, {}, { namespace: "edge" });
    expect(r.errors).toEqual([]);
    expect(names(r)).toEqual([
      "VirtualService/tcp-192-0-2-10-80",
      "RealServer/tcp-192-0-2-10-80-198-51-100-1-8080",
      "RealServer/tcp-192-0-2-10-80-198-51-100-2-8080",
    ]);
    expect(r.objects.map((o) => [o.apiVersion, (o.metadata as { namespace: string }).namespace])).toEqual(
      Array(3).fill(["ipvs.dev/v1alpha1", "edge"]),
    );
    expect(byName(r, "tcp-192-0-2-10-80")).toEqual({
      address: "192.0.2.10",
      port: 80,
      protocol: "TCP",
      scheduler: "wrr",
      persistence: { timeoutSeconds: 50 },
      forwarding: { method: "NAT" },
      healthCheck: {
        type: "HTTP",
        path: "/healthz",
        expectStatus: ["200"],
        intervalSeconds: 6,
        timeoutSeconds: 3,
        riseCount: 1,
        fallCount: 4,
        initialState: "Healthy",
        onFailure: "Quiesce",
      },
      sorryServer: { address: "198.51.100.99", port: 8080 },
    });
    expect(byName(r, "tcp-192-0-2-10-80-198-51-100-1-8080")).toEqual({
      virtualServiceRef: { name: "tcp-192-0-2-10-80" },
      address: "198.51.100.1",
      port: 8080,
      weight: 3,
    });
    expect(notes(r.report)).toEqual([
      "keepalived.conf:2: global_defs is not read (router_id, notification, script and daemon settings have no equivalent)",
      "keepalived.conf:9: VRRP has no equivalent: the operator does not move addresses between nodes (bindAddress puts the VIP on every selected node)",
      "keepalived.conf:25: quorum has no equivalent: every healthy real server is used, the sorry server when none is",
      "keepalived.conf:26: quorum_up scripts are not run by the operator",
      "keepalived.conf:35: digest has no equivalent (the API does not hash the body); the body is not checked",
      "keepalived.conf:40: delay_before_retry has no equivalent: retries come every intervalSeconds (6 s)",
      "keepalived.conf:46: notify_down scripts are not run by the operator",
      "keepalived.conf:50: delay_before_retry has no equivalent: retries come every intervalSeconds (6 s)",
    ]);
  });

  it("reads DR, TUN with GUE, fwmark, persistence granularity, engine, ops and scheduler flags", () => {
    const r = run(`
virtual_server fwmark 7 {
    lvs_sched sh
    sh-port
    sh-fallback
    lvs_method DR
    persistence_timeout
    persistence_granularity 255.255.255.0
    real_server 198.51.100.1 {
        weight 2
        uthreshold 100
        lthreshold 50
    }
}
virtual_server 2001:db8::10 53 {
    lb_algo rr
    protocol UDP
    ops
    lb_kind TUN type gue port 6080 csum
    real_server 2001:db8::20 53 {
    }
    real_server 2001:db8::21 53 {
        lvs_method TUN
    }
}
virtual_server 192.0.2.30 5060 {
    lb_algo mh
    mh-port
    sh-port
    protocol UDP
    persistence_engine sip
    persistence_timeout 30
    real_server 198.51.100.7 5060 {
    }
}
`);
    expect(r.errors).toEqual([]);
    expect(byName(r, "fwm-7")).toEqual({
      firewallMark: 7,
      family: "IPv4",
      scheduler: "sh",
      schedulerFlags: ["sh-fallback", "sh-port"],
      persistence: { timeoutSeconds: 360, netmask: "255.255.255.0" },
      forwarding: { method: "DirectRouting" },
    });
    expect(byName(r, "fwm-7-198-51-100-1-0")).toMatchObject({
      weight: 2,
      upperThreshold: 100,
      lowerThreshold: 50,
    });
    expect(byName(r, "udp-2001-db8--10-53")).toMatchObject({
      protocol: "UDP",
      onePacket: true,
      forwarding: { method: "Tunnel", tunnel: { type: "GUE", port: 6080, checksum: "Checksum" } },
    });
    // The real server that says plain TUN (IPIP) keeps its own forwarding.
    expect(byName(r, "udp-2001-db8--10-53-2001-db8--21-53").forwarding).toEqual({ method: "Tunnel" });
    expect(byName(r, "udp-192-0-2-30-5060")).toMatchObject({
      scheduler: "mh",
      schedulerFlags: ["mh-port"],
      persistence: { timeoutSeconds: 30, engine: "sip" },
    });
    expect(notes(r.report)).toEqual([
      "keepalived.conf:29: sh-port is ignored with scheduler mh (as keepalived does)",
    ]);
  });

  it("expands virtual_server_group entries: addresses, ranges, prefixes, IPv6, fwmarks", () => {
    const r = run(`
virtual_server_group web {
    192.0.2.1-3 80
    192.0.2.254-192.0.3.1 443
    198.51.100.8/31 8080
    2001:db8::a-b 80
    fwmark 9 inet6
}
virtual_server group web {
    protocol TCP
    lb_algo rr
    lb_kind DR
    real_server 2001:db8::100 {
        TCP_CHECK {
            connect_timeout 2
        }
    }
}
`);
    expect(r.errors).toEqual([]);
    const vs = r.objects.filter((o) => o.kind === "VirtualService");
    expect(vs.map((o) => (o.metadata as { name: string }).name)).toEqual([
      "tcp-192-0-2-1-80",
      "tcp-192-0-2-2-80",
      "tcp-192-0-2-3-80",
      "tcp-192-0-2-254-443",
      "tcp-192-0-2-255-443",
      "tcp-192-0-3-0-443",
      "tcp-192-0-3-1-443",
      "tcp-198-51-100-8-8080",
      "tcp-198-51-100-9-8080",
      "tcp-2001-db8--a-80",
      "tcp-2001-db8--b-80",
      "fwm-9-ipv6",
    ]);
    // One IPv6 real server: the IPv4 services cannot have it (DR does not mix families); reported per service.
    expect(r.report.length).toBe(9);
    expect(r.report[0]).toMatchObject({ line: 13 }); // the real_server
    expect(r.report[0]?.message).toMatch(
      /TCP 192.0.2.1:80 -> \[2001:db8::100\]:80: spec.address: address must be IPv4 like the service/,
    );
    expect(byName(r, "tcp-2001-db8--a-80").healthCheck).toMatchObject({ type: "TCP", timeoutSeconds: 2 });
  });

  it("errors for a group range that is too large or malformed, and imports the rest", () => {
    const r = run(`
virtual_server_group g {
    10.0.0.0/8 80
    10.0.0.9-3 80
    10.0.0.1-x 80
    10.0.0.5 http
    10.0.0.6 81
}
virtual_server group g {
    protocol TCP
    real_server 10.1.0.1 81 {
    }
}
virtual_server group nosuch {
    protocol TCP
}
`);
    expectImport(r, {
      errors: [
        "keepalived.conf:3: 10.0.0.0/8 has 16777216 addresses, more than the 1024 this import expands; entry ignored",
        "keepalived.conf:4: 10.0.0.9-3: the range ends before it starts; entry ignored",
        "keepalived.conf:5: 10.0.0.1-x: the end of the range must be 0..255 or an address; entry ignored",
        "keepalived.conf:6: expected <address or range> [<port>], got 10.0.0.5 http; entry ignored",
        "keepalived.conf:14: virtual_server_group nosuch is not defined; virtual_server not imported",
      ],
      objects: ["VirtualService/tcp-10-0-0-6-81", "RealServer/tcp-10-0-0-6-81-10-1-0-1-81"],
    });
  });
});

describe("importKeepalived: health checks", () => {
  const conf = (checker: string, extra = "") => `
virtual_server 192.0.2.10 443 {
    protocol TCP
    lb_algo rr
    lb_kind NAT
    delay_loop 10
${extra}
    real_server 198.51.100.1 8443 {
${checker}
    }
}
`;
  const hcOf = (text: string) => {
    const r = run(text);
    return { r, hc: byName(r, "tcp-192-0-2-10-443").healthCheck as Record<string, unknown> };
  };

  it("TCP_CHECK with connect_port, and parameters from the real_server and virtual_server", () => {
    const { r, hc } = hcOf(
      conf(
        "        retry 2\n        alpha\n        TCP_CHECK {\n            connect_port 9000\n            connect_ip 198.51.100.50\n            bindto 192.0.2.1\n        }",
        "    connect_timeout 4\n    inhibit_on_failure\n    warmup 5",
      ),
    );
    expect(hc).toEqual({
      type: "TCP",
      port: 9000,
      intervalSeconds: 10,
      timeoutSeconds: 4,
      riseCount: 1,
      fallCount: 3,
      initialState: "Unhealthy",
      onFailure: "Quiesce",
    });
    expect(notes(r.report)).toEqual([
      "keepalived.conf:9: warmup has no equivalent (first probes are not delayed at random)",
      "keepalived.conf:15: connect_ip has no equivalent: the check probes the real server's own address",
      "keepalived.conf:16: TCP_CHECK bindto has no equivalent; ignored",
    ]);
  });

  it("SSL_GET with status ranges, regex, virtualhost and a second url", () => {
    const { r, hc } = hcOf(
      conf(
        `        SSL_GET {
            url {
                path /status
                status_code 200-299 301
                regex "^ok"
            }
            url {
                path /other
            }
            virtualhost www.example.com
            connect_timeout 20
        }`,
      ),
    );
    expect(hc).toEqual({
      type: "HTTPS",
      path: "/status",
      expectStatus: ["200-299", "301"],
      expectBody: "^ok",
      host: "www.example.com",
      intervalSeconds: 10,
      timeoutSeconds: 10,
      riseCount: 1,
      fallCount: 2,
      initialState: "Healthy",
      onFailure: "Remove",
    });
    expect(notes(r.report)).toEqual([
      "keepalived.conf:9: the timeout 20 s becomes the interval 10 s (the API's limit)",
      "keepalived.conf:15: a second url: the API checks one path per real server; only the first url is checked",
    ]);
  });

  it("HTTP_GET without status_code expects keepalived's default 200-299; url virtualhost wins", () => {
    const { hc } = hcOf(
      conf(
        "        virtualhost rs.example.com\n        HTTP_GET {\n            url {\n                path /\n                virtualhost url.example.com\n            }\n        }",
        "    virtualhost vs.example.com",
      ),
    );
    expect(hc).toMatchObject({ type: "HTTP", path: "/", expectStatus: ["200-299"], host: "url.example.com" });
  });

  it("UDP_CHECK keeps its payload and expected reply; DNS_CHECK becomes a DNS check with its query", () => {
    const udp = hcOf(
      conf(
        "        UDP_CHECK {\n            payload 0102\n            require_reply 0a0b\n            min_reply_length 2\n        }",
      ),
    );
    expect(udp.hc).toMatchObject({
      type: "UDP",
      fallCount: 2,
      udp: { payloadHex: "0102", expectReplyHex: "0a0b" },
    });
    expect(notes(udp.r.report)).toEqual([
      "keepalived.conf:12: UDP_CHECK min_reply_length has no equivalent: the reply's length is not checked",
    ]);
    const anyReply = hcOf(conf("        UDP_CHECK {\n            require_reply\n        }"));
    expect(anyReply.hc).toMatchObject({ type: "UDP", udp: { expectReply: "[\\s\\S]*" } });
    const dns = hcOf(
      conf(
        "        DNS_CHECK {\n            type a\n            name example.com\n            connect_port 53\n        }",
      ),
    );
    expect(dns.hc).toMatchObject({
      type: "DNS",
      port: 53,
      fallCount: 4,
      dns: { name: "example.com", type: "A" },
    });
    expect(notes(dns.r.report)).toEqual([]);
    const soa = hcOf(conf("        DNS_CHECK {\n        }"));
    expect(soa.hc).toMatchObject({ type: "DNS", dns: { name: ".", type: "SOA" } });
  });

  it("MISC_CHECK becomes Exec with keepalived's argv splitting; misc_dynamic and user are reported", () => {
    const { r, hc } = hcOf(
      conf(
        `        MISC_CHECK {
            misc_path "/usr/local/bin/check --host 'a b' x\\ y"
            misc_timeout 7
            misc_dynamic
            user nobody
        }`,
      ),
    );
    expect(hc).toEqual({
      type: "Exec",
      command: ["/usr/local/bin/check", "--host", "a b", "x y"],
      intervalSeconds: 10,
      timeoutSeconds: 7,
      riseCount: 1,
      fallCount: 1,
      initialState: "Healthy",
      onFailure: "Remove",
    });
    expect(r.report.map((n) => n.line)).toEqual([9, 12, 13]);
  });

  it("keeps the first checker that maps; PING_CHECK and friends are reported", () => {
    const { r, hc } = hcOf(
      conf(
        "        PING_CHECK {\n        }\n        TCP_CHECK {\n        }\n        HTTP_GET {\n            url {\n              path /\n            }\n        }",
      ),
    );
    expect(hc.type).toBe("TCP");
    expect(notes(r.report)).toEqual([
      "keepalived.conf:9: PING_CHECK has no equivalent in the API's healthCheck (TCP, HTTP, HTTPS, UDP, Exec); not imported",
      "keepalived.conf:13: HTTP_GET is a second checker: the API has one check per real server, the first is kept",
    ]);
  });

  it("different checks per real server go on each RealServer; none stays unchecked", () => {
    const r = run(`
virtual_server 192.0.2.10 80 {
    protocol TCP
    real_server 198.51.100.1 80 {
        TCP_CHECK {
        }
    }
    real_server 198.51.100.2 80 {
        inhibit_on_failure
        TCP_CHECK {
        }
    }
    real_server 198.51.100.3 80 {
    }
}
`);
    expect(byName(r, "tcp-192-0-2-10-80").healthCheck).toBeUndefined();
    expect(byName(r, "tcp-192-0-2-10-80").scheduler).toBe("wlc");
    expect(
      (byName(r, "tcp-192-0-2-10-80-198-51-100-1-80").healthCheck as { onFailure: string }).onFailure,
    ).toBe("Remove");
    expect(
      (byName(r, "tcp-192-0-2-10-80-198-51-100-2-80").healthCheck as { onFailure: string }).onFailure,
    ).toBe("Quiesce");
    expect(byName(r, "tcp-192-0-2-10-80-198-51-100-3-80").healthCheck).toBeUndefined();
  });

  it("rounds fractional timers up and reports it", () => {
    const { r, hc } = hcOf(
      conf("        TCP_CHECK {\n            connect_timeout 1.5\n        }", "    delay_loop 2.5"),
    );
    expect(hc).toMatchObject({ intervalSeconds: 3, timeoutSeconds: 2 });
    expect(r.report.map((n) => n.message)).toEqual([
      "delay_loop 2.5 s is rounded up to 3 s (the API counts whole seconds)",
      "connect_timeout 1.5 s is rounded up to 2 s (the API counts whole seconds)",
    ]);
  });
});

describe("importKeepalived: files, comments, quotes", () => {
  it("follows includes relative to the including file, with globs and nesting", () => {
    const r = run(
      `include conf.d/*.conf
include /etc/keepalived/missing.conf
`,
      {
        "/etc/keepalived/conf.d/a.conf":
          "virtual_server 192.0.2.1 80 {\n  protocol TCP\n  include ../rs/one.conf\n}\n",
        "/etc/keepalived/conf.d/b.conf": "virtual_server 192.0.2.2 80 {\n  lb_kind WRONG\n}\n",
        "/etc/keepalived/rs/one.conf": "# a real server\nreal_server 198.51.100.1 80 {\n  weight 5\n}\n",
      },
    );
    expectImport(r, {
      objects: ["VirtualService/tcp-192-0-2-1-80", "RealServer/tcp-192-0-2-1-80-198-51-100-1-80"],
      errors: [
        "keepalived.conf:2: cannot read included file /etc/keepalived/missing.conf",
        "b.conf:2: unknown lb_kind WRONG: keepalived knows NAT, DR and TUN; virtual_server not imported",
      ],
    });
  });

  it("reports include cycles and wildcards without a glob", () => {
    const files = { "/etc/keepalived/a.conf": "include keepalived.conf\n" };
    const r = run("include a.conf\n", files);
    expect(notes(r.errors)).toEqual([
      "a.conf:1: /etc/keepalived/keepalived.conf includes itself (through /etc/keepalived/keepalived.conf -> /etc/keepalived/a.conf); not included again",
    ]);
    const noGlob = importKeepalived("include conf.d/*.conf\n", { file: FILE, readFile: () => undefined });
    expect(notes(noGlob.errors)).toEqual([
      "keepalived.conf:1: cannot expand the wildcard pattern /etc/keepalived/conf.d/*.conf (no glob given); not included",
    ]);
  });

  it("reads comments anywhere, quoted strings, braces on their own line and on one line", () => {
    const r = run(`
# comment
virtual_server 192.0.2.10 80   ! trailing comment
{
    protocol TCP
    lb_algo rr # another
    real_server 198.51.100.1 80 { weight 4 }
    real_server 198.51.100.2 80
    {
        HTTP_GET {
            url {
                path "/a#b!c"
            }
        }
    }
}
`);
    expect(r.errors).toEqual([]);
    expect(byName(r, "tcp-192-0-2-10-80-198-51-100-1-80").weight).toBe(4);
    expect((byName(r, "tcp-192-0-2-10-80-198-51-100-2-80").healthCheck as { path: string }).path).toBe(
      "/a#b!c",
    );
  });
});

describe("importKeepalived: invalid input", () => {
  it("names file:line for unbalanced braces and still imports the rest", () => {
    const r = run(`virtual_server 192.0.2.1 80 {
    protocol TCP
    real_server 198.51.100.1 80 {
        weight 1
}
virtual_server 192.0.2.2 80 {
    protocol TCP
    real_server 198.51.100.2 80 {
    }
}
}
}
`);
    expectImport(r, {
      errors: [
        "keepalived.conf:1: '{' of virtual_server is never closed",
        "keepalived.conf:11: '}' without a matching '{'",
        "keepalived.conf:12: '}' without a matching '{'",
      ],
      objects: [
        "VirtualService/tcp-192-0-2-1-80",
        "RealServer/tcp-192-0-2-1-80-198-51-100-1-80",
        "VirtualService/tcp-192-0-2-2-80",
        "RealServer/tcp-192-0-2-2-80-198-51-100-2-80",
      ],
    });
  });

  it("errors for bad addresses, ports, schedulers, protocols, numbers and duplicates", () => {
    const r = run(`virtual_server 192.0.2.300 80 {
}
virtual_server 192.0.2.1 99999 {
}
virtual_server 192.0.2.2 80 {
    lb_algo fastest
}
virtual_server 192.0.2.3 80 {
    protocol ICMP
}
virtual_server 192.0.2.4 80 {
    protocol TCP
    real_server 198.51.100.x 80 {
    }
    real_server 198.51.100.1 80 {
        weight heavy
    }
    real_server 198.51.100.2 80 {
    }
    real_server 198.51.100.2 80 {
    }
    delay_loop soon
}
virtual_server 192.0.2.4 80 {
    protocol TCP
}
"unterminated
`);
    expectImport(r, {
      errors: [
        "keepalived.conf:1: virtual_server needs an IP address, fwmark N or group NAME, got 192.0.2.300; virtual_server not imported",
        "keepalived.conf:3: virtual_server port must be 0..65535, got 99999; virtual_server not imported",
        "keepalived.conf:6: unknown scheduler fastest: keepalived knows rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos; virtual_server not imported",
        "keepalived.conf:9: protocol must be TCP, UDP or SCTP, got ICMP; virtual_server not imported",
        "keepalived.conf:13: real_server needs an IP address, got 198.51.100.x; not imported",
        "keepalived.conf:16: weight must be a whole number, got heavy; real server not imported",
        "keepalived.conf:20: real_server 198.51.100.2:80 is already in this virtual_server (/etc/keepalived/keepalived.conf:18); not imported again",
        "keepalived.conf:22: delay_loop needs a number of seconds, got soon; ignored",
        "keepalived.conf:24: TCP 192.0.2.4:80 is already a service (/etc/keepalived/keepalived.conf:11); not imported again",
        "keepalived.conf:27: unterminated quoted string (a quote is closed at the end of the line)",
      ],
      objects: ["VirtualService/tcp-192-0-2-4-80", "RealServer/tcp-192-0-2-4-80-198-51-100-2-80"],
      report: ["keepalived.conf:27: unknown top-level keyword unterminated; ignored"],
    });
  });

  it("applies keepalived's own corrections: no protocol is UDP, ops only for UDP, port 0 gets persistence", () => {
    const r = run(`virtual_server 192.0.2.5 0 {
    protocol TCP
    ops
}
virtual_server 192.0.2.6 53 {
    ops
}
virtual_server fwmark 3 {
    ops
}
`);
    expectImport(r, {
      errors: [],
      objects: ["VirtualService/tcp-192-0-2-5-0", "VirtualService/udp-192-0-2-6-53", "VirtualService/fwm-3"],
      report: [
        "keepalived.conf:1: port 0 (all ports) needs persistence: keepalived sets persistence_timeout 360, and so does the import",
        "keepalived.conf:3: ops is only for UDP services; keepalived clears it, and so does the import",
        'keepalived.conf:5: no protocol: keepalived programs UDP ("no protocol set - defaulting to UDP"), so this is imported as UDP; write protocol TCP if TCP was meant',
      ],
    });
    expect(byName(r, "tcp-192-0-2-5-0")).toMatchObject({ persistence: { timeoutSeconds: 360 } });
    expect(byName(r, "tcp-192-0-2-5-0").onePacket).toBeUndefined();
    expect(byName(r, "udp-192-0-2-6-53")).toMatchObject({ protocol: "UDP", onePacket: true });
    expect(byName(r, "fwm-3")).toMatchObject({ onePacket: true });
  });

  it("gives DR and TUN real servers the service's port, as keepalived programs them", () => {
    const r = run(`virtual_server fwmark 4 {
    lb_kind DR
    real_server 198.51.100.1 80 {
        TCP_CHECK {
        }
    }
    real_server 198.51.100.2 81 {
        lvs_method NAT
    }
}
virtual_server 192.0.2.7 80 {
    protocol TCP
    lb_kind TUN
    real_server 198.51.100.3 8080 {
    }
}
`);
    expectImport(r, {
      errors: [],
      objects: [
        "VirtualService/tcp-192-0-2-7-80",
        "RealServer/tcp-192-0-2-7-80-198-51-100-3-80",
        "VirtualService/fwm-4",
        "RealServer/fwm-4-198-51-100-1-0",
        "RealServer/fwm-4-198-51-100-2-81",
      ],
      report: [
        "keepalived.conf:3: port 80 is ignored: keepalived programs DirectRouting real servers with the service's port (0 for a fwmark service)",
        "keepalived.conf:14: port 8080 is ignored: keepalived programs Tunnel real servers with the service's port (80)",
      ],
    });
    // The real server's own check still finds it.
    expect(byName(r, "fwm-4-198-51-100-1-0").healthCheck).toMatchObject({ type: "TCP" });
  });

  it("a sorry server the API rejects is left out with an error", () => {
    const r = run(`virtual_server 192.0.2.1 80 {
    protocol TCP
    lb_kind DR
    sorry_server 2001:db8::1 80
    real_server 198.51.100.1 80 {
    }
}`);
    expect(notes(r.errors)).toEqual([
      "keepalived.conf:4: sorry_server cannot be imported for tcp-192-0-2-1-80 (spec.sorryServer.address: sorryServer.address must have the service's address family); left out",
    ]);
    expect(byName(r, "tcp-192-0-2-1-80").sorryServer).toBeUndefined();
  });
});

describe("importKeepalived: never throws", () => {
  const corpus = [
    WEB,
    'virtual_server_group g {\n 192.0.2.1-5 80\n fwmark 3 inet\n}\nvirtual_server group g {\n lb_kind TUN type gre\n real_server 198.51.100.1 80 {\n  MISC_CHECK {\n   misc_path "/bin/true"\n  }\n }\n}\n',
    "virtual_server fwmark 1 {\n persistence_granularity 64\n ip_family inet6\n real_server 2001:db8::1 {\n  SSL_GET {\n   url {\n    path /x\n    status_code 200-299 404\n   }\n  }\n  DNS_CHECK {\n  }\n }\n}\ninclude x.conf\n",
  ];
  const tokens = [
    "{",
    "}",
    "\n",
    " ",
    "!",
    "#",
    '"',
    "-",
    "/",
    "0",
    "99999",
    "::",
    "1.2.3.4",
    "fwmark",
    "group",
    "real_server",
    "virtual_server",
    "url",
    "path",
    "TUN",
    "include",
    "*",
  ];
  it("mutated configs give objects that validate, and notes, never an exception", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...corpus),
        fc.array(fc.tuple(fc.nat(), fc.nat(8), fc.constantFrom(...tokens), fc.boolean()), { maxLength: 12 }),
        (base, edits) => {
          let text = base;
          for (const [pos, len, token, insert] of edits) {
            const at = pos % (text.length + 1);
            text = insert
              ? text.slice(0, at) + token + text.slice(at)
              : text.slice(0, at) + text.slice(at + len);
          }
          const files = { "/etc/keepalived/x.conf": text, "/etc/keepalived/y.conf": "include x.conf\n" };
          const r = run(text, files);
          for (const n of [...r.report, ...r.errors]) {
            expect(typeof n.message).toBe("string");
            expect(n.line).toBeGreaterThanOrEqual(0);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("arbitrary text never throws", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        run(text);
      }),
      { numRuns: 300 },
    );
  });
});
