"""The host's own strawberry schema, with the app's GraphQL parts (notification.api) merged in."""

import strawberry
from strawberry.tools import merge_types

from notification import api


@strawberry.type
class HostQuery:
    @strawberry.field(description="A field of the host's own.")
    def shop_name(self) -> str:
        return "Acme"


Query = merge_types("Query", (HostQuery, *api.QUERY_TYPES))
Mutation = merge_types("Mutation", api.MUTATION_TYPES)
Subscription = merge_types("Subscription", api.SUBSCRIPTION_TYPES)

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=api.EXTENSIONS,
    execution_context_class=api.EXECUTION_CONTEXT_CLASS,
)
