"""``wa-analytics bench``: each throughput and latency target measured beside its baseline."""
