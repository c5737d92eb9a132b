"""The dashboard and the metrics API: one page and a JSON API under ``/api/v1/metrics/``, both
reading only the dbt marts. Served by ``wa-analytics dashboard``, apart from the webhook door."""
