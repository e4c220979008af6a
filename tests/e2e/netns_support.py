"""Network namespaces for the transparent-mode tests (PROTOCOLS.md §7): a client, a gateway that runs Sluice and the
firewall rules, and a server, joined by two veth pairs. Nothing outside the three namespaces is touched: every
link is created inside one (`ip -n NS link add ... peer ... netns OTHER`), every rule and route is added in the
gateway, and `Lab.close()` deletes the namespaces (and with them their links, addresses, rules and routes).

    client  c0 10.250.1.2/24  fd5c:1::2/64 ─── r0 10.250.1.1/24  fd5c:1::1/64   gateway (forwarding on)
    server  s0 10.250.2.2/24  fd5c:2::2/64 ─── r1 10.250.2.1/24  fd5c:2::1/64

The names carry the process id and a random suffix, so parallel runs never collide. Needs root (CAP_NET_ADMIN and
CAP_SYS_ADMIN) and iproute2; the rules need nftables.
"""

import os
import secrets
import shutil
import subprocess
import time

CLIENT_V4, GATEWAY_CLIENT_V4 = "10.250.1.2", "10.250.1.1"
SERVER_V4, GATEWAY_SERVER_V4 = "10.250.2.2", "10.250.2.1"
CLIENT_V6, GATEWAY_CLIENT_V6 = "fd5c:1::2", "fd5c:1::1"
SERVER_V6, GATEWAY_SERVER_V6 = "fd5c:2::2", "fd5c:2::1"
#: What the server sees Sluice's (and any forwarded client's) connections come from.
NETWORKS = ["10.250.0.0/16", "fd5c::/16"]

COMMAND_TIMEOUT = 30


def unavailable():
    """Why the namespace tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN)"
    if shutil.which("ip") is None:
        return "iproute2 is not installed (scripts/setup --test installs it)"
    if shutil.which("nft") is None:
        return "nftables is not installed (scripts/setup --test installs it)"
    probe = f"slprobe{os.getpid()}{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if made.returncode != 0:
        return f"ip netns does not work here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=COMMAND_TIMEOUT)
    return None


def run(args, check=True, **kwargs):
    """Runs a command to completion (output captured as text); raises with its stderr when `check` and it fails."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=kwargs.pop("timeout", COMMAND_TIMEOUT),
                            stdin=kwargs.pop("stdin", subprocess.DEVNULL), **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


class Lab:
    """Three namespaces wired as in the module docstring. Build with `Lab()`; always `close()` (idempotent)."""

    def __init__(self):
        tag = f"{os.getpid()}{secrets.token_hex(2)}"
        self.client = f"slc{tag}"
        self.gateway = f"slg{tag}"
        self.server = f"sls{tag}"
        self.namespaces = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self):
        for namespace in (self.client, self.gateway, self.server):
            run(["ip", "netns", "add", namespace])
            self.namespaces.append(namespace)
            run(["ip", "-n", namespace, "link", "set", "lo", "up"])
        # Each pair is made inside a namespace with its peer put straight into the other: no link ever exists in the
        # root namespace, not even for a moment.
        run(["ip", "-n", self.client, "link", "add", "c0", "type", "veth", "peer", "name", "r0", "netns", self.gateway])
        run(["ip", "-n", self.gateway, "link", "add", "r1", "type", "veth", "peer", "name", "s0", "netns", self.server])
        for namespace, link, v4, v6 in (
            (self.client, "c0", CLIENT_V4, CLIENT_V6), (self.gateway, "r0", GATEWAY_CLIENT_V4, GATEWAY_CLIENT_V6),
            (self.gateway, "r1", GATEWAY_SERVER_V4, GATEWAY_SERVER_V6), (self.server, "s0", SERVER_V4, SERVER_V6),
        ):
            run(["ip", "-n", namespace, "addr", "add", f"{v4}/24", "dev", link])
            # nodad: usable at once, not after duplicate address detection's second or two.
            run(["ip", "-n", namespace, "addr", "add", f"{v6}/64", "dev", link, "nodad"])
            run(["ip", "-n", namespace, "link", "set", link, "up"])
        run(["ip", "-n", self.client, "route", "add", "default", "via", GATEWAY_CLIENT_V4])
        run(["ip", "-n", self.client, "-6", "route", "add", "default", "via", GATEWAY_CLIENT_V6])
        run(["ip", "-n", self.server, "route", "add", "default", "via", GATEWAY_SERVER_V4])
        run(["ip", "-n", self.server, "-6", "route", "add", "default", "via", GATEWAY_SERVER_V6])
        self.exec(self.gateway, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])

    @staticmethod
    def prefix(namespace):
        """The command prefix that runs a program in `namespace`."""
        return ["ip", "netns", "exec", namespace]

    def exec(self, namespace, args, check=True, **kwargs):
        return run(self.prefix(namespace) + list(args), check=check, **kwargs)

    def listening(self, namespace, port):
        """Whether something listens on TCP `port` in `namespace`."""
        result = self.exec(namespace, ["ss", "-H", "-l", "-t", "-n", f"sport = :{port}"], check=False)
        return result.returncode == 0 and result.stdout.strip() != ""

    def wait_listening(self, namespace, port, timeout=20.0, process=None, what="server"):
        deadline = time.monotonic() + timeout
        while not self.listening(namespace, port):
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{what} exited with {process.returncode} before listening on {port}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not listening on {port} in {namespace} after {timeout}s")
            time.sleep(0.05)

    def close(self):
        """Deletes every namespace made (their links, addresses, routes and rules go with them)."""
        while self.namespaces:
            namespace = self.namespaces.pop()
            run(["ip", "netns", "del", namespace], check=False)
