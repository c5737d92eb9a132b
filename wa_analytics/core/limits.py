"""One contract, door to marts: the limits every accepted delivery keeps, set here once.

The door refuses a delivery that breaks a whole-body limit (size, nesting, duplicate keys) with a
4xx and the reason; the worker quarantines an item of an authentic delivery that breaks an item
limit (an id too long, a number out of range); dbt reads the same numbers as vars
(``dbt_project.yml``, checked equal by a test) and excludes any older row that breaks them.
"""

MIB = 1024 * 1024

# The largest body the door reads (WA_MAX_BODY_BYTES overrides it).
MAX_BODY_BYTES = 3 * MIB
# JSON nesting: Meta's notifications are 7 levels deep, the CRM's 3. The worker re-serialises
# what it keeps (orjson stops at 254 levels), so the door refuses anything deeper than this.
MAX_NESTING = 64
# Characters of any id kept in an event: message, agent, conversation, business number. Meta's
# message ids are about 60; a PostgreSQL btree index row holds at most about 2,700 bytes.
MAX_ID_LENGTH = 256
# Characters of any other text kept in an event's properties (message type, MIME type, error
# title, pricing category...): the people's own text is never kept, only its length.
MAX_TEXT_LENGTH = 1024
# Integers kept in an event's properties (error codes, lengths) fit PostgreSQL's integer.
MAX_INTEGER = 2**31 - 1
