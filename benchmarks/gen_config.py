"""Generates large keepalived configurations for the config benchmarks."""

from __future__ import annotations


def large_config(instances: int = 1000, virtual_servers: int = 1000, real_servers: int = 10) -> str:
    """``instances`` vrrp_instances and ``virtual_servers`` virtual servers of ``real_servers`` each."""
    out = ["global_defs {", "    router_id bench", "}", ""]
    for i in range(instances):
        out += [
            f"vrrp_instance VI_{i} {{",
            "    state BACKUP",
            f"    interface eth{i // 255}",
            f"    virtual_router_id {i % 255 + 1}",
            "    priority 100",
            "    advert_int 1",
            "    virtual_ipaddress {",
            f"        10.{i // 256}.{i % 256}.1/24 dev eth{i // 255} label eth{i // 255}:v{i % 255}",
            "    }",
            "}",
        ]
    for v in range(virtual_servers):
        out += [
            f"virtual_server 172.16.{v // 256}.{v % 256} 80 {{",
            "    delay_loop 6",
            "    lb_algo wlc",
            "    lb_kind NAT",
            "    protocol TCP",
        ]
        for r in range(real_servers):
            out += [
                f"    real_server 192.168.{v % 256}.{r + 1} 8080 {{",
                "        weight 1",
                "        HTTP_GET {",
                "            url {",
                "                path /health",
                "                status_code 200",
                "            }",
                "            connect_timeout 3",
                "            retry 3",
                "            delay_before_retry 2",
                "        }",
                "    }",
            ]
        out.append("}")
    return "\n".join(out) + "\n"


def many_items_config(items: int = 100_000) -> str:
    """``items`` vrrp_script blocks and a vrrp_instance with ``items`` virtual_ipaddress entries."""
    out = [f"vrrp_script chk_{i} {{\n    script /bin/true\n}}" for i in range(items)]
    out += ["vrrp_instance VI_1 {", "    interface lo", "    virtual_router_id 1", "    priority 100"]
    out.append("    virtual_ipaddress {")
    out += [f"        10.{i // 65536}.{i // 256 % 256}.{i % 256}/32" for i in range(items)]
    out += ["    }", "}"]
    return "\n".join(out) + "\n"
