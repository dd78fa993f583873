"""The GraphQL schema served at ``/graphql/``: HTTP by Django (``schema.views``),
websockets by strawberry's channels consumer (``config/asgi.py``).

The project's schema is assembled here from the app's GraphQL parts
(``notification.graphql.parts``) plus the project's own session login
(``schema.auth``), the same way a host project merges them into its schema.
``Mutation`` is merged from one class per feature module, so a feature adds mutations
without editing a shared class (field names must not clash; ``merge_types`` raises
if they do).

After any change, regenerate the committed SDL that frontends code against (a test
fails while it is stale): ``make schema``, i.e.
``python manage.py export_schema schema.schema:schema --path schema.graphql``.
"""

from strawberry.tools import merge_types

from notification.graphql import parts
from schema.auth import AuthMutation
from schema.error_logging import Schema

MUTATION_TYPES: tuple[type, ...] = (AuthMutation, *parts.MUTATION_TYPES)
(Query,) = parts.QUERY_TYPES
(Subscription,) = parts.SUBSCRIPTION_TYPES

Mutation = merge_types("Mutation", MUTATION_TYPES)

# Client errors are logged as one line, not a traceback (``schema.error_logging``).
schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=parts.EXTENSIONS,
    # Subscription events are executed once per event, not once per subscriber.
    execution_context_class=parts.EXECUTION_CONTEXT_CLASS,
)
