/**
 * Round trip through keepalived itself (issue 10, item 4): keepalived (the host's Debian package, run in
 * the VM with only its checker process, no VRRP) programs the kernel from a keepalived.conf; the same
 * file goes through importKeepalived, and `plan -f` of the imported objects must print the table
 * keepalived programmed. The checkers probe listeners this test opens on 192.0.2.1 (dummy0), so every
 * real server stays up, as `plan` assumes by default.
 */
import type { ChildProcess } from "node:child_process";
import { globSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importKeepalived } from "../../../src/import/keepalived.ts";
import { renderResourcesYaml } from "../../../src/model/import-resources.ts";
import { parseIpvsadmSave } from "../../../src/model/ipvsadm-parse.ts";
import { runCli } from "../../../test/cli/run-cli.ts";
import { ipvsadm, plainTable, scratch, startKeepalived } from "./vm-helpers.ts";

const CONF = `! keepalived.conf for the round trip: virtual servers only
global_defs {
    router_id vm-roundtrip
}

virtual_server 192.0.2.10 80 {
    delay_loop 2
    lb_algo wrr
    lb_kind NAT
    persistence_timeout 300
    persistence_granularity 255.255.255.0
    protocol TCP
    quorum 1
    sorry_server 198.51.100.99 8080
    real_server 192.0.2.1 18080 {
        weight 3
        uthreshold 100
        lthreshold 50
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 198.51.100.2 8080 {
        weight 0
    }
}

virtual_server 192.0.2.11 80 {
    delay_loop 2
    lb_algo rr
    protocol TCP
    real_server 192.0.2.1 18081 {
        HTTP_GET {
            url {
                path /healthz
                status_code 200
            }
            connect_timeout 1
        }
    }
}

virtual_server 192.0.2.12 53 {
    lb_algo sh
    sh-port
    sh-fallback
    ops
    lb_kind DR
    real_server 198.51.100.3 53 {
        weight 2
    }
}

virtual_server 2001:db8::10 443 {
    lb_algo lc
    lb_kind TUN
    protocol TCP
    persistence_timeout 600
    persistence_granularity 64
    real_server 2001:db8::20 443 {
    }
    real_server 198.51.100.4 443 {
    }
}

virtual_server fwmark 7 {
    lb_algo mh
    mh-fallback
    lb_kind TUN type gue port 6080 csum
    real_server 198.51.100.7 {
        weight 5
    }
}

virtual_server_group web {
    192.0.2.20-21 80
    fwmark 8
}
virtual_server group web {
    lb_algo dh
    lb_kind DR
    protocol TCP
    real_server 198.51.100.9 80 {
    }
}

virtual_server 192.0.2.30 0 {
    protocol TCP
    persistence_timeout 120
    lb_kind DR
    real_server 198.51.100.30 {
    }
}

virtual_server 192.0.2.40 9 {
    protocol SCTP
    lb_algo nq
    real_server 198.51.100.40 9999 {
    }
    real_server 198.51.100.41 {
    }
}

include conf.d/*.conf
`;

const EXTRA = `virtual_server 192.0.2.50 8443 {
    protocol TCP
    lb_algo sed
    real_server 198.51.100.50 443 {
        weight 7
    }
}
`;

function lines(text: string, prefix: string): number {
  return text.split("\n").filter((l) => l.startsWith(prefix)).length;
}

describe("keepalived round trip", () => {
  let tcp: Server;
  let http: HttpServer;
  let keepalived: ChildProcess | undefined;
  let log = () => "";
  beforeAll(async () => {
    ipvsadm(["-C"]);
    tcp = createServer((socket) => socket.destroy()).listen(18080, "192.0.2.1");
    http = createHttpServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
    }).listen(18081, "192.0.2.1");
  });
  afterAll(async () => {
    if (keepalived && keepalived.exitCode === null) {
      keepalived.kill("SIGTERM");
      await new Promise((resolve) => keepalived?.once("exit", resolve));
    }
    tcp.close();
    http.close();
    ipvsadm(["-C"]);
  });

  it("plan -f of the imported objects prints the table keepalived programmed", async () => {
    const dir = scratch("keepalived-");
    const file = join(dir, "keepalived.conf");
    writeFileSync(file, CONF);
    mkdirSync(join(dir, "conf.d"));
    writeFileSync(join(dir, "conf.d", "extra.conf"), EXTRA);

    const imported = importKeepalived(CONF, {
      file,
      readFile: (path) => readFileSync(path, "utf8"),
      glob: (pattern) => globSync(pattern),
    });
    expect(imported.errors).toEqual([]);
    // What keepalived does and the objects do not say is reported, with file:line.
    expect(imported.report.map((n) => `${n.line}: ${n.message.split(/[:(]/)[0]?.trim()}`)).toEqual([
      "2: global_defs is not read",
      "13: quorum has no equivalent",
      "44: no protocol",
      "84: port 80 is ignored",
    ]);
    const yaml = join(dir, "lb.yaml");
    writeFileSync(yaml, renderResourcesYaml(imported.objects));
    const planned = await runCli(["plan", "-f", yaml, "--node", "vm"]);
    expect(planned.stderr).toBe("");
    expect(planned.code).toBe(0);

    const started = startKeepalived(file);
    keepalived = started.child;
    log = started.log;
    // Wait for every service and real server, then for a few rounds of checks (delay_loop 2).
    const services = lines(planned.stdout, "-A ");
    const destinations = lines(planned.stdout, "-a ");
    let programmed = "";
    for (let i = 0; i < 120; i++) {
      programmed = ipvsadm(["-Sn"]);
      if (lines(programmed, "-A ") >= services && lines(programmed, "-a ") >= destinations) break;
      if (keepalived.exitCode !== null) break;
      await sleep(250);
    }
    await sleep(5000);
    programmed = ipvsadm(["-Sn"]);
    expect(keepalived.exitCode, log()).toBeNull();

    const fromKeepalived = parseIpvsadmSave(programmed);
    const fromPlan = parseIpvsadmSave(planned.stdout);
    expect(fromKeepalived.problems).toEqual([]);
    expect(fromPlan.problems).toEqual([]);
    expect(plainTable(fromKeepalived.table), `${programmed}\n${log()}`).toEqual(plainTable(fromPlan.table));
    // Thresholds are not in -Sn: the listing with --thresholds has them.
    expect(ipvsadm(["-Ln", "--thresholds"])).toMatch(/192\.0\.2\.1:18080\s+100\s+50\s/);
    expect(planned.stdout.split("\n").sort()).toEqual(programmed.split("\n").sort());
  });
});
