"""``wa-analytics demo``, registered by entry point (pyproject.toml: wa_analytics.commands)."""


def register(commands) -> None:
    demo = commands.add_parser("demo", help="end to end: traffic -> service -> worker -> dbt")
    demo.add_argument("--contacts", type=int, default=300)
    demo.add_argument("--days", type=int, default=5)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--port", type=int, default=0, help="service port (default: a free one)")
    demo.add_argument("--timezone", default="UTC", help="reporting_timezone for the marts")
    demo.add_argument(
        "--dashboard-port", type=int, default=8050, help="the dashboard's port, if free"
    )
    demo.set_defaults(handler=run)


def run(args) -> int:
    from wa_analytics.demo.run import run_demo  # noqa: PLC0415 - keeps --help fast

    return run_demo(args)
