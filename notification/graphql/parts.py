"""What a host project merges into its strawberry schema (README: "Use it in your own
Django project")::

    from strawberry.tools import merge_types
    from notification.graphql import parts

    Query = merge_types("Query", (MyQuery, *parts.QUERY_TYPES))
    Mutation = merge_types("Mutation", (MyMutation, *parts.MUTATION_TYPES))
    schema = strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=merge_types("Subscription", parts.SUBSCRIPTION_TYPES),
        extensions=parts.EXTENSIONS,
        execution_context_class=parts.EXECUTION_CONTEXT_CLASS,
    )

``EXECUTION_CONTEXT_CLASS`` executes a subscription event once for all the
subscribers of the same operation (without it each subscriber pays for its own
execution); a host that needs its own execution context can subclass it.
"""

from strawberry_django.optimizer import DjangoOptimizerExtension

from notification.graphql.mutations import NotificationMutation
from notification.graphql.queries import Query
from notification.graphql.query_limits import QueryLimits
from notification.graphql.resend import ResendMutation
from notification.graphql.subscriptions import SharedEventExecutionContext, Subscription

QUERY_TYPES: tuple[type, ...] = (Query,)
MUTATION_TYPES: tuple[type, ...] = (NotificationMutation, ResendMutation)
SUBSCRIPTION_TYPES: tuple[type, ...] = (Subscription,)
EXTENSIONS = [QueryLimits, DjangoOptimizerExtension]
EXECUTION_CONTEXT_CLASS = SharedEventExecutionContext
