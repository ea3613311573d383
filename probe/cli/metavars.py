"""What each option's value is, as help shows it: DURATION, N, URL, FILE...

typer shows a parameter's Python type (``<str>``, ``<int>``) where it has no
metavar, which says nothing about what to type; ``--idle <str>`` hides that
it takes ``90s`` or ``5m``. One table, by parameter name, labels the
parameters of the click command typer builds, before it runs; flags show no
value at all.
Options whose type is a set of choices keep typer's list of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

DURATION = "DURATION"

#: parameter name -> metavar. "" for flags: they take no value.
METAVARS: dict[str, str] = {
    # durations (90s, 5m, 2h10m, or plain seconds)
    **dict.fromkeys(
        (
            "idle", "grace", "nat_timeout", "max_idle", "resolution", "budget", "expect_min", "idle_timeout",
            "user_timeout", "duration_opt", "timeout", "heartbeat_every", "heartbeat_timeout", "keepalive_idle",
            "keepalive_interval", "udp_timeout", "udp_stream_timeout", "wait",
        ),
        DURATION,
    ),
    # counts
    **dict.fromkeys(("parallel", "keepalive_count", "repeat", "max_hops", "max_sessions", "max_per_ip"), "N"),
    # where to listen or connect
    **dict.fromkeys(("listen", "upstream", "tcp", "ws", "udp"), "HOST:PORT"),
    "control": "URL",
    "proxy": "URL|env",
    "target": "TARGET",
    "targets": "TARGET",
    # files
    **dict.fromkeys(("config", "cacert", "textfile"), "FILE"),
    # words
    "token": "SECRET",
    "subprotocol": "NAME",
    "probe_name": "NAME",
    "name": "SCHEMA",
    "header": "'NAME: VALUE'",
    "heartbeat_message": "TEXT",
    "heartbeat_kind": "ping|message",
    "heartbeat_mode": "fixed|idle",
    "mode": "drop|reset|close",
    "family": "4|6|both",
    # flags
    **dict.fromkeys(
        (
            "json_out", "ndjson", "quiet", "no_save", "insecure", "loose", "random_ports", "silent_router",
            "use_nagios", "hung_server", "confirm", "version", "install_completion", "show_completion", "help",
        ),
        "",
    ),
}  # fmt: skip


def parameters(command: Any, parent: Any = None) -> Iterator[tuple[str, Any]]:
    """(command name, parameter) for every parameter of a click command tree,
    each command's --help included."""
    ctx = _context(command, parent)
    for param in [*command.params, *_help_option(command, ctx)]:
        yield command.name or "", param
    for sub in getattr(command, "commands", {}).values():
        yield from parameters(sub, ctx)


def _context(command: Any, parent: Any) -> Any:
    # The context the command will run in, built without parsing anything:
    # its help option names (-h beside --help) come from the root's
    # context_settings through the parent.
    return command.context_class(command, info_name=command.name, parent=parent, **command.context_settings)


def _help_option(command: Any, ctx: Any) -> list[Any]:
    # click 8.2 and typer 0.2x make --help once per command and keep it
    # (get_help_option caches it), so a metavar given here is the one help
    # shows; older ones build it afresh and show no type for it anyway.
    option = command.get_help_option(ctx)
    return [] if option is None else [option]


def is_choice(param: Any) -> bool:
    """Whether help lists the parameter's choices (typer's own parameters
    know them, click's keep them on their type)."""
    descriptor = getattr(param, "type_descriptor", None)
    return bool(getattr(descriptor, "is_choice", False)) or hasattr(getattr(param, "type", None), "choices")


def label(command: Any) -> Any:
    """Give every parameter of ``command`` (typer.main.get_command's) its
    metavar from the table; return the command."""
    for _, param in parameters(command):
        if param.metavar is None and not is_choice(param) and param.name in METAVARS:
            param.metavar = METAVARS[param.name]
        if param.param_type_name == "argument" and param.metavar:
            # An argument's name column already shows its metavar (TARGET);
            # typer 0.2x adds its Python type (<str>) beside it, which says
            # nothing more. Help asks the parameter for that column.
            param.display_type_rich = _no_type
    return command


def _no_type(ctx: Any) -> None:
    return None
