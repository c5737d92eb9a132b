"""``/api/v1/export/<mart>.csv``: the rows behind the figures, for a date range (and a business
number), as CSV streamed from PostgreSQL's COPY: every column of the mart, a header line, the
rows in a stable order. The build they come from is in the ``X-Built-At`` and ``X-Data-As-Of``
headers (the same snapshot)."""

from psycopg import sql

# The marts that can be exported: the local day each is filtered on, then its rows' order.
EXPORTS = {
    "responses": ("activity_date", "waiting_since", "response_message_id"),
    "conversations": ("opened_date", "opened_at", "conversation_id"),
    "sla_breaches": ("activity_date", "waiting_since", "contact_id"),
}
# A year of responses is millions of rows: more time than a JSON answer, still bounded.
EXPORT_TIMEOUT = "120s"


def copy_statement(mart: str) -> sql.Composed:
    """``COPY (select ...) TO STDOUT`` for one mart, its filters as parameters."""
    day, *order = (sql.Identifier(column) for column in EXPORTS[mart])
    return sql.SQL(
        "copy (select * from marts.{mart} where {day} between %(start)s and %(end)s"
        " and (%(number)s::text is null or business_phone_number_id = %(number)s)"
        " order by {day}, {order}) to stdout with (format csv, header)"
    ).format(mart=sql.Identifier(mart), day=day, order=sql.SQL(", ").join(order))
