"""The GraphQL schema served at ``/graphql/``: HTTP by Django (``schema.views``),
websockets by strawberry's channels consumer (``config/asgi.py``).

``Mutation`` is merged from one class per feature module, so a feature adds mutations
without editing a shared class: import its class here and append it to
``MUTATION_TYPES`` (field names must not clash; ``merge_types`` raises if they do).

After any change, regenerate the committed SDL that frontends code against (a test
fails while it is stale): ``make schema``, i.e.
``python manage.py export_schema schema.schema:schema --path schema.graphql``.
"""

from strawberry.tools import merge_types
from strawberry_django.optimizer import DjangoOptimizerExtension

from schema.error_logging import Schema
from schema.mutations import AuthMutation, NotificationMutation
from schema.queries import Query
from schema.resend import ResendMutation
from schema.subscriptions import SharedEventExecutionContext, Subscription

MUTATION_TYPES: tuple[type, ...] = (AuthMutation, NotificationMutation, ResendMutation)

Mutation = merge_types("Mutation", MUTATION_TYPES)

# Client errors are logged as one line, not a traceback (``schema.error_logging``).
schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[DjangoOptimizerExtension],
    # Subscription events are executed once per event, not once per subscriber.
    execution_context_class=SharedEventExecutionContext,
)
