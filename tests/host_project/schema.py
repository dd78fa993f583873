"""The host's own strawberry schema, with the app's GraphQL parts merged in."""

import strawberry
from strawberry.tools import merge_types

from notification.graphql import parts


@strawberry.type
class HostQuery:
    @strawberry.field(description="A field of the host's own.")
    def shop_name(self) -> str:
        return "Acme"


Query = merge_types("Query", (HostQuery, *parts.QUERY_TYPES))
Mutation = merge_types("Mutation", parts.MUTATION_TYPES)
Subscription = merge_types("Subscription", parts.SUBSCRIPTION_TYPES)

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=parts.EXTENSIONS,
    execution_context_class=parts.EXECUTION_CONTEXT_CLASS,
)
