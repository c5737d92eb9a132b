"""WhatsApp analytics on a unified event stream, in layers, each importing only those below it:

- developer tools: `wa_analytics.demo` and `wa_analytics.bench` (the traffic generator and the
  benchmarks), which add their commands to the command line;
- the command line: `wa_analytics.cli` (`wa-analytics`);
- services: `ingest_service`, `worker`, `dashboard` and the transform (`wa_analytics.transform`);
- the core: `wa_analytics.core`.
"""
