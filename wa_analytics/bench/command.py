"""``wa-analytics bench``, registered by entry point (pyproject.toml: wa_analytics.commands)."""


def register(commands) -> None:
    bench = commands.add_parser(
        "bench", help="measure throughput and latency against baselines; print a table"
    )
    bench.add_argument(
        "--only",
        default="all",
        help="comma-separated stages: ingest, end-to-end, worker, dbt, api, freshness, memory, "
        "restarts",
    )
    bench.add_argument(
        "--duration", type=float, default=10.0, help="seconds per load measurement (end to end: 3x)"
    )
    # A campaign to 100,000 contacts comes back as about 300,000 statuses (the burst).
    bench.add_argument(
        "--events",
        type=int,
        default=300_000,
        help="events queued for the worker (at least 100,000 for a figure that counts)",
    )
    bench.add_argument(
        "--dbt-events",
        type=int,
        default=10_000_000,
        help="events in raw.events for the dbt measurement",
    )
    bench.add_argument(
        "--soak", type=float, default=600.0, help="memory soak and restarts soak, seconds each"
    )
    bench.add_argument(
        "--freshness",
        type=float,
        default=180.0,
        help="seconds of steady traffic for the freshness stage",
    )
    bench.add_argument(
        "--rate", type=float, help="steady rate for end to end and soak when ingest is not measured"
    )
    bench.add_argument("--smoke", action="store_true", help="a few seconds of each, for CI")
    bench.set_defaults(handler=run)


def run(args) -> int:
    from wa_analytics.bench.run import run_bench  # noqa: PLC0415 - keeps --help fast

    return run_bench(args)
