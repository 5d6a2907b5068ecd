"""Stack info and status as Rich tables, for the terminal."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from harness.stack.base import ProcessState, StackInfo, StackStatus

_STATE_STYLE = {
    ProcessState.ALIVE: "green",
    ProcessState.PAUSED: "yellow",
    ProcessState.DEAD: "red",
}


def info_table(info: StackInfo) -> Table:
    """What to point a client, a fault or a person at."""
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_row("entry", info.entry_page, "the load balancer in front of the instances")
    table.add_row("toxiproxy API", info.toxiproxy_url, "")
    for service in info.services:
        if service.role not in ("entry", "toxiproxy"):  # the two rows above
            table.add_row(service.name, service.endpoint.address, service.role)
    for instance in info.instances:
        # A user's compose project may reach an instance through no proxy of its own.
        fronts = [p for p in info.proxies if p.name == instance.proxy]
        where = f"behind proxy {fronts[0].name} on {fronts[0].listen.address}" if fronts else ""
        table.add_row(instance.name, instance.endpoint.url(), where)
    for proxy in info.proxies:
        if not any(proxy.name == i.proxy for i in info.instances):
            table.add_row(
                f"proxy {proxy.name}", proxy.listen.address, f"to {proxy.upstream.address}"
            )
    if info.database_url:
        table.add_row("database", info.database_url, "direct, bypassing Toxiproxy")
    if info.admin_token:
        table.add_row("admin token", info.admin_token, "Authorization: Bearer <token>")
    return table


def status_table(status: StackStatus) -> Table:
    table = Table(title=f"stack in {status.location}", title_justify="left")
    for column in ("process", "role", "pid", "state", "healthy", "address", "detail"):
        table.add_column(column, no_wrap=column != "detail")
    for p in status.processes:
        table.add_row(
            p.name,
            p.role,
            str(p.pid),
            Text(p.state.value, style=_STATE_STYLE[p.state]),
            Text("yes", style="green") if p.healthy else Text("no", style="red"),
            p.endpoint.address,
            p.detail,
        )
    return table
